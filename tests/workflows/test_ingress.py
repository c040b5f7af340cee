"""The HTTP ingress: 202 accepted, 200 duplicate, 422 with field errors (and the sale kept)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, timedelta

import httpx
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.pos_signing import sign
from simulators.odoo import OdooEmulator
from tests.conftest import AUTH, SECRET, running_worker, settings_for
from tests.workflows.helpers import sales_for
from workers.ingress import build_app
from workers.submit import Submission, Submitted, wait_until_settled
from workflows.price_rollout import PriceRollout, PriceRolloutInput, rollout_workflow_id
from workflows.sale_posting import SalePosting, SaleStatus, posting_workflow_id
from workflows.store_ledger import StoreLedger, ledger_workflow_id


async def test_post_sales_over_http(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    app = build_app(settings, client=client)
    sale, other = sales_for(store_id, 2)
    bad = dict(other, currency="XYZ")
    transport = httpx.ASGITransport(app=app)
    async with (
        running_worker(client, settings),
        httpx.AsyncClient(transport=transport, base_url="http://ingress", headers=AUTH) as http,
    ):
        first = await http.post("/v1/sales", content=json.dumps(sale))
        again = await http.post("/v1/sales", content=json.dumps(sale))
        rejected = await http.post("/v1/sales", content=json.dumps(bad))
        garbage = await http.post("/v1/sales", content=b'{"store_id": ')
        wrong_mode = await http.post("/v1/sales?mode=fast", content=json.dumps(sale))
        queued = await http.post(
            "/v1/sales?mode=batched", content=json.dumps(dict(sale, txn_id="B1"))
        )
        await wait_until_settled(
            client,
            [Submitted(workflow_id=first.json()["workflow_id"], submission=Submission.ACCEPTED)],
            timedelta(seconds=60),
        )
        status = await http.get(f"/v1/sales/{store_id}/{sale['txn_id']}")
        unknown = await http.get(f"/v1/sales/{store_id}/NOPE")
        kept = await client.get_workflow_handle_for(
            SalePosting.run, rejected.json()["workflow_id"]
        ).result()

    assert first.status_code == 202
    assert first.json() == {
        "status": "accepted",
        "workflow_id": posting_workflow_id(store_id, "X0000"),
    }
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert rejected.status_code == 422
    assert rejected.json()["errors"] == [
        {
            "field": "currency",
            "message": "unknown currency 'XYZ' (expected an ISO 4217 code such as 'USD')",
        }
    ]
    assert kept.status is SaleStatus.REJECTED
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["field"] == "sale"
    assert wrong_mode.status_code == 400
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    assert queued.json()["workflow_id"] == ledger_workflow_id(store_id, date(2026, 11, 20))
    assert status.status_code == 200 and status.json()["status"] == "Posted"
    assert unknown.status_code == 404


async def test_summary_mode_by_query_or_by_the_stores_configured_default(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    other_store = f"{store_id}B"
    settings = settings_for(
        odoo_emulator,
        temporal_address,
        posting_mode="per-sale",
        store_posting_modes={other_store: "summary"},
    )
    app = build_app(settings, client=client)
    sale = sales_for(store_id, 1)[0]
    configured = dict(sales_for(other_store, 1)[0])
    transport = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingress", headers=AUTH
    )
    async with running_worker(client, settings), transport as http:
        asked = await http.post("/v1/sales?mode=summary", content=json.dumps(sale))
        by_default = await http.post("/v1/sales", content=json.dumps(configured))
        wrong = await http.post("/v1/sales?mode=" + "x" * 500, content=json.dumps(sale))
        for store in (store_id, other_store):
            ledger = client.get_workflow_handle_for(
                StoreLedger.run, ledger_workflow_id(store, date(2026, 11, 20))
            )
            await ledger.signal(StoreLedger.close)
            progress = await ledger.result()
            assert (progress.mode, progress.posted, progress.summaries) == ("summary", 1, 1)

    assert asked.status_code == 202 and asked.json()["status"] == "queued"
    assert by_default.status_code == 202 and by_default.json()["status"] == "queued"
    assert wrong.status_code == 400
    message = wrong.json()["errors"][0]["message"]
    assert message.startswith("must be per-sale, batched or summary") and len(message) < 120


# -- hostile input: refused with a 4xx and nothing started, or kept as Rejected -------------


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND
        return False
    return True


async def test_hostile_sales_never_reach_a_workflow_they_could_wedge(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    app = build_app(settings, client=client)
    sale, huge, corrected = sales_for(store_id, 3)
    deep: object = "x"
    for _ in range(200):
        deep = {"a": deep}
    nested = dict(corrected, lines=[dict(corrected["lines"][0], sku=deep)])
    huge["lines"][0]["unit_price"] = "__HUGE__"
    huge_text = json.dumps(huge).replace('"__HUGE__"', "1e308")
    transport = httpx.ASGITransport(app=app)
    async with (
        running_worker(client, settings),
        httpx.AsyncClient(transport=transport, base_url="http://ingress", headers=AUTH) as http,
    ):
        bomb = await http.post("/v1/sales", content="[" * 10_000 + "]" * 10_000)
        nest500 = await http.post(
            "/v1/sales",
            content=json.dumps(dict(sale, lines="__L__")).replace('"__L__"', "[" * 500 + "]" * 500),
        )
        too_deep = await http.post("/v1/sales", content=json.dumps(nested))
        fixed = await http.post("/v1/sales", content=json.dumps(corrected))
        long_id = await http.post("/v1/sales", content=json.dumps(dict(sale, txn_id="T" * 2000)))
        big_price = await http.post("/v1/sales", content=huge_text)
        too_large = await http.post("/v1/sales", content=b" " * ((1 << 20) + 1))
        kept = await client.get_workflow_handle_for(
            SalePosting.run, big_price.json()["workflow_id"]
        ).result()
        status_long = await http.get(f"/v1/sales/{store_id}/{'T' * 2000}")

    for refused in (bomb, nest500, too_deep, long_id):
        assert refused.status_code == 422, refused.text
        assert refused.json()["status"] == "refused" and "workflow_id" not in refused.json()
    assert "nested more than 16 levels deep" in bomb.json()["errors"][0]["message"]
    assert long_id.json()["errors"][0]["field"] == "txn_id"
    assert too_large.status_code == 413
    assert not await _exists(client, posting_workflow_id(store_id, sale["txn_id"]))
    # Refused, so nothing holds its txn id: the corrected sale is accepted, not a duplicate.
    assert fixed.status_code == 202 and fixed.json()["status"] == "accepted"
    assert big_price.status_code == 422 and big_price.json()["status"] == "rejected"
    assert big_price.json()["errors"] == [
        {"field": "lines[0].unit_price", "message": "input should be less than 1000000000"}
    ]
    assert kept.status is SaleStatus.REJECTED
    assert status_long.status_code == 404


def _signed(body: bytes, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {
        "X-POS-Platform": "pos-main",
        "X-POS-Timestamp": ts,
        "X-POS-Signature": sign(SECRET, ts, body),
    }


async def test_confirmations_bogus_stale_unknown_and_closed(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, pos_secrets={"pos-main": SECRET})
    app = build_app(settings, client=client)
    closed_id = rollout_workflow_id(f"closed{uuid.uuid4().hex[:6]}")
    await client.start_workflow(
        PriceRollout.run,
        PriceRolloutInput(rollout={"rollout_id": "not valid!"}),
        id=closed_id,
        task_queue=settings.task_queue,
    )

    def body(command_id: str, status: str = "applied") -> bytes:
        c = {"platform_id": "pos-main", "store_id": "S001", "command_id": command_id}
        return json.dumps({**c, "status": status}).encode()

    transport = httpx.ASGITransport(app=app)
    async with (
        running_worker(client, settings),
        httpx.AsyncClient(transport=transport, base_url="http://ingress") as http,
    ):
        await client.get_workflow_handle(closed_id).result()
        # A command of the closed rollout (the rollout's id and a store).
        bogus_body = body(f"{closed_id}:S001", "bogus")
        bogus = await http.post(
            "/v1/pos/confirmations", content=bogus_body, headers=_signed(bogus_body)
        )
        nan_body = body(f"{closed_id}:S001")
        nan = await http.post(
            "/v1/pos/confirmations", content=nan_body, headers=_signed(nan_body, "nan")
        )
        closed = await http.post(
            "/v1/pos/confirmations", content=nan_body, headers=_signed(nan_body)
        )
        unknown_body = body(rollout_workflow_id(f"never{uuid.uuid4().hex[:6]}") + ":S001")
        unknown = await http.post(
            "/v1/pos/confirmations", content=unknown_body, headers=_signed(unknown_body)
        )

    assert bogus.status_code == 422
    assert bogus.json()["errors"] == [
        {"field": "status", "message": "input should be 'applied' or 'rejected', got 'bogus'"}
    ]
    assert nan.status_code == 401
    assert closed.status_code == 409 and closed.json() == {"status": "closed"}
    assert unknown.status_code == 404
