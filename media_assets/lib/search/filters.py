"""The filters every leg of a search applies, on `media_files f`, in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from media_assets.lib.speech.speaker_store import speaker_filter_sql

KINDS = ("image", "video", "audio", "json", "text")


@dataclass(frozen=True)
class Filters:
    # One kind, or several (`?kind=image&kind=video`: either); None or empty: every kind.
    kind: str | tuple[str, ...] | None = None
    after: datetime | None = None  # the EXIF date, else the file's modification time
    before: datetime | None = None
    under: str | None = None  # a folder: only files below it
    min_duration: float | None = None  # seconds, audio and video
    max_duration: float | None = None
    lang: str | None = None  # the language spoken (Whisper's code: en, de, ...)
    speaker: str | None = None  # a speaker's name (lib/speech/speaker_store.py) or label

    @property
    def kinds(self) -> tuple[str, ...] | None:
        """The kinds asked for, or None for every kind."""
        if not self.kind:
            return None
        kinds = (self.kind,) if isinstance(self.kind, str) else tuple(self.kind)
        return None if set(KINDS) <= set(kinds) else tuple(dict.fromkeys(kinds))

    @property
    def wants_pictures(self) -> bool:
        """Whether images or video frames can be results (the visual leg runs)."""
        return self.kinds is None or bool({"image", "video"} & set(self.kinds))

    def params(self) -> dict:
        under = self.under.rstrip("/") + "/" if self.under else None
        kinds = self.kinds
        # The image index's own function takes one kind; with image and video both asked
        # for it takes none and the outer filter drops the rest.
        pictures = [k for k in kinds or () if k in ("image", "video")]
        return {"f_kinds": list(kinds) if kinds else None,
                "f_visual_kind": pictures[0] if len(pictures) == 1 else None,
                "f_after": self.after, "f_before": self.before,
                "f_under": under, "f_min": self.min_duration, "f_max": self.max_duration,
                "f_lang": self.lang, "f_speaker": self.speaker}

    def sql(self, alias: str = "f") -> str:
        """` AND ...` conditions on the `media_files` alias, only for the filters given.

        Only the active ones are written, rather than every filter as `(:x IS NULL OR
        ...)`: the planner then plans a handful of short conditions instead of nine per
        source (the lexical statement has eight), planning being over half of a search's
        SQL time; and the statement text for each set of filters stays the same, so its
        parse is cached (`legs._statement`)."""
        f = alias
        when = f"coalesce({f}.taken_at, {f}.file_modified_at)"
        duration = f"({f}.details ->> 'duration_s')::float8"
        active = (
            (self.kinds, f" AND {f}.kind = ANY(CAST(:f_kinds AS text[]))"),
            (self.after, f" AND {when} >= :f_after"),
            (self.before, f" AND {when} < :f_before"),
            (self.under, f" AND starts_with({f}.primary_path, :f_under)"),
            (self.min_duration is not None, f" AND {duration} >= :f_min"),
            (self.max_duration is not None, f" AND {duration} <= :f_max"),
            (self.lang, f" AND EXISTS (SELECT 1 FROM transcripts t_ "
                        f"WHERE t_.key = {f}.key AND t_.language = :f_lang)"),
            (self.speaker, speaker_filter_sql(f)),
        )
        return ("".join(sql for on, sql in active if on)
                # Content whose every path is gone from disk (marked missing at a scan) is
                # not a result; it is again when a file with it comes back.
                + f" AND EXISTS (SELECT 1 FROM media_paths p_ WHERE p_.key = {f}.key"
                  f" AND p_.status = 'registered')")
