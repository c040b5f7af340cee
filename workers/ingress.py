"""The HTTP ingress: POS platforms POST sales here.

POST /v1/sales[?mode=per-sale|batched]   body: one sale (the JSON contract in the README)
  202 {"status": "accepted"|"queued", "workflow_id": ...}
  200 {"status": "duplicate", "workflow_id": ...}      the sale already has a workflow
  422 {"status": "rejected", "workflow_id": ..., "errors": [{"field", "message"}]}
      (the rejected sale is still kept, in its own workflow, with these reasons)
GET /v1/sales/{store_id}/{txn_id}          where a sale stands
GET /healthz
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.pos_signing import verify
from domain.validation import field_errors
from workers.client import connect
from workers.settings import Settings
from workers.submit import Mode, Submission, raw_from_text, sale_result, submit_sale
from workflows.price_rollout import StoreConfirmation, StorePriceCommand

log = logging.getLogger("retailflow.ingress")

MAX_BODY = 1 << 20


def build_app(settings: Settings, client: Client | None = None) -> Starlette:
    state: dict[str, Client] = {}
    if client is not None:
        state["client"] = client

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if "client" not in state:
            state["client"] = await connect(settings.temporal)
        yield

    async def post_sale(request: Request) -> JSONResponse:
        mode_arg = request.query_params.get("mode", Mode.PER_SALE.value)
        try:
            mode = Mode(mode_arg)
        except ValueError:
            return JSONResponse(
                {
                    "status": "error",
                    "errors": [
                        {
                            "field": "mode",
                            "message": f"must be per-sale or batched, got {mode_arg!r}",
                        }
                    ],
                },
                status_code=400,
            )
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse(
                {
                    "status": "error",
                    "errors": [{"field": "sale", "message": "body larger than 1 MiB"}],
                },
                status_code=413,
            )
        try:
            text = body.decode()
        except UnicodeDecodeError:
            text = body.decode(errors="replace")
        submitted = await submit_sale(
            state["client"], settings, raw_from_text(text), mode, source="ingress"
        )
        payload: dict[str, Any] = {
            "status": submitted.submission.value,
            "workflow_id": submitted.workflow_id,
        }
        if submitted.submission is Submission.REJECTED:
            payload["errors"] = [e.model_dump() for e in submitted.errors]
            return JSONResponse(payload, status_code=422)
        if submitted.submission is Submission.DUPLICATE:
            return JSONResponse(payload, status_code=200)
        return JSONResponse(payload, status_code=202)

    async def get_sale(request: Request) -> JSONResponse:
        result = await sale_result(
            state["client"], request.path_params["store_id"], request.path_params["txn_id"]
        )
        if result is None:
            return JSONResponse({"status": "unknown"}, status_code=404)
        return JSONResponse(result.model_dump(mode="json"))

    async def post_confirmation(request: Request) -> JSONResponse:
        body = await request.body()
        platform = request.headers.get("X-POS-Platform", "")
        secret = settings.pos_secrets.get(platform)
        peer = request.client.host if request.client else "?"
        if secret is None or not verify(
            secret,
            request.headers.get("X-POS-Timestamp"),
            body,
            request.headers.get("X-POS-Signature"),
        ):
            log.warning(
                "refused a confirmation from %s: platform %r, bad or missing signature",
                peer,
                platform,
            )
            return JSONResponse({"status": "refused", "error": "signature"}, status_code=401)
        try:
            confirmation = StoreConfirmation.model_validate_json(body)
        except ValidationError as e:
            return JSONResponse(
                {
                    "status": "refused",
                    "errors": [err.model_dump() for err in field_errors(e, "confirmation")],
                },
                status_code=422,
            )
        if confirmation.platform_id != platform:
            log.warning(
                "refused a confirmation from %s: signed by %r for %r",
                peer,
                platform,
                confirmation.platform_id,
            )
            return JSONResponse({"status": "refused", "error": "platform"}, status_code=401)
        if not confirmation.command_id.startswith("price-rollout-"):
            log.warning("refused a confirmation for unknown command %r", confirmation.command_id)
            return JSONResponse({"status": "unknown command"}, status_code=404)
        handle = state["client"].get_workflow_handle(confirmation.command_id)
        try:
            await handle.signal(StorePriceCommand.confirm, confirmation)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                log.warning(
                    "refused a confirmation for unknown command %r", confirmation.command_id
                )
                return JSONResponse({"status": "unknown command"}, status_code=404)
            if "already completed" in str(e):
                return JSONResponse({"status": "closed"}, status_code=409)
            raise
        return JSONResponse({"status": "delivered"}, status_code=202)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/sales", post_sale, methods=["POST"]),
            Route("/v1/sales/{store_id}/{txn_id}", get_sale, methods=["GET"]),
            Route("/v1/pos/confirmations", post_confirmation, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def serve(settings: Settings, host: str, port: int) -> None:
    config = uvicorn.Config(build_app(settings), host=host, port=port, log_level="info")
    await uvicorn.Server(config).serve()
