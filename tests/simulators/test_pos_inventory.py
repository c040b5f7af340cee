"""The POS platform's inventory API: per-store counts in pages, lowered by the store's own
sales (below zero too), set through /_sim; availability applied once per command id."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulators.pos import PosPlatform

from .conftest_pos import running_platform
from .test_pos_journal import txn


@pytest.fixture
def pos() -> Iterator[PosPlatform]:
    with running_platform(stores=2) as platform:
        yield platform


@pytest.fixture
def http(pos: PosPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pos.url, timeout=10) as client:
        yield client


def set_counts(http: httpx.Client, store: str, items: list[dict[str, object]]) -> None:
    answer = http.put(f"/_sim/stores/{store}/inventory", json={"items": items})
    assert answer.status_code == 200, answer.text


def test_counts_come_in_pages_by_sku(http: httpx.Client) -> None:
    set_counts(
        http,
        "S001",
        [
            {"sku": f"SKU-{n}", "product_id": n, "qty": n, "counted_at": "2026-01-01T00:00:00Z"}
            for n in range(1, 6)
        ],
    )
    first = http.get("/v1/stores/S001/inventory", params={"limit": 2}).json()
    assert [i["sku"] for i in first["items"]] == ["SKU-1", "SKU-2"] and first["has_more"]
    assert first["items"][0] == {
        "sku": "SKU-1",
        "product_id": 1,
        "qty": "1",
        "counted_at": "2026-01-01T00:00:00Z",
    }
    rest = http.get("/v1/stores/S001/inventory", params={"after_sku": "SKU-2", "limit": 5}).json()
    assert [i["sku"] for i in rest["items"]] == ["SKU-3", "SKU-4", "SKU-5"]
    assert not rest["has_more"]
    # Per store: the other store counted nothing.
    assert http.get("/v1/stores/S002/inventory").json()["items"] == []


def test_sales_lower_the_count_below_zero_refunds_raise_it(http: httpx.Client) -> None:
    set_counts(http, "S001", [{"sku": "MILK-1L", "qty": "1"}])
    for n in (1, 2):
        assert (
            http.post(
                "/v1/stores/S001/transactions", json=txn(f"T{n}", ("cash", "1.00"))
            ).status_code
            == 201
        )
    # The same sale again is absorbed: counted once.
    http.post("/v1/stores/S001/transactions", json=txn("T2", ("cash", "1.00")))
    counts = http.get("/v1/stores/S001/inventory").json()["items"]
    assert counts[0]["qty"] == "-1"
    http.post("/v1/stores/S001/transactions", json=txn("R1", ("cash", "1.00"), kind="refund"))
    assert http.get("/v1/stores/S001/inventory").json()["items"][0]["qty"] == "0"


def test_bad_counts_and_limits_are_refused_naming_the_field(http: httpx.Client) -> None:
    bad = http.put("/_sim/stores/S001/inventory", json={"items": [{"sku": "A", "qty": "x"}]})
    assert bad.status_code == 422 and bad.json()["field"] == "items[0].qty"
    assert http.get("/v1/stores/S001/inventory", params={"limit": "0"}).status_code == 422
    assert http.get("/v1/stores/NOPE/inventory").status_code == 404


def test_availability_is_applied_once_per_command(http: httpx.Client, pos: PosPlatform) -> None:
    body = {"command_id": "c1", "items": [{"sku": "A", "product_id": 3, "qty": "4"}]}
    assert http.put("/v1/stores/S001/availability", json=body).status_code == 201
    again = http.put(
        "/v1/stores/S001/availability", json={**body, "items": [{"sku": "A", "qty": 9}]}
    )
    assert again.status_code == 200
    view = http.get("/v1/stores/S001/availability").json()
    assert view["items"] == [{"sku": "A", "qty": "4", "product_id": 3}]
    assert view["commands"] == 1
    pos.set_knobs("S001", online=False)
    offline = http.put("/v1/stores/S001/availability", json={**body, "command_id": "c2"})
    assert offline.status_code == 504
