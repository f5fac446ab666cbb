"""The Dagster code location: every `defs` module's definitions, merged."""

import dagster as dg

import media_assets.defs

defs = dg.load_defs(defs_root=media_assets.defs)
