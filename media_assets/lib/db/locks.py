"""The catalogue's PostgreSQL advisory-lock keys, one per purpose, kept together.

Advisory locks share one key space per database: two purposes on one key would wait for
each other (a long migration would hold up every model reservation of a running server).
Every key this package takes is here, and they differ.
"""

MIGRATIONS = 0x6D656469  # "medi": session lock while migrations apply (migrations.py)
MODEL_LEDGER = 0x6D6C6467  # "mldg": transaction lock per lease reservation (ledger.py)

ALL = {"migrations": MIGRATIONS, "model_ledger": MODEL_LEDGER}
