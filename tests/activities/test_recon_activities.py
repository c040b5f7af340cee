"""The reconciliation reads against the real simulators (POS journal, Odoo emulator, gateway):
each source read in a few paged calls, and the planted differences found in the report."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import odoorpc
import pytest
from temporalio.testing import ActivityEnvironment

import activities.recon
from activities.gateway_client import GatewayClient, GatewaySettings
from activities.odoo.base import OdooActivityBase
from activities.odoo.client import OdooClient, OdooSettings
from activities.odoo.sales import OdooSalesActivities, PostSalesBatchInput
from activities.odoo.summary import OdooSummaryActivities, PostSummaryInput
from activities.pos_client import PosJournalReader, PosSettings
from activities.recon import DayTotalsInput, PosSaleInput, ReconActivities, ReconcileInput
from domain.posting import PostingProfile, journal_entry_for, refund_entry_for, summary_ref
from domain.reconciliation import DiffKind, ReconStatus, TolerancePolicy
from domain.sale import PaymentMethod, Sale, parse_sale, sale_key
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform

STORE = "S001"


def a_day() -> date:
    """A business day of its own per test: the emulator and its books are shared."""
    return date(2031, 1, 1) + timedelta(days=random.randrange(3000))


RUN = uuid.uuid4().hex[:6].upper()


def sale(day: date, txn: str, cash: str = "0", card: str = "0") -> dict[str, Any]:
    """A sale of `day`; its txn id is unique to the test run (the emulator is shared)."""
    txn = f"{RUN}{day:%j%y}-{txn}"
    total = Decimal(cash) + Decimal(card)
    payments: list[dict[str, Any]] = []
    if Decimal(cash):
        payments.append({"method": "cash", "amount": cash})
    if Decimal(card):
        payments.append({"method": "card", "amount": card, "reference": f"pi_{day}_{txn}"})
    return {
        "store_id": STORE,
        "txn_id": txn,
        "occurred_at": f"{day}T10:00:00-05:00",
        "currency": "USD",
        "lines": [{"sku": "MILK-1L", "qty": "1", "unit_price": str(total), "tax_rate": "0"}],
        "payments": payments,
    }


@pytest.fixture
def pos() -> Iterator[PosPlatform]:
    platform = PosPlatform(stores=2, seed=1)
    platform.start(port=0)
    yield platform
    platform.stop()


@pytest.fixture
def recon(
    odoo_emulator: OdooEmulator, pos: PosPlatform, gateway: Gateway
) -> Iterator[ReconActivities]:
    reader = PosJournalReader(PosSettings(url=pos.url))
    odoo = OdooClient(OdooSettings(url=f"http://127.0.0.1:{odoo_emulator.port}", timeout_s=10))
    client = GatewayClient(GatewaySettings(api_base=gateway.url))
    yield ReconActivities(odoo, PostingProfile(), reader, client)
    reader.close()
    client.close()


def ring_up(pos: PosPlatform, bodies: list[dict[str, Any]]) -> None:
    r = httpx.post(f"{pos.url}/_sim/stores/{STORE}/transactions", json=bodies)
    assert r.status_code == 200, r.text


def capture(
    gateway: Gateway, body: dict[str, Any], cents: int | None = None, ref: str = ""
) -> None:
    card = next(p for p in body["payments"] if p["method"] == "card")
    at = datetime.fromisoformat(body["occurred_at"])
    gateway.create_payment_intent(
        ref or card["reference"],
        cents if cents is not None else int(Decimal(card["amount"]) * 100),
        metadata={"store_id": STORE, "txn_id": body["txn_id"]},
        created=int(at.timestamp()),
    )


def book_again(odoo: odoorpc.ODOO, client: OdooClient, s: Sale) -> None:
    """A second posted entry for a sale (as a buggy path would leave it)."""
    vals = OdooActivityBase(client, PostingProfile())._move_vals(
        journal_entry_for(s, PostingProfile())
    )
    move = odoo.execute_kw("account.move", "create", [vals])
    odoo.execute_kw("account.move", "action_post", [[move]])


def test_the_report_finds_each_planted_difference(
    recon: ReconActivities, pos: PosPlatform, gateway: Gateway, odoo: odoorpc.ODOO
) -> None:
    day = a_day()
    bodies = {
        "T1": sale(day, "T1", cash="10.00"),
        "T2": sale(day, "T2", card="20.00"),
        "T3": sale(day, "T3", cash="3.00"),  # never posted
        "T4": sale(day, "T4", card="4.00"),  # the gateway took a cent less
        "T5": sale(day, "T5", cash="5.00"),  # booked twice
        "T6": sale(day, "T6", cash="1.50", card="1.50"),  # in a summary
    }
    ring_up(pos, list(bodies.values()))
    sales = {k: parse_sale(v) for k, v in bodies.items()}
    OdooSalesActivities(recon.odoo, PostingProfile()).post_sales_batch(
        PostSalesBatchInput(sales=[sales[t] for t in ("T1", "T2", "T4", "T5")])
    )
    book_again(odoo, recon.odoo, sales["T5"])
    OdooSummaryActivities(recon.odoo, PostingProfile()).post_summary(
        PostSummaryInput(
            store_id=STORE, business_day=day, ref=summary_ref(STORE, day, "b1"), sales=[sales["T6"]]
        )
    )
    capture(gateway, bodies["T2"])
    capture(gateway, bodies["T4"], cents=399)
    capture(gateway, bodies["T6"])
    stray = {**bodies["T1"], "txn_id": "X9", "payments": [{"method": "card", "amount": "9.00"}]}
    stray_ref = f"pi_stray_{uuid.uuid4().hex[:6]}"
    capture(gateway, stray, ref=stray_ref)
    report = recon.reconcile_store_day(
        ReconcileInput(
            store_id=STORE, business_day=day, tolerance=TolerancePolicy(max_per_tender=Decimal(0))
        )
    )
    txn = {k: v["txn_id"] for k, v in bodies.items()}
    found = {(d.kind, d.txn_id or d.reference) for d in report.diffs}
    assert found == {
        (DiffKind.MISSING_IN_ODOO, txn["T3"]),
        (DiffKind.AMOUNT_DIFFERS, txn["T4"]),
        (DiffKind.DUPLICATE, txn["T5"]),
        (DiffKind.CHARGE_WITHOUT_SALE, stray_ref),
    }
    assert report.status is ReconStatus.UNRECONCILED
    assert report.matched == 3  # T1, T2, T6 (the summary's sale)
    card = next(t for t in report.totals if t.tender is PaymentMethod.CARD)
    assert (card.pos_sales, card.odoo_sales) == (Decimal("25.50"), Decimal("25.50"))
    assert card.gateway_captured == Decimal("34.49")
    # Late: every entry was created after a close an hour ago.
    closed = datetime.now(UTC) - timedelta(hours=1)
    late = recon.reconcile_store_day(
        ReconcileInput(store_id=STORE, business_day=day, closed_at=closed)
    )
    assert {d.txn_id for d in late.diffs if d.kind is DiffKind.LATE_SALE} == {
        txn[t] for t in ("T1", "T2", "T4", "T5", "T6")
    }
    totals = recon.odoo_day_totals(DayTotalsInput(store_id=STORE, business_day=day))
    assert totals.sales == 6  # T1, T2, T4, T5 twice, T6
    assert totals.tenders[PaymentMethod.CASH] == Decimal("21.50")


def test_a_clean_day_is_reconciled_and_the_pos_copy_of_a_sale_can_be_reposted(
    recon: ReconActivities, pos: PosPlatform, gateway: Gateway
) -> None:
    day = a_day()
    bodies = [sale(day, f"T{n}", cash="1.00", card="2.00") for n in range(5)]
    ring_up(pos, bodies)
    OdooSalesActivities(recon.odoo, PostingProfile()).post_sales_batch(
        PostSalesBatchInput(sales=[parse_sale(b) for b in bodies])
    )
    for body in bodies:
        capture(gateway, body)
    report = recon.reconcile_store_day(ReconcileInput(store_id=STORE, business_day=day))
    assert report.status is ReconStatus.RECONCILED
    assert report.diffs == [] and report.matched == 5
    txn = bodies[3]["txn_id"]
    copy = recon.pos_sale(PosSaleInput(store_id=STORE, txn_id=txn))
    assert parse_sale(copy).key == f"POS:{STORE}:{txn}"


def test_a_day_of_several_pages_is_read_page_by_page_with_a_heartbeat_each(
    recon: ReconActivities,
    pos: PosPlatform,
    gateway: Gateway,
    odoo: odoorpc.ODOO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More sales than a page of Odoo's and of the gateway's reads: every page is read, each
    with a heartbeat (a big store-day would outlive the heartbeat timeout otherwise); a refund
    entry's tender items are read with the sales' and the refunded amount of a charge from the
    gateway's expanded latest charge."""
    monkeypatch.setattr(activities.recon, "ODOO_PAGE", 40)
    day = a_day()
    bodies = [sale(day, f"P{n:03d}", cash="1.00", card="2.00") for n in range(150)]
    ring_up(pos, bodies)
    OdooSalesActivities(recon.odoo, PostingProfile()).post_sales_batch(
        PostSalesBatchInput(sales=[parse_sale(b) for b in bodies])
    )
    for body in bodies:
        capture(gateway, body)
    refunded = next(p for p in bodies[7]["payments"] if p["method"] == "card")["reference"]
    card_payments = GatewayClient(GatewaySettings(api_base=gateway.url))
    try:
        card_payments.stripe.v1.refunds.create(params={"payment_intent": refunded, "amount": 50})
    finally:
        card_payments.close()  # its socket with it
    refund_id = f"RF{RUN}{day:%j%y}"
    entry = refund_entry_for(
        f"REFUND:{refund_id}",
        sale_key(STORE, bodies[7]["txn_id"]),
        day,
        Decimal("0.50"),
        {},
        [(PaymentMethod.CARD, Decimal("0.50"))],
        PostingProfile(),
    )
    move = odoo.execute_kw(
        "account.move", "create", [OdooActivityBase(recon.odoo, PostingProfile())._move_vals(entry)]
    )
    odoo.execute_kw("account.move", "action_post", [[move]])
    beats: list[str] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details[0])
    report = env.run(recon.reconcile_store_day, ReconcileInput(store_id=STORE, business_day=day))
    assert report.matched == 150 and report.pos_transactions == 150
    # 300 tender items of the day's entries (refunds' in the same read) in pages of 40.
    assert beats.count("odoo") == 8
    assert beats.count("gateway") == 2  # 150 intents, 100 a page
    card = next(t for t in report.totals if t.tender is PaymentMethod.CARD)
    assert card.gateway_captured == Decimal("300.00")
    assert card.gateway_refunded == card.odoo_refunds == Decimal("0.50")
    # The POS never rang that refund up.
    assert {(d.kind, d.txn_id) for d in report.diffs} == {(DiffKind.MISSING_AT_POS, refund_id)}
