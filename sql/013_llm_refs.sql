-- Which LLM made each table design and cluster hierarchy, and what it cost. `llm_ref` is the
-- LLM that was asked (model id, GGUF file, @ weights fingerprint), whether or not its answer
-- was used; null: no LLM was there (the heuristics answered). When a usable LLM is present,
-- designs and hierarchies with a null or different ref are made again, as CLIP vectors of
-- another model are re-embedded.
ALTER TABLE json_schemas ADD COLUMN llm_ref text;
ALTER TABLE json_schemas ADD COLUMN llm_seconds double precision;
ALTER TABLE cluster_hierarchies ADD COLUMN llm_ref text;
ALTER TABLE cluster_hierarchies ADD COLUMN llm_seconds double precision;
