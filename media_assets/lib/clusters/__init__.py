"""Clusters of the CLIP space: found (HDBSCAN on a k-NN graph), named (BLIP-2 captions or
CLIP zero-shot), placed in a hierarchy (Phi-3.5 or a heuristic) and laid out as folders."""
