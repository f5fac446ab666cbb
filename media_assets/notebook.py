"""The catalogue from a notebook, as pandas DataFrames.

    from media_assets.notebook import Catalogue
    cat = Catalogue()                 # the settings `media-assets` uses (MEDIA_ASSETS_*)
    cat.files(kind="image")           # one row per file: path, kind, status, size, taken_at
    cat.search("rocket launch", k=20) # fused hits, with what matched and which legs
    cat.json_tables()                 # each JSON file's table: name, rows, rejects
    cat.json_table("cars")            # that table's rows

Read-only: the same `lib` functions the CLI and the API call, nothing written. Models are
loaded only for `search` (CLIP and the text model, through the model inventory), and kept
for the next query.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from media_assets.lib.db import open_catalog
from media_assets.lib.json_docs.load import SCHEMA, check_table_name, quote_ident
from media_assets.lib.settings import Settings

FILE_COLUMNS = ("key", "primary_path", "kind", "status", "mime_type", "size_bytes",
                "taken_at", "file_modified_at", "error")


class Catalogue:
    """An open catalogue; `close()` it (or use `with Catalogue() as cat:`)."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.catalog = open_catalog(self.settings)
        self._manager = None

    @property
    def engine(self) -> sa.Engine:
        return self.catalog.engine

    def files(self, kind: str | None = None, status: str | None = None) -> pd.DataFrame:
        """Every catalogued file (one row per content), newest first."""
        where, params = [], {}
        if kind:
            where.append("kind = :kind")
            params["kind"] = kind
        if status:
            where.append("status = :status")
            params["status"] = status
        sql = (f"SELECT {', '.join(FILE_COLUMNS)} FROM media_files"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY first_seen_at DESC, key")
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params=params)

    def search(self, text: str, k: int = 10, kind: str | None = None) -> pd.DataFrame:
        """What `media-assets search` finds, one row per hit, best first: score, path,
        kind, the moment (seconds into a video or recording), what matched, the legs."""
        from media_assets.lib.models.registry import build_manager
        from media_assets.lib.search.query import search

        if self._manager is None:
            self._manager = build_manager(self.settings.models)
        found = search(self.engine, self._manager, text, k, kind=kind)
        rows = [{"score": round(h.score, 4), "path": h.path, "kind": h.kind, "key": h.key,
                 "at_s": h.frame_ms / 1000 if h.frame_ms >= 0 else None,
                 "matched": h.caption, "legs": h.source} for h in found.hits]
        out = pd.DataFrame(rows, columns=["score", "path", "kind", "key", "at_s", "matched",
                                          "legs"])
        out.attrs.update(model_ref=found.model_ref, notes=found.notes)  # why a leg was off
        return out

    def json_tables(self) -> pd.DataFrame:
        """Each loaded JSON file's table (in the `json_data` schema) and its counts."""
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(
                "SELECT t.table_name, f.primary_path AS path, t.row_count, t.reject_count, "
                "t.loaded_at, t.key FROM json_tables t JOIN media_files f USING (key) "
                "ORDER BY t.table_name"), conn)

    def json_table(self, name: str, limit: int | None = None) -> pd.DataFrame:
        """The rows of one JSON table (`json_tables().table_name`), in file order."""
        table = f"{SCHEMA}.{quote_ident(check_table_name(name))}"
        sql = f"SELECT * FROM {table} ORDER BY _row" + (" LIMIT :n" if limit else "")
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params={"n": limit} if limit else {})

    def close(self) -> None:
        if self._manager is not None:
            self._manager.unload_all()
        self.catalog.dispose()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
