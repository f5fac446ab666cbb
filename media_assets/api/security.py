"""What stands between the network and the routes: the Host allow-list, the token, and
the body limits, as one ASGI middleware that runs before anything reads the request.

- Host: only loopback names (127.0.0.1, localhost, [::1], any port) and
  MEDIA_ASSETS_API_ALLOWED_HOSTS; anything else is 400 before anything else happens, so a
  web page on another origin cannot reach a loopback server through DNS rebinding.
- Token (MEDIA_ASSETS_API_TOKEN): in `Authorization: Bearer`, or in the HttpOnly,
  SameSite=Strict session cookie that `POST /login` sets (the cookie holds an HMAC of the
  token, not the token). Never in a URL: a `?token=` is refused and redacted from the
  access log. Compared in constant time. Only /health, /login, /logout and the page's own
  files are open without it; /docs, /redoc and /openapi.json are not.
- Bodies: refused (401) before one byte is read when the token is missing or wrong, and
  by size while they stream (413, chunked too); an open path takes 4 KB at most. Large
  bodies are read a few at a time, so concurrent uploads cannot pile up in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import re
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from media_assets.api.body import BodyError, cut, parse_json_body
from media_assets.api.schemas import LoginRequest, Problem
from media_assets.lib.settings import Settings, SettingsError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
MIN_TOKEN = 16
COOKIE = "media_assets_session"
OPEN_PATHS = frozenset({"/health", "/", "/login", "/logout", "/favicon.ico"})
OPEN_BODY_BYTES = 4096
BIG_BODY = 1 << 20  # bodies above this are read at most BIG_AT_ONCE at a time
BIG_AT_ONCE = 4
_TOKEN_IN_URL = re.compile(r"(?i)([?&](?:access_)?token=)[^&\s\"]*")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> None:
    """A token that can travel in an HTTP header, or none."""
    if token is None:
        return
    if not token.strip():
        raise SettingsError("MEDIA_ASSETS_API_TOKEN is only whitespace: unset it, or set a "
                            f"secret of at least {MIN_TOKEN} characters")
    if not all(33 <= ord(c) < 127 for c in token):
        raise SettingsError("MEDIA_ASSETS_API_TOKEN must be printable ASCII without spaces "
                            "(it travels in an HTTP header)")


def serving_settings(settings: Settings, host: str) -> Settings:
    """The settings `serve` runs with on `host`, or SettingsError when they would expose
    the catalogue: off loopback a token of at least 16 characters is required, and the
    bound address becomes an allowed Host name."""
    token = settings.api_token
    check_token(token)
    if is_loopback(host):
        return settings
    how = ("python -c 'import secrets; print(secrets.token_urlsafe(24))'")
    if not token:
        raise SettingsError(
            f"binding to {host} would open the catalogue to the network: set "
            f"MEDIA_ASSETS_API_TOKEN to a secret of at least {MIN_TOKEN} characters first "
            f"(e.g. from `{how}`); clients then send 'Authorization: Bearer <token>'")
    if len(token) < MIN_TOKEN:
        raise SettingsError(
            f"MEDIA_ASSETS_API_TOKEN has {len(token)} characters; off loopback it needs at "
            f"least {MIN_TOKEN} (e.g. from `{how}`)")
    if host not in ("0.0.0.0", "::", "") and host.lower() not in settings.api_allowed_hosts:
        name = f"[{host}]" if ":" in host else host
        settings = settings.with_(api_allowed_hosts=(*settings.api_allowed_hosts, name.lower()))
    return settings


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Tokens:
    """The token as bytes and the session cookie's value, computed once."""

    def __init__(self, token: str | None):
        check_token(token)
        self.token = token.encode() if token else None
        self.session = (hmac.new(self.token, b"media_assets session v1",
                                 hashlib.sha256).hexdigest().encode() if self.token else None)

    def bearer_ok(self, value: bytes) -> bool:
        scheme, _, given = value.strip().partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)

    def cookie_ok(self, value: bytes) -> bool:
        for part in value.split(b";"):
            name, _, given = part.strip().partition(b"=")
            if name == COOKIE.encode() and hmac.compare_digest(given.strip(b'"'),
                                                               self.session):
                return True
        return False


async def _refuse(send, status: int, detail: str,
                  extra: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer without reading the body. The connection stays open: uvicorn discards the
    rest of the body as it arrives (never buffering it), and the client gets this answer
    instead of a reset that could swallow it."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: Host allow-list, then token, then body size (module docstring)."""

    def __init__(self, app, settings: Settings, tokens: Tokens):
        self.app, self.tokens = app, tokens
        allowed = {_host_name(h) for h in settings.api_allowed_hosts}
        self.any_host = "*" in allowed
        self.hosts = frozenset(allowed | set(LOOPBACK_NAMES))
        self.max_bytes = settings.api_max_request_mb * 2**20
        self._big = asyncio.Semaphore(BIG_AT_ONCE)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = auth = cookie = b""
        length, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"authorization":
                auth = value
            elif name == b"cookie":
                cookie = value
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        has_body = chunked or (length is not None and length != 0)
        name = _host_name(host.decode("latin-1"))
        if not self.any_host and name not in self.hosts:
            return await _refuse(send, 400, (
                f"Host {cut(name, 80)!r} is not allowed (DNS rebinding?): use a loopback "
                "name, or add it to MEDIA_ASSETS_API_ALLOWED_HOSTS"))
        path = scope["path"]
        open_path = path in OPEN_PATHS or path.startswith("/static/")
        if self.tokens.token is not None and not open_path:
            if _TOKEN_IN_URL.search("?" + scope.get("query_string", b"").decode("latin-1")):
                return await _refuse(send, 401, (
                    "a token in the URL is refused (URLs end up in logs and history): send "
                    "'Authorization: Bearer <token>', or log in on the page"),
                    [(b"www-authenticate", b"Bearer")])
            if not ((auth and self.tokens.bearer_ok(auth))
                    or (cookie and self.tokens.cookie_ok(cookie))):
                return await _refuse(send, 401, (
                    "missing or wrong token (MEDIA_ASSETS_API_TOKEN): send 'Authorization: "
                    "Bearer <token>', or log in on the page at /"),
                    [(b"www-authenticate", b"Bearer")])
        if not has_body:
            return await self.app(scope, receive, send)
        limit = OPEN_BODY_BYTES if open_path else self.max_bytes
        if length is not None and length > limit:
            return await _refuse(send, 413, _too_large(limit))
        if length is not None and 0 <= length <= BIG_BODY:
            return await self._with_body(scope, receive, send, limit)
        async with self._big:
            return await self._with_body(scope, receive, send, limit)

    async def _with_body(self, scope, receive, send, limit: int):
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                return await _refuse(send, 413, _too_large(limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        box = [b"".join(chunks)]
        del chunks

        async def replay():
            if box:  # handed over once, then only the app holds it
                return {"type": "http.request", "body": box.pop(), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def _too_large(limit: int) -> str:
    if limit == OPEN_BODY_BYTES:
        return f"request body over {limit} bytes on an open path"
    return f"request body over {limit // 2**20} MB (MEDIA_ASSETS_API_MAX_REQUEST_MB)"


class _RedactTokens(logging.Filter):
    """Access-log lines show `token=[redacted]`, should a client still put one in a URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_URL.sub(r"\1[redacted]", a) if isinstance(a, str)
                                else a for a in record.args)
        return True


def redact_access_log() -> None:
    log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactTokens) for f in log.filters):
        log.addFilter(_RedactTokens())


# -- the page's login --------------------------------------------------------------------
router = APIRouter(tags=["login"])


@router.post("/login", status_code=204, responses={
    204: {"description": "logged in: the session cookie is set"},
    401: {"model": Problem}, 415: {"model": Problem}},
    openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": LoginRequest.model_json_schema()},
        "application/x-www-form-urlencoded": {"schema": LoginRequest.model_json_schema()}}}})
async def login(request: Request) -> Response:
    """Exchange the token for an HttpOnly, SameSite=Strict session cookie (the page's
    login form). JSON `{"token": ...}` or a form field `token`."""
    tokens: Tokens = request.app.state.tokens
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            given = (parse_qs(raw.decode("utf-8", "replace")).get("token") or [""])[0]
        else:
            doc = parse_json_body(raw, ctype)
            given = doc.get("token") if isinstance(doc, dict) else None
            if not isinstance(given, str):
                raise BodyError(422, 'send {"token": "<the token>"}')
    except BodyError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    if tokens.token is None:
        return Response(status_code=204)  # no token set: nothing to log in to
    if not hmac.compare_digest(given.strip().encode("utf-8", "replace"), tokens.token):
        await asyncio.sleep(0.5)  # a guesser gets two tries a second per connection
        return JSONResponse({"detail": "wrong token"}, status_code=401)
    response = Response(status_code=204)
    response.set_cookie(COOKIE, tokens.session.decode(), max_age=30 * 86400, path="/",
                        httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout", status_code=204)
async def logout() -> Response:
    """Forget the session cookie."""
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
