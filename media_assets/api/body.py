"""Request bodies and query strings checked before FastAPI and pydantic see them.

FastAPI alone answered 500 to a multipart or non-UTF-8 body (its error echoed the raw bytes,
which cannot be encoded), and PostgreSQL or UTF-8 failed later on a NUL or a lone surrogate.
Here each becomes a 4xx with a message, and no message echoes a huge input.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

MAX_DEPTH = 64  # arrays and objects inside each other; the contracts need a few levels
CUT = 200


class BodyError(Exception):
    """A request that cannot be read: a 4xx with a message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def cut(text: str, n: int = CUT) -> str:
    """`text`, at most `n` characters of it (and how long it was)."""
    return text if len(text) <= n else f"{text[:n]}… ({len(text)} characters)"


def bad_text(s: str) -> str | None:
    """Why a string cannot be stored or encoded, or None."""
    if "\x00" in s:
        return f"contains a NUL character (at character {s.index(chr(0))})"
    if s.isascii():
        return None
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"contains a lone surrogate (U+{ord(s[exc.start]):04X} at character "
                f"{exc.start}): not valid Unicode")
    return None


def _where(path: tuple) -> str:
    out = "body"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else "." + cut(json.dumps(part), 40)
    return out


def check_values(doc: Any) -> None:
    """Every key and string in a parsed body is storable text, and nesting is bounded.
    Iterative: a deep document cannot exhaust the stack here."""
    stack: list[tuple[Any, tuple, int]] = [(doc, (), 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if why := bad_text(value):
                raise BodyError(422, f"{_where(path)}: {why}")
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise BodyError(422, f"{_where(path)}: nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in items:
                if isinstance(k, str) and (why := bad_text(k)):
                    raise BodyError(422, f"{_where(path)}: a key {why}")
                stack.append((v, (*path, k), depth + 1))


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json_body(raw: bytes, content_type: str | None) -> Any:
    """The body as JSON, or BodyError: 415 not JSON, 400 unreadable, 422 unstorable."""
    media_type, _, params = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    if not (media_type == "application/json" or (media_type.startswith("application/")
                                                   and media_type.endswith("+json"))):
        raise BodyError(415, "the body must be JSON, sent with 'Content-Type: application/json'"
                        f" (got {cut(media_type or 'no Content-Type', 60)!r})")
    charset = params.lower().partition("charset=")[2].split(";")[0].strip(' "')
    if charset and charset not in ("utf-8", "utf8"):
        raise BodyError(415, f"the body must be UTF-8 JSON (got charset={cut(charset, 30)!r})")
    if not raw.strip():
        raise BodyError(400, "empty body: send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"the body is not valid UTF-8 (byte {exc.start} of {len(raw)})"
                        ) from None
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BodyError(400, f"invalid JSON: {exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}") from None
    except RecursionError:
        raise BodyError(400, f"invalid JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BodyError(400, f"invalid JSON: {exc}") from None
    check_values(doc)
    return doc


def check_query(request: Request) -> None:
    for key, value in request.query_params.multi_items():
        for what, text in (("name", key), ("value", value)):
            if why := bad_text(text):
                raise BodyError(422, f"query parameter {cut(key, 40)!r}: its {what} {why}")


class CheckedRoute(APIRoute):
    """An APIRoute that checks the query string, and parses a JSON body itself (leaving
    the parsed document where FastAPI looks for it), before FastAPI's own handling."""

    def get_route_handler(self):
        handler = super().get_route_handler()
        wants_body = self.body_field is not None

        async def checked(request: Request):
            check_query(request)
            if wants_body:
                request._json = parse_json_body(await request.body(),
                                                request.headers.get("content-type"))
                # FastAPI only tests the raw body for emptiness before it asks for the
                # (cached) JSON: let the raw copy go, up to 64 MB per request.
                request._body = b" "
            return await handler(request)

        return checked
