"""The POS platform's catalog API over HTTP (and through ``PosClient``): versioned upserts and
withdrawals per store, idempotent by command id, per-item refusals, stale commands, offline
stores, malformed bodies, and the catalog kept across a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.pos_client import PosClient, PosSettings
from simulators.pos import PosPlatform
from simulators.pos.catalog import barcode_problem

from .conftest_pos import running_platform, wait_for

EAN13, UPCA, EAN8 = "4006381333931", "036000291452", "96385074"


@pytest.fixture
def pos() -> Iterator[PosPlatform]:
    with running_platform(stores=4) as platform:
        platform.set_fleet(apply_delay_ms=0)
        yield platform


@pytest.fixture
def http(pos: PosPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pos.url, timeout=10) as client:
        yield client


def item(
    odoo_id: int, sku: str, barcode: str | None = None, price: str = "12.50"
) -> dict[str, Any]:
    return {
        "sku": sku,
        "barcode": barcode,
        "name": f"Product {sku}",
        "category": "All / Saleable / PoS",
        "attributes": {"Color": "Red"} if odoo_id % 2 else {},
        "price": price,
        "currency": "USD",
        "tax_rates": ["15"],
        "odoo_id": odoo_id,
    }


def body(
    command_id: str,
    version: str,
    upserts: list[dict[str, Any]] | None = None,
    withdrawals: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "command_id": command_id,
        "version": version,
        "upserts": upserts or [],
        "withdrawals": withdrawals or [],
    }


def send(http: httpx.Client, store: str, payload: Any) -> httpx.Response:
    return http.post(f"/v1/stores/{store}/catalog-commands", json=payload)


def settled(http: httpx.Client, store: str, command_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status: dict[str, Any] = http.get(
            f"/v1/stores/{store}/catalog-commands/{command_id}"
        ).json()
        return status if status["state"] != "received" else None

    result: dict[str, Any] = wait_for(done)
    return result


def test_barcode_check_digits() -> None:
    assert barcode_problem(EAN13) is None
    assert barcode_problem(UPCA) is None
    assert barcode_problem(EAN8) is None
    assert barcode_problem("4006381333932") == "bad barcode: '4006381333932' fails its check digit"
    assert barcode_problem("12345") == "bad barcode: '12345' is not 8, 12 or 13 digits"
    assert barcode_problem("40063813339３1") is not None  # a non-ASCII digit


def test_a_command_is_applied_once_and_a_repeat_gets_the_same_answer(
    pos: PosPlatform, http: httpx.Client
) -> None:
    payload = body("c1", "v001", [item(1, "SKU-1", EAN13), item(2, "SKU-2", UPCA)])
    first = send(http, "S001", payload)
    assert first.status_code == 202, first.text
    assert first.json() == {"command_id": "c1", "state": "received", "version": "v001"}
    status = settled(http, "S001", "c1")
    assert status == {
        "command_id": "c1",
        "state": "applied",
        "version": "v001",
        "applied": 2,
        "refused": [],
    }
    repeat = send(http, "S001", payload)
    assert repeat.status_code == 200
    assert repeat.json() == {"command_id": "c1", "state": "applied", "version": "v001"}
    assert pos.stats()["catalog_commands_received"] == 1
    assert pos.catalog("S001")["SKU-1"] == item(1, "SKU-1", EAN13)
    assert pos.catalog("S002") == {}  # per store
    version = http.get("/v1/stores/S001/catalog/version").json()
    assert version == {"store_id": "S001", "version": "v001", "count": 2}


def test_another_body_under_a_used_command_id_is_a_conflict(http: httpx.Client) -> None:
    assert send(http, "S001", body("c1", "v001", [item(1, "SKU-1")])).status_code == 202
    conflict = send(http, "S001", body("c1", "v001", [item(1, "SKU-1", price="9.99")]))
    assert conflict.status_code == 409
    assert "c1" in conflict.json()["error"]
    # Another store may use the same command id.
    assert (
        send(http, "S002", body("c1", "v001", [item(1, "SKU-1", price="9.99")])).status_code == 202
    )


def test_bad_barcodes_and_duplicate_skus_are_refused_item_by_item(
    pos: PosPlatform, http: httpx.Client
) -> None:
    send(http, "S001", body("c1", "v001", [item(1, "SKU-1")]))
    settled(http, "S001", "c1")
    upserts = [
        item(2, "SKU-2", "4006381333932"),  # wrong check digit
        item(3, "SKU-1"),  # SKU-1 is product 1's
        item(4, "SKU-4", EAN8),
        item(5, "SKU-4"),  # taken by product 4 earlier in this command
    ]
    send(http, "S001", body("c2", "v002", upserts))
    status = settled(http, "S001", "c2")
    assert status["state"] == "applied"
    assert status["applied"] == 1
    assert status["refused"] == [
        {
            "sku": "SKU-2",
            "odoo_id": 2,
            "reason": "bad barcode: '4006381333932' fails its check digit",
        },
        {"sku": "SKU-1", "odoo_id": 3, "reason": "duplicate SKU: SKU-1 is held by product 1"},
        {"sku": "SKU-4", "odoo_id": 5, "reason": "duplicate SKU: SKU-4 is held by product 4"},
    ]
    catalog = pos.catalog("S001")
    assert sorted(catalog) == ["SKU-1", "SKU-4"]
    assert catalog["SKU-1"]["odoo_id"] == 1
    assert pos.stats()["catalog_items_refused"] == 3


def test_withdrawals_remove_items_and_unknown_ones_are_no_ops(
    pos: PosPlatform, http: httpx.Client
) -> None:
    send(http, "S001", body("c1", "v001", [item(1, "SKU-1"), item(2, "SKU-2")]))
    settled(http, "S001", "c1")
    withdrawals = [{"sku": "SKU-1", "odoo_id": 1}, {"sku": "NOPE", "odoo_id": 99}]
    # Product 3 takes over SKU-1 in the same command: the withdrawal goes first.
    send(http, "S001", body("c2", "v002", [item(3, "SKU-1")], withdrawals))
    status = settled(http, "S001", "c2")
    assert status["refused"] == []
    assert status["applied"] == 2
    catalog = pos.catalog("S001")
    assert {sku: i["odoo_id"] for sku, i in catalog.items()} == {"SKU-1": 3, "SKU-2": 2}


def test_a_product_whose_sku_changed_is_moved_not_duplicated(
    pos: PosPlatform, http: httpx.Client
) -> None:
    send(http, "S001", body("c1", "v001", [item(1, "OLD")]))
    settled(http, "S001", "c1")
    send(http, "S001", body("c2", "v002", [item(1, "NEW")]))
    settled(http, "S001", "c2")
    assert list(pos.catalog("S001")) == ["NEW"]


def test_an_older_command_is_acknowledged_and_ignored_as_stale(
    pos: PosPlatform, http: httpx.Client
) -> None:
    send(http, "S001", body("new", "2025-01-02 00:00:00|7", [item(1, "SKU-1", price="2.00")]))
    settled(http, "S001", "new")
    old = send(http, "S001", body("old", "2025-01-01 00:00:00|9", [item(1, "SKU-1", price="1.00")]))
    assert old.status_code == 202
    status = settled(http, "S001", "old")
    assert status["state"] == "stale"
    assert status["applied"] == 0
    assert pos.catalog("S001")["SKU-1"]["price"] == "2.00"
    version = http.get("/v1/stores/S001/catalog/version").json()
    assert version["version"] == "2025-01-02 00:00:00|7"
    # The same version again applies its items (a resend under a new id) and keeps the version.
    send(http, "S001", body("same", "2025-01-02 00:00:00|7", [item(2, "SKU-2")]))
    assert settled(http, "S001", "same")["state"] == "applied"
    assert sorted(pos.catalog("S001")) == ["SKU-1", "SKU-2"]


def test_an_offline_store_refuses_and_a_store_going_offline_applies_when_back(
    pos: PosPlatform, http: httpx.Client
) -> None:
    pos.set_knobs("S003", online=False)
    refused = send(http, "S003", body("c1", "v001", [item(1, "SKU-1")]))
    assert refused.status_code == 504
    assert http.get("/v1/stores/S003/catalog/version").status_code == 504
    pos.set_knobs("S003", online=True)
    assert http.get("/v1/stores/S003/catalog-commands/c1").status_code == 404  # nothing kept
    # Accepted, then offline before it applies: it waits and applies once the store is back.
    pos.set_knobs("S003", apply_delay_ms=200)
    assert send(http, "S003", body("c2", "v002", [item(1, "SKU-1")])).status_code == 202
    pos.set_knobs("S003", online=False)
    wait_for(lambda: pos.store("S003")["waiting_to_apply"] == 1)
    assert pos.catalog("S003") == {}
    pos.set_knobs("S003", online=True)
    assert settled(http, "S003", "c2")["state"] == "applied"
    assert list(pos.catalog("S003")) == ["SKU-1"]


def test_a_busy_store_answers_503_with_retry_after(pos: PosPlatform, http: httpx.Client) -> None:
    pos.set_knobs("S001", busy_next=1, busy_status=503)
    busy = send(http, "S001", body("c1", "v001", [item(1, "SKU-1")]))
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    assert send(http, "S001", body("c1", "v001", [item(1, "SKU-1")])).status_code == 202


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ([1, 2], "body: must be a JSON object"),
        ({"version": "v1"}, "command_id: must be a string"),
        ({"command_id": "x" * 201, "version": "v1"}, "command_id: must be 1..200 characters"),
        ({"command_id": "c", "version": ""}, "version: must be 1..200 characters"),
        ({"command_id": "c", "version": "v", "upserts": {}}, "upserts: must be a list"),
        (
            {"command_id": "c", "version": "v", "upserts": [{**item(1, "S"), "price": 12.5}]},
            'upserts[0].price: must be a decimal string such as "12.50"',
        ),
        (
            {"command_id": "c", "version": "v", "upserts": [{**item(1, "S"), "sku": "x" * 65}]},
            "upserts[0].sku: must be 1..64 characters",
        ),
        (
            {"command_id": "c", "version": "v", "upserts": [{**item(1, "S"), "odoo_id": "1"}]},
            "upserts[0].odoo_id: must be a positive integer",
        ),
        (
            {"command_id": "c", "version": "v", "withdrawals": [{"sku": "S"}]},
            "withdrawals[0].odoo_id: must be a positive integer",
        ),
    ],
)
def test_a_malformed_body_is_refused_with_400_naming_the_field(
    http: httpx.Client, payload: Any, error: str
) -> None:
    response = send(http, "S001", payload)
    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_a_body_that_is_not_json_is_refused_with_400(http: httpx.Client) -> None:
    response = http.post("/v1/stores/S001/catalog-commands", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["error"].startswith("body: not JSON")


def test_unknown_store_and_command_are_404(http: httpx.Client) -> None:
    assert send(http, "S999", body("c1", "v1")).status_code == 404
    assert http.get("/v1/stores/S001/catalog-commands/none").status_code == 404


def test_the_catalog_is_read_in_pages_by_sku(pos: PosPlatform, http: httpx.Client) -> None:
    upserts = [item(n, f"SKU-{n:03d}") for n in range(1, 8)]
    send(http, "S001", body("c1", "v001", upserts))
    settled(http, "S001", "c1")
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if after is not None:
            params["after_sku"] = after
        page = http.get("/v1/stores/S001/catalog", params=params).json()
        assert page["version"] == "v001" and page["count"] == 7
        seen.extend(i["sku"] for i in page["items"])
        after = page["next_after_sku"]
        if after is None:
            break
    assert seen == [f"SKU-{n:03d}" for n in range(1, 8)]
    bad = http.get("/v1/stores/S001/catalog", params={"limit": "0"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "limit: must be a whole number from 1 to 1000"}


def test_catalogs_versions_and_commands_survive_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "pos.sqlite")
    with running_platform(stores=2, db_path=db) as pos:
        pos.set_fleet(apply_delay_ms=0)
        with httpx.Client(base_url=pos.url, timeout=10) as http:
            send(http, "S001", body("c1", "v001", [item(1, "SKU-1"), item(2, "SKU-2")]))
            settled(http, "S001", "c1")
            send(http, "S001", body("c2", "v002", [], [{"sku": "SKU-2", "odoo_id": 2}]))
            settled(http, "S001", "c2")
            pos.set_knobs("S002", online=False)
            pos.set_knobs("S002", apply_delay_ms=0)
        pos.database.wait()
    with running_platform(stores=2, db_path=db) as pos:
        assert list(pos.catalog("S001")) == ["SKU-1"]
        with httpx.Client(base_url=pos.url, timeout=10) as http:
            assert http.get("/v1/stores/S001/catalog/version").json()["version"] == "v002"
            assert settled(http, "S001", "c1")["applied"] == 2
            repeat = send(http, "S001", body("c1", "v001", [item(1, "SKU-1"), item(2, "SKU-2")]))
            assert repeat.status_code == 200
            assert repeat.json()["state"] == "applied"
            conflict = send(http, "S001", body("c1", "v001", [item(1, "SKU-1")]))
            assert conflict.status_code == 409


def test_a_received_command_is_applied_after_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "pos.sqlite")
    with running_platform(stores=2, db_path=db) as pos:
        pos.set_knobs("S001", apply_delay_ms=60_000)
        with httpx.Client(base_url=pos.url, timeout=10) as http:
            assert send(http, "S001", body("c1", "v001", [item(1, "SKU-1")])).status_code == 202
        assert pos.catalog("S001") == {}
    with running_platform(stores=2, db_path=db) as pos:
        with httpx.Client(base_url=pos.url, timeout=10) as http:
            assert settled(http, "S001", "c1")["state"] == "applied"
        assert list(pos.catalog("S001")) == ["SKU-1"]


async def test_the_pos_client_sends_and_reads_the_catalog(pos: PosPlatform) -> None:
    client = PosClient(PosSettings(url=pos.url))
    try:
        payload = body("c1", "v001", [item(1, "SKU-1", EAN13), item(2, "SKU-2", "123")])
        answer = await client.send_catalog_command("S001", payload)
        assert answer == {"command_id": "c1", "state": "received", "version": "v001"}
        assert await client.send_catalog_command("S001", payload) in (
            {"command_id": "c1", "state": "received", "version": "v001"},
            {"command_id": "c1", "state": "applied", "version": "v001"},
        )
        status = await client.catalog_command_status("S001", "c1")
        while status["state"] == "received":
            status = await client.catalog_command_status("S001", "c1")
        assert status["refused"] == [
            {"sku": "SKU-2", "odoo_id": 2, "reason": "bad barcode: '123' is not 8, 12 or 13 digits"}
        ]
        assert await client.catalog_version("S001") == {
            "store_id": "S001",
            "version": "v001",
            "count": 1,
        }
        page = await client.catalog_page("S001", after_sku=None, limit=10)
        assert [i["sku"] for i in page["items"]] == ["SKU-1"]
        assert page["next_after_sku"] is None
        assert (await client.catalog_page("S001", after_sku="SKU-1"))["items"] == []
        with pytest.raises(ApplicationError) as refused:
            await client.send_catalog_command("S001", {**payload, "version": "v002"})
        assert refused.value.type == "PosRefused" and "409" in str(refused.value)
        with pytest.raises(ApplicationError) as unknown:
            await client.catalog_command_status("S001", "nope")
        assert unknown.value.type == "PosNotFound"
    finally:
        await client.aclose()


def test_a_reset_empties_the_catalogs(pos: PosPlatform, http: httpx.Client) -> None:
    send(http, "S001", body("c1", "v001", [item(1, "SKU-1")]))
    settled(http, "S001", "c1")
    pos.reset()
    assert pos.catalog("S001") == {}
    assert http.get("/v1/stores/S001/catalog/version").json()["version"] is None
    assert http.get("/v1/stores/S001/catalog-commands/c1").status_code == 404
