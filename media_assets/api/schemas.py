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
    tasks: list[Literal["caption", "objects", "scene", "colors"]] = Field(
        default_factory=lambda: list(TASKS), max_length=4)


class LabelClusterRequest(_Request):
    images: list[str] = Field(min_length=1, max_length=5,
                              description="Up to 5 representative images, base64.")
    cluster_size: int = Field(ge=1, le=10**9)


class TranscribeOptions(_Request):
    timestamps: bool = True
    word_level: bool = False


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
