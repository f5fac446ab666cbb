"""The enrich-cluster answer in the seed's exact form (docs/contracts.md): `folder_path` as
`/personal/pets/cats/black_cats/` (leading and trailing slash, lower case, each part only
letters, digits and underscores), `hierarchy` sanitised the same way but keeping its words
("Black Cats"), 10-20 `extended_tags` always, `relationships.parent` and `similar_to` as
folder names. What `organize` uses (the display path "Places/Cities/Black Cats") stays
beside it as `folder_display`.
"""

from __future__ import annotations

import re
import unicodedata

from media_assets.lib.clusters.hierarchy import MAX_TAGS, MIN_TAGS, Enrichment

# Tags that fit any collection, used last, only to reach the seed's minimum of 10 when the
# label and its hierarchy give fewer distinct words.
GENERIC_TAGS = ("collection", "photos", "pictures", "images", "gallery", "album", "memories",
                "media", "library", "archive")


def _words(text: str) -> list[str]:
    """Letters and digits only (accents folded to ASCII), split where anything else was:
    "../../etc/passwd" -> ["etc", "passwd"]."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.findall(r"[A-Za-z0-9]+", text)


def folder_part(text: str) -> str:
    """One folder name in the seed's form: `black_cats`; empty when nothing is left."""
    return "_".join(w.lower() for w in _words(text))[:40].strip("_")


def hierarchy_part(text: str) -> str:
    """One hierarchy level with its words kept and everything else gone: "Black Cats";
    `../../etc/passwd` -> "etc passwd"."""
    return " ".join(_words(text))[:40].strip()


def seed_hierarchy(parts: list[str]) -> list[str]:
    out = [p for p in (hierarchy_part(x) for x in parts) if p]
    return out or ["Unsorted"]


def seed_folder_path(parts: list[str]) -> str:
    names = [p for p in (folder_part(x) for x in parts) if p] or ["unsorted"]
    return "/" + "/".join(names) + "/"


def seed_tags(tags: list[str], hierarchy: list[str]) -> list[str]:
    """10-20 distinct lower-case tags: the enrichment's own first, then the hierarchy's
    words, then generic ones."""
    out: list[str] = []
    for t in [*tags, *(h.lower() for h in hierarchy),
              *(w.lower() for h in hierarchy for w in _words(h)), *GENERIC_TAGS]:
        t = " ".join(str(t).split()).lower()
        if t and t not in out:
            out.append(t)
        if len(out) >= MAX_TAGS:
            break
    assert len(out) >= MIN_TAGS  # GENERIC_TAGS alone are 10
    return out


def seed_contract(e: Enrichment) -> dict:
    """The seed's enrich-cluster response, and what we know beyond it."""
    hierarchy = seed_hierarchy(e.hierarchy)
    parent = e.relationships.get("parent")
    similar = [folder_part(s.get("name") or s.get("folder_path") or "") if isinstance(s, dict)
               else folder_part(s) for s in e.relationships.get("similar_to") or []]
    return {"hierarchy": hierarchy, "folder_path": seed_folder_path(hierarchy),
            "extended_tags": seed_tags(e.extended_tags, hierarchy),
            "relationships": {"similar_to": [s for s in similar if s],
                              "parent": folder_part(parent) if parent else None},
            "search_description": e.search_description,
            "folder_display": e.folder_path, "source": e.source,
            "source_reason": e.source_reason}
