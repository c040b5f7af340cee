"""The HTTP ingress: 202 accepted, 200 duplicate, 422 with field errors (and the sale kept)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from temporalio.client import Client

from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import sales_for
from workers.ingress import build_app
from workers.submit import Submission, Submitted, wait_until_settled
from workflows.sale_posting import SalePosting, SaleStatus


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
        httpx.AsyncClient(transport=transport, base_url="http://ingress") as http,
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
    assert first.json() == {"status": "accepted", "workflow_id": f"sale-{store_id}-X0000"}
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
    assert queued.json()["workflow_id"] == f"ledger-{store_id}-2026-11-20"
    assert status.status_code == 200 and status.json()["status"] == "Posted"
    assert unknown.status_code == 404
