"""The Reconciliation workflow end to end on the simulators: a store-day with a sale Odoo
lacks and a card charge no sale has is Unreconciled; ops repost the sale (through SalePosting)
and accept the charge; the store-day ends Reconciled with both kept in the report."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from domain.reconciliation import DiffState, ReconReport, ReconStatus
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform
from tests.conftest import running_worker, settings_for
from workers.cli_recon import day_reports, render
from workers.settings import Settings
from workers.submit import Mode, submit_sale, wait_until_settled
from workflows.reconciliation import (
    Reconciliation,
    ReconciliationInput,
    ReconDecision,
    reconciliation_workflow_id,
)

STORE = "S001"


def a_sale(day: date, txn: str, card_ref: str | None = None) -> dict[str, Any]:
    """11.50 (10.00 + 15% tax), cash or card."""
    payment: dict[str, Any] = {"method": "cash", "amount": "11.50"}
    if card_ref:
        payment = {"method": "card", "amount": "11.50", "reference": card_ref}
    return {
        "store_id": STORE,
        "txn_id": txn,
        "occurred_at": f"{day}T10:00:00-05:00",
        "currency": "USD",
        "lines": [{"sku": "MILK-1L", "qty": "1", "unit_price": "10.00", "tax_rate": "0.15"}],
        "payments": [payment],
    }


async def until_report(
    handle: WorkflowHandle[Any, Any], check: Any, timeout_s: float = 60
) -> ReconReport:
    for _ in range(int(timeout_s * 10)):
        report: ReconReport | None = await handle.query(Reconciliation.report)
        if report is not None and check(report):
            return report
        await asyncio.sleep(0.1)
    raise AssertionError("the reconciliation never reached the expected state")


async def unreconciled_then_resolved(
    client: Client, settings: Settings, pos: PosPlatform, gw: Gateway, day: date
) -> tuple[WorkflowHandle[Any, ReconReport], str, str]:
    """The scenario (also recorded for replay): two sales rung up, one posted; a stray card
    charge. Ops repost the missing sale and accept the charge. Returns the handle, the
    reposted txn and the stray reference."""
    tag = uuid.uuid4().hex[:6].upper()
    posted, missing = f"{tag}A", f"{tag}B"
    card = f"pi_{tag}B"
    stray = f"pi_{tag}stray"
    sales = [a_sale(day, posted), a_sale(day, missing, card)]
    pos.ring_up_many(STORE, sales)
    sub = await submit_sale(client, settings, sales[0], Mode.PER_SALE, "test")
    await wait_until_settled(client, [sub], timedelta(seconds=30))
    at = int(datetime.fromisoformat(sales[1]["occurred_at"]).timestamp())
    meta = {"store_id": STORE, "txn_id": missing}
    gw.create_payment_intent(card, 1150, metadata=meta, created=at)
    gw.create_payment_intent(stray, 990, metadata={"store_id": STORE}, created=at + 60)
    handle = await client.start_workflow(
        Reconciliation.run,
        ReconciliationInput(store_id=STORE, business_day=day),
        id=reconciliation_workflow_id(STORE, day),
        task_queue=settings.task_queue,
    )
    report = await until_report(handle, lambda r: r.status is ReconStatus.UNRECONCILED)
    assert {d.id for d in report.open_diffs} == {
        f"missing_in_odoo:{missing}",
        f"charge_without_sale:{stray}",
    }
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update(
            Reconciliation.accept, ReconDecision(diff_id="missing_in_odoo:NOPE", by="ops-ann")
        )
    assert "no difference 'missing_in_odoo:NOPE'" in str(unknown.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as wrong_kind:
        await handle.execute_update(
            Reconciliation.repost, ReconDecision(diff_id=f"charge_without_sale:{stray}", by="ann")
        )
    assert "only a sale missing in Odoo" in str(wrong_kind.value.cause)
    # A signal that makes no sense is noted, never raised.
    await handle.signal(Reconciliation.accept_from_ui, ReconDecision(diff_id="x", by=""))
    await handle.execute_update(
        Reconciliation.repost, ReconDecision(diff_id=f"missing_in_odoo:{missing}", by="ops-ann")
    )
    await until_report(
        handle,
        lambda r: (d := r.diff(f"missing_in_odoo:{missing}")) and d.state is DiffState.RESOLVED,
    )
    await handle.execute_update(
        Reconciliation.accept,
        ReconDecision(diff_id=f"charge_without_sale:{stray}", by="ops-bob", comment="test charge"),
    )
    return handle, missing, stray


async def test_unreconciled_day_resolved_by_repost_and_acceptance(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    gateway: Gateway,
) -> None:
    day = date(2031, 1, 1) + timedelta(days=random.randrange(3000))
    settings = settings_for(
        odoo_emulator, temporal_address, pos_url=pos.url, gateway_api_base=gateway.url
    )
    async with running_worker(client, settings):
        handle, missing, stray = await unreconciled_then_resolved(
            client, settings, pos, gateway, day
        )
        report = await handle.result()
        notes = await handle.query(Reconciliation.notes)
        # `recon report DAY --store S001`: found through visibility (eventually consistent).
        listed: list[ReconReport] = []
        for _ in range(100):
            listed = await day_reports(client, day, STORE)
            if listed:
                break
            await asyncio.sleep(0.1)
    assert listed == [report]
    assert f"charge_without_sale:{stray} [accepted]" in render(listed, "table")
    assert report.status is ReconStatus.RECONCILED
    states = {d.id: (d.state, d.decided_by, d.note) for d in report.diffs}
    assert states[f"charge_without_sale:{stray}"] == (
        DiffState.ACCEPTED,
        "ops-bob",
        "accepted by ops-bob: test charge",
    )
    assert states[f"missing_in_odoo:{missing}"][0] is DiffState.RESOLVED
    assert "resolved by repost (ops-ann" in states[f"missing_in_odoo:{missing}"][2]
    assert report.matched == 2
    card = next(t for t in report.totals if t.tender.value == "card")
    assert card.odoo_sales == card.pos_sales == Decimal("11.50")
    assert any("refused" in n for n in notes)
    assert any(f"reposted {missing}: SalePosting ended Posted" in n for n in notes)
