-- One memory budget across processes: every process that loads a model holds a lease for
-- it here (lib/db/ledger.py). A process that dies stops renewing its leases and they expire;
-- on the same host a dead pid frees them at once (kill -9).
CREATE TABLE model_leases (
    holder     text NOT NULL,              -- host:pid:nonce of the process
    host       text NOT NULL,
    pid        integer NOT NULL,
    device     text NOT NULL,
    model      text NOT NULL,              -- the role (clip, captioner, whisper, llm)
    mb         double precision NOT NULL,
    renewed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (holder, model)
);
