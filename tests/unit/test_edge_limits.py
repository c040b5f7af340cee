"""What the edge accepts at all: the depth-safe exact JSON reader, the id bounds, the signed
timestamp of a confirmation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from activities.pos_signing import sign, verify
from domain.limits import (
    LimitExceeded,
    MalformedJson,
    json_depth,
    load_json,
    nesting_depth,
)
from domain.money import has_cent_precision
from domain.pricing import PriceChange
from domain.refund import RefundLine, RefundRequest
from domain.sale import SaleRefused, read_raw_sale

NOW = 1_767_225_600
BODY = b'{"status": "applied"}'


@pytest.mark.parametrize(
    "timestamp",
    ["nan", "NaN", "inf", "-inf", "infinity", "1e999", "1e3", " 1767225600", "-1", "0x10", "١٢"],
)
def test_a_timestamp_that_is_not_plain_unix_seconds_never_passes(timestamp: str) -> None:
    # Signed correctly: only the timestamp is wrong.
    assert not verify("s3cret", timestamp, BODY, sign("s3cret", timestamp, BODY), now=NOW)


def test_a_huge_timestamp_is_refused_without_error() -> None:
    ts = "9" * 12 + "." + "9" * 9
    assert not verify("s3cret", ts, BODY, sign("s3cret", ts, BODY), now=NOW)
    assert not verify("s3cret", "9" * 400, BODY, sign("s3cret", "9" * 400, BODY), now=NOW)


def test_fractional_and_integer_timestamps_still_pass() -> None:
    for ts in (str(NOW), f"{NOW}.250"):
        assert verify("s3cret", ts, BODY, sign("s3cret", ts, BODY), now=NOW + 10)


def test_a_non_ascii_signature_is_refused_not_an_error() -> None:
    assert not verify("s3cret", str(NOW), BODY, "sha256=é" * 3, now=NOW)


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "b": [1]}') == 2
    assert json_depth('{"a": "\\"[[[[", "b": {"c": [[]]}}') == 4
    assert json_depth("[" * 100_000) == 17  # stops counting past the limit


def test_load_json_reads_numbers_exactly() -> None:
    got = load_json('{"p": 123456789012345678.91, "q": 2, "big": 1' + "0" * 5000 + "}")
    assert got["p"] == Decimal("123456789012345678.91") and isinstance(got["p"], Decimal)
    assert got["q"] == 2 and isinstance(got["q"], int)
    assert got["big"] == Decimal("1" + "0" * 5000)


@pytest.mark.parametrize(
    "text, error",
    [
        ("[" * 10_000 + "]" * 10_000, LimitExceeded),
        (" " * ((1 << 20) + 1), LimitExceeded),
        ("NaN", MalformedJson),
        ('{"a": -Infinity}', MalformedJson),
        (b"\xff", MalformedJson),
        ('{"a": ', MalformedJson),
    ],
)
def test_load_json_raises_only_its_own_errors(text: str | bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_json(text)


def test_nesting_depth_without_recursion() -> None:
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    assert nesting_depth(deep) == 17
    assert nesting_depth({"a": [1, {"b": 2}]}) == 3


def test_has_cent_precision_never_raises() -> None:
    assert not has_cent_precision(Decimal("1E+308"))
    assert not has_cent_precision(Decimal("NaN"))
    assert has_cent_precision(Decimal("12.30"))


@pytest.mark.parametrize(
    "text, field",
    [
        ('{"store_id": "S1", "txn_id": "' + "T" * 2000 + '"}', "txn_id"),
        ('{"store_id": "' + "S" * 65 + '", "txn_id": "1"}', "store_id"),
        ('{"lines": ' + "[" * 500 + "]" * 500 + "}", "sale"),
        ("[" * 10_000 + "]" * 10_000, "sale"),
    ],
)
def test_the_edge_refuses_what_no_workflow_should_hold(text: str, field: str) -> None:
    with pytest.raises(SaleRefused) as e:
        read_raw_sale(text)
    assert e.value.errors[0].field == field


def test_the_edge_keeps_what_is_merely_invalid() -> None:
    assert read_raw_sale("{oops") == "{oops"
    assert read_raw_sale(b"\xff{") == "\ufffd{"
    assert read_raw_sale("[1, 2]") == "[1, 2]"
    assert read_raw_sale('{"store_id": "S1", "qty": 1e308}') == {
        "store_id": "S1",
        "qty": Decimal("1e308"),
    }


REFUND = {"refund_id": "R1", "store_id": "S1", "txn_id": "T1", "requested_by": "ann", "reason": "x"}


@pytest.mark.parametrize(
    ("model", "raw", "field"),
    [
        (PriceChange, {"sku": "SKU-1", "price": "1000000000"}, "price"),
        (RefundRequest, {**REFUND, "amount": "1000000000"}, "amount"),
        (RefundLine, {"sku": "SKU-1", "qty": "1000000"}, "qty"),
    ],
)
def test_rollout_and_refund_money_is_bounded_like_sales(
    model: type[BaseModel], raw: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as e:
        model.model_validate(raw)
    assert e.value.errors()[0]["loc"] == (field,) and "less than" in str(e.value)
