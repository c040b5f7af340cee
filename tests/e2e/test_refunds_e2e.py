"""End to end: 100 refunds while the gateway loses 10% of its responses after doing the work
("refund made, response lost"): the gateway holds exactly one refund per request, and Odoo
exactly one posted refund entry per refund."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import odoorpc
import pytest
from temporalio.client import Client

from simulators.gateway import Gateway, GatewayFaults
from simulators.odoo import OdooEmulator
from simulators.sales import make_sale
from tests.conftest import running_worker, settings_for
from tests.identities import ISSUER
from workers.refunds import request_refund
from workers.submit import Mode, submit_many, wait_until_settled
from workflows.refund import RefundStatus

pytestmark = pytest.mark.e2e


async def test_100_refunds_with_lost_gateway_responses(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    gateway: Gateway,
) -> None:
    settings = settings_for(
        odoo_emulator,
        temporal_address,
        gateway_api_base=gateway.url,
        batch_size=50,
        **ISSUER.trusted(),
    )
    rng = random.Random(5)
    at = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    sales: list[dict[str, Any]] = []
    for i in range(100):
        sale = make_sale(rng, "RF", f"E{i:04d}", at)
        total = sum(Decimal(p["amount"]) for p in sale["payments"])
        pi = f"pi_RF_E{i:04d}"
        sale["payments"] = [{"method": "card", "amount": str(total), "reference": pi}]
        gateway.create_payment_intent(pi, amount_cents=int(total * 100), currency="usd")
        sales.append(sale)

    async with running_worker(client, settings):
        submitted = await submit_many(client, settings, sales, Mode.BATCHED, "e2e")
        await wait_until_settled(client, submitted, timedelta(seconds=120))
        gateway.faults = GatewayFaults(
            error_rate=0.1,
            kinds=("lost_response",),
            paths=("/v1/refunds",),
            methods=("POST",),
            seed=9,
        )
        requests = [
            {
                "refund_id": f"E2E-{i:04d}",
                "store_id": "RF",
                "txn_id": f"E{i:04d}",
                "amount": str(min(Decimal("20.00"), Decimal(s["payments"][0]["amount"]))),
                "reason": "changed_mind",
                "requested_by": "cashier-ann",
            }
            for i, s in enumerate(sales)
        ]
        started = await asyncio.gather(
            *(request_refund(client, settings, r, ISSUER.request(r)) for r in requests)
        )
        results = await asyncio.gather(*(h.result() for _, h, _ in started))
    lost = gateway.stats()["faults"]["lost_response"]
    gateway.faults = GatewayFaults()

    assert lost > 0, "the gateway must have lost some responses"
    assert [r.status for r in results] == [RefundStatus.REFUNDED] * 100
    for i, r in enumerate(results):
        refunds = gateway.refunds(payment_intent=f"pi_RF_E{i:04d}")
        assert len(refunds) == 1, (r.refund_id, refunds)
        assert refunds[0]["amount"] == int(Decimal(requests[i]["amount"]) * 100)
        assert r.gateway_refunds == [refunds[0]["id"]]
    moves = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=like", "REFUND:E2E-%")]],
        {"fields": ["ref", "state"]},
    )
    assert sorted(m["ref"] for m in moves) == sorted(f"REFUND:{r['refund_id']}" for r in requests)
    assert {m["state"] for m in moves} == {"posted"}
