"""The HTTP ingress: POS platforms POST sales here.

Every route but /healthz and the gateway webhook (signed by the gateway) needs an
authenticated caller (workers/auth.py; docs/security.md, "Callers and scopes"): a bearer token
(`Authorization: Bearer ...`) or an HMAC-signed request (`X-POS-Platform`, `X-POS-Timestamp`,
`X-POS-Signature`), holding the route's scope. Missing, unknown, bad or expired credentials:
401 with `WWW-Authenticate`; a caller without the scope, or speaking for a store it is not
given: 403. Each refusal is logged (peer, caller, route, reason) and nothing is started.

POST /v1/sales[?mode=per-sale|batched|summary]   body: one sale (the JSON contract in the README)
  (scope sales:write)
  202 {"status": "accepted"|"queued", "workflow_id": ...}
  200 {"status": "duplicate", "workflow_id": ...}      the sale already has a workflow
  422 {"status": "rejected", "workflow_id": ..., "errors": [{"field", "message"}]}
      (the rejected sale is still kept, in its own workflow, with these reasons)
  413/422 {"status": "refused", "errors": [...]}   beyond the edge's limits (domain/limits.py:
      over 1 MiB (413, checked on Content-Length before reading), over 500 lines or 20
      payments (413), nested over 16 levels, an id over 64 characters): nothing started, not kept
  408 {"status": "refused", ...}             the body did not arrive in time
  503 {"status": "unavailable", ...}          Temporal could not take it, or the request took
      too long: send it again
  429 {"status": "busy", ...} + Retry-After   the caller is over its rate, or too many sales
      await posting (overall or for the store): nothing started; send it again after that
GET /v1/sales/{store_id}/{txn_id}          where a sale stands (scope sales:read)
POST /v1/pos/confirmations                 a store's confirmation of a price command (scope
  confirmations:write; the caller is the confirmation's platform_id)
  202 delivered; 401 bad signature; 403 another platform's or store's; 422 malformed;
  404 unknown command; 409 rollout closed
  (confirmations are coalesced per rollout into one signal; each is answered once its
  signal is delivered)
POST /v1/gateway/webhook                   the payment gateway's events (Stripe webhooks)
  200 {"status": "received", "result": ...}  a failed refund reaches its Refund workflow;
      other events are received and ignored
  400 {"status": "refused", "error": ...}    missing or bad `Stripe-Signature`, or a body
      that is not one JSON event: nothing done
  503 {"status": "unavailable", ...}          Temporal could not take it: the gateway retries
POST /v1/customers/{pos_customer_id}/erasure   a customer's erasure request (scope
  customers:erase; docs/customers.md): 202 {"status": "requested", "workflow_id": ...};
  422 a malformed id; 503 Temporal could not take it (send it again: repeats are harmless)
GET /healthz
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from typing import Any

import stripe
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.limits import MAX_BODY_BYTES, MAX_ID_LENGTH
from domain.sale import SaleRefused
from domain.validation import FieldError, field_errors
from workers.auth import Authenticated, Caller, CallerRegistry, Refusal, Refused, Scope
from workers.backpressure import BacklogGauge, Busy, RateLimiter, visibility_count
from workers.client import connect
from workers.customers import CUSTOMER_ID, erase_customer
from workers.http_body import BodyTooLarge, read_body
from workers.inbox import inbox_app
from workers.metrics import exposition, record_ingress
from workers.settings import Settings, refuse_unsafe_credentials
from workers.submit import Mode, Submission, raw_from_text, sale_result, submit_sale
from workflows.price_rollout import (
    PriceRollout,
    StoreConfirmation,
    StorePriceCommand,
    is_rollout_command_id,
    parse_command_id,
    rollout_workflow_id,
)
from workflows.refund import report_gateway_refund_failed

log = logging.getLogger("retailflow.ingress")

# What a store may confirm: the command's final states (anything else would wedge the command).
CONFIRMED_STATES = ("applied", "rejected")
MAX_COMMAND_ID = 256


class Delivery(StrEnum):
    DELIVERED = "delivered"
    UNKNOWN = "unknown"  # no such rollout
    CLOSED = "closed"  # the rollout is over


# Confirmations per signal: a batch of them stays far below Temporal's 2 MB payload limit.
MAX_CONFIRMATIONS_PER_SIGNAL = 500


class ConfirmationBatcher:
    """Coalesces the confirmations of each rollout into one signal (`PriceRollout.confirmations`
    with a list): the first one is sent at once, those that arrive while a signal is in flight
    go together in the next. `deliver` returns only after the signal carrying its confirmation
    was accepted by Temporal, so a confirmation the POS was answered 202 for is never lost."""

    def __init__(self, client: Callable[[], Client], linger_s: float = 0.005) -> None:
        self._client = client
        self._linger_s = linger_s
        self._queues: dict[str, list[tuple[dict[str, Any], asyncio.Future[Delivery]]]] = {}
        self._flushing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def deliver(self, workflow_id: str, confirmation: dict[str, Any]) -> Delivery:
        future: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(workflow_id, []).append((confirmation, future))
        if workflow_id not in self._flushing:
            self._flushing.add(workflow_id)
            task = asyncio.create_task(self._flush(workflow_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self, workflow_id: str) -> None:
        try:
            if self._linger_s:
                await asyncio.sleep(self._linger_s)
            while queue := self._queues.get(workflow_id):
                batch = queue[:MAX_CONFIRMATIONS_PER_SIGNAL]
                del queue[: len(batch)]
                try:
                    outcome = await self._signal(workflow_id, [c for c, _ in batch])
                except Exception as e:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self._flushing.discard(workflow_id)
            if not self._queues.get(workflow_id):
                self._queues.pop(workflow_id, None)

    async def _signal(self, workflow_id: str, items: list[dict[str, Any]]) -> Delivery:
        handle = self._client().get_workflow_handle(workflow_id)
        try:
            await handle.signal(PriceRollout.confirmations, items)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            # Not found: a rollout that never existed, or one that is over.
            try:
                await handle.describe()
            except RPCError as d:
                if d.status != RPCStatusCode.NOT_FOUND:
                    raise
                return Delivery.UNKNOWN
            return Delivery.CLOSED
        return Delivery.DELIVERED


def _refused(errors: list[FieldError], status_code: int = 422) -> JSONResponse:
    return JSONResponse(
        {"status": "refused", "errors": [e.model_dump() for e in errors]}, status_code=status_code
    )


def _too_large() -> JSONResponse:
    message = f"body larger than {MAX_BODY_BYTES // (1 << 20)} MiB"
    return _refused([FieldError(field="body", message=message)], status_code=413)


def _slow_body(timeout_s: float) -> JSONResponse:
    message = f"did not arrive within {timeout_s:g} s"
    return _refused([FieldError(field="body", message=message)], status_code=408)


async def _body_in_time(request: Request, timeout_s: float) -> bytes | JSONResponse:
    """The body, or the refusal to answer: 413 over the limit, 408 when it is too slow."""
    try:
        async with asyncio.timeout(timeout_s):
            return await read_body(request)
    except BodyTooLarge:
        return _too_large()
    except TimeoutError:
        log.warning("refused %s from %s: body too slow", _route(request), _peer(request))
        return _slow_body(timeout_s)


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def _route(request: Request) -> str:
    # Escaped: a path can carry line breaks (%0A) that would forge log lines.
    return f"{request.method} {repr(request.url.path[:200])[1:-1]}"


def _unauthorized(request: Request, refused: Refused) -> JSONResponse:
    log.warning(
        "refused %s from %s: caller %r: %s",
        _route(request),
        _peer(request),
        refused.claimed,
        refused.reason.value,
    )
    return JSONResponse(
        {"status": "refused", "error": f"unauthenticated: {refused.reason.value}"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="retailflow"'},
    )


def _forbidden(request: Request, caller: Caller, reason: str) -> JSONResponse:
    log.warning(
        "refused %s from %s: caller %r: %s", _route(request), _peer(request), caller.id, reason
    )
    return JSONResponse({"status": "refused", "error": f"forbidden: {reason}"}, status_code=403)


def _unavailable(what: str, e: Exception) -> JSONResponse:
    log.exception("%s failed", what)
    return JSONResponse(
        {"status": "unavailable", "error": f"{what}: {type(e).__name__}: try again"},
        status_code=503,
    )


def _busy(request: Request, busy: Busy) -> JSONResponse:
    log.info("%s from %s: 429 (%s)", _route(request), _peer(request), busy.reason)
    return JSONResponse(
        {"status": "busy", "error": f"{busy.reason}: try again later"},
        status_code=429,
        headers={"Retry-After": str(busy.retry_after_s)},
    )


class RequestMetrics:
    """Counts every answer by route (the matched route's template, never the raw path: ids
    would make a series each) and status (workers/metrics.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            record_ingress(path if isinstance(path, str) else "unmatched", (status or [500])[0])


async def metrics_endpoint(request: Request) -> Response:
    """This process's metrics for Prometheus. Not authenticated: serve the ingress on a
    private network, or keep /metrics from the public side at the proxy."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)


def build_app(settings: Settings, client: Client | None = None) -> Starlette:
    """The ingress app. Raises ValueError naming the problem when the callers cannot be
    loaded (`RETAILFLOW_CALLERS_FILE`, `RETAILFLOW_POS_SECRETS`)."""
    state: dict[str, Client] = {}
    if client is not None:
        state["client"] = client
    batcher = ConfirmationBatcher(lambda: state["client"])
    registry = CallerRegistry(settings.callers_file, settings.pos_secrets)
    rates = RateLimiter()
    backlog = BacklogGauge(
        visibility_count(lambda: state["client"]),
        settings.ingress_max_backlog,
        settings.ingress_max_store_backlog,
        settings.ingress_backlog_cache_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if "client" not in state:
            state["client"] = await connect(settings.temporal)
        yield

    async def admit(
        request: Request, scope: Scope, with_body: bool = True
    ) -> tuple[Caller, bytes] | JSONResponse:
        """The authenticated caller holding `scope`, and the body; or the refusal to answer.
        A bearer token is checked before the body is read; a signature needs the body."""
        callers = registry.current()
        outcome: Authenticated | Refused | None = None
        authorization = request.headers.get("authorization")
        signature = request.headers.get("x-pos-signature")
        if authorization is not None:
            kind, _, token = authorization.strip().partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                outcome = Refused(Refusal.MALFORMED)
            else:
                outcome = callers.bearer(token.strip())
        elif signature is None:
            outcome = Refused(Refusal.MISSING)
        if isinstance(outcome, Refused):
            return _unauthorized(request, outcome)
        if isinstance(outcome, Authenticated) and scope not in outcome.caller.scopes:
            return _forbidden(request, outcome.caller, f"scope {scope.value} required")
        body = b""
        if with_body:
            read = await _body_in_time(request, settings.ingress_body_timeout_s)
            if isinstance(read, JSONResponse):
                return read
            body = read
        if outcome is None:
            outcome = callers.signed(
                request.headers.get("x-pos-platform", ""),
                request.headers.get("x-pos-timestamp"),
                body,
                signature,
            )
            if isinstance(outcome, Refused):
                return _unauthorized(request, outcome)
            if scope not in outcome.caller.scopes:
                return _forbidden(request, outcome.caller, f"scope {scope.value} required")
        return outcome.caller, body

    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """The handler, answered 503 when it takes longer than the request timeout (whatever it
        started is idempotent: the caller sends it again)."""

        async def run(request: Request) -> Response:
            try:
                async with asyncio.timeout(settings.ingress_request_timeout_s):
                    return await handler(request)
            except TimeoutError:
                log.warning(
                    "%s from %s: no answer within %g s",
                    _route(request),
                    _peer(request),
                    settings.ingress_request_timeout_s,
                )
                return JSONResponse(
                    {
                        "status": "unavailable",
                        "error": f"no answer within {settings.ingress_request_timeout_s:g} s: "
                        "try again",
                    },
                    status_code=503,
                )

        return run

    async def post_sale(request: Request) -> Response:
        admitted = await admit(request, Scope.SALES_WRITE)
        if isinstance(admitted, JSONResponse):
            return admitted
        caller, body = admitted
        over = rates.check(caller)
        if over is not None:
            return _busy(request, over)
        mode_arg = request.query_params.get("mode")
        try:
            # No mode: the store's configured one (settings).
            mode = Mode(mode_arg) if mode_arg is not None else None
        except ValueError:
            return JSONResponse(
                {
                    "status": "error",
                    "errors": [
                        {
                            "field": "mode",
                            "message": "must be per-sale, batched or summary, "
                            f"got {(mode_arg or '')[:40]!r}",
                        }
                    ],
                },
                status_code=400,
            )
        try:
            raw = raw_from_text(body)
        except SaleRefused as e:
            too_many = any(err.field in ("lines", "payments") for err in e.errors)
            return _refused(e.errors, status_code=413 if too_many else 422)
        store = raw.get("store_id") if isinstance(raw, dict) else None
        if not caller.may_speak_for(store.strip() if isinstance(store, str) else None):
            return _forbidden(request, caller, f"store_id {str(store)[:70]!r} is not its store")
        shed = await backlog.check(store.strip() if isinstance(store, str) else None)
        if shed is not None:
            rates.give_back(caller)
            return _busy(request, shed)
        try:
            submitted = await submit_sale(
                state["client"], settings, raw, mode, source=f"ingress:{caller.id}"
            )
        except Exception as e:  # Temporal unreachable or overloaded: nothing was accepted
            return _unavailable("submitting the sale", e)
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

    async def get_sale(request: Request) -> Response:
        admitted = await admit(request, Scope.SALES_READ, with_body=False)
        if isinstance(admitted, JSONResponse):
            return admitted
        caller, _ = admitted
        store, txn = request.path_params["store_id"], request.path_params["txn_id"]
        if not caller.may_speak_for(store):
            return _forbidden(request, caller, f"store_id {store[:70]!r} is not its store")
        if any(len(x) > MAX_ID_LENGTH or ":" in x for x in (store, txn)):
            return JSONResponse({"status": "unknown"}, status_code=404)
        try:
            result = await sale_result(state["client"], store, txn)
        except Exception as e:  # e.g. a workflow that cannot answer its query right now
            return _unavailable("reading the sale", e)
        if result is None:
            return JSONResponse({"status": "unknown"}, status_code=404)
        return JSONResponse(result.model_dump(mode="json"))

    async def post_confirmation(request: Request) -> Response:
        admitted = await admit(request, Scope.CONFIRMATIONS_WRITE)
        if isinstance(admitted, JSONResponse):
            return admitted
        caller, body = admitted
        try:
            confirmation = StoreConfirmation.model_validate_json(body)
        except ValidationError as e:
            return _refused(field_errors(e, "confirmation"))
        problems = _confirmation_problems(confirmation)
        if problems:
            return _refused(problems)
        if confirmation.platform_id != caller.id:
            return _forbidden(
                request, caller, f"platform_id {confirmation.platform_id!r} is not its own"
            )
        if not caller.may_speak_for(confirmation.store_id):
            return _forbidden(
                request, caller, f"store_id {confirmation.store_id!r} is not its store"
            )
        if not is_rollout_command_id(confirmation.command_id):
            log.warning("refused a confirmation for unknown command %r", confirmation.command_id)
            return JSONResponse({"status": "unknown command"}, status_code=404)
        ref = parse_command_id(confirmation.command_id)
        if ref is not None:
            return await _to_rollout(confirmation, ref.rollout_id, ref.store_id)
        # The legacy '-' form: a rollout started before ids were joined by ':' has a child
        # workflow per command, which takes the confirmation itself.
        handle = state["client"].get_workflow_handle(confirmation.command_id)
        try:
            await handle.signal(StorePriceCommand.confirm, confirmation)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                return _unavailable("delivering the confirmation", e)
            # Not found: a command that never existed, or one that is closed (409, as promised).
            try:
                await handle.describe()
            except RPCError as d:
                if d.status != RPCStatusCode.NOT_FOUND:
                    return _unavailable("delivering the confirmation", d)
                log.warning(
                    "refused a confirmation for unknown command %r", confirmation.command_id
                )
                return JSONResponse({"status": "unknown command"}, status_code=404)
            return JSONResponse({"status": "closed"}, status_code=409)
        return JSONResponse({"status": "delivered"}, status_code=202)

    async def _to_rollout(
        confirmation: StoreConfirmation, rollout_id: str, store_id: str
    ) -> JSONResponse:
        """A command of the rollout's: delivered to it with the others arriving meanwhile."""
        if store_id != confirmation.store_id:
            log.warning(
                "refused a confirmation from store %r for another store's command %r",
                confirmation.store_id,
                confirmation.command_id,
            )
            return JSONResponse({"status": "unknown command"}, status_code=404)
        try:
            outcome = await batcher.deliver(
                rollout_workflow_id(rollout_id), confirmation.model_dump(mode="json")
            )
        except Exception as e:  # Temporal unreachable or overloaded: the POS sends it again
            return _unavailable("delivering the confirmation", e)
        if outcome is Delivery.UNKNOWN:
            log.warning("refused a confirmation for unknown command %r", confirmation.command_id)
            return JSONResponse({"status": "unknown command"}, status_code=404)
        if outcome is Delivery.CLOSED:
            return JSONResponse({"status": "closed"}, status_code=409)
        return JSONResponse({"status": "delivered"}, status_code=202)

    async def gateway_webhook(request: Request) -> Response:
        # Authenticated by the gateway's own signature (`Stripe-Signature`), not as a caller.
        body = await _body_in_time(request, settings.ingress_body_timeout_s)
        if isinstance(body, JSONResponse):
            return body
        peer = _peer(request)
        try:
            # A missing header is refused by the SDK like a wrong one (never a KeyError).
            event = stripe.Webhook.construct_event(
                body,
                request.headers.get("Stripe-Signature"),
                settings.gateway_webhook_secret.get_secret_value(),
            ).to_dict()
        except stripe.SignatureVerificationError as e:
            log.warning("refused a gateway event from %s: %s", peer, _line(e))
            return JSONResponse(
                {"status": "refused", "error": f"Stripe-Signature: {_line(e)}"}, status_code=400
            )
        except Exception as e:  # signed, but not one JSON event object: whatever the SDK raises
            log.warning("refused a signed gateway event from %s: %s", peer, _line(e))
            return JSONResponse(
                {"status": "refused", "error": f"body: not one JSON event: {_line(e)}"},
                status_code=400,
            )
        try:
            result = await report_gateway_refund_failed(state["client"], settings.task_queue, event)
        except Exception as e:  # Temporal unreachable or overloaded: the gateway sends it again
            return _unavailable("following up the gateway event", e)
        log.info("gateway event %s (%s): %s", event.get("id"), event.get("type"), result)
        return JSONResponse({"status": "received", "result": result})

    async def post_erasure(request: Request) -> Response:
        admitted = await admit(request, Scope.CUSTOMERS_ERASE, with_body=False)
        if isinstance(admitted, JSONResponse):
            return admitted
        raw_id = request.path_params["pos_customer_id"]
        try:
            pos_customer_id = CUSTOMER_ID.validate_python(raw_id)
        except ValidationError:
            message = "must be 1-64 characters, without ':', '@' or white space"
            return _refused([FieldError(field="pos_customer_id", message=message)], 422)
        try:
            workflow_id = await erase_customer(state["client"], settings, pos_customer_id)
        except Exception as e:  # Temporal unreachable or overloaded: nothing was requested
            return _unavailable("requesting the erasure", e)
        return JSONResponse({"status": "requested", "workflow_id": workflow_id}, status_code=202)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes: list[BaseRoute] = [
        Route("/v1/sales", guarded(post_sale), methods=["POST"]),
        Route("/v1/sales/{store_id}/{txn_id}", guarded(get_sale), methods=["GET"]),
        Route("/v1/pos/confirmations", guarded(post_confirmation), methods=["POST"]),
        Route("/v1/gateway/webhook", guarded(gateway_webhook), methods=["POST"]),
        Route("/v1/customers/{pos_customer_id}/erasure", guarded(post_erasure), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        # The approvals inbox: its own login (the users file), not callers' credentials.
        Mount("/inbox", app=inbox_app(settings, lambda: state["client"])),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(RequestMetrics)])


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def _confirmation_problems(c: StoreConfirmation) -> list[FieldError]:
    problems = []
    if c.status not in CONFIRMED_STATES:
        message = f"must be {' or '.join(CONFIRMED_STATES)}, got {c.status[:40]!r}"
        problems.append(FieldError(field="status", message=message))
    for field, value, limit in (
        ("command_id", c.command_id, MAX_COMMAND_ID),
        ("store_id", c.store_id, MAX_ID_LENGTH),
        ("platform_id", c.platform_id, MAX_ID_LENGTH),
        ("reason", c.reason or "", 2000),
    ):
        if len(value) > limit:
            message = f"at most {limit} characters, got {len(value)}"
            problems.append(FieldError(field=field, message=message))
    return problems


def server_config(
    app: Starlette, settings: Settings, host: str, port: int, log_level: str = "info"
) -> uvicorn.Config:
    """uvicorn as the ingress runs it: h11 (whose header limit uvicorn exposes), idle
    keep-alive connections closed, no `Server` header."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http="h11",
        timeout_keep_alive=settings.ingress_keep_alive_s,
        h11_max_incomplete_event_size=settings.ingress_max_header_bytes,
        server_header=False,
    )


async def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until stopped. Raises UnsafeCredentials (a ValueError) for default or live
    credentials where they must not be used, ValueError when the callers cannot be loaded."""
    refuse_unsafe_credentials(settings)
    config = server_config(build_app(settings), settings, host, port)
    await uvicorn.Server(config).serve()
