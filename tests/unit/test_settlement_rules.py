"""Payout → journal entry rules (domain/settlement.py): balanced, the right accounts, exact."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from domain.posting import CurrencyNotBooked, PostingProfile
from domain.settlement import (
    PayoutMismatch,
    PayoutTotals,
    add_transaction,
    from_minor,
    payout_entry_for,
)

ARRIVAL = int(datetime(2026, 11, 18, tzinfo=UTC).timestamp())


def totals(**sums: int) -> PayoutTotals:
    base = {"charges": 100_000, "refunds": 2_500, "refund_failures": 500, "fees": 3_200}
    base.update(sums)
    net = base["charges"] - base["refunds"] + base["refund_failures"] - base["fees"]
    net += base.get("other", 0)
    return PayoutTotals(
        payout_id="po_1",
        currency="usd",
        status="paid",
        amount=net,
        created=ARRIVAL - 2 * 86400,
        arrival_date=ARRIVAL,
        transactions=10,
        **base,
    )


def lines(entry: object) -> list[tuple[str, str, Decimal, Decimal]]:
    return [(ln.account_code, ln.name, ln.debit, ln.credit) for ln in entry.lines]  # type: ignore[attr-defined]


def test_a_payout_entry_clears_the_cards_books_fees_and_refunds() -> None:
    entry = payout_entry_for(totals(), PostingProfile())
    assert (entry.ref, entry.journal_code, entry.date) == (
        "PAYOUT:po_1",
        "BNK1",
        date(2026, 11, 18),
    )
    assert lines(entry) == [
        ("101401", "PAYOUT:po_1 bank", Decimal("948.00"), Decimal("0")),
        ("620000", "PAYOUT:po_1 gateway fees", Decimal("32.00"), Decimal("0")),
        ("101403", "PAYOUT:po_1 card charges", Decimal("0"), Decimal("1000.00")),
        ("101403", "PAYOUT:po_1 card refunds", Decimal("25.00"), Decimal("0")),
        ("101403", "PAYOUT:po_1 refund failures", Decimal("0"), Decimal("5.00")),
    ]
    assert entry.total_debit == entry.total_credit == Decimal("1005.00")


def test_a_negative_payout_credits_the_bank_and_other_money_is_cleared() -> None:
    entry = payout_entry_for(
        totals(charges=1_000, refunds=5_000, refund_failures=0, fees=59, other=2_000),
        PostingProfile(),
    )
    assert lines(entry)[0] == ("101401", "PAYOUT:po_1 bank", Decimal("0"), Decimal("20.59"))
    assert ("101403", "PAYOUT:po_1 other balance changes", Decimal("0"), Decimal("20.00")) in (
        lines(entry)
    )
    assert entry.total_debit == entry.total_credit


def test_the_profile_names_the_accounts() -> None:
    profile = PostingProfile(
        bank_journal_code="BNK2", bank_account="101405", gateway_fees_account="627000"
    )
    entry = payout_entry_for(totals(), profile)
    assert entry.journal_code == "BNK2"
    assert {ln.account_code for ln in entry.lines} == {"101405", "627000", "101403"}


def test_a_payout_that_does_not_add_up_or_is_foreign_is_refused() -> None:
    with pytest.raises(PayoutMismatch, match=r"add up to 948\.00, the payout is 948\.01"):
        payout_entry_for(totals().model_copy(update={"amount": 94_801}), PostingProfile())
    with pytest.raises(CurrencyNotBooked, match="EUR"):
        payout_entry_for(totals().model_copy(update={"currency": "eur"}), PostingProfile())


def test_minor_units_by_currency_exponent() -> None:
    assert from_minor(1591, "usd") == Decimal("15.91")
    assert from_minor(500, "jpy") == Decimal("500")
    assert from_minor(1234, "kwd") == Decimal("1.234")
    assert from_minor(-7, "usd") == Decimal("-0.07")


def test_transactions_add_up_by_kind() -> None:
    sums: dict[str, int] = {}
    for kind, amount, fee in [
        ("charge", 1000, 59),
        ("charge", 2000, 88),
        ("refund", -500, 0),
        ("refund_failure", 200, 0),
        ("payout_failure", 300, 0),
        ("payout", -99, 0),  # the payout itself: not settled by it
    ]:
        add_transaction(sums, kind, amount, fee, amount - fee)
    assert sums == {
        "transactions": 5,
        "fees": 147,
        "charges": 3000,
        "refunds": 500,
        "refund_failures": 200,
        "other": 300,
    }
