"""CatalogSync against the dev server, the Odoo emulator and the POS simulator's catalog API."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import odoorpc
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from simulators.odoo import OdooEmulator
from simulators.pos import PosPlatform
from simulators.sales import seed_catalogue
from tests.conftest import SECRET, odoo_rpc, running_worker, settings_for
from tests.workflows.helpers import eventually
from tests.workflows.test_cli import one_line_error, run_cli
from workflows.catalog_sync import (
    CatalogSync,
    CatalogSyncInput,
    CatalogSyncReport,
    SyncStatus,
    sync_workflow_id,
)


@pytest.fixture
def odoo_emulator(odoo_cost_model: str | None) -> Iterator[OdooEmulator]:
    """An emulator of each test's own: a sync publishes every product Odoo has, so on the
    session's shared one it would also carry what every earlier test created (hundreds of
    products, in whatever order the tests ran)."""
    emu = OdooEmulator(cost_model=odoo_cost_model)
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    yield emu
    emu.stop()


@pytest.fixture
def odoo(odoo_emulator: OdooEmulator) -> odoorpc.ODOO:
    return odoo_rpc(odoo_emulator)


@pytest.fixture
def fleet() -> Iterator[PosPlatform]:
    platform = PosPlatform(stores=3, secret=SECRET, platform_id="pos-main", seed=5)
    platform.start(port=0)
    yield platform
    platform.stop()


async def sync(client: Client, task_queue: str, **over: Any) -> CatalogSyncReport:
    """One sync, by default with no settle time (only its start second is read again), so a
    re-run a second later with nothing changed publishes nothing."""
    sid = f"t{uuid.uuid4().hex[:8]}"
    args = CatalogSyncInput(
        **{
            "sync_id": sid,
            "page_size": 100,
            "confirm_within": timedelta(seconds=6),
            "settle": timedelta(0),
            **over,
        }
    )
    return await client.execute_workflow(
        CatalogSync.run, args, id=sync_workflow_id(sid), task_queue=task_queue
    )


def product(odoo: odoorpc.ODOO, sku: str, **vals: Any) -> int:
    pid: int = odoo.execute_kw(
        "product.product", "create", [{"name": f"Item {sku}", "default_code": sku, **vals}]
    )
    return pid


async def test_catalog_reaches_stores_refusals_kept_offline_store_catches_up(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    fleet: PosPlatform,
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    tee = product(odoo, f"TEE-{tag}", list_price=12.5)
    bad = product(odoo, f"BAD-{tag}", barcode="1234567890123", list_price=3.0)
    gone = product(odoo, f"OLD-{tag}", list_price=1.0)
    s1, s2, s3 = sorted(fleet.store_ids())
    fleet.set_knobs(s3, online=False)
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    async with running_worker(client, settings):
        tq = settings.task_queue
        first = await sync(client, tq)
        assert first.status is SyncStatus.NEEDS_ATTENTION
        assert s3 in first.behind and first.caught_up == 2
        for store in (s1, s2):
            got = fleet.catalog(store)[f"TEE-{tag}"]
            assert got["price"] == "12.50" and got["odoo_id"] == tee
            assert got["tax_rates"] == ["15"] and got["currency"] == "USD"
            assert f"BAD-{tag}" not in fleet.catalog(store)
        # Read by both streams (its variant and its template were written): refused once each.
        refused = sorted((e.store_id, e.odoo_id) for e in first.exceptions if e.odoo_id == bad)
        assert refused == [(s1, bad), (s2, bad)]
        assert first.exception_count == len(first.exceptions)
        assert all(e.reason.startswith("bad barcode") for e in first.exceptions if e.odoo_id == bad)

        # Edited and archived in Odoo; the offline store comes back.
        odoo.execute_kw("product.product", "write", [[tee], {"list_price": 14.0}])
        odoo.execute_kw("product.product", "write", [[gone], {"active": False}])
        fleet.set_knobs(s3, online=True)
        second = await sync(client, tq)
        assert not second.behind and second.caught_up == 3
        for store in (s1, s2, s3):
            catalog = fleet.catalog(store)
            assert catalog[f"TEE-{tag}"]["price"] == "14.00"
            assert f"OLD-{tag}" not in catalog
        assert second.version is not None
        versions = {fleet.catalog_version(s)["version"] for s in (s1, s2, s3)}
        assert versions == {second.version}

        # Nothing changed since: once a sync has run a second after the writes (a sync
        # records nothing of its own start second as read: a record may be written twice in
        # one second), a re-run publishes nothing.
        await asyncio.sleep(1.1)
        await sync(client, tq)
        third = await sync(client, tq)
        assert third.commands_sent == 0 and third.upserts == 0 and not third.behind

        # Something a store holds that Odoo never had: only --full finds it.
        async with httpx.AsyncClient(base_url=fleet.url) as http:
            resp = await http.post(
                f"/v1/stores/{s1}/catalog-commands",
                json={
                    "command_id": f"stray-{tag}",
                    "version": fleet.catalog_version(s1)["version"],
                    "upserts": [
                        {
                            "sku": f"STRAY-{tag}",
                            "barcode": None,
                            "name": "stray",
                            "category": "All",
                            "attributes": {},
                            "price": "1.00",
                            "currency": "USD",
                            "tax_rates": [],
                            "odoo_id": 10**9,
                        }
                    ],
                    "withdrawals": [],
                },
            )
            assert resp.status_code in (200, 202), resp.text
        await eventually(
            lambda: asyncio.to_thread(fleet.catalog, s1), lambda c: f"STRAY-{tag}" in c
        )
        assert (await sync(client, tq)).commands_sent == 0
        full = await sync(client, tq, full=True, stores=[s1])
        assert f"STRAY-{tag}" not in fleet.catalog(s1) and full.withdrawals >= 1
        assert f"TEE-{tag}" in fleet.catalog(s1)


async def test_bad_input_is_refused_with_a_reason(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, fleet: PosPlatform
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    async with running_worker(client, settings):
        report = await sync(client, settings.task_queue, stores=["NOPE-1"])
        assert report.status is SyncStatus.REJECTED
        assert report.reasons and report.reasons[0].startswith("stores: ")


async def test_catalog_cli_sync_status_exceptions_and_refusals(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    fleet: PosPlatform,
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    bad = product(odoo, f"BADCLI-{tag}", barcode="1111111111111", list_price=2.0)
    s1 = sorted(fleet.store_ids())[0]
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}
    async with running_worker(client, settings):
        synced = await asyncio.to_thread(run_cli, ["catalog", "sync", "--stores", s1], env)
        status = await asyncio.to_thread(run_cli, ["catalog", "status"], env)
        refused = await asyncio.to_thread(run_cli, ["catalog", "exceptions"], env)
    bad_stores = await asyncio.to_thread(run_cli, ["catalog", "sync", "--stores", "A:B"], env)
    # Refused items: done, but exit 1 and the summary says where to look.
    assert synced.returncode == 1, synced.stderr
    assert "1 of 1 caught up" in synced.stdout and "retailflow catalog exceptions" in synced.stdout
    assert "CatalogSync" not in status.stderr and "NeedsAttention" in status.stdout
    line = next(ln for ln in refused.stdout.splitlines() if f"BADCLI-{tag}" in ln)
    assert line.startswith(f"{s1}\t") and f"\t{bad}\tbad barcode" in line
    assert "store id 'A:B'" in one_line_error(bad_stores)


async def test_a_long_sync_continues_as_new_with_its_cursor(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    fleet: PosPlatform,
) -> None:
    """Small pages and two pages a run: the first sync of empty stores reads the whole product
    master (seeded in one second: the cursor's seen ids carry a page boundary inside a second)
    across several continued runs, and every store ends with the same catalog."""
    tag = uuid.uuid4().hex[:6].upper()
    last = product(odoo, f"LAST-{tag}", list_price=4.0)
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    async with running_worker(client, settings):
        await asyncio.sleep(1.1)  # every write before the sync's start second
        report = await sync(client, settings.task_queue, page_size=5, pages_per_run=2)
        again = await sync(client, settings.task_queue, page_size=5, pages_per_run=2)
    # The templates stream's pages had nothing left to publish (the variants stream read every
    # product): the stores were still sent the version past them, so the next sync does not
    # read the templates again.
    s1, s2, s3 = sorted(fleet.store_ids())
    assert {fleet.catalog_version(s)["version"] for s in (s1, s2, s3)} == {report.version}
    assert "1970-01-01" not in (report.version or "").split("/")[2]
    # The seed wrote more products in one second than a version names: at each stream's end
    # the position moved to the next second, so nothing is read again.
    assert again.pages == 0 and again.commands_sent == 0
    # A run reads at most 2 pages: more means it continued as new, cursor and all.
    assert report.pages > 2 and not report.behind and report.caught_up == 3
    # Each product went out once.
    assert report.upserts < report.products_read
    catalogs = [fleet.catalog(s) for s in (s1, s2, s3)]
    assert catalogs[0] == catalogs[1] == catalogs[2]
    assert "MILK-1L" in catalogs[0] and catalogs[0][f"LAST-{tag}"]["odoo_id"] == last
    rows = odoo.execute_kw(
        "product.product",
        "search_read",
        [[("default_code", "!=", False)]],
        {"fields": ["default_code"]},
    )
    refused = {e.sku for e in report.exceptions if e.store_id == s1}
    # Every SKU Odoo has reached the stores, or was refused with a reason.
    missing = {r["default_code"] for r in rows} - catalogs[0].keys() - refused
    assert not missing


async def test_a_product_edited_during_the_sync_reaches_the_stores_in_that_run(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    fleet: PosPlatform,
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    pid = product(odoo, f"EDIT-{tag}", list_price=5.0)
    fleet.set_fleet(apply_delay_ms=300)  # pages take a while: time to edit in between
    s1 = sorted(fleet.store_ids())[0]
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    async with running_worker(client, settings):
        sid = f"t{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            CatalogSync.run,
            CatalogSyncInput(sync_id=sid, page_size=3, poll_every=timedelta(milliseconds=500)),
            id=sync_workflow_id(sid),
            task_queue=settings.task_queue,
        )
        # Published once at 5.00, then edited while the run still has pages to go.
        await eventually(
            lambda: asyncio.to_thread(fleet.catalog, s1),
            lambda c: f"EDIT-{tag}" in c,
            timeout=120,
        )
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        odoo.execute_kw("product.product", "write", [[pid], {"list_price": 7.0}])
        report = await handle.result()
    assert not report.behind
    for store in fleet.store_ids():
        assert fleet.catalog(store)[f"EDIT-{tag}"]["price"] == "7.00"


async def test_a_write_committed_late_within_the_settle_time_still_reaches_the_stores(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    fleet: PosPlatform,
) -> None:
    """PostgreSQL stamps write_date with the writing transaction's start: a write that commits
    after a sync has read past that second carries an earlier write_date than the cursor. The
    stores record versions capped at `now - settle`, so the next sync reads it."""
    tag = uuid.uuid4().hex[:6].upper()
    late = product(odoo, f"LATE-{tag}", list_price=2.0)
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    async with running_worker(client, settings):
        tq = settings.task_queue
        await sync(client, tq, settle=timedelta(seconds=60))
        # Written after the sync read, in a transaction that began 30 s before it.
        product(odoo, f"AFTER-{tag}", list_price=1.0)
        began = dt.datetime.now(dt.UTC).replace(tzinfo=None) - timedelta(seconds=30)
        odoo_emulator.database.clock = lambda: began
        try:
            odoo.execute_kw("product.product", "write", [[late], {"list_price": 3.0}])
        finally:
            odoo_emulator.database.clock = lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None)
        second = await sync(client, tq, settle=timedelta(seconds=60))
    assert not second.behind and second.caught_up == 3
    for store in fleet.store_ids():
        assert fleet.catalog(store)[f"LATE-{tag}"]["price"] == "3.00"
        assert f"AFTER-{tag}" in fleet.catalog(store)


async def test_a_store_past_the_horizon_of_a_later_sync_still_applies_its_pages(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    fleet: PosPlatform,
) -> None:
    """A sync with no settle time puts the stores at the newest write; a later sync with one
    must not send them an older version (the store would ignore the command as stale)."""
    tag = uuid.uuid4().hex[:6].upper()
    pid = product(odoo, f"NOW-{tag}", list_price=2.0)
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    async with running_worker(client, settings):
        tq = settings.task_queue
        first = await sync(client, tq, settle=timedelta(0))
        odoo.execute_kw("product.product", "write", [[pid], {"list_price": 2.5}])
        second = await sync(client, tq, settle=timedelta(minutes=10))
    assert first.version is not None and second.version is not None
    assert not second.behind and second.caught_up == 3
    for store in fleet.store_ids():
        assert fleet.catalog(store)[f"NOW-{tag}"]["price"] == "2.50"
        # The store kept the later version it held.
        assert fleet.catalog_version(store)["version"] >= first.version


def attribute(odoo: odoorpc.ODOO, name: str, values: list[str]) -> list[int]:
    """An attribute with its values: [attribute id, value ids...]."""
    aid = int(
        odoo.env["product.attribute"].create(
            {"name": name, "value_ids": [(0, 0, {"name": v}) for v in values]}
        )
    )
    [row] = odoo.execute_kw("product.attribute", "read", [[aid], ["value_ids"]])
    return [aid, *row["value_ids"]]


async def test_variants_reach_stores_with_attributes_and_prices_and_a_removed_value_withdraws(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    fleet: PosPlatform,
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    colour = attribute(odoo, f"Colour {tag}", ["Red", "Blue"])
    size = attribute(odoo, f"Size {tag}", ["S", "L"])
    tmpl = odoo.execute_kw(
        "product.template",
        "create",
        [
            {
                "name": f"Shirt {tag}",
                "list_price": 20.0,
                "type": "product",
                "attribute_line_ids": [
                    (0, 0, {"attribute_id": colour[0], "value_ids": [(6, 0, colour[1:])]}),
                    (0, 0, {"attribute_id": size[0], "value_ids": [(6, 0, size[1:])]}),
                ],
            }
        ],
    )
    extras = {"Red": 2.0, "L": 1.5}
    for ptav in odoo.execute_kw(
        "product.template.attribute.value",
        "search_read",
        [[("product_tmpl_id", "=", tmpl)]],
        {"fields": ["name"]},
    ):
        if ptav["name"] in extras:
            odoo.execute_kw(
                "product.template.attribute.value",
                "write",
                [[ptav["id"]], {"price_extra": extras[ptav["name"]]}],
            )
    # Variants made from attribute lines have no internal reference of their own yet.
    sku_of: dict[int, str] = {}
    for v in odoo.execute_kw(
        "product.product",
        "search_read",
        [[("product_tmpl_id", "=", tmpl)]],
        {"fields": ["display_name"]},
    ):
        label = v["display_name"].split("(")[1].rstrip(")").replace(", ", "-").upper()
        sku_of[v["id"]] = f"SHIRT-{tag}-{label}"
        odoo.execute_kw("product.product", "write", [[v["id"]], {"default_code": sku_of[v["id"]]}])
    assert len(sku_of) == 4
    by_label = {
        sku.rsplit("-", 2)[-2] + "-" + sku.rsplit("-", 1)[-1]: pid for pid, sku in sku_of.items()
    }
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    async with running_worker(client, settings):
        tq = settings.task_queue
        first = await sync(client, tq)
        assert first.status is SyncStatus.COMPLETED, first.exceptions
        expected = {
            f"SHIRT-{tag}-RED-S": ({"Red", "S"}, "22.00"),
            f"SHIRT-{tag}-RED-L": ({"Red", "L"}, "23.50"),
            f"SHIRT-{tag}-BLUE-S": ({"Blue", "S"}, "20.00"),
            f"SHIRT-{tag}-BLUE-L": ({"Blue", "L"}, "21.50"),
        }
        for store in fleet.store_ids():
            catalog = fleet.catalog(store)
            shirts = {sku: item for sku, item in catalog.items() if sku.startswith(f"SHIRT-{tag}")}
            assert set(shirts) == set(expected)
            for sku, (values, price) in expected.items():
                item = shirts[sku]
                assert item["attributes"] == {
                    f"Colour {tag}": next(v for v in values if v in ("Red", "Blue")),
                    f"Size {tag}": next(v for v in values if v in ("S", "L")),
                }
                assert item["price"] == price
                assert item["name"] == f"Shirt {tag}"

        # Red costs more: Odoo writes only the attribute value (no variant's or template's
        # write_date moves), and the values' stream carries it to the stores.
        [red] = odoo.execute_kw(
            "product.template.attribute.value",
            "search",
            [[("product_tmpl_id", "=", tmpl), ("name", "=", "Red")]],
        )
        odoo.execute_kw("product.template.attribute.value", "write", [[red], {"price_extra": 3.0}])
        repriced = await sync(client, tq)
        assert repriced.status is SyncStatus.COMPLETED and not repriced.behind
        for store in fleet.store_ids():
            catalog = fleet.catalog(store)
            assert catalog[f"SHIRT-{tag}-RED-S"]["price"] == "23.00"
            assert catalog[f"SHIRT-{tag}-RED-L"]["price"] == "24.50"
            assert catalog[f"SHIRT-{tag}-BLUE-L"]["price"] == "21.50"
            assert fleet.catalog_version(store)["version"].startswith("v2/")

        # Blue is taken off the template: (Blue, S) has stock, so Odoo archives it (the
        # incremental sync withdraws it); (Blue, L) is deleted (only --full finds it gone).
        odoo.env["stock.quant"].create(
            {"product_id": by_label["BLUE-S"], "location_id": 8, "quantity": 2}
        )
        [colour_line] = odoo.env["product.template.attribute.line"].search(
            [("product_tmpl_id", "=", tmpl), ("attribute_id", "=", colour[0])]
        )
        odoo.execute_kw(
            "product.template",
            "write",
            [[tmpl], {"attribute_line_ids": [(1, colour_line, {"value_ids": [(3, colour[2])]})]}],
        )
        second = await sync(client, tq)
        assert not second.behind
        for store in fleet.store_ids():
            catalog = fleet.catalog(store)
            assert f"SHIRT-{tag}-BLUE-S" not in catalog
            assert f"SHIRT-{tag}-RED-L" in catalog
        await sync(client, tq, full=True)
        for store in fleet.store_ids():
            left = {sku for sku in fleet.catalog(store) if sku.startswith(f"SHIRT-{tag}")}
            assert left == {f"SHIRT-{tag}-RED-S", f"SHIRT-{tag}-RED-L"}


async def test_a_product_goes_out_once_per_sync_and_a_template_only_change_still_does(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    fleet: PosPlatform,
) -> None:
    """A new product's variant and template are written together: the templates stream leaves
    out what the variants stream already read, so each product is published once. A price
    changed on the template alone leaves the variant's write_date as it was: the templates
    stream sends it."""
    tag = uuid.uuid4().hex[:6].upper()
    pid = product(odoo, f"ONCE-{tag}", list_price=3.0)
    settings = settings_for(odoo_emulator, temporal_address, pos_url=fleet.url)
    async with running_worker(client, settings):
        tq = settings.task_queue
        # Written before the sync's start second (a record written in that second may be
        # written again after the variants stream read it: the templates stream sends it too).
        await asyncio.sleep(1.1)
        first = await sync(client, tq)
        rows = odoo.execute_kw(
            "product.product",
            "search_read",
            [[("default_code", "!=", False)]],
            {"fields": ["active"], "context": {"active_test": False}},
        )
        assert first.upserts == sum(1 for r in rows if r["active"])
        assert first.products_read > first.upserts  # both streams read them
        await asyncio.sleep(1.1)  # the template written in a later second than the variant
        [row] = odoo.execute_kw("product.product", "read", [[pid], ["product_tmpl_id"]])
        tmpl = row["product_tmpl_id"][0]
        odoo.execute_kw("product.template", "write", [[tmpl], {"list_price": 4.0}])
        second = await sync(client, tq)
    assert not second.behind and second.upserts >= 1
    for store in fleet.store_ids():
        assert fleet.catalog(store)[f"ONCE-{tag}"]["price"] == "4.00"
