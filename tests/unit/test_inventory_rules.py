"""Inventory audit rules (domain/inventory.py): each counted product's verdict."""

from __future__ import annotations

from decimal import Decimal as D

from domain.inventory import AuditPolicy, OnHand, StoreCount, Verdict, drifts, judge, summarise

POLICY = AuditPolicy(quantity_threshold=D(10), value_threshold=D(100))


def count(qty: str, sku: str = "SKU-1", product_id: int | None = 7) -> StoreCount:
    return StoreCount(sku=sku, product_id=product_id, qty=D(qty))


def odoo(qty: str, price: str = "5", product_id: int = 7, sku: str = "SKU-1") -> OnHand:
    return OnHand(product_id=product_id, sku=sku, qty=D(qty), standard_price=D(price))


def test_in_step_needs_nothing() -> None:
    assert judge(count("4"), odoo("4"), POLICY) is None


def test_small_drift_is_adjusted_by_the_difference() -> None:
    drift = judge(count("3"), odoo("5"), POLICY)
    assert drift is not None
    assert (drift.verdict, drift.delta, drift.value) == (Verdict.ADJUST, D(-2), D(10))


def test_drift_beyond_the_quantity_threshold_is_an_exception() -> None:
    drift = judge(count("20"), odoo("5", price="0.01"), POLICY)
    assert drift is not None and drift.verdict is Verdict.EXCEPTION
    assert "beyond the threshold of 10 units" in drift.reason


def test_drift_at_the_quantity_threshold_is_still_adjusted() -> None:
    drift = judge(count("15"), odoo("5", price="1"), POLICY)
    assert drift is not None and drift.verdict is Verdict.ADJUST


def test_drift_worth_more_than_the_value_threshold_needs_an_approval() -> None:
    drift = judge(count("8"), odoo("5", price="40"), POLICY)
    assert drift is not None
    assert (drift.verdict, drift.value) == (Verdict.NEEDS_APPROVAL, D(120))


def test_negative_count_is_reported_not_adjusted_or_zeroed() -> None:
    drift = judge(count("-3"), odoo("2"), POLICY)
    assert drift is not None
    assert drift.verdict is Verdict.EXCEPTION and drift.negative
    assert drift.counted == D(-3) and "negative count" in drift.reason


def test_negative_stock_in_odoo_matching_the_count_is_still_reported() -> None:
    drift = judge(count("0"), odoo("0"), POLICY)
    assert drift is None
    drift = judge(count("2"), odoo("-1"), POLICY)
    assert drift is not None and drift.negative and drift.verdict is Verdict.ADJUST
    assert drift.delta == D(3)


def test_unknown_product_is_an_exception() -> None:
    drift = judge(count("2"), None, POLICY)
    assert drift is not None and drift.verdict is Verdict.EXCEPTION
    assert "unknown to Odoo" in drift.reason


def test_counts_match_by_product_id_then_sku_and_summary_counts_verdicts() -> None:
    found = drifts(
        [count("1", "A", 1), count("9", "B", None), count("5", "C", 3), count("-1", "D", 4)],
        [
            odoo("2", product_id=1, sku="A"),
            odoo("4", price="50", product_id=2, sku="B"),
            odoo("5", product_id=3, sku="C"),
            odoo("0", product_id=4, sku="D"),
        ],
        POLICY,
    )
    assert [(d.sku, d.verdict) for d in found] == [
        ("A", Verdict.ADJUST),
        ("B", Verdict.NEEDS_APPROVAL),
        ("D", Verdict.EXCEPTION),
    ]
    summary = summarise(4, found)
    assert (summary.adjusted, summary.awaiting_approval, summary.exceptions) == (1, 1, 1)
    assert summary.negative == 1 and summary.drift_count == 2
