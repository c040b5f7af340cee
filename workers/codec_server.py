"""`retailflow codec-server`: Temporal's remote codec protocol over HTTP, so the Web UI and the
`temporal` CLI (`--codec-endpoint`, `--codec-auth`) show the people allowed to read them the
payloads that histories hold encrypted.

  POST /encode, POST /decode (also /{namespace}/encode|decode, the CLI's templated form)
      body and answer: `{"payloads": [{"metadata": {k: base64}, "data": base64}]}` (the proto
      JSON of temporal.api.common.v1.Payloads); an `X-Namespace` header may come along
  200 the payloads encoded / decoded       400 a body that is not that, or a payload the
  401 no or wrong `Authorization: Bearer`      configured keys cannot decrypt (one line)
  413 a body over 1 MiB                    403 a CORS preflight from an origin not allowed

CORS: the Web UI calls from the browser, so its origin (default http://localhost:8233 and
http://127.0.0.1:8233, the dev server's UI) is echoed in Access-Control-Allow-Origin, with
credentials allowed; other origins get no CORS headers. A preflight (OPTIONS) needs no token.

The token is `RETAILFLOW_CODEC_SERVER_TOKEN` or `RETAILFLOW_CODEC_SERVER_TOKEN_FILE`. The dev
server's Web UI cannot send it (its codec setting is only an endpoint; "pass access token"
sends the user's own OIDC token, and the dev server has no login): the demo starts this server
on 127.0.0.1 with `--allow-ui-without-token`, which lets requests from an allowed UI origin in
without a token. That flag is refused on any address but loopback; everywhere else the token
is required (docs/security.md, "Payload encryption and the codec server").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from google.protobuf import json_format
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from workers.codec import EncryptionCodec, PayloadDecryptionError, load_key_ring
from workers.http_body import BodyTooLarge, read_body

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
DEFAULT_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
ALLOW_HEADERS = "Content-Type,X-Namespace,Authorization"
ENV_TOKEN = "RETAILFLOW_CODEC_SERVER_TOKEN"
ENV_TOKEN_FILE = "RETAILFLOW_CODEC_SERVER_TOKEN_FILE"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class CodecServerError(ValueError):
    """The codec server cannot start as configured (one line, saying what to set)."""


class CodecServerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RETAILFLOW_CODEC_SERVER_", env_file=".env", extra="ignore"
    )

    token: SecretStr | None = None
    token_file: str | None = None


def load_token(settings: CodecServerSettings | None = None) -> str | None:
    """The bearer token callers must present, from the env var or its `_FILE`; None if unset."""
    s = settings or CodecServerSettings()
    inline = s.token.get_secret_value().strip() if s.token else ""
    if inline and s.token_file:
        raise CodecServerError(f"set {ENV_TOKEN} or {ENV_TOKEN_FILE}, not both")
    if not s.token_file:
        return inline or None
    path = Path(s.token_file)
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise CodecServerError(f"{ENV_TOKEN_FILE}: cannot read {path}: {reason}") from None
    if not token:
        raise CodecServerError(f"{ENV_TOKEN_FILE}: {path} is empty")
    return token


def build_app(
    codec: PayloadCodec,
    *,
    token: str | None,
    origins: Sequence[str] = DEFAULT_ORIGINS,
    allow_ui_without_token: bool = False,
) -> Starlette:
    """The codec server's app. Without a token, only `allow_ui_without_token` (the demo) may
    run it, and then only the allowed UI origins get in."""
    if token is None and not allow_ui_without_token:
        raise CodecServerError(
            f"no token for the codec server: set {ENV_TOKEN} (or {ENV_TOKEN_FILE}); callers "
            "send it as `Authorization: Bearer <token>`"
        )
    allowed = frozenset(o.rstrip("/") for o in origins)

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        if origin not in allowed:
            return {"Vary": "Origin"}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    def authorised(request: Request) -> bool:
        if allow_ui_without_token and request.headers.get("origin", "") in allowed:
            return True
        if token is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    def error(status: int, message: str, headers: dict[str, str]) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def handle(request: Request) -> Response:
        headers = cors(request)
        if request.method == "OPTIONS":
            if "Access-Control-Allow-Origin" not in headers:
                return error(403, "origin not allowed", headers)
            return Response(
                status_code=204,
                headers={
                    **headers,
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
        if not authorised(request):
            log.warning("codec server: refused %s: no or wrong bearer token", request.url.path)
            return error(
                401,
                "missing or wrong bearer token (Authorization: Bearer <token>)",
                {**headers, "WWW-Authenticate": "Bearer"},
            )
        try:
            body = await read_body(request, MAX_BODY)
        except BodyTooLarge:
            return error(413, f"body over {MAX_BODY} bytes", headers)
        try:
            payloads = parse_payloads(body)
        except ValueError as e:
            return error(400, f'body is not {{"payloads": [...]}}: {e}', headers)
        direction = request.url.path.rsplit("/", 1)[-1]
        try:
            if direction == "encode":
                out = await codec.encode(payloads.payloads)
            else:
                out = await codec.decode(payloads.payloads)
        except PayloadDecryptionError as e:
            return error(400, str(e), headers)
        answer = json_format.MessageToDict(
            Payloads(payloads=out), always_print_fields_with_no_presence=True
        )
        return JSONResponse(answer, headers=headers)

    methods = ["POST", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/encode", handle, methods=methods),
            Route("/decode", handle, methods=methods),
            Route("/{namespace}/encode", handle, methods=methods),
            Route("/{namespace}/decode", handle, methods=methods),
        ]
    )


def parse_payloads(body: bytes) -> Payloads:
    """The proto JSON of Payloads, checked strictly: ValueError (one line) naming the field."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(doc, dict) or set(doc) - {"payloads"}:
        raise ValueError('expected an object with only "payloads"')
    items = doc.get("payloads", [])
    if not isinstance(items, list):
        raise ValueError("payloads: expected a list")
    out = Payloads()
    for n, item in enumerate(items):
        where = f"payloads[{n}]"
        if not isinstance(item, dict) or set(item) - {"metadata", "data"}:
            raise ValueError(f'{where}: expected an object with "metadata" and "data"')
        metadata = item.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ValueError(f"{where}.metadata: expected an object")
        payload = out.payloads.add(data=_base64(item.get("data", ""), f"{where}.data"))
        for key, value in metadata.items():
            payload.metadata[key] = _base64(value, f"{where}.metadata.{key[:40]}")
    return out


def _base64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a base64 string")
    text = value.replace("-", "+").replace("_", "/")  # proto JSON accepts URL-safe base64 too
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: not base64") from None


def app_from_settings(
    origins: Sequence[str] = DEFAULT_ORIGINS, allow_ui_without_token: bool = False
) -> Starlette:
    """The app with the configured keys and token (errors: one line naming the setting)."""
    return build_app(
        EncryptionCodec(load_key_ring()),
        token=load_token(),
        origins=origins,
        allow_ui_without_token=allow_ui_without_token,
    )


async def serve(
    host: str = "127.0.0.1",
    port: int = 8081,
    origins: Sequence[str] = DEFAULT_ORIGINS,
    allow_ui_without_token: bool = False,
) -> None:
    if allow_ui_without_token and host not in LOOPBACK:
        raise CodecServerError(
            f"--allow-ui-without-token is for a codec server on loopback only, not {host}"
        )
    app = app_from_settings(origins, allow_ui_without_token)
    log.info("codec server on http://%s:%d (UI origins: %s)", host, port, ", ".join(origins))
    await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).serve()
