"""The POS platform's HTTP API through a real client: the fleet, price commands from
acceptance to signed confirmation, idempotency, validation, admin routes and stats."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from simulators.pos import PosPlatform, fleet_ids, verify
from simulators.sales import CATALOGUE

from .conftest_pos import PLATFORM_ID, SECRET, command, receiving, running_platform, wait_for


@pytest.fixture
def pos() -> Iterator[PosPlatform]:
    with running_platform(stores=8) as platform:
        yield platform


@pytest.fixture
def http(pos: PosPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pos.url, timeout=10) as client:
        yield client


def status_of(http: httpx.Client, store_id: str, command_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/stores/{store_id}/price-commands/{command_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def settled(http: httpx.Client, store_id: str, command_id: str) -> dict[str, Any] | None:
    body = status_of(http, store_id, command_id)
    return body if body["status"] != "accepted" else None


def test_lists_the_fleet_with_regions_round_robin(http: httpx.Client) -> None:
    stores = http.get("/v1/stores").json()["stores"]
    assert [s["store_id"] for s in stores] == [f"S00{n}" for n in range(1, 9)]
    assert [s["region"] for s in stores[:5]] == ["north", "south", "east", "west", "north"]
    assert all(s["online"] is True for s in stores)


def test_filters_the_fleet_by_region(http: httpx.Client) -> None:
    north = http.get("/v1/stores", params={"region": "north"}).json()["stores"]
    assert [s["store_id"] for s in north] == ["S001", "S005"]
    west = http.get("/v1/stores", params={"region": "west"}).json()["stores"]
    assert [s["store_id"] for s in west] == ["S004", "S008"]
    unknown = http.get("/v1/stores", params={"region": "nowhere"})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "region"


def test_store_ids_have_four_digits_past_999_stores() -> None:
    assert fleet_ids(999)[0] == "S001"
    assert fleet_ids(999)[-1] == "S999"
    assert fleet_ids(1000)[0] == "S0001"
    assert fleet_ids(2000)[-1] == "S2000"


def test_every_store_starts_with_the_catalogue_prices(pos: PosPlatform, http: httpx.Client) -> None:
    expected = {sku: price for sku, _name, price, _tax in CATALOGUE}
    assert http.get("/v1/stores/S008/prices").json() == {"store_id": "S008", "prices": expected}
    assert pos.prices("S003") == {sku: Decimal(p) for sku, p in expected.items()}


def test_a_command_is_accepted_then_applied_then_confirmed_signed(
    pos: PosPlatform, http: httpx.Client
) -> None:
    pos.set_knobs("S002", apply_delay_ms=300)
    with receiving() as receiver:
        body = command("rollout-1:S002", [("MILK-1L", "1.49"), ("EGGS-12", "4.25")], receiver.url)
        response = http.post("/v1/stores/S002/price-commands", json=body)
        assert response.status_code == 202
        assert response.json() == {
            "command_id": "rollout-1:S002",
            "store_id": "S002",
            "status": "accepted",
        }
        # Not applied in the request: still accepted, old prices, until the delay has passed.
        assert status_of(http, "S002", "rollout-1:S002")["status"] == "accepted"
        assert pos.prices("S002")["MILK-1L"] == Decimal("1.29")

        calls = wait_for(receiver.received)
    assert len(calls) == 1
    callback = calls[0]
    assert callback.path == "/pos/confirmations"
    assert callback.body == {
        "platform_id": PLATFORM_ID,
        "store_id": "S002",
        "command_id": "rollout-1:S002",
        "status": "applied",
        "reason": None,
        "applied_at": callback.body["applied_at"],
    }
    headers = {k.lower(): v for k, v in callback.headers.items()}
    assert headers["x-pos-platform"] == PLATFORM_ID
    timestamp, signature = headers["x-pos-timestamp"], headers["x-pos-signature"]
    assert signature.startswith("sha256=")
    assert verify(SECRET, timestamp, callback.raw, signature)
    assert not verify(SECRET, timestamp, callback.raw.replace(b"applied", b"rejected"), signature)
    assert not verify("another-secret", timestamp, callback.raw, signature)
    assert not verify(SECRET, str(int(timestamp) + 1), callback.raw, signature)

    final = status_of(http, "S002", "rollout-1:S002")
    assert final["status"] == "applied"
    assert final["reason"] is None
    assert final["applied_at"] == callback.body["applied_at"]
    prices = http.get("/v1/stores/S002/prices").json()["prices"]
    assert prices["MILK-1L"] == "1.49"
    assert prices["EGGS-12"] == "4.25"
    assert prices["BREAD-WHT"] == "2.49"
    assert pos.prices("S001")["MILK-1L"] == Decimal("1.29")  # other stores untouched


def test_resending_a_command_answers_its_status_and_never_applies_it_twice(
    pos: PosPlatform, http: httpx.Client
) -> None:
    pos.set_knobs("S003", apply_delay_ms=200)
    with receiving() as receiver:
        body = command("rollout-2:S003", [("COFFEE-250", "5.99")], receiver.url)
        assert http.post("/v1/stores/S003/price-commands", json=body).status_code == 202
        again = http.post("/v1/stores/S003/price-commands", json=body)
        assert again.status_code == 200
        assert again.json()["status"] == "accepted"

        wait_for(lambda: settled(http, "S003", "rollout-2:S003"))
        after = http.post("/v1/stores/S003/price-commands", json=body)
        assert after.status_code == 200
        assert after.json()["status"] == "applied"
        assert after.json()["applied_at"] is not None
        wait_for(receiver.received)
        assert len(receiver.received()) == 1

    [record] = pos.commands("S003")
    assert record["command_id"] == "rollout-2:S003"
    assert record["apply_count"] == 1
    assert pos.stats()["duplicates_absorbed"] == 2
    assert pos.stats()["commands_received"] == 1


def test_concurrent_resends_are_recorded_once(pos: PosPlatform) -> None:
    pos.set_knobs("S004", apply_delay_ms=0)
    body = command("rollout-3:S004", [("MUG-WHITE", "3.90")])
    codes: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        with httpx.Client(base_url=pos.url, timeout=10) as client:
            code = client.post("/v1/stores/S004/price-commands", json=body).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] * 19 + [202]
    wait_for(lambda: pos.commands("S004")[0]["status"] == "applied")
    assert [c["apply_count"] for c in pos.commands("S004")] == [1]


def test_an_unknown_sku_rejects_the_whole_command_on_apply(
    pos: PosPlatform, http: httpx.Client
) -> None:
    with receiving() as receiver:
        body = command("rollout-4:S001", [("MILK-1L", "0.99"), ("NOPE-1", "1.00")], receiver.url)
        response = http.post("/v1/stores/S001/price-commands", json=body)
        assert response.status_code == 202  # accepted at POST, rejected on apply
        final = wait_for(lambda: settled(http, "S001", "rollout-4:S001"))
        assert final["status"] == "rejected"
        assert final["reason"] == "unknown SKU NOPE-1"
        [callback] = wait_for(receiver.received)
    assert callback.body["status"] == "rejected"
    assert callback.body["reason"] == "unknown SKU NOPE-1"
    assert callback.body["applied_at"] is not None
    assert pos.prices("S001")["MILK-1L"] == Decimal("1.29")  # nothing of it applied
    assert pos.stats()["commands_rejected"] == 1


BAD_BODIES: list[tuple[Any, str | None]] = [
    ([1, 2], None),
    ({"changes": command("x")["changes"], "effective_at": "2025-03-01"}, "command_id"),
    ({**command("x"), "command_id": ""}, "command_id"),
    ({**command("x"), "changes": []}, "changes"),
    ({**command("x"), "changes": "MILK-1L"}, "changes"),
    ({**command("x"), "changes": ["MILK-1L"]}, "changes[0]"),
    ({**command("x"), "changes": [{"price": "1.00"}]}, "changes[0].sku"),
    ({**command("x"), "changes": [{"sku": "MILK-1L", "price": 1.49}]}, "changes[0].price"),
    ({**command("x"), "changes": [{"sku": "MILK-1L", "price": "abc"}]}, "changes[0].price"),
    ({**command("x"), "changes": [{"sku": "MILK-1L", "price": "-1.00"}]}, "changes[0].price"),
    ({**command("x"), "changes": [{"sku": "MILK-1L", "price": "1.999"}]}, "changes[0].price"),
    (
        {**command("x"), "changes": [{"sku": "MILK-1L", "price": "1.00", "currency": "EUR"}]},
        "changes[0].currency",
    ),
    (
        {
            **command("x"),
            "changes": [
                {"sku": "MILK-1L", "price": "1.00"},
                {"sku": "EGGS-12", "price": "1.00", "start": "yesterday"},
            ],
        },
        "changes[1].start",
    ),
    (
        {
            **command("x"),
            "changes": [
                {
                    "sku": "MILK-1L",
                    "price": "1.00",
                    "start": "2025-03-02T00:00:00+00:00",
                    "end": "2025-03-01T00:00:00+00:00",
                }
            ],
        },
        "changes[0].end",
    ),
    ({**command("x"), "effective_at": None}, "effective_at"),
    ({**command("x"), "effective_at": "next monday"}, "effective_at"),
    ({**command("x"), "callback_url": "ftp://example.com/x"}, "callback_url"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_a_bad_body_is_422_naming_the_field(
    pos: PosPlatform, http: httpx.Client, body: Any, field: str | None
) -> None:
    response = http.post("/v1/stores/S001/price-commands", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert response.json()["error"]
    assert pos.commands("S001") == []


def test_a_body_that_is_not_json_is_422(pos: PosPlatform, http: httpx.Client) -> None:
    response = http.post(
        "/v1/stores/S001/price-commands",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "not JSON" in response.json()["error"]
    assert pos.commands("S001") == []


def test_unknown_store_and_unknown_command_are_404(http: httpx.Client) -> None:
    assert http.post("/v1/stores/S999/price-commands", json=command("c")).status_code == 404
    assert http.get("/v1/stores/S999/prices").status_code == 404
    missing = http.get("/v1/stores/S001/price-commands/never-sent")
    assert missing.status_code == 404
    assert "never-sent" in missing.json()["error"]
    assert http.get("/_sim/stores/S999").status_code == 404
    assert http.get("/v2/nothing").status_code == 404


def test_admin_routes_change_knobs_and_show_commands(pos: PosPlatform, http: httpx.Client) -> None:
    changed = http.put("/_sim/stores/S005", json={"apply_delay_ms": 0, "reject_reason": "nope"})
    assert changed.status_code == 200
    assert changed.json()["knobs"]["apply_delay_ms"] == 0
    assert pos.knobs("S005").reject_reason == "nope"

    refused = http.put("/_sim/stores/S005", json={"reject_rate": 2})
    assert refused.status_code == 422
    assert refused.json()["field"] == "reject_rate"
    unknown = http.put("/_sim/fleet", json={"speed": 3})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "speed"
    assert pos.knobs("S001").reject_reason == "price below cost floor"  # fleet left as it was

    assert http.put("/_sim/fleet", json={"apply_delay_ms": 5}).status_code == 200
    assert {pos.knobs(s).apply_delay_ms for s in pos.store_ids()} == {5}

    http.post("/v1/stores/S005/price-commands", json=command("admin-1"))
    wait_for(lambda: settled(http, "S005", "admin-1"))
    view = http.get("/_sim/stores/S005").json()
    assert view["store_id"] == "S005"
    assert view["region"] == "north"
    assert view["online"] is True
    assert view["prices"]["MILK-1L"] == "1.49"
    [record] = view["commands"]
    assert record["command_id"] == "admin-1"
    assert record["apply_count"] == 1
    assert record["received_at"] <= record["applied_at"]


def test_stats_count_commands_duplicates_and_refusals(pos: PosPlatform, http: httpx.Client) -> None:
    pos.set_fleet(apply_delay_ms=0)
    pos.set_knobs("S002", reject_rate=1.0)
    pos.set_knobs("S003", online=False)
    with receiving() as receiver:
        for store_id in ("S001", "S002"):
            http.post(
                f"/v1/stores/{store_id}/price-commands", json=command("st-1", None, receiver.url)
            )
        http.post("/v1/stores/S001/price-commands", json=command("st-1", None, receiver.url))
        http.post("/v1/stores/S003/price-commands", json=command("st-1", None, receiver.url))
        http.get("/v1/stores/S003/prices")
        wait_for(lambda: pos.stats()["confirmations_sent"] == 2)
    stats = http.get("/_sim/stats").json()
    assert stats == {
        "stores": 8,
        "commands_received": 2,
        "commands_applied": 1,
        "commands_rejected": 1,
        "duplicates_absorbed": 1,
        "confirmations_sent": 2,
        "confirmations_failed": 0,
        "confirmations_lost": 0,
        "refused_offline": 2,
        "refused_busy": 0,
        "catalog_commands_received": 0,
        "catalog_commands_applied": 0,
        "catalog_commands_stale": 0,
        "catalog_items_refused": 0,
        "commands_pending": 0,
        "confirmations_in_flight": 0,
    }


def test_reset_goes_back_to_a_fresh_fleet(pos: PosPlatform, http: httpx.Client) -> None:
    pos.set_fleet(apply_delay_ms=0)
    pos.set_knobs("S006", online=False)
    http.post("/v1/stores/S001/price-commands", json=command("r-1"))
    wait_for(lambda: pos.prices("S001")["MILK-1L"] == Decimal("1.49"))
    assert http.post("/_sim/reset").json() == {"reset": True, "stores": 8}
    assert pos.prices("S001")["MILK-1L"] == Decimal("1.29")
    assert pos.commands("S001") == []
    assert pos.is_online("S006")
    assert pos.knobs("S001").apply_delay_ms == 50
    assert pos.stats()["commands_received"] == 0
