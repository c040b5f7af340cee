"""The sale contract: each rejection reason names its field and the problem."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from domain.sale import SaleRejected, parse_sale, raw_sale_identity

VALID: dict[str, Any] = {
    "store_id": "S001",
    "txn_id": "T00001",
    "occurred_at": "2026-11-26T10:15:00-05:00",
    "currency": "USD",
    "lines": [
        {"sku": "MILK-1L", "qty": "2", "unit_price": "1.29", "tax_rate": "0.15"},
        {
            "sku": "TEE-BLK-M",
            "qty": "1",
            "unit_price": "12.50",
            "discount_pct": "10",
            "tax_rate": "0.15",
        },
    ],
    "payments": [{"method": "card", "amount": "15.91", "reference": "pi_1"}],
}


def rejected(mutate: Any) -> list[tuple[str, str]]:
    raw = copy.deepcopy(VALID)
    mutate(raw)
    with pytest.raises(SaleRejected) as e:
        parse_sale(raw)
    return [(err.field, err.message) for err in e.value.errors]


def test_valid_sale_amounts() -> None:
    sale = parse_sale(VALID)
    # 2 x 1.29 = 2.58 (tax 0.387 -> 0.39); 12.50 - 10% = 11.25 (tax 1.6875 -> 1.69)
    assert sale.net_total == Decimal("13.83")
    assert sale.tax_total == Decimal("2.08")
    assert sale.total == Decimal("15.91")
    assert sale.key == "POS:S001:T00001"
    assert str(sale.business_day) == "2026-11-26"


def test_valid_sale_from_json_text() -> None:
    assert parse_sale(json.dumps(VALID)).txn_id == "T00001"


def test_no_lines() -> None:
    errors = rejected(lambda s: s.update(lines=[]))
    assert ("lines", "list should have at least 1 item after validation, not 0") in errors


@pytest.mark.parametrize("qty", ["0", "-1"])
def test_qty_must_be_positive(qty: str) -> None:
    errors = rejected(lambda s: s["lines"][0].update(qty=qty))
    assert errors[0] == ("lines[0].qty", "input should be greater than 0")


def test_unknown_currency() -> None:
    errors = rejected(lambda s: s.update(currency="XYZ"))
    assert errors[0][0] == "currency"
    assert "unknown currency 'XYZ'" in errors[0][1]


def test_negative_price() -> None:
    errors = rejected(lambda s: s["lines"][1].update(unit_price="-0.01"))
    assert errors[0] == ("lines[1].unit_price", "input should be greater than or equal to 0")


def test_price_with_sub_cent_precision() -> None:
    errors = rejected(lambda s: s["lines"][0].update(unit_price="1.299"))
    assert errors[0] == ("lines[0].unit_price", "must have at most 2 decimal places")


def test_mismatched_totals_names_the_numbers() -> None:
    errors = rejected(lambda s: s["payments"][0].update(amount="15.90"))
    assert errors == [("sale", "payments total 15.90 does not equal net 13.83 + tax 2.08 = 15.91")]


def test_discount_out_of_range() -> None:
    errors = rejected(lambda s: s["lines"][0].update(discount_pct="120"))
    assert errors[0] == ("lines[0].discount_pct", "input should be less than or equal to 100")


def test_unknown_payment_method() -> None:
    errors = rejected(lambda s: s["payments"][0].update(method="bitcoin"))
    assert errors[0][0] == "payments[0].method"
    assert "'cash', 'card' or 'gift_card'" in errors[0][1]


def test_missing_field() -> None:
    errors = rejected(lambda s: s.pop("txn_id"))
    assert errors == [("txn_id", "is required")]


def test_offset_is_required() -> None:
    errors = rejected(lambda s: s.update(occurred_at="2026-11-26T10:15:00"))
    assert errors[0] == ("occurred_at", "input should have timezone info")


def test_unknown_field_is_refused() -> None:
    errors = rejected(lambda s: s.update(cashier="bob"))
    assert errors == [("cashier", "is not a field of the sale contract")]


def test_no_payments() -> None:
    errors = rejected(lambda s: s.update(payments=[]))
    assert errors[0][0] == "payments"


def test_every_problem_is_reported_at_once() -> None:
    def mutate(s: dict[str, Any]) -> None:
        s["currency"] = "XYZ"
        s["lines"][0]["qty"] = "0"
        s["payments"][0]["amount"] = "-5"

    fields = {f for f, _ in rejected(mutate)}
    assert fields == {"currency", "lines[0].qty", "payments[0].amount"}


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"store_id": "S001", "lines": [', "malformed JSON: "),
        ("[1, 2]", "must be a JSON object, got list"),
        ("", "malformed JSON: "),
    ],
)
def test_malformed_json(text: str, message: str) -> None:
    with pytest.raises(SaleRejected) as e:
        parse_sale(text)
    assert e.value.errors[0].field == "sale"
    assert e.value.errors[0].message.startswith(message)


@pytest.mark.parametrize("bad", ["S 01", "S:01", ""])
def test_identifiers_cannot_break_the_sale_key(bad: str) -> None:
    errors = rejected(lambda s: s.update(store_id=bad))
    assert errors[0][0] == "store_id"
    assert raw_sale_identity({**VALID, "store_id": bad}) is None


def test_identity_of_an_invalid_sale_is_still_known() -> None:
    assert raw_sale_identity({**VALID, "lines": []}) == ("S001", "T00001")
    assert raw_sale_identity("not json") is None
