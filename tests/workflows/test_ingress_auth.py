"""The ingress lets in only authenticated callers holding the route's scope (401/403, logged,
nothing started), rotates credentials without a restart, and refuses what is too large or too
slow before anything starts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.pos_signing import sign
from simulators.odoo import OdooEmulator
from tests.conftest import serving, settings_for
from tests.workflows.helpers import sales_for
from workers.auth import token_sha256
from workers.ingress import build_app
from workers.settings import Settings
from workflows.sale_posting import posting_workflow_id

TILL, READER, CONFIRMER = "till-token-1a2b", "reader-token-3c4d", "confirmer-token-5e6f"
OLD, NEW = "old-token-7a8b", "new-token-9c0d"
POS_SECRET = "pos-2-hmac-secret"
SECRETS = (TILL, READER, CONFIRMER, OLD, NEW, POS_SECRET)


def callers_toml(store_id: str, secret_file: Path, old_not_after: datetime) -> str:
    return f"""
[[callers]]
id = "till"
scopes = ["sales:write", "sales:read"]
stores = ["{store_id}"]
[[callers.credentials]]
token_sha256 = "{token_sha256(TILL)}"

[[callers]]
id = "reader"
scopes = ["sales:read"]
[[callers.credentials]]
token_sha256 = "{token_sha256(READER)}"

[[callers]]
id = "confirmer"
scopes = ["confirmations:write"]
[[callers.credentials]]
token_sha256 = "{token_sha256(CONFIRMER)}"

[[callers]]
id = "pos-2"
scopes = ["confirmations:write"]
[[callers.credentials]]
hmac_secret_file = "{secret_file}"

[[callers]]
id = "rotating"
scopes = ["sales:write"]
[[callers.credentials]]
token_sha256 = "{token_sha256(OLD)}"
not_after = {old_not_after.isoformat()}
[[callers.credentials]]
token_sha256 = "{token_sha256(NEW)}"
"""


class Ingress:
    def __init__(self, settings: Settings, client: Client, path: Path, store_id: str) -> None:
        self.settings, self.client, self.path, self.store_id = settings, client, path, store_id
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(settings, client=client)),
            base_url="http://ingress",
        )

    def rewrite(self, old_not_after: datetime) -> None:
        secret_file = self.path.parent / "pos-2.secret"
        self.path.write_text(callers_toml(self.store_id, secret_file, old_not_after))
        # A new modification time even within the file system's time resolution.
        stamp = time.time_ns() + 1_000_000_000
        os.utime(self.path, ns=(stamp, stamp))

    async def post(self, sale: dict[str, Any], token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post("/v1/sales", content=json.dumps(sale), headers=headers)

    async def started(self, store: str, txn: str) -> bool:
        try:
            await self.client.get_workflow_handle(posting_workflow_id(store, txn)).describe()
        except RPCError as e:
            assert e.status == RPCStatusCode.NOT_FOUND
            return False
        return True


@pytest_asyncio.fixture
async def ingress(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    tmp_path: Path,
) -> AsyncIterator[Ingress]:
    (tmp_path / "pos-2.secret").write_text(POS_SECRET + "\n")
    path = tmp_path / "callers.toml"
    path.write_text(
        callers_toml(store_id, tmp_path / "pos-2.secret", datetime.now(UTC) + timedelta(hours=1))
    )
    settings = settings_for(odoo_emulator, temporal_address, callers_file=path)
    it = Ingress(settings, client, path, store_id)
    async with it.http:
        yield it


def signed(body: bytes, platform: str, secret: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "X-POS-Platform": platform,
        "X-POS-Timestamp": ts,
        "X-POS-Signature": sign(secret, ts, body),
    }


async def test_missing_unknown_bad_and_expired_credentials_are_401_logged_and_start_nothing(
    ingress: Ingress, store_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    sales = sales_for(store_id, 6)
    body = json.dumps(sales[4]).encode()
    ingress.rewrite(old_not_after=datetime.now(UTC) - timedelta(seconds=1))
    with caplog.at_level(logging.WARNING, logger="retailflow.ingress"):
        answers = {
            "missing": await ingress.post(sales[0]),
            "bad token": await ingress.post(sales[1], token="not-a-token"),
            "expired": await ingress.post(sales[2], token=OLD),
            "malformed": await ingress.http.post(
                "/v1/sales", content=json.dumps(sales[3]), headers={"Authorization": "Basic eA=="}
            ),
            "unknown caller": await ingress.http.post(
                "/v1/sales", content=body, headers=signed(body, "pos-evil", POS_SECRET)
            ),
            "bad signature": await ingress.http.post(
                "/v1/sales", content=body, headers=signed(body, "pos-2", "not-the-secret")
            ),
            "read, no token": await ingress.http.get(f"/v1/sales/{store_id}/X0000"),
        }
    for what, answer in answers.items():
        assert answer.status_code == 401, what
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="retailflow"', what
    assert answers["expired"].json()["error"] == "unauthenticated: expired credential"
    for sale in sales[:5]:
        assert not await ingress.started(store_id, sale["txn_id"])
    # Each refusal logged with peer, caller, route and reason; never a secret.
    logged = [r.getMessage() for r in caplog.records if r.name == "retailflow.ingress"]
    assert "refused POST /v1/sales from 127.0.0.1: caller '-': no credentials" in logged
    assert "refused POST /v1/sales from 127.0.0.1: caller '-': unknown token" in logged
    assert "refused POST /v1/sales from 127.0.0.1: caller 'rotating': expired credential" in (
        logged
    )
    assert "refused POST /v1/sales from 127.0.0.1: caller 'pos-evil': unknown caller" in logged
    assert "refused POST /v1/sales from 127.0.0.1: caller 'pos-2': bad or stale signature" in (
        logged
    )
    assert not any(secret in caplog.text for secret in (*SECRETS, "not-a-token"))


async def test_an_under_scoped_caller_or_another_store_is_403_and_starts_nothing(
    ingress: Ingress, store_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    mine, by_reader = sales_for(store_id, 2)
    theirs = sales_for("OTHER1", 1)[0]
    body = json.dumps(by_reader).encode()
    with caplog.at_level(logging.WARNING, logger="retailflow.ingress"):
        reader_posts = await ingress.post(by_reader, token=READER)
        hmac_caller_posts = await ingress.http.post(
            "/v1/sales", content=body, headers=signed(body, "pos-2", POS_SECRET)
        )
        other_store = await ingress.post(theirs, token=TILL)
        other_store_read = await ingress.http.get(
            "/v1/sales/OTHER1/X0000", headers={"Authorization": f"Bearer {TILL}"}
        )
        accepted = await ingress.post(mine, token=TILL)
        read_by_reader = await ingress.http.get(
            f"/v1/sales/{store_id}/NOPE", headers={"Authorization": f"Bearer {READER}"}
        )
        # A store id that would break out of the ledger lookup's visibility query.
        quoted_store = await ingress.http.get(
            '/v1/sales/S1" OR "x/X0000', headers={"Authorization": f"Bearer {READER}"}
        )

    assert reader_posts.status_code == 403
    assert reader_posts.json() == {
        "status": "refused",
        "error": "forbidden: scope sales:write required",
    }
    assert hmac_caller_posts.status_code == 403
    assert other_store.status_code == 403
    assert other_store.json()["error"] == "forbidden: store_id 'OTHER1' is not its store"
    assert other_store_read.status_code == 403
    assert not await ingress.started(store_id, by_reader["txn_id"])
    assert not await ingress.started("OTHER1", theirs["txn_id"])
    assert accepted.status_code == 202
    assert await ingress.started(store_id, mine["txn_id"])
    assert read_by_reader.status_code == 404  # let in: no such sale
    assert quoted_store.status_code == 404  # looked up by its own id only, not by a query
    logged = [r.getMessage() for r in caplog.records if r.name == "retailflow.ingress"]
    assert (
        "refused POST /v1/sales from 127.0.0.1: caller 'reader': scope sales:write required"
        in logged
    )


async def test_rotation_old_and_new_tokens_both_work_then_the_old_is_refused_without_restart(
    ingress: Ingress, store_id: str
) -> None:
    restricted = ingress  # the same app throughout: the file is re-read when it changes
    a, b, c, d = sales_for(store_id, 4)
    with_old = await restricted.post(a, token=OLD)
    with_new = await restricted.post(b, token=NEW)
    ingress.rewrite(old_not_after=datetime.now(UTC) - timedelta(seconds=1))
    old_after = await restricted.post(c, token=OLD)
    new_after = await restricted.post(d, token=NEW)

    assert (with_old.status_code, with_new.status_code) == (202, 202)
    assert old_after.status_code == 401
    assert old_after.json()["error"] == "unauthenticated: expired credential"
    assert new_after.status_code == 202
    assert not await ingress.started(store_id, c["txn_id"])


async def test_confirmations_are_hmac_signed_by_their_own_platform(
    ingress: Ingress, store_id: str
) -> None:
    confirmation = {
        "platform_id": "pos-2",
        "store_id": store_id,
        "command_id": "price-rollout:never-started:" + store_id,
        "status": "applied",
    }
    body = json.dumps(confirmation).encode()
    post = "/v1/pos/confirmations"
    genuine = await ingress.http.post(post, content=body, headers=signed(body, "pos-2", POS_SECRET))
    forged = await ingress.http.post(post, content=body, headers=signed(body, "pos-2", "guess"))
    by_till = await ingress.http.post(
        post, content=body, headers={"Authorization": f"Bearer {TILL}"}
    )
    # Confirmations:write, but not pos-2: a caller confirms only for itself.
    by_other = await ingress.http.post(
        post, content=body, headers={"Authorization": f"Bearer {CONFIRMER}"}
    )

    assert genuine.status_code == 404  # through authentication: no such rollout
    assert forged.status_code == 401
    assert by_till.status_code == 403
    assert by_till.json()["error"] == "forbidden: scope confirmations:write required"
    assert by_other.status_code == 403
    assert by_other.json()["error"] == "forbidden: platform_id 'pos-2' is not its own"


async def test_a_sale_with_too_many_lines_or_payments_is_413_naming_the_field(
    ingress: Ingress, store_id: str
) -> None:
    many_lines, many_payments = sales_for(store_id, 2)
    many_lines["lines"] = many_lines["lines"] * 501
    many_payments["payments"] = many_payments["payments"] * 21
    lines = await ingress.post(many_lines, token=TILL)
    payments = await ingress.post(many_payments, token=TILL)

    assert lines.status_code == 413
    assert lines.json()["errors"] == [
        {"field": "lines", "message": f"at most 500 lines, got {len(many_lines['lines'])}"}
    ]
    assert payments.status_code == 413
    assert payments.json()["errors"][0]["field"] == "payments"
    assert not await ingress.started(store_id, many_lines["txn_id"])
    assert not await ingress.started(store_id, many_payments["txn_id"])


# -- over a real socket: what uvicorn and the body reader do before the app answers --------


async def exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes (the request, possibly unfinished); the status, headers and body."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body
    finally:
        writer.close()
        await writer.wait_closed()


async def test_oversized_slow_and_stuck_requests_over_http(
    ingress: Ingress, client: Client, store_id: str
) -> None:
    settings = ingress.settings.model_copy(
        update={"ingress_body_timeout_s": 0.5, "ingress_request_timeout_s": 1.0}
    )
    sale = sales_for(store_id, 1)[0]
    auth = f"Authorization: Bearer {TILL}\r\n".encode()
    async with serving(settings, client) as url:
        # 10 MB declared, none sent: refused at once, from the header (a body read would
        # wait for the bytes and end in 408 instead).
        too_large = await exchange(
            url,
            b"POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 10000000\r\n\r\n",
        )
        # 100 bytes declared, 10 sent, then nothing.
        slow = await exchange(
            url,
            b"POST /v1/sales HTTP/1.1\r\nHost: x\r\n"
            + auth
            + b'Content-Length: 100\r\n\r\n{"store_id',
        )
        # Headers that go on and on: cut off once past the limit, never buffered whole.
        huge_header = await exchange(
            url,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "
            + b"a" * (settings.ingress_max_header_bytes + 1),
        )
        # No worker on the task queue: the sale's workflow never answers a query.
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {TILL}"}
        ) as http:
            accepted = await http.post("/v1/sales", content=json.dumps(sale))
            stuck = await http.get(f"/v1/sales/{store_id}/{sale['txn_id']}")

    assert too_large[0] == 413
    assert json.loads(too_large[2])["errors"][0]["field"] == "body"
    assert slow[0] == 408
    assert json.loads(slow[2]) == {
        "status": "refused",
        "errors": [{"field": "body", "message": "did not arrive within 0.5 s"}],
    }
    assert huge_header[0] == 400
    assert "server" not in slow[1]
    assert accepted.status_code == 202
    assert stuck.status_code == 503
    assert stuck.json() == {"status": "unavailable", "error": "no answer within 1 s: try again"}
