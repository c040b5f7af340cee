"""Rollout validation: every error is caught before anything changes anywhere."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.pricing import (
    RolloutRejected,
    StoreTarget,
    TargetKind,
    parse_duration,
    parse_rollout,
    read_changes,
)


def rollout(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "rollout_id": "R-2026-11-A",
        "changes": [{"sku": "MILK-1L", "price": "1.19"}, {"sku": "EGGS-12", "price": "3.49"}],
        "target": {"kind": "all"},
        "effective_at": "2026-11-27T06:00:00+00:00",
        "requested_by": "merch-lea",
    }
    raw.update(overrides)
    return raw


def errors_of(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RolloutRejected) as e:
        parse_rollout(raw)
    return [(err.field, err.message) for err in e.value.errors]


def test_valid_rollout_defaults() -> None:
    r = parse_rollout(rollout())
    assert r.confirm_within == timedelta(minutes=15)
    assert r.max_failure_ratio == 0.1
    assert r.window_of(r.changes[0]) == (r.effective_at, None)


@pytest.mark.parametrize("price", ["0", "-1.00"])
def test_price_must_be_positive(price: str) -> None:
    errors = errors_of(rollout(changes=[{"sku": "MILK-1L", "price": price}]))
    assert errors == [("changes[0].price", "input should be greater than 0")]


def test_end_must_be_after_start() -> None:
    change = {
        "sku": "MILK-1L",
        "price": "0.99",
        "start": "2026-12-01T00:00:00+00:00",
        "end": "2026-12-01T00:00:00+00:00",
    }
    errors = errors_of(rollout(changes=[change]))
    assert errors[0][0] == "changes[0]"
    assert "must be after start" in errors[0][1]


def test_duplicate_sku() -> None:
    changes = [{"sku": "MILK-1L", "price": "1.00"}, {"sku": "MILK-1L", "price": "1.10"}]
    assert errors_of(rollout(changes=changes)) == [
        ("rollout", "SKU MILK-1L appears more than once")
    ]


def test_empty_store_list() -> None:
    errors = errors_of(rollout(target={"kind": "list", "stores": []}))
    assert errors == [("target", "the store list is empty")]


def test_no_changes() -> None:
    assert errors_of(rollout(changes=[]))[0][0] == "changes"


def test_confirm_within_must_be_positive() -> None:
    assert errors_of(rollout(confirm_within="PT0S"))[0] == (
        "confirm_within",
        "must be a positive duration",
    )


def test_failure_ratio_range() -> None:
    assert errors_of(rollout(max_failure_ratio=1.5))[0][0] == "max_failure_ratio"


@pytest.mark.parametrize(
    "text, kind, stores, region",
    [
        ("all", TargetKind.ALL, (), None),
        ("S001, S002", TargetKind.LIST, ("S001", "S002"), None),
        ("region:north", TargetKind.REGION, (), "north"),
    ],
)
def test_store_target_parsing(
    text: str, kind: TargetKind, stores: tuple[str, ...], region: str | None
) -> None:
    t = StoreTarget.parse(text)
    assert (t.kind, t.stores, t.region) == (kind, stores, region)


def test_store_target_empty_list_is_refused() -> None:
    with pytest.raises(ValueError, match="the store list is empty"):
        StoreTarget.parse(" , ")


@pytest.mark.parametrize("text, expected", [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400)])
def test_durations(text: str, expected: int) -> None:
    assert parse_duration(text) == timedelta(seconds=expected)


def test_bad_duration() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_changes_from_csv_and_json() -> None:
    csv_rows = read_changes(
        "sku,price,end\nMILK-1L,1.19,\nEGGS-12,3.49,2026-12-01T00:00:00+00:00\n", "p.csv"
    )
    assert csv_rows == [
        {"sku": "MILK-1L", "price": "1.19"},
        {"sku": "EGGS-12", "price": "3.49", "end": "2026-12-01T00:00:00+00:00"},
    ]
    assert read_changes('[{"sku": "A", "price": "1"}]', "p.json") == [{"sku": "A", "price": "1"}]
    with pytest.raises(RolloutRejected, match="header"):
        read_changes("name,amount\nx,1\n", "p.csv")
    with pytest.raises(RolloutRejected, match="malformed JSON"):
        read_changes("[", "p.json")


def test_store_and_rollout_ids_cannot_hold_the_id_separator() -> None:
    store_errors = errors_of(rollout(target={"kind": "list", "stores": ["S001", "A:1"]}))
    assert store_errors[0][0] == "target" and "without ':'" in store_errors[0][1]
    assert errors_of(rollout(rollout_id="R:1"))[0][0] == "rollout_id"
    with pytest.raises(ValueError, match="without ':'"):
        StoreTarget.parse("S001, S 2")


def test_command_ids_of_dashed_ids_do_not_collide() -> None:
    from workflows.price_rollout import command_id, is_rollout_command_id, rollout_workflow_id

    # Rollout `R-1` to store `S1` and rollout `R` to store `1-S1` were one command.
    assert command_id("R-1", "S1") != command_id("R", "1-S1")
    assert command_id("R-1", "S1") == "price-rollout:R-1:S1"
    assert command_id("R-1", "S1", revert=True) == "price-rollout:R-1:S1:revert"
    assert rollout_workflow_id("R-1") == "price-rollout:R-1"
    # Confirmations for commands of rollouts started before the change are still routed.
    legacy = command_id("R-1", "S1", legacy=True)
    assert legacy == "price-rollout-R-1-S1"
    assert is_rollout_command_id(legacy) and is_rollout_command_id(command_id("R-1", "S1"))
    assert not is_rollout_command_id("sale:S1:T1")


def test_json_change_files_are_read_exactly_and_within_limits() -> None:
    changes = read_changes('[{"sku": "MILK-1L", "price": 1.10}]', "changes.json")
    assert changes == [{"sku": "MILK-1L", "price": Decimal("1.10")}]
    with pytest.raises(RolloutRejected, match="nested more than"):
        read_changes("[" * 50 + "]" * 50, "changes.json")
    with pytest.raises(RolloutRejected, match="changes: "):
        read_changes('[{"sku": "MILK-1L", "price": NaN}]', "changes.json")
