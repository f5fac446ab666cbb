-- What each model was measured to take once loaded, per device: a lease reserves the larger
-- of a model's estimate and this before loading (lib/db/ledger.py), so two processes cannot
-- both be granted a model on an 8 MB guess and then hold 300 MB each.
CREATE TABLE model_footprints (
    device      text NOT NULL,
    model       text NOT NULL,             -- role:model id (clip:laion/CLIP-ViT-B-32-...)
    mb          double precision NOT NULL,
    measured_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device, model)
);
