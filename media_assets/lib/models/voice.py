"""The GE2E speaker encoder (Resemblyzer's network and its `pretrained.pt`), run without
Resemblyzer's own preprocessing stack.

Resemblyzer 0.1.4 declares librosa (numba, llvmlite, soundfile, ...), webrtcvad (an sdist)
and `typing` (a Python 2 backport) as requirements and imports librosa in its `__init__`.
It is installed `--no-deps` and only its weights are used: the three-layer LSTM is
rebuilt here with the same shapes, and its 40-band mel spectrogram (librosa's Slaney mel
filters, 25 ms Hann window, 10 ms hop, power 2, reflect padding, as librosa computed it
when the model was trained) is computed with numpy. Audio comes from our own PyAV decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

RATE = 16000
N_FFT, HOP, N_MELS = 400, 160, 40  # 25 ms window, 10 ms step
PARTIAL_FRAMES = 160  # one partial utterance: 1.6 s of mel frames
WEIGHTS = "pretrained.pt"
DIM = 256


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False)."""
    f = np.asanyarray(f, dtype=np.float64)
    mels = f / (200.0 / 3)
    log_t = f >= 1000.0
    mels = np.where(log_t, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0),
                    mels)
    return mels


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    freqs = m * (200.0 / 3)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), freqs)


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """(40, 201) Slaney-normalised triangular filters, as librosa.filters.mel builds them."""
    fft_freqs = np.linspace(0, RATE / 2, 1 + N_FFT // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((N_MELS, len(fft_freqs)))
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS]))[:, None]
    return weights.astype(np.float32)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power spectrogram (not log) of 16 kHz float audio."""
    wav = np.asarray(wav, dtype=np.float32)
    padded = np.pad(wav, N_FFT // 2, mode="reflect" if len(wav) > N_FFT // 2 else "constant")
    n = 1 + (len(padded) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    spec = np.abs(np.fft.rfft(padded[idx] * window, axis=1)) ** 2
    return (spec.astype(np.float32) @ mel_filters().T).astype(np.float32)


def _network():
    from torch import nn

    class GE2E(nn.Module):
        """Resemblyzer's VoiceEncoder: LSTM(40, 256, 3 layers) -> linear -> ReLU -> L2."""

        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
            self.linear = nn.Linear(256, DIM)
            self.relu = nn.ReLU()

        def forward(self, mels):
            import torch

            _, (hidden, _) = self.lstm(mels)
            raw = self.relu(self.linear(hidden[-1]))
            return raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-8)

    return GE2E()


@dataclass
class VoiceEncoder:
    model: Any
    device: str
    model_ref: str = ""

    def embed_partials(self, mels: np.ndarray, batch: int = 128) -> np.ndarray:
        """(n, 160, 40) mel windows -> (n, 256) unit vectors."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(mels), batch):
                x = torch.from_numpy(np.ascontiguousarray(mels[i:i + batch])).to(self.device)
                out.append(self.model(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, DIM), np.float32)


def load_voice_encoder(path: Path, device: str) -> VoiceEncoder:
    """The GE2E network with the weights in `path/pretrained.pt` (tensors only: the file's
    optimizer state is never unpickled as objects)."""
    import torch

    checkpoint = torch.load(Path(path) / WEIGHTS, map_location="cpu", weights_only=True)
    model = _network()
    state = {k: v for k, v in checkpoint["model_state"].items()
             if not k.startswith("similarity_")}  # GE2E's training-only scale and bias
    model.load_state_dict(state)
    model.to(device).eval()
    return VoiceEncoder(model, device)


def partial_windows(wav: np.ndarray, rate_per_s: float = 1.3,
                    min_coverage: float = 0.75) -> np.ndarray:
    """(n, 160, 40): the utterance cut into overlapping 1.6-s partials, zero-padded at the
    end when the last one covers at least `min_coverage` (Resemblyzer's embed_utterance)."""
    samples_per_frame = HOP
    n_frames = int(np.ceil((len(wav) + 1) / samples_per_frame))
    step = max(1, int(np.round((RATE / rate_per_s) / samples_per_frame)))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1]
    coverage = (len(wav) - last * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    need = (starts[-1] + PARTIAL_FRAMES) * HOP
    if need > len(wav):
        wav = np.pad(wav, (0, need - len(wav)))
    mel = mel_spectrogram(wav)
    if len(mel) < starts[-1] + PARTIAL_FRAMES:
        mel = np.pad(mel, ((0, starts[-1] + PARTIAL_FRAMES - len(mel)), (0, 0)))
    return np.stack([mel[s:s + PARTIAL_FRAMES] for s in starts])


def embed_utterances(encoder: VoiceEncoder, wavs: list[np.ndarray]) -> np.ndarray:
    """(len(wavs), 256): each utterance's L2-normalised mean of its partials' embeddings,
    all partials of all utterances run through the network in batches."""
    if not wavs:
        return np.zeros((0, DIM), np.float32)
    windows = [partial_windows(w) for w in wavs]
    flat = encoder.embed_partials(np.concatenate(windows))
    out, at = np.zeros((len(wavs), DIM), np.float32), 0
    for i, w in enumerate(windows):
        mean = flat[at:at + len(w)].mean(axis=0)
        out[i] = mean / max(float(np.linalg.norm(mean)), 1e-8)
        at += len(w)
    return out
