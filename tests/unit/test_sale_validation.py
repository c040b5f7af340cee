"""The sale contract: each rejection reason names its field and the problem."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from domain.sale import SaleRejected, decode_sale_json, parse_sale, raw_sale_identity

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


# -- limits: magnitudes, nesting, exact numbers (nothing but SaleRejected, whatever the input)


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("lines", 0, "unit_price"), 1e308, "input should be less than 1000000000"),
        (("lines", 0, "unit_price"), "123456789012345678.91", "input should be less than"),
        (("lines", 0, "qty"), 1e308, "input should be less than 1000000"),
        (("payments", 0, "amount"), "1e308", "input should be less than 1000000000"),
        (("lines", 0, "unit_price"), "1e-999999", "must have at most 2 decimal places"),
    ],
)
def test_magnitudes_are_bounded(path: tuple[Any, ...], value: Any, message: str) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        target: Any = raw
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    errors = rejected(mutate)
    field = f"{path[0]}[{path[1]}].{path[2]}"
    assert (field, message) in [(f, m[: len(message)]) for f, m in errors]


def test_amounts_are_exact_from_json_text() -> None:
    # JSON numbers, not strings: read as Decimal, so not a cent is lost to a float.
    text = (
        '{"store_id": "S1", "txn_id": "T1", "occurred_at": "2026-11-26T10:15:00-05:00", '
        '"currency": "USD", "payments": [{"method": "cash", "amount": 999999999.91}], '
        '"lines": [{"sku": "GOLD", "qty": 1, "unit_price": 999999999.91, "tax_rate": 0}]}'
    )
    assert decode_sale_json(text)["lines"][0]["unit_price"] == Decimal("999999999.91")
    assert isinstance(decode_sale_json('{"a": 1.5}')["a"], Decimal)
    sale = parse_sale(text)
    assert sale.lines[0].unit_price == Decimal("999999999.91")
    assert sale.total == Decimal("999999999.91")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"store_id": "S1", "txn_id": "T1", "lines": ' + "[" * 500 + "]" * 500 + "}",
        '{"store_id": "S1", "lines": [' + '{"a": ' * 200 + "1" + "}" * 200 + "]}",
        '{"x": ' + "[" * 100_000,
    ],
)
def test_deep_nesting_is_a_rejection_not_a_recursion_error(text: str) -> None:
    with pytest.raises(SaleRejected) as e:
        parse_sale(text)
    assert e.value.errors[0].field == "sale"
    assert "nested more than 16 levels deep" in e.value.errors[0].message


def test_deep_nesting_in_an_object_is_a_rejection() -> None:
    deep: Any = 1
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(SaleRejected) as e:
        parse_sale({**VALID, "lines": deep})
    assert e.value.errors[0].message == "nested more than 16 levels deep"


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', b"\xff\xfe{}", '{"a": -Infinity}'])
def test_json_that_python_would_misread_is_malformed(text: str | bytes) -> None:
    with pytest.raises(SaleRejected) as e:
        parse_sale(text)
    assert e.value.errors[0].field == "sale"


def test_huge_integer_is_refused_by_magnitude() -> None:
    text = json.dumps(VALID).replace('"qty": "2"', '"qty": 1' + "0" * 5000)
    assert ("lines[0].qty", "input should be less than 1000000") in [
        (f, m) for f, m in _errors_of(text)
    ]


def test_identifier_longer_than_64_is_rejected() -> None:
    errors = rejected(lambda s: s.update(txn_id="T" * 2000))
    assert errors[0][0] == "txn_id"


def _errors_of(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(SaleRejected) as e:
        parse_sale(raw)
    return [(err.field, err.message) for err in e.value.errors]
