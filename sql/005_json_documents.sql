-- JSON documents: the inferred design per file, and the table it was loaded into. The data
-- tables themselves live in the schema json_data, one per file, with a rejects table beside.
CREATE SCHEMA IF NOT EXISTS json_data;

CREATE TABLE json_schemas (
    key          text PRIMARY KEY REFERENCES media_files (key) ON DELETE CASCADE,
    table_name   text NOT NULL CHECK (table_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    storage_type text NOT NULL CHECK (storage_type IN ('sql', 'jsonb', 'hybrid')),
    reasoning    text NOT NULL,
    fields       jsonb NOT NULL,     -- {name: description}
    columns      jsonb NOT NULL,     -- full per-field inference
    indexes      jsonb NOT NULL,
    sample_size  integer NOT NULL,
    record_count integer NOT NULL,
    llm_model    text,
    llm_status   text NOT NULL,      -- 'used', 'off', or why its answer was not used
    inferred_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE json_tables (
    key          text PRIMARY KEY REFERENCES media_files (key) ON DELETE CASCADE,
    table_name   text NOT NULL UNIQUE,
    row_count    bigint NOT NULL,
    reject_count bigint NOT NULL,
    input_count  bigint NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (row_count + reject_count = input_count)
);
