"""Request shapes of the seed's contracts (docs/contracts.md), validated by pydantic.

Text fields are checked again for NUL and lone surrogates by `body.py` before pydantic sees
them: PostgreSQL refuses NUL and UTF-8 cannot encode a lone surrogate, so either would
otherwise fail deep inside a model step or the database.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TASKS = ("caption", "objects", "scene", "colors")


class _Request(BaseModel):
    # Unknown fields are ignored, as the seed's clients may send more than we read.
    model_config = ConfigDict(extra="ignore")


class AnalyzeImageRequest(_Request):
    image: str = Field(description="The image file, base64 (a data: URL is accepted).")
    tasks: list[Literal["caption", "objects", "scene", "colors", "text"]] = Field(
        default_factory=lambda: list(TASKS), max_length=5, description=
        'the seed\'s four by default; "text" (beyond the seed) reads the text written in '
        'the picture (PP-OCRv6)')


class LabelClusterRequest(_Request):
    images: list[str] = Field(min_length=1, max_length=5,
                              description="Up to 5 representative images, base64.")
    cluster_size: int = Field(ge=1, le=10**9)


class TranscribeOptions(_Request):
    timestamps: bool = True
    word_level: bool = False
    diarize: bool = Field(default=False, description=
                          "beyond the seed: who speaks; segments are cut where the speaker "
                          "changes and each has `speaker` (S1, S2, ... in order of first "
                          "speech)")


class TranscribeRequest(_Request):
    audio: str = Field(description="An audio (or video) file, base64.")
    language: str = Field(default="auto", pattern=r"^(auto|[a-z]{2,3})$")
    options: TranscribeOptions = Field(default_factory=TranscribeOptions)


class GenerateRequest(_Request):
    prompt: str = Field(min_length=1, max_length=20000)
    max_tokens: int = Field(default=256, ge=1, le=2048)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    stop_sequences: list[str] = Field(default_factory=list, max_length=8)
    json_schema: dict | None = Field(
        default=None, description="Beyond the seed: constrain the text to a JSON document "
                                  "of this schema (docs/contracts.md).")


class JsonSchemaRequest(_Request):
    json_samples: list[Any] = Field(min_length=1, max_length=2000)
    user_comment: str | None = Field(default=None, max_length=2000)


class EnrichClusterRequest(_Request):
    cluster_name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    sample_captions: list[str] = Field(default_factory=list, max_length=20)


class LoginRequest(_Request):
    token: str = Field(max_length=1000)


class Problem(BaseModel):
    """Every 4xx and 5xx: what went wrong, in words (inputs are never echoed whole)."""

    detail: str
    errors: list[dict] | None = None


# The statuses every guarded endpoint can answer besides its own (OpenAPI `responses`).
COMMON_ERRORS: dict[int | str, dict] = {
    400: {"model": Problem, "description": "malformed request, or a Host not allowed"},
    401: {"model": Problem, "description": "missing or wrong token (when one is set)"},
    422: {"model": Problem, "description": "a value the endpoint cannot use"},
}
BODY_ERRORS: dict[int | str, dict] = {
    **COMMON_ERRORS,
    413: {"model": Problem, "description": "body over MEDIA_ASSETS_API_MAX_REQUEST_MB, or an "
                                           "image over 64 MP that could only be decoded "
                                           "whole"},
    415: {"model": Problem, "description": "a body that is not JSON"},
    503: {"model": Problem, "description": "the model's queue is full (Retry-After), or the "
                                           "model is not installed"},
}
FILE_ERRORS: dict[int | str, dict] = {
    **COMMON_ERRORS,
    404: {"model": Problem, "description": "no such key, or nothing of that kind for it"},
    410: {"model": Problem, "description": "catalogued, but the path no longer holds this "
                                           "content (moved, deleted, changed or swapped)"},
    503: {"model": Problem, "description": "too many pictures being made (Retry-After)"},
}


# -- responses of the library (routes/library.py) ------------------------------------------
class _Response(BaseModel):
    # Richer data than a model names is kept (extra fields pass through to the client).
    model_config = ConfigDict(extra="allow")


class LibraryItem(_Response):
    key: str
    kind: str
    status: str = Field(description="ok, failed (see error), refused, unsupported")
    error: str | None
    path: str = Field(description="the path it was catalogued at (its last, when gone)")
    name: str
    folder: str
    taken: str = Field(description="ISO date taken (EXIF), else the file's modification time")
    taken_from: Literal["exif", "file time"]
    size_bytes: int
    mime_type: str | None
    duration_s: float | None
    camera: str | None
    on_disk: bool = Field(description="false: every path it had is gone from disk")
    thumbnail: str | None


class LibraryPage(_Response):
    items: list[LibraryItem]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null at "
                                                "the end")


class FolderCount(_Response):
    folder: str
    count: int


class ClusterFacet(_Response):
    id: int
    name: str | None
    size: int


class Facets(_Response):
    kinds: dict[str, int]
    total: int
    folders: list[FolderCount]
    clusters: list[ClusterFacet]
    first: str | None
    last: str | None


class Moment(_Response):
    at_s: float | None
    why: list[str] = Field(description="why it matched, in words")
    score: float
    legs: str


class SearchResult(_Response):
    key: str
    path: str
    name: str
    kind: str
    score: float
    why: list[str]
    at_s: float | None
    moments: list[Moment]
    thumbnail: str | None
    frame: str | None


class SearchHit(_Response):
    key: str
    path: str
    kind: str
    score: float
    at_s: float | None
    text: str | None
    source: str
    why: dict
    thumbnail: str | None
    frame: str | None


class SearchPage(_Response):
    query: str
    model: str
    notes: list[str]
    count: int = Field(description="how many files matched (results)")
    results: list[SearchResult]
    visually_similar: list[SearchHit]
    hits: list[SearchHit]


# -- responses of the seed's contracts (routes/models.py), the seed's fields first ---------
class DetectedObject(_Response):
    name: str
    confidence: float
    bbox: list[float] | None = Field(description="always null: CLIP zero-shot has no boxes")


class ColourShare(_Response):
    hex: str
    proportion: float


class TextLine(_Response):
    text: str
    box: list[list[float]] = Field(description="four corners [x, y] in the image's pixels, "
                                               "clockwise from top-left")
    confidence: float
    language: str | None = Field(description="en or de when telling, else null")


class PictureTextResult(_Response):
    text: str
    language: str | None
    is_document: bool = Field(description="little picture, much text: a document or "
                                          "screenshot")
    lines: list[TextLine]
    note: str | None


class AnalyzeImageResponse(_Response):
    caption: str | None
    objects: list[DetectedObject] | None
    scene_type: str | None
    dominant_colors: list[str] | None = Field(description='the seed\'s form: ["#1a1a1a", …]')
    processing_time_ms: float
    dominant_colors_detail: list[ColourShare] | None = Field(
        description="beyond the seed: each colour's share of the picture")
    degraded: bool
    degraded_reason: str | None
    text: PictureTextResult | None = Field(None, description="beyond the seed, with the "
                                           "task \"text\": the text written in the picture")


class LabelClusterResponse(_Response):
    cluster_name: str
    description: str
    tags: list[str]
    primary_category: str
    confidence: float
    processing_time_ms: float


class Segment(_Response):
    start: float | None
    end: float | None
    text: str


class TranscribeResponse(_Response):
    text: str
    language: str | None
    segments: list[Segment]
    processing_time_ms: float


class GenerateResponse(_Response):
    text: str
    tokens_generated: int
    processing_time_ms: float
    constraint: str | None = Field(None, description="with json_schema: 'schema', or why "
                                                     "it could not be enforced")


class IndexDesign(_Response):
    columns: list[str]
    type: str
    unique: bool
    reason: str


class JsonSchemaResponse(_Response):
    table_name: str
    storage_type: Literal["sql", "jsonb", "hybrid"]
    reasoning: str
    fields: dict[str, str | None]
    indexes: list[str] = Field(description="the seed's form: the indexed field names")
    index_design: list[IndexDesign] = Field(description="beyond the seed: each index's "
                                                        "columns, type, uniqueness, reason")
    llm: str
    processing_time_ms: float


class Relationships(_Response):
    similar_to: list[str]
    parent: str | None


class EnrichClusterResponse(_Response):
    hierarchy: list[str]
    folder_path: str = Field(description="the seed's form: /lower_case/underscore_parts/")
    extended_tags: list[str] = Field(min_length=10, max_length=20)
    relationships: Relationships
    search_description: str
    folder_display: str = Field(description="beyond the seed: the folder `organize` makes")
    source: Literal["llm", "heuristic"]
    source_reason: str | None
    processing_time_ms: float


class Gone(_Response):
    last_path: str
    why: str | None


class FileRecord(_Response):
    key: str
    sha256: str
    size_bytes: int
    path: str
    paths: list
    kind: str
    mime_type: str | None
    status: str
    error: str | None
    details: dict
    on_disk: bool = Field(description="false: moved or deleted since cataloguing (see gone)")
    gone: Gone | None
    taken: str | None
    camera: str | None
    lens: str | None
    gps: dict | None
    map_url: str | None
    content: str | None
    thumbnail: str | None
    speakers: dict | None = Field(None, description="audio and video: speakers (label S1, "
                                  "S2, ..., name, talk time) and turns; null before the "
                                  "`speakers` asset ran")
    picture_text: dict | None = Field(None, description="images and videos: text read in "
                                      "the picture (lines with boxes), document flag")


class SimilarPage(_Response):
    key: str
    model: str
    hits: list[SearchHit]


class ClustersView(_Response):
    model: str | None
    clusters: list[dict]
    unsorted: int
    last_run: dict | None
