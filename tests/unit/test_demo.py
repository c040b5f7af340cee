"""The demo: its summary tells rejected input from sales needing attention; the day it rings
up at the POS and charges at the gateway reconciles with what it sends retailflow but for the
one sale it loses on purpose (refunds included); and Ctrl-C stops it and every process it
started, promptly, even one that ignores SIGINT and SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.reconciliation import (
    DiffKind,
    GatewayCharge,
    OdooBooking,
    ReconSources,
    TolerancePolicy,
    pos_view,
    reconcile,
)
from domain.refund import Tender
from domain.sale import PaymentMethod
from domain.schedule import load_schedule
from simulators.pos.journal import parse_transaction
from simulators.sales import day_of_sales
from workers.audit import OdooBooks
from workers.demo import (
    SCHEDULE_FILE,
    STORES,
    _print_summary,
    plan_day,
    refund_transactions,
    unexplained,
)
from workers.submit import Submission, Submitted
from workflows.refund import RefundResult, RefundStatus
from workflows.sale_posting import SalePostingResult, SaleStatus

ROOT = Path(__file__).resolve().parents[2]


def test_summary_counts_rejected_and_attention_apart(capsys: pytest.CaptureFixture[str]) -> None:
    submitted = [
        Submitted(workflow_id=f"w{i}", submission=Submission.ACCEPTED, store_id="S001")
        for i in range(4)
    ]
    settled = {
        "w0": SalePostingResult(key="POS:S001:1", status=SaleStatus.POSTED),
        "w1": SalePostingResult(key="POS:S001:2", status=SaleStatus.REJECTED),
        "w2": SalePostingResult(key="POS:S001:3", status=SaleStatus.NEEDS_ATTENTION),
        "w3": SalePostingResult(key="POS:S001:4", status=SaleStatus.NEEDS_ATTENTION),
    }
    books = OdooBooks(stores={}, posted_per_key={}, draft_moves=0)
    _print_summary(submitted, settled, books, Counter(), argparse.Namespace())
    out = capsys.readouterr().out.splitlines()
    header = next(line for line in out if line.startswith("store"))
    row = next(line for line in out if line.startswith("S001"))
    assert header.split()[5:7] == ["rejected", "attention"]
    assert row.split()[5:7] == ["1", "2"]


TZ = timezone(timedelta(hours=-5))
DAY = date(2026, 11, 30)


def _day() -> tuple[list[Any], dict[str, Any]]:
    return day_of_sales(
        DAY, stores=STORES, per_store=40, resubmit_ratio=0.15, invalid_per_store=3, seed=2026, tz=TZ
    )


def _booked(sale: dict[str, Any]) -> OdooBooking:
    tenders: dict[PaymentMethod, Decimal] = {}
    for p in sale["payments"]:
        m = PaymentMethod(p["method"])
        tenders[m] = tenders.get(m, Decimal(0)) + Decimal(p["amount"])
    return OdooBooking(txn_id=sale["txn_id"], tenders=tenders, entries=[f"POS:x:{sale['txn_id']}"])


def test_the_day_rung_up_reconciles_but_for_the_one_lost_sale() -> None:
    stream, facts = _day()
    plan = plan_day(stream, facts)
    lost = plan.lost
    assert lost is not None and lost["store_id"] == "S002"
    assert [p["method"] for p in lost["payments"]] == ["card"]
    # Never sent, in any of its cashier retries; everything else still is.
    sent = [(r.get("store_id"), r.get("txn_id")) for r in plan.stream if isinstance(r, dict)]
    assert ("S002", lost["txn_id"]) not in sent
    assert len(plan.stream) == len(stream) - stream.count(lost)
    assert f"POS:S002:{lost['txn_id']}" not in plan.submitted_valid
    # The POS rang up the valid sales and the unknown-SKU one, none of the invalid others.
    rung = {(t["store_id"], t["txn_id"]) for ts in plan.rung.values() for t in ts}
    accepted = {(s, t) for s, t, kind in facts["invalid"] if kind == "unknown_sku"}
    assert accepted and accepted <= rung
    assert rung == {(v["store_id"], v["txn_id"]) for v in facts["valid"].values()} | accepted
    # Every card payment is charged, tagged with its store and sale, created in the day.
    for intent in plan.card_intents:
        created = datetime.fromtimestamp(intent["created"], UTC).astimezone(TZ)
        assert created.date() == DAY
        assert intent["id"] == f"pi_{intent['metadata']['store_id']}_{intent['metadata']['txn_id']}"

    # The three sources of each store-day, as the reconciliation reads them, with Odoo
    # booking exactly what was sent (the unknown-SKU sale fixed by ops before the close).
    sent_keys = set(plan.submitted_valid) | {f"POS:{s}:{t}" for s, t in accepted}
    for store in STORES:
        journal = [parse_transaction(store, t).body for t in plan.rung[store]]
        src = ReconSources(
            store_id=store,
            business_day=DAY,
            pos=[pos_view(t) for t in journal],
            odoo=[_booked(t) for t in journal if f"POS:{store}:{t['txn_id']}" in sent_keys],
            gateway=[
                GatewayCharge(
                    reference=i["id"],
                    txn_id=i["metadata"]["txn_id"],
                    captured=Decimal(i["amount"]) / 100,
                )
                for i in plan.card_intents
                if i["metadata"]["store_id"] == store
            ],
        )
        report = reconcile(src, TolerancePolicy())
        assert [(d.kind, d.txn_id) for d in report.open_diffs] == (
            [(DiffKind.MISSING_IN_ODOO, lost["txn_id"])] if store == "S002" else []
        )
        assert unexplained([report], lost) == []


def test_a_refund_rung_up_at_the_pos_matches_its_odoo_refund_entry() -> None:
    stream, facts = _day()
    plan = plan_day(stream, facts)
    key, sale = next(
        (k, v)
        for k, v in plan.submitted_valid.items()
        if k.startswith("POS:S001:") and any(p["method"] == "card" for p in v["payments"])
    )
    card = next(p for p in sale["payments"] if p["method"] == "card")
    refund = RefundResult(
        refund_id="demo-small",
        status=RefundStatus.REFUNDED,
        sale_key=key,
        amount=Decimal("2.00"),
        tenders=[
            Tender(method=PaymentMethod.CARD, reference=card["reference"], amount=Decimal("2.00"))
        ],
    )
    declined = refund.model_copy(update={"refund_id": "demo-no", "status": RefundStatus.REJECTED})
    at = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # 15:00 at the store
    txns = refund_transactions([refund, declined], plan.submitted_valid, at)
    assert list(txns) == ["S001"] and len(txns["S001"]) == 1
    body = parse_transaction("S001", txns["S001"][0]).body  # the POS takes it
    assert body["kind"] == "refund" and datetime.fromisoformat(body["occurred_at"]).date() == DAY
    src = ReconSources(
        store_id="S001",
        business_day=DAY,
        pos=[pos_view(sale), pos_view(body)],
        odoo=[
            _booked(sale),
            OdooBooking(
                txn_id="demo-small",
                kind="refund",
                tenders={PaymentMethod.CARD: Decimal("2.00")},
                entries=["REFUND:demo-small"],
            ),
        ],
        gateway=[
            GatewayCharge(
                reference=card["reference"],
                txn_id=sale["txn_id"],
                captured=Decimal(card["amount"]),
                refunded=Decimal("2.00"),
            )
        ],
    )
    report = reconcile(src, TolerancePolicy())
    assert report.diffs == []
    # Both POS transactions matched: the sale and its refund.
    assert (report.matched, report.pos_transactions) == (2, 2)
    card_row = next(t for t in report.totals if t.tender is PaymentMethod.CARD)
    assert card_row.pos_refunds == card_row.odoo_refunds == card_row.gateway_refunded


def test_the_demo_schedule_file_settles_the_demo_stores() -> None:
    config = load_schedule(SCHEDULE_FILE)
    assert [(r.name, r.stores) for r in config.region] == [("demo", list(STORES))]


# A parent that owns its children the way the demo does, children that ignore SIGINT and
# SIGTERM (as a server busy shutting down can), and the demo's own wait and stop.
PARENT = textwrap.dedent(
    """
    import asyncio, subprocess, sys
    from workers.demo import stop_all, wait_for_ctrl_c
    STUBBORN = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
             for _ in range(3)]
    for p in procs:
        p.stdout.readline()
    async def main():
        try:
            print(" ".join(str(p.pid) for p in procs), "Ctrl-C to stop.", flush=True)
            await wait_for_ctrl_c()
        finally:
            stop_all(procs)
    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of an exited parent is reaped by init; count it as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def test_ctrl_c_stops_the_demo_and_every_process_it_started() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives `make demo`
    )
    try:
        assert parent.stdout is not None
        ready = parent.stdout.readline()
        assert "Ctrl-C to stop." in ready, ready
        children = [int(pid) for pid in ready.split()[:3]]
        os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
        parent.wait(timeout=8)
        deadline = time.monotonic() + 2
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
