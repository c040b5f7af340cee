"""Posting rules: balanced entries, Odoo's rounding, profile loading."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.money import cents
from domain.posting import (
    CurrencyNotBooked,
    PostingProfile,
    ProfileError,
    journal_entry_for,
    load_profile,
    stock_lines_for,
    summary_entry_for,
    summary_ref,
)
from domain.sale import PaymentMethod, Sale, SaleLine, parse_sale


def test_half_up_rounding_like_odoo() -> None:
    # docs/odoo17-behaviour.md §e: a 1.875 tax is booked as 1.88
    assert cents(Decimal("1.875")) == Decimal("1.88")
    assert cents(Decimal("0.385")) == Decimal("0.39")
    assert cents(Decimal("0.384")) == Decimal("0.38")
    assert cents(Decimal("-0.005")) == Decimal("-0.01")


def test_tax_is_rounded_per_line_not_on_the_total() -> None:
    # Three lines of 0.10 at 15%: per line 0.015 -> 0.02 each = 0.06; on the total it'd be 0.05.
    sale = parse_sale(
        {
            "store_id": "S1",
            "txn_id": "T1",
            "occurred_at": "2026-01-01T10:00:00+00:00",
            "currency": "USD",
            "lines": [
                {"sku": f"A{i}", "qty": "1", "unit_price": "0.10", "tax_rate": "0.15"}
                for i in range(3)
            ],
            "payments": [{"method": "cash", "amount": "0.36"}],
        }
    )
    assert sale.tax_total == Decimal("0.06")


def _sale(
    lines: list[dict[str, str]], payments: list[dict[str, str]], currency: str = "USD"
) -> Sale:
    return parse_sale(
        {
            "store_id": "S001",
            "txn_id": "T42",
            "occurred_at": "2026-03-01T23:30:00-05:00",
            "currency": currency,
            "lines": lines,
            "payments": payments,
        }
    )


def test_entry_maps_tenders_revenue_and_tax_by_code() -> None:
    sale = _sale(
        [{"sku": "A", "qty": "2", "unit_price": "12.50", "tax_rate": "0.15"}],
        [{"method": "cash", "amount": "10.00"}, {"method": "card", "amount": "18.75"}],
    )
    entry = journal_entry_for(sale, PostingProfile())
    assert entry.ref == "POS:S001:T42"
    assert entry.journal_code == "MISC"
    assert str(entry.date) == "2026-03-01"  # the store's day, not UTC's (which is 03-02)
    assert [(ln.account_code, ln.debit, ln.credit) for ln in entry.lines] == [
        ("101501", Decimal("10.00"), Decimal("0.00")),
        ("101403", Decimal("18.75"), Decimal("0.00")),
        ("400000", Decimal("0.00"), Decimal("25.00")),
        ("251000", Decimal("0.00"), Decimal("3.75")),
    ]
    assert all(ln.name.startswith("POS:S001:T42 ") for ln in entry.lines)


def test_currency_not_booked_by_the_company() -> None:
    sale = _sale(
        [{"sku": "A", "qty": "1", "unit_price": "1.00", "tax_rate": "0"}],
        [{"method": "cash", "amount": "1.00"}],
        currency="EUR",
    )
    with pytest.raises(CurrencyNotBooked, match="EUR is not booked"):
        journal_entry_for(sale, PostingProfile())
    assert journal_entry_for(sale, PostingProfile(currencies=("EUR",))).total_debit == Decimal(
        "1.00"
    )


def test_zero_tax_makes_no_tax_line() -> None:
    sale = _sale(
        [{"sku": "A", "qty": "1", "unit_price": "4.00", "tax_rate": "0"}],
        [{"method": "gift_card", "amount": "4.00"}],
    )
    entry = journal_entry_for(sale, PostingProfile())
    assert [ln.account_code for ln in entry.lines] == ["101403", "400000"]


def test_tax_accounts_by_rate() -> None:
    profile = PostingProfile(tax_accounts_by_rate={Decimal("0.05"): "252000"})
    sale = _sale(
        [
            {"sku": "A", "qty": "1", "unit_price": "10.00", "tax_rate": "0.05"},
            {"sku": "B", "qty": "1", "unit_price": "10.00", "tax_rate": "0.15"},
        ],
        [{"method": "cash", "amount": "22.00"}],
    )
    taxes = [(ln.account_code, ln.credit) for ln in journal_entry_for(sale, profile).lines[2:]]
    assert taxes == [("252000", Decimal("0.50")), ("251000", Decimal("1.50"))]


money = st.decimals(min_value=Decimal("0"), max_value=Decimal("999.99"), places=2)
basket_line = st.fixed_dictionaries(
    {
        "sku": st.sampled_from(["A", "B", "C", "D"]),
        "qty": st.integers(min_value=1, max_value=50).map(str),
        "unit_price": money.map(str),
        "discount_pct": st.sampled_from(["0", "5", "12.5", "33.3", "100"]),
        "tax_rate": st.sampled_from(["0", "0.05", "0.15", "0.2", "0.075"]),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(basket_line, min_size=1, max_size=12),
    split=st.lists(st.sampled_from(list(PaymentMethod)), min_size=1, max_size=3),
)
def test_random_baskets_post_balanced(
    lines: list[dict[str, str]], split: list[PaymentMethod]
) -> None:
    parsed = [SaleLine.model_validate(ln) for ln in lines]
    total = sum((ln.net + ln.tax for ln in parsed), Decimal("0.00"))
    if total == 0:
        return  # a free basket has nothing to pay: refused by the contract (payment > 0)
    share = cents(total / len(split))
    amounts = [share] * (len(split) - 1)
    amounts.append(total - sum(amounts, Decimal("0.00")))
    if any(a <= 0 for a in amounts):
        amounts = [total]
        split = split[:1]
    sale = _sale(
        lines, [{"method": m.value, "amount": str(a)} for m, a in zip(split, amounts, strict=True)]
    )
    entry = journal_entry_for(sale, PostingProfile())
    assert entry.total_debit == entry.total_credit == sale.total
    assert all(ln.debit >= 0 and ln.credit >= 0 for ln in entry.lines)
    assert all(ln.debit == cents(ln.debit) and ln.credit == cents(ln.credit) for ln in entry.lines)
    revenue = sum((ln.credit for ln in entry.lines if ln.account_code == "400000"), Decimal(0))
    assert revenue == sale.net_total


def test_stock_lines_merge_per_sku() -> None:
    a = _sale(
        [
            {"sku": "A", "qty": "2", "unit_price": "1.00", "tax_rate": "0"},
            {"sku": "B", "qty": "1", "unit_price": "1.00", "tax_rate": "0"},
            {"sku": "A", "qty": "1", "unit_price": "1.00", "tax_rate": "0"},
        ],
        [{"method": "cash", "amount": "4.00"}],
    )
    assert [(s.sku, s.qty) for s in stock_lines_for([a, a])] == [
        ("A", Decimal(6)),
        ("B", Decimal(2)),
    ]


def test_profile_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "profile.toml"
    p.write_text(
        'journal_code = "POSS"\nrevenue_account = "400100"\n'
        '[tender_accounts]\ngift_card = "211500"\n'
    )
    profile = load_profile(p)
    assert profile.journal_code == "POSS"
    assert profile.tender_account(PaymentMethod.GIFT_CARD) == "211500"
    assert profile.revenue_account == "400100"


@pytest.mark.parametrize(
    "content, message",
    [
        (
            'journal_code = "X"\nbogus = 1\n',
            "bogus: is not a field of the posting profile contract",
        ),
        ("journal_code = ", "malformed"),
        ('[tender_accounts]\ncrypto = "1"\n', "tender_accounts.crypto"),
    ],
)
def test_profile_errors_are_clear(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "profile.toml"
    p.write_text(content)
    with pytest.raises(ProfileError, match=message):
        load_profile(p)


def test_profile_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "nope.json")


def test_summary_aggregates_per_tender_and_tax_rate() -> None:
    a = _sale(
        [
            {"sku": "A", "qty": "1", "unit_price": "10.00", "tax_rate": "0.15"},
            {"sku": "B", "qty": "1", "unit_price": "20.00", "tax_rate": "0.05"},
        ],
        [{"method": "cash", "amount": "11.50"}, {"method": "card", "amount": "21.00"}],
    )
    b = _sale(
        [{"sku": "A", "qty": "2", "unit_price": "10.00", "tax_rate": "0.15"}],
        [{"method": "card", "amount": "23.00"}],
    ).model_copy(update={"txn_id": "T43"})
    ref = summary_ref("S001", a.business_day, "b1")
    entry = summary_entry_for([a, b], PostingProfile(), ref, a.business_day)
    got = {(ln.account_code, ln.name, ln.debit, ln.credit) for ln in entry.lines}
    assert got == {
        ("101501", f"{ref} cash (2 sales)", Decimal("11.50"), Decimal(0)),
        ("101403", f"{ref} card (2 sales)", Decimal("44.00"), Decimal(0)),
        ("400000", f"{ref} sales at 5% tax", Decimal(0), Decimal("20.00")),
        ("400000", f"{ref} sales at 15% tax", Decimal(0), Decimal("30.00")),
        ("251000", f"{ref} tax 5%", Decimal(0), Decimal("1.00")),
        ("251000", f"{ref} tax 15%", Decimal(0), Decimal("4.50")),
    }
    assert entry.ref == ref == "SUM:S001:2026-03-01:b1"
    assert entry.total_debit == entry.total_credit == a.total + b.total


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(basket_line, min_size=1, max_size=4), min_size=1, max_size=20))
def test_random_summaries_post_balanced(baskets: list[list[dict[str, str]]]) -> None:
    sales = []
    for i, lines in enumerate(baskets):
        total = sum(
            (SaleLine.model_validate(ln).net + SaleLine.model_validate(ln).tax for ln in lines),
            Decimal("0.00"),
        )
        if total > 0:
            sale = _sale(lines, [{"method": "card", "amount": str(total)}])
            sales.append(sale.model_copy(update={"txn_id": f"T{i}"}))
    if not sales:
        return
    entry = summary_entry_for(sales, PostingProfile(), "SUM:S001:2026-03-01:x", date(2026, 3, 1))
    assert entry.total_debit == entry.total_credit == sum((s.total for s in sales), Decimal(0))
    revenue = sum((ln.credit for ln in entry.lines if ln.account_code == "400000"), Decimal(0))
    assert revenue == sum((s.net_total for s in sales), Decimal(0))


def test_a_summary_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one sale"):
        summary_entry_for([], PostingProfile(), "SUM:S:2026-03-01:x", date(2026, 3, 1))
