"""The store-day close and the nightly settlement that drives it."""

from __future__ import annotations

import sys
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import odoorpc
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.day_close import OpenWork, StoreDay
from activities.recon import DayTotalsInput, OdooDayTotals
from domain.reconciliation import DiffKind, ReconStatus
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import a_day_with_problems, sales_for
from workers.codec import data_converter, load_key_ring
from workers.submit import Mode, submit_many, wait_until_settled
from workflows.reconciliation import Reconciliation, reconciliation_workflow_id
from workflows.search_attributes import ALL
from workflows.settlement import (
    DailySettlement,
    DayCloseInput,
    SettlementInput,
    StoreDayClose,
    close_workflow_id,
)
from workflows.store_ledger import ledger_workflow_id

BIN = Path(sys.executable).parent
DAY = date(2026, 11, 20)
SETTLE = timedelta(seconds=90)


async def test_the_close_flushes_the_ledger_and_waits_for_every_sale(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    # A ledger that would stay open for an hour and batch 1,000 sales: only the close ends it.
    settings = settings_for(
        odoo_emulator,
        temporal_address,
        batch_size=1000,
        batch_max_age_s=3600.0,
        ledger_idle_close_s=3600.0,
    )
    _, stream = a_day_with_problems(store_id)
    async with running_worker(client, settings):
        submitted = await submit_many(client, settings, stream, Mode.BATCHED, source="test")
        # A second store-day's sale, sent per sale: the close of DAY must not wait for it.
        other = sales_for(store_id, 1, seed=9)[0] | {
            "txn_id": "Y0000",
            "occurred_at": "2026-11-21T10:00:00+00:00",
        }
        await submit_many(client, settings, [other], Mode.PER_SALE, source="test")
        ledger = client.get_workflow_handle(ledger_workflow_id(store_id, DAY))
        assert (await ledger.describe()).status == WorkflowExecutionStatus.RUNNING

        result = await client.execute_workflow(
            StoreDayClose.run,
            DayCloseInput(store_id=store_id, business_day=DAY, poll_every=timedelta(seconds=1)),
            id=close_workflow_id(store_id, DAY),
            task_queue=settings.task_queue,
        )
        settled = await wait_until_settled(client, submitted, SETTLE)

    assert result.status == "Closed"
    assert result.ledgers_closed == [ledger_workflow_id(store_id, DAY)]
    assert (await ledger.describe()).status == WorkflowExecutionStatus.COMPLETED
    # Nothing of the day was still posting when it closed: every sale is posted or an exception
    # (the unknown SKU waits for ops, the invalid sale is rejected), and the close counted them.
    assert all(r.status.value in {"Posted", "NeedsAttention", "Rejected"} for r in settled.values())
    assert result.exceptions == sum(r.status.value != "Posted" for r in settled.values()) > 0
    assert result.still_open.settled
    # The day's Odoo totals, as the close saw them: every posted sale, and what they were paid.
    posted = [s for s in settled.values() if s.status.value == "Posted"]
    assert result.odoo is not None and result.odoo.sales == len(posted)
    paid = sum(
        (Decimal(p["amount"]) for sale in stream[:25] for p in sale["payments"]), Decimal(0)
    ) - sum((Decimal(p["amount"]) for p in stream[3]["payments"]), Decimal(0))
    assert sum(result.odoo.tenders.values(), Decimal(0)) == paid


async def test_a_close_whose_sales_never_settle_ends_at_its_timeout_and_says_so() -> None:
    """Time skipping: six hours of waiting for a sale stuck posting pass in a moment."""
    calls = {"open_work": 0}

    @activity.defn(name="close_ledgers")
    async def close_ledgers(day: StoreDay) -> list[str]:
        return []

    @activity.defn(name="odoo_day_totals")
    async def odoo_day_totals(input: DayTotalsInput) -> OdooDayTotals:
        return OdooDayTotals(store_id="S001", business_day=DAY, sales=3, tenders={})

    @activity.defn(name="open_work")
    async def open_work(day: StoreDay) -> OpenWork:
        calls["open_work"] += 1
        return OpenWork(posting=1, exceptions=2)

    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=data_converter(load_key_ring()),
    ) as env:
        # The test server has no ListSearchAttributes, but registers them when asked.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in ALL
                },
            )
        )
        async with Worker(
            env.client,
            task_queue="close",
            workflows=[StoreDayClose],
            activities=[close_ledgers, open_work, odoo_day_totals],
        ):
            result = await env.client.execute_workflow(
                StoreDayClose.run,
                DayCloseInput(
                    store_id="S001",
                    business_day=DAY,
                    settle_timeout=timedelta(hours=6),
                    poll_every=timedelta(minutes=10),
                ),
                id="close:S001:2026-11-20",
                task_queue="close",
            )
    assert result.status == "ClosedWithOpenWork"
    assert result.still_open == OpenWork(posting=1, exceptions=2)
    assert result.exceptions == 2
    # It looked every ten minutes for six hours, then gave up waiting.
    assert calls["open_work"] == 6 * 6 + 1


def _rung_and_charged(
    pos: PosPlatform, gateway: Gateway, sales: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The sales as the store rang them (its journal) and the gateway charged their cards."""
    for sale in sales:
        pos.ring_up_many(sale["store_id"], [sale])
        for p in sale["payments"]:
            if p["method"] == "card":
                gateway.create_payment_intent(
                    p["reference"],
                    int(Decimal(p["amount"]) * 100),
                    metadata={"store_id": sale["store_id"], "txn_id": sale["txn_id"]},
                    created=int(datetime.fromisoformat(sale["occurred_at"]).timestamp()),
                )
    return sales


async def test_a_late_sale_is_booked_once_into_its_closed_day_and_flagged_by_its_reconciliation(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    pos: PosPlatform,
    gateway: Gateway,
) -> None:
    settings = settings_for(
        odoo_emulator,
        temporal_address,
        batch_max_age_s=1.0,
        ledger_idle_close_s=3600.0,
        pos_url=pos.url,
        gateway_api_base=gateway.url,
    )
    # A store-day no other test books: the reconciliation reads the whole of it.
    day = date(2025, 1, 1) + timedelta(days=uuid.uuid4().int % 300)
    tag = uuid.uuid4().hex[:6].upper()
    sales = [
        s | {"store_id": "S042", "txn_id": f"L{tag}{n}", "occurred_at": f"{day}T1{n}:00:00+00:00"}
        for n, s in enumerate(sales_for("S042", 5, seed=11))
    ]
    for s in sales:
        for p in s["payments"]:
            if p["method"] == "card":
                p["reference"] = f"pi_{s['txn_id']}"
    on_time, late = sales[:4], sales[4]

    def night(of: date) -> SettlementInput:
        return SettlementInput(
            region="t", stores=["S042"], business_day=of, poll_every=timedelta(seconds=1)
        )

    async with running_worker(client, settings):
        submitted = await submit_many(
            client, settings, _rung_and_charged(pos, gateway, on_time), Mode.BATCHED, "test"
        )
        await wait_until_settled(client, submitted, SETTLE)
        first = await client.execute_workflow(
            DailySettlement.run,
            night(day),
            id=f"settlement:t:{tag}:1",
            task_queue=settings.task_queue,
        )
        recon = client.get_workflow_handle_for(
            Reconciliation.run, reconciliation_workflow_id("S042", day)
        )
        before = await recon.result()

        # The store was offline: it replays its last sale of the day after the day closed.
        # It goes into the closed day's date (a new run of the day's ledger books it).
        replayed = await submit_many(
            client, settings, _rung_and_charged(pos, gateway, [late]), Mode.BATCHED, "test"
        )
        await wait_until_settled(client, replayed, SETTLE)
        # And once more, as offline stores do: a duplicate, absorbed.
        await wait_until_settled(
            client, await submit_many(client, settings, [late], Mode.BATCHED, "test"), SETTLE
        )
        next_night = await client.execute_workflow(
            DailySettlement.run,
            night(day + timedelta(days=1)),
            id=f"settlement:t:{tag}:2",
            task_queue=settings.task_queue,
        )
        after = await client.get_workflow_handle_for(
            Reconciliation.run, reconciliation_workflow_id("S042", day)
        ).result()

    assert first.stores[0].close == "Closed" and before.status is ReconStatus.RECONCILED
    assert before.matched == 4 and not before.diffs
    # The next night saw Odoo book more for that day than its reconciliation had seen, and
    # reconciled it again: the late sale matches all three sources, flagged late.
    assert next_night.rechecked == [f"S042 {day}"]
    assert after.status is ReconStatus.RECONCILED
    assert after.matched == 5
    assert [(d.kind, d.txn_id) for d in after.diffs] == [(DiffKind.LATE_SALE, late["txn_id"])]
    # Booked exactly once, in the day the POS rang it.
    moves = odoo.env["account.move"].search_read(
        [("ref", "=", f"POS:S042:{late['txn_id']}")], ["state", "date"]
    )
    assert [(m["state"], m["date"]) for m in moves] == [("posted", day.isoformat())]


async def test_a_night_refuses_a_store_id_it_cannot_name_and_settles_the_others(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    async with running_worker(client, settings):
        result = await client.execute_workflow(
            DailySettlement.run,
            SettlementInput(region="t", stores=["no:pe"], business_day=DAY, recheck_days=1),
            id=f"settlement:t:{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
        # Started by hand with a time zone that does not exist: said, not raised.
        lost = await client.execute_workflow(
            DailySettlement.run,
            SettlementInput(region="t", stores=["S001"], time_zone="Mars/Olympus"),
            id=f"settlement:t:{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
    assert lost.stores == [] and "unknown time zone 'Mars/Olympus'" in lost.problems[0]
    [store] = result.stores
    assert store.store_id == "no:pe" and store.close.startswith("Refused: 'no:pe' cannot be part")
    assert store.reconciliation is None and result.rechecked == []
