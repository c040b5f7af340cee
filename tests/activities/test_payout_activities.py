"""Gateway settlement activities against the in-process gateway and the Odoo emulator: a
payout's totals read page by page, its entry booked exactly once (lost responses, a racing
attempt, an attempt that died after its draft) and a failed payout reversed exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import odoorpc
import pytest

from activities.gateway_client import GatewayClient, GatewaySettings, GatewayUnavailable
from activities.odoo.client import OdooClient, OdooSettings, OdooUnavailable
from activities.odoo.payouts import BookPayoutInput, OdooPayoutActivities, ReversePayoutInput
from activities.settlement import PayoutInfo, PayoutWindowInput, SettlementActivities
from domain.posting import PostingProfile
from domain.settlement import PayoutTotals, payout_ref
from simulators.gateway import Gateway, GatewayFaults
from simulators.odoo import Faults, OdooEmulator
from tests.activities.helpers import ScriptedClient, before, raising

DAY = 86400


def plain(emu: OdooEmulator) -> OdooClient:
    return OdooClient(OdooSettings(url=f"http://127.0.0.1:{emu.port}", timeout_s=10))


@pytest.fixture
def day() -> int:
    """A UTC midnight of this test's own (payout ids are per day: the Odoo emulator is shared)."""
    start = int(datetime(2001, 1, 1, tzinfo=UTC).timestamp())
    return start + (uuid.uuid4().int % 7000) * DAY


@pytest.fixture
def reads(gateway: Gateway) -> Iterator[SettlementActivities]:
    client = GatewayClient(GatewaySettings(api_base=gateway.url, timeout_s=5))
    yield SettlementActivities(client)
    client.close()


def sales_day(gw: Gateway, day: int, count: int) -> list[int]:
    amounts = [1000 + 7 * n for n in range(count)]
    for n, amount in enumerate(amounts):
        gw.create_payment_intent(
            f"pi_{day}_{n:04d}", amount, metadata={"store_id": "S001"}, created=day + 60 + n
        )
    return amounts


def totals_of(reads: SettlementActivities, day: int) -> PayoutTotals:
    found = reads.list_payouts(PayoutWindowInput(created_gte=day, created_lt=day + 2 * DAY))
    assert len(found.payouts) == 1
    return reads.payout_totals(found.payouts[0])


def entries(odoo: odoorpc.ODOO, ref: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=", ref)]],
        {"fields": ["state", "name", "journal_id"]},
    )
    return rows


def reversals(odoo: odoorpc.ODOO, move_id: int) -> list[str]:
    rows = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("reversed_entry_id", "=", move_id)]],
        {"fields": ["state"]},
    )
    return sorted(r["state"] for r in rows)


def test_totals_across_pages_and_a_balanced_entry_on_the_profile_accounts(
    gateway: Gateway,
    reads: SettlementActivities,
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    day: int,
) -> None:
    amounts = sales_day(gateway, day, 230)  # three pages of 100
    totals = totals_of(reads, day)
    fees = sum(round(a * 0.029) + 30 for a in amounts)
    assert (totals.status, totals.transactions) == ("paid", 230)
    assert (totals.charges, totals.fees, totals.refunds) == (sum(amounts), fees, 0)
    assert totals.net == totals.amount == sum(amounts) - fees

    booked = OdooPayoutActivities(plain(odoo_emulator), PostingProfile()).book_payout(
        BookPayoutInput(totals=totals)
    )
    assert booked.ref == payout_ref(totals.payout_id) and not booked.already
    assert booked.move_name.startswith("BNK1/")
    lines = odoo.execute_kw(
        "account.move.line",
        "search_read",
        [[("move_id", "=", booked.move_id)]],
        {"fields": ["account_id", "debit", "credit"]},
    )
    codes = {
        a["id"]: a["code"]
        for a in odoo.execute_kw("account.account", "search_read", [[]], {"fields": ["code"]})
    }
    by_code = {(codes[ln["account_id"][0]], ln["debit"], ln["credit"]) for ln in lines}
    assert by_code == {
        ("101401", (sum(amounts) - fees) / 100, 0.0),
        ("620000", fees / 100, 0.0),
        ("101403", 0.0, sum(amounts) / 100),
    }
    move = odoo.execute_kw("account.move", "read", [[booked.move_id]], {"fields": ["date"]})[0]
    assert move["date"] == datetime.fromtimestamp(totals.arrival_date, UTC).date().isoformat()


def test_booked_once_under_lost_responses(
    gateway: Gateway,
    reads: SettlementActivities,
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    day: int,
) -> None:
    sales_day(gateway, day, 5)
    # The gateway loses its answer once on each read: the activity fails, its retry reads.
    gateway.faults = GatewayFaults(
        error_rate=1.0, kinds=("lost_response",), paths=("/v1/balance_transactions",), max_faults=1
    )
    info = reads.list_payouts(PayoutWindowInput(created_gte=day, created_lt=day + 2 * DAY))
    with pytest.raises(GatewayUnavailable):
        reads.payout_totals(info.payouts[0])
    totals = reads.payout_totals(info.payouts[0])

    # Odoo posts the entry, then the answer is lost: the retry finds it posted.
    payouts = OdooPayoutActivities(plain(odoo_emulator), PostingProfile())
    odoo_emulator.faults = Faults(
        error_rate=1.0, kinds=("lost_response",), methods=("account.move.action_post",)
    )
    try:
        with pytest.raises(OdooUnavailable):
            payouts.book_payout(BookPayoutInput(totals=totals))
    finally:
        odoo_emulator.faults = Faults()
    again = payouts.book_payout(BookPayoutInput(totals=totals))
    assert again.already
    assert [e["state"] for e in entries(odoo, payout_ref(totals.payout_id))] == ["posted"]


def test_two_racing_attempts_book_once(
    gateway: Gateway,
    reads: SettlementActivities,
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    day: int,
) -> None:
    sales_day(gateway, day, 3)
    totals = totals_of(reads, day)
    other = OdooPayoutActivities(plain(odoo_emulator), PostingProfile())
    ours = ScriptedClient(odoo_emulator)
    # Just before we post our draft, the other attempt books the payout from start to end.
    ours.on(
        "account.move",
        "action_post",
        before(lambda: other.book_payout(BookPayoutInput(totals=totals))),
    )
    result = OdooPayoutActivities(ours, PostingProfile()).book_payout(
        BookPayoutInput(totals=totals)
    )
    rows = entries(odoo, payout_ref(totals.payout_id))
    assert [e["state"] for e in rows] == ["posted"]
    assert result.move_id == rows[0]["id"]


def test_an_attempt_killed_after_its_draft_then_a_retry_books_once(
    gateway: Gateway,
    reads: SettlementActivities,
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    day: int,
) -> None:
    sales_day(gateway, day, 3)
    totals = totals_of(reads, day)
    dying = ScriptedClient(odoo_emulator)
    # The worker dies between creating the draft and posting it.
    dying.on("account.move", "action_post", raising(SystemExit("worker killed")))
    with pytest.raises(SystemExit):
        OdooPayoutActivities(dying, PostingProfile()).book_payout(BookPayoutInput(totals=totals))
    ref = payout_ref(totals.payout_id)
    assert [e["state"] for e in entries(odoo, ref)] == ["draft"]

    retry = OdooPayoutActivities(plain(odoo_emulator), PostingProfile())
    booked = retry.book_payout(BookPayoutInput(totals=totals))
    assert [e["state"] for e in entries(odoo, ref)] == ["posted"]  # the orphan draft is gone
    assert not booked.already


def test_a_failed_payout_is_reversed_once(
    gateway: Gateway,
    reads: SettlementActivities,
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    day: int,
) -> None:
    sales_day(gateway, day, 4)
    totals = totals_of(reads, day)
    payouts = OdooPayoutActivities(plain(odoo_emulator), PostingProfile())
    booked = payouts.book_payout(BookPayoutInput(totals=totals))
    gateway.fail_payout(totals.payout_id, "account_closed")
    failed = reads.list_payouts(PayoutWindowInput(created_gte=day, created_lt=day + 2 * DAY))
    assert [(p.status, p.failure_code) for p in failed.payouts] == [("failed", "account_closed")]

    ask = ReversePayoutInput(
        payout_id=totals.payout_id, on=date.today(), reason="payout failed: account_closed"
    )
    first = payouts.reverse_payout(ask)
    second = payouts.reverse_payout(ask)  # a retry, a rerun
    assert (first.booked, first.already, second.already) == (True, False, True)
    assert first.reversal_id == second.reversal_id
    assert reversals(odoo, booked.move_id) == ["posted"]
    original = odoo.execute_kw(
        "account.move", "read", [[booked.move_id]], {"fields": ["state", "reversal_move_id"]}
    )[0]
    assert original["state"] == "posted"  # reversed, never deleted
    assert original["reversal_move_id"] == [first.reversal_id]
    reversal = odoo.execute_kw(
        "account.move", "read", [[first.reversal_id]], {"fields": ["ref", "journal_id"]}
    )[0]
    assert reversal["ref"].startswith(f"Reversal of: {booked.move_name}")
    assert reversal["journal_id"][0] == plain(odoo_emulator).journal_id("BNK1")

    # The money comes back and goes out with today's payout, booked as what it was made of:
    # the charges cleared and the fees booked once in the end.
    now = int(datetime.now(UTC).timestamp())
    later = reads.list_payouts(PayoutWindowInput(created_gte=now - DAY, created_lt=now + 2 * DAY))
    again = reads.payout_totals(later.payouts[0])
    assert (again.charges, again.fees, again.other) == (totals.charges, totals.fees, 0)
    assert again.net == again.amount == totals.amount

    # A payout Odoo never booked has nothing to reverse.
    nothing = payouts.reverse_payout(ask.model_copy(update={"payout_id": "po_never"}))
    assert not nothing.booked


def test_two_racing_reversals_leave_one(
    gateway: Gateway,
    reads: SettlementActivities,
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    day: int,
) -> None:
    sales_day(gateway, day, 2)
    totals = totals_of(reads, day)
    other = OdooPayoutActivities(plain(odoo_emulator), PostingProfile())
    booked = other.book_payout(BookPayoutInput(totals=totals))
    ask = ReversePayoutInput(payout_id=totals.payout_id, on=date.today(), reason="failed")
    ours = ScriptedClient(odoo_emulator)
    # Both attempts saw no reversal; the other one reverses just before we do.
    ours.on("account.move.reversal", "refund_moves", before(lambda: other.reverse_payout(ask)))
    result = OdooPayoutActivities(ours, PostingProfile()).reverse_payout(ask)
    assert reversals(odoo, booked.move_id) == ["cancel", "posted"]
    live = odoo.execute_kw(
        "account.move",
        "search",
        [[("reversed_entry_id", "=", booked.move_id), ("state", "=", "posted")]],
    )
    assert [result.reversal_id] == live
    # And the other attempt, asked again, agrees.
    assert other.reverse_payout(ask).reversal_id == result.reversal_id


def test_pending_payouts_and_payout_info_round_trip(
    gateway: Gateway, reads: SettlementActivities
) -> None:
    now = int(datetime.now(UTC).timestamp())
    gateway.create_payment_intent(f"pi_now_{uuid.uuid4().hex[:6]}", 1234, created=now)
    found = reads.list_payouts(PayoutWindowInput(created_gte=now - DAY, created_lt=now + 2 * DAY))
    assert [p.status for p in found.payouts] == ["pending"]
    assert PayoutInfo.model_validate(found.payouts[0].model_dump()) == found.payouts[0]
