"""The approvals inbox: a web page on the ingress (`/inbox/`) where store managers who are not
Temporal users see the refunds waiting for a decision and approve or reject them.

Server-rendered HTML, no script. People log in with the users file (workers/identity.py:
salted scrypt hashes, checked in constant time); the session is a signed cookie (HttpOnly,
SameSite=Strict, with an expiry), and every form carries a CSRF token bound to it. A decision
is signed here, as an assertion of the logged-in user (the issuer key only this service holds),
and sent as the Refund's `approve` / `reject` Update: the workflow verifies it and gives its
answer, shown on the page (a refusal too, e.g. the requester approving their own refund).
Users without an approver role see the list without buttons. Everything shown is escaped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.approval import Action, b64url, b64url_decode
from domain.ids import BadIdPart
from domain.refund import load_policy
from workers.identity import (
    IdentityError,
    Issuer,
    User,
    authenticate,
    decision_role,
    issuer_from,
    users_from,
)
from workers.settings import Settings
from workflows.refund import Approval, Refund, RefundResult, RefundStatus, refund_workflow_ids

log = logging.getLogger("retailflow.inbox")

SESSION = "rf_inbox_session"
LOGIN_NONCE = "rf_inbox_login"
MAX_FORM_BYTES = 16_384
MAX_COMMENT = 2000
PENDING = (
    'WorkflowType = "Refund" AND ExecutionStatus = "Running" AND RetailStatus = "AwaitingApproval"'
)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Pending:
    workflow_id: str
    started: datetime | None
    refund: RefundResult


class _Sessions:
    """Signed, expiring session and CSRF tokens (HMAC keyed from the issuer's private key, so
    a new key logs everyone out)."""

    def __init__(self, issuer: Issuer, lifetime_s: float) -> None:
        raw = issuer.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self._key = hashlib.sha256(b"retailflow inbox session\0" + raw).digest()
        self.lifetime_s = lifetime_s

    def _mac(self, text: str) -> str:
        return b64url(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def issue(self, subject: str) -> str:
        body = b64url(
            json.dumps(
                {
                    "sub": subject,
                    "exp": int(time.time() + self.lifetime_s),
                    "n": secrets.token_hex(8),
                }
            ).encode()
        )
        return f"{body}.{self._mac('session:' + body)}"

    def open(self, cookie: str | None) -> tuple[str, str] | None:
        """(subject, nonce) of a valid, unexpired session cookie."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("session:" + body)):
            return None
        try:
            data = json.loads(b64url_decode(body))
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int):
            return None
        if data["exp"] < time.time():
            return None
        return str(data.get("sub")), str(data.get("n"))

    def csrf(self, purpose: str, nonce: str) -> str:
        return self._mac(f"csrf:{purpose}:{nonce}")

    def csrf_ok(self, purpose: str, nonce: str | None, token: str) -> bool:
        return bool(nonce) and hmac.compare_digest(self.csrf(purpose, nonce or ""), token)


def inbox_app(settings: Settings, client_getter: Callable[[], Client]) -> Starlette:
    """The inbox as an ASGI app, mounted on the ingress at `/inbox`."""
    issuer: Issuer | None = None
    sessions: _Sessions | None = None
    disabled = ""
    try:
        issuer = issuer_from(settings)
        sessions = _Sessions(issuer, settings.inbox_session_s)
    except IdentityError as e:
        log.warning("approvals inbox disabled: %s", e)
        disabled = str(e)

    def page(request: Request, title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(_layout(title, body), status_code=status, headers=HEADERS)

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/") + "/"

    def cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=base(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def current(request: Request) -> tuple[User, str] | None:
        assert sessions is not None
        opened = sessions.open(request.cookies.get(SESSION))
        if opened is None:
            return None
        try:
            user = users_from(settings).get(opened[0])
        except IdentityError:
            return None
        return (user, opened[1]) if user is not None else None

    async def form(request: Request) -> dict[str, str] | None:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return None
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return None
        try:
            fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return None
        return {k: v[0] for k, v in fields.items()}

    def login_page(request: Request, message: str = "", status: int = 200) -> HTMLResponse:
        assert sessions is not None
        nonce = secrets.token_hex(16)
        body = (
            (f'<p class="refused">{escape(message)}</p>' if message else "")
            + f'<form method="post" action="{escape(base(request))}login">'
            f'<input type="hidden" name="csrf" value="{sessions.csrf("login", nonce)}">'
            '<label>User <input name="username" id="username" autocomplete="username" '
            "required></label>"
            '<label>Password <input name="password" id="password" type="password" '
            'autocomplete="current-password" required></label>'
            '<button type="submit" id="login">Log in</button></form>'
        )
        response = page(request, "Approvals: log in", body, status)
        cookie(response, request, LOGIN_NONCE, nonce, 600)
        return response

    async def index(request: Request) -> Response:
        if sessions is None:
            return page(request, "Approvals", f"<p>Not configured: {escape(disabled)}</p>", 503)
        who = current(request)
        if who is None:
            return login_page(request)
        return await inbox(request, *who)

    async def login(request: Request) -> Response:
        if sessions is None:
            return page(request, "Approvals", f"<p>Not configured: {escape(disabled)}</p>", 503)
        fields = await form(request)
        if fields is None:
            return login_page(request, "The form was too large or malformed.", 400)
        if not sessions.csrf_ok("login", request.cookies.get(LOGIN_NONCE), fields.get("csrf", "")):
            return login_page(request, "The form expired: log in again.", 403)
        try:
            users = users_from(settings)
        except IdentityError as e:
            log.error("inbox login: %s", e)
            return login_page(request, "Logins are not possible now.", 503)
        username = fields.get("username", "").strip()[:128]
        user = await asyncio.to_thread(authenticate, users, username, fields.get("password", ""))
        peer = request.client.host if request.client else "?"
        if user is None:
            log.warning("inbox login refused for %r from %s", username, peer)
            return login_page(request, "Wrong user or password.", 401)
        log.info("inbox login: %s from %s", user.subject, peer)
        response = RedirectResponse(base(request), status_code=303, headers=HEADERS)
        cookie(response, request, SESSION, sessions.issue(user.subject), int(sessions.lifetime_s))
        response.delete_cookie(LOGIN_NONCE, path=base(request))
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse(base(request), status_code=303, headers=HEADERS)
        response.delete_cookie(SESSION, path=base(request))
        return response

    async def decide(request: Request) -> Response:
        if sessions is None or issuer is None:
            return page(request, "Approvals", f"<p>Not configured: {escape(disabled)}</p>", 503)
        who = current(request)
        if who is None:
            return login_page(request, "Your session ended: log in again.", 401)
        user, nonce = who
        fields = await form(request)
        if fields is None or not sessions.csrf_ok("decide", nonce, fields.get("csrf", "")):
            return await inbox(request, user, nonce, ("refused", "The form expired: try again."))
        refund_id, wid = fields.get("refund_id", ""), fields.get("workflow_id", "")
        action, comment = fields.get("action", ""), fields.get("comment", "").strip()
        try:
            known = refund_workflow_ids(refund_id)
        except BadIdPart:
            known = []
        if action not in ("approve", "reject") or wid not in known:
            return await inbox(request, user, nonce, ("refused", "Not a refund of this inbox."))
        if len(comment) > MAX_COMMENT:
            note = f"The comment is longer than {MAX_COMMENT} characters."
            return await inbox(request, user, nonce, ("refused", note))
        verb: Action = "approve" if action == "approve" else "reject"
        try:
            role = decision_role(user, load_policy(settings.refund_policy))
        except ValueError as e:  # no role at all, or a refund policy that does not load
            return await inbox(request, user, nonce, ("refused", f"{verb} refused: {e}"))
        approval = Approval(
            assertion=issuer.assertion(user, role, refund_id, verb),
            comment=comment,
            # Refunds started before approvals were signed take the person's name and role.
            by=user.name,
            role=role,
        )
        handle = client_getter().get_workflow_handle_for(Refund.run, wid)
        update = Refund.approve if verb == "approve" else Refund.reject
        try:
            answer = await handle.execute_update(update, approval)
            outcome = ("ok", answer)
        except WorkflowUpdateFailedError as e:
            outcome = ("refused", f"{verb} refused: {e.cause}")
        except RPCError as e:
            if e.status is not RPCStatusCode.NOT_FOUND:
                raise
            outcome = ("refused", f"refund {refund_id} is closed: it takes no decision")
        log.info("inbox %s of %s by %s: %s", verb, refund_id, user.subject, outcome[1])
        return await inbox(request, user, nonce, outcome)

    async def inbox(
        request: Request, user: User, nonce: str, outcome: tuple[str, str] | None = None
    ) -> Response:
        assert sessions is not None
        try:
            pending, problems = await _pending(client_getter())
        except RPCError as e:
            pending, problems = [], [f"the list cannot be read now ({e.message[:200]})"]
        try:
            approvers = load_policy(settings.refund_policy).approver_roles
        except ValueError as e:
            approvers, problems = frozenset(), [*problems, str(e)]
        may_decide = any(r in approvers for r in user.roles)
        now = datetime.now(UTC)
        csrf = sessions.csrf("decide", nonce)
        rows = []
        for p in pending:
            r = p.refund
            who = escape(r.requested_by or "?") + (
                f' <span class="sub">({escape(r.requested_by_sub)})</span>'
                if r.requested_by_sub
                else ""
            )
            actions = (
                f'<form method="post" action="{escape(base(request))}decide">'
                f'<input type="hidden" name="csrf" value="{csrf}">'
                f'<input type="hidden" name="refund_id" value="{escape(r.refund_id or "")}">'
                f'<input type="hidden" name="workflow_id" value="{escape(p.workflow_id)}">'
                f'<input name="comment" placeholder="comment" maxlength="{MAX_COMMENT}">'
                '<button name="action" value="approve" class="approve">Approve</button>'
                '<button name="action" value="reject" class="reject">Reject</button></form>'
                if may_decide
                else ""
            )
            rows.append(
                f'<tr id="refund-{escape(r.refund_id or "")}">'
                f'<td class="refund">{escape(r.refund_id or p.workflow_id)}</td>'
                f'<td class="amount">{escape(str(r.amount) if r.amount is not None else "?")}</td>'
                f'<td class="sale">{escape(r.sale_key or "?")}</td>'
                f'<td class="requester">{who}</td>'
                f'<td class="age">{escape(_age(now, p.started))}</td>'
                f'<td class="why">{escape("; ".join(r.reasons) or "")}</td>'
                f"<td>{actions}</td></tr>"
            )
        banner = f'<p id="outcome" class="{outcome[0]}">{escape(outcome[1])}</p>' if outcome else ""
        roles = ", ".join(user.roles) or "none"
        body = (
            f'<div class="who">Logged in as <b id="user">{escape(user.name)}</b> '
            f"({escape(user.subject)}; roles {escape(roles)}) "
            f'<form class="inline" method="post" action="{escape(base(request))}logout">'
            f'<button id="logout">Log out</button></form></div>'
            + banner
            + (
                ""
                if may_decide
                else '<p id="no-role">Your roles may not decide refunds: you see the list only.</p>'
            )
            + (f'<p class="refused">{escape("; ".join(problems))}</p>' if problems else "")
            + (
                '<table id="pending"><thead><tr><th>Refund</th><th>Amount</th><th>Sale</th>'
                "<th>Requested by</th><th>Waiting</th><th>Why</th><th></th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>"
                if rows
                else '<p id="empty">No refund is waiting for a decision.</p>'
            )
        )
        return page(request, "Refunds waiting for approval", body)

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/decide", decide, methods=["POST"]),
        ]
    )


async def _pending(client: Client, limit: int = 200) -> tuple[list[Pending], list[str]]:
    """Refunds awaiting approval (visibility), each as it shows itself now (its `show`)."""
    found = []
    async for wf in client.list_workflows(PENDING, limit=limit):
        found.append(wf)

    async def show(wf: Any) -> Pending | str:
        handle = client.get_workflow_handle_for(Refund.run, wf.id, run_id=wf.run_id)
        try:
            r = await handle.query(Refund.show)
        except Exception as e:  # one refund that cannot answer does not hide the others
            return f"{wf.id} cannot answer now ({type(e).__name__})"
        return Pending(wf.id, wf.start_time, r)

    shown = await asyncio.gather(*(show(wf) for wf in found))
    pending = [
        p
        for p in shown
        if isinstance(p, Pending) and p.refund.status is RefundStatus.AWAITING_APPROVAL
    ]
    pending.sort(key=lambda p: p.started or datetime.min.replace(tzinfo=UTC))
    return pending, [p for p in shown if isinstance(p, str)]


def _age(now: datetime, started: datetime | None) -> str:
    if started is None:
        return "?"
    minutes = max(0, int((now - started).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h {minutes % 60} min" if hours < 48 else f"{hours // 24} days"


def _layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:top}.amount{text-align:right;font-variant-numeric:tabular-nums}
.ok{background:#e6f4ea;padding:.5rem}.refused{background:#fce8e6;padding:.5rem}
.sub{color:#777}label{display:block;margin:.5rem 0}form.inline{display:inline}
button.approve{background:#1e7e34;color:#fff}button.reject{background:#b3261e;color:#fff}
"""
