"""Reading a request body no further than a limit: shared by the ingress and the codec server."""

from __future__ import annotations

from starlette.requests import Request

from domain.limits import MAX_BODY_BYTES


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read no further than `limit` bytes (BodyTooLarge beyond). A declared
    Content-Length over the limit is refused before a byte of the body is read."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
