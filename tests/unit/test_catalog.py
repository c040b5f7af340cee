"""The catalog's pure parts: the write_date cursor, versions, mapping and the --full diff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.catalog import (
    EPOCH,
    BadVersion,
    CatalogCursor,
    Cursor,
    cursor_of_version,
    earliest,
    horizon_of,
    map_products,
    money,
    next_second,
    percent,
    withdrawals_for,
)


@dataclass
class Rec:
    id: int
    at: str  # stored with microseconds, as Odoo 17 stores write_date


class MicrosecondOdoo:
    """What matters of Odoo here: stores microseconds, returns seconds, compares the stored
    value, orders `write_date asc, id asc`."""

    def __init__(self) -> None:
        self.recs: dict[int, Rec] = {}

    def write(self, rid: int, at: str) -> None:
        self.recs[rid] = Rec(rid, at)

    def page(self, cursor: Cursor, limit: int) -> list[dict[str, Any]]:
        rows = [r for r in self.recs.values() if matches(cursor.domain(), r)]
        rows.sort(key=lambda r: (r.at, r.id))
        return [{"id": r.id, "write_date": r.at[:19]} for r in rows[:limit]]


def matches(domain: list[Any], rec: Rec) -> bool:
    """Odoo's prefix-notation domain over `write_date` (compared with the stored value) and
    `id`, with '|' and '&' (an implicit '&' between the rest)."""

    def leaf(term: tuple[str, str, Any]) -> bool:
        field, op, value = term
        got = rec.at if field == "write_date" else rec.id
        return {
            ">=": lambda: got >= value,
            "not in": lambda: got not in value,
        }[op]()

    def take(i: int) -> tuple[bool, int]:
        term = domain[i]
        if term in ("|", "&"):
            a, j = take(i + 1)
            b, k = take(j)
            return (a or b) if term == "|" else (a and b), k
        return leaf(term), i + 1

    ok, i = True, 0
    while i < len(domain):
        got, i = take(i)
        ok = ok and got
    return ok


def drain(odoo: MicrosecondOdoo, cursor: Cursor, limit: int) -> tuple[Cursor, list[int]]:
    got: list[int] = []
    while True:
        page = odoo.page(cursor, limit)
        if not page:
            return cursor, got
        got.extend(r["id"] for r in cursor.fresh(page))
        cursor = cursor.advance(page)


def test_same_second_writes_are_never_skipped_across_pages() -> None:
    odoo = MicrosecondOdoo()
    # Ids out of microsecond order inside one second: `id > last` would skip 2 and 3.
    odoo.write(5, "2026-01-01 10:00:00.100000")
    odoo.write(2, "2026-01-01 10:00:00.200000")
    odoo.write(9, "2026-01-01 10:00:00.300000")
    odoo.write(3, "2026-01-01 10:00:00.400000")
    odoo.write(7, "2026-01-01 10:00:01.000001")
    cursor, got = drain(odoo, Cursor(), limit=2)
    assert sorted(got) == [2, 3, 5, 7, 9]
    assert cursor.stamp == "2026-01-01 10:00:01" and cursor.seen == [7]
    # Written later in a second already partly read: found on the next run.
    odoo.write(1, "2026-01-01 10:00:01.500000")
    cursor, got = drain(odoo, cursor, limit=2)
    assert got == [1]
    assert drain(odoo, cursor, limit=2)[1] == []


def test_a_record_edited_during_the_sync_comes_back() -> None:
    odoo = MicrosecondOdoo()
    for i in range(1, 7):
        odoo.write(i, f"2026-01-01 10:00:0{i}.000000")
    cursor = Cursor()
    page = odoo.page(cursor, 3)
    cursor = cursor.advance(page)
    odoo.write(1, "2026-01-01 10:00:09.000000")  # already read, edited mid-sync
    odoo.write(5, "2026-01-01 10:00:09.500000")  # not read yet, edited mid-sync
    cursor, got = drain(odoo, cursor, limit=3)
    assert sorted(got) == [1, 4, 5, 6]


def test_a_record_seen_then_written_in_a_later_second_comes_back() -> None:
    """The cursor keeps the ids seen in its second: a record among them written again in a
    later second, with nothing else written since, is not skipped."""
    odoo = MicrosecondOdoo()
    odoo.write(1, "2026-01-01 10:00:00.100000")
    odoo.write(2, "2026-01-01 10:00:00.200000")
    cursor, got = drain(odoo, Cursor(), limit=5)
    assert sorted(got) == [1, 2] and cursor.seen == [1, 2]
    odoo.write(1, "2026-01-01 10:00:03.000000")
    cursor, got = drain(odoo, cursor, limit=5)
    assert got == [1] and cursor == Cursor(stamp="2026-01-01 10:00:03", seen=[1])
    assert next_second("2026-12-31 23:59:59") == "2027-01-01 00:00:00"


def test_a_page_of_only_one_second_moves_on() -> None:
    odoo = MicrosecondOdoo()
    for i in range(1, 11):
        odoo.write(i, f"2026-01-01 10:00:00.{i:06d}")
    cursor, got = drain(odoo, Cursor(), limit=3)
    assert sorted(got) == list(range(1, 11)) and len(cursor.seen) == 10


def test_versions_sort_in_sync_order_and_round_trip() -> None:
    a = CatalogCursor()
    b = CatalogCursor(variants=Cursor(stamp="2026-01-01 10:00:00", seen=[3]))
    c = CatalogCursor(variants=Cursor(stamp="2026-01-01 10:00:00", seen=[3, 4]))
    d = CatalogCursor(
        variants=Cursor(stamp="2026-01-01 10:00:00", seen=[3, 4]),
        templates=Cursor(stamp="2026-01-01 09:00:00", seen=[1]),
    )
    e = CatalogCursor(variants=Cursor(stamp="2026-01-02 00:00:00", seen=[1]))
    versions = [x.version() for x in (a, b, c, d, e)]
    assert versions == sorted(versions) and len(set(versions)) == 5
    back = cursor_of_version(d.version())
    assert back.variants.stamp == "2026-01-01 10:00:00" and back.variants.seen == [3, 4]
    assert back.templates.stamp == "2026-01-01 09:00:00" and back.templates.seen == [1]
    # A bulk import's second: its ids are only counted, and that second is read again.
    bulk = CatalogCursor(variants=Cursor(stamp="2026-01-01 10:00:00", seen=list(range(1, 50))))
    assert cursor_of_version(bulk.version()).variants == Cursor(stamp="2026-01-01 10:00:00")
    assert bulk.version() > c.version()
    assert cursor_of_version(None) == CatalogCursor()
    assert earliest([e, b, d]) == b and earliest([]) is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "7",
        "v1/x/y",
        "v2/a#1/b#1",
        "v1/2026-01-01 10:00:00#/x#1",
        "v1/2026-01-01 10:00:00#0000002+1/1970-01-01 00:00:00#0000000",
    ],
)
def test_a_version_this_sync_never_made_is_refused(bad: str) -> None:
    with pytest.raises(BadVersion, match="version: "):
        cursor_of_version(bad)


def row(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": 11,
        "default_code": "TEE-RED-M",
        "barcode": "4006381333931",
        "name": "T-shirt",
        "categ_id": [4, "All / Saleable / PoS"],
        "list_price": 12.5,
        "taxes_id": [1],
        "active": True,
        "product_template_attribute_value_ids": [21, 22],
        "write_date": "2026-01-01 10:00:00",
    }
    r.update(over)
    return r


def mapped(*rows: dict[str, Any]) -> Any:
    return map_products(
        rows,
        tax_rates={1: "15"},
        categories={4: "All / Saleable / PoS"},
        attribute_values={21: ("Color", "Red"), 22: ("Size", "M"), 23: ("Color", "Blue")},
        currency="USD",
    )


def test_products_map_to_pos_items() -> None:
    page = mapped(
        row(),
        row(
            id=12,
            default_code="MUG",
            barcode=False,
            taxes_id=[],
            **{"product_template_attribute_value_ids": []},
        ),
    )
    one, two = page.upserts
    assert one.model_dump() == {
        "sku": "TEE-RED-M",
        "barcode": "4006381333931",
        "name": "T-shirt",
        "category": "All / Saleable / PoS",
        "attributes": {"Color": "Red", "Size": "M"},
        "price": "12.50",
        "currency": "USD",
        "tax_rates": ["15"],
        "odoo_id": 11,
    }
    assert two.barcode is None and two.attributes == {} and two.tax_rates == []
    assert page.withdrawals == [] and page.unpublishable == []


def test_archived_products_are_withdrawn_and_skuless_ones_reported() -> None:
    page = mapped(row(active=False), row(id=13, default_code=False), row(id=14, list_price=None))
    assert [(w.sku, w.odoo_id) for w in page.withdrawals] == [("TEE-RED-M", 11)]
    assert [(u.odoo_id, u.reason.split(":")[0]) for u in page.unpublishable] == [
        (13, "sku"),
        (14, "price"),
    ]
    assert page.upserts == []


def test_a_variant_is_priced_at_its_lst_price_with_its_attributes() -> None:
    """The variant's price is list price plus its values' extras (`lst_price`); its
    attributes map attribute name -> value name; ids the page did not read are left out."""
    page = mapped(
        row(list_price=20.0, lst_price=25.5),
        row(
            id=12,
            default_code="TEE-BLUE-M",
            list_price=20.0,
            lst_price=20.0,
            product_template_attribute_value_ids=[23, 22, 99],
        ),
        row(
            id=13,
            default_code="TEE-OLD",
            lst_price=False,
            list_price=9.0,
            product_template_attribute_value_ids=False,
        ),
    )
    red, blue, old = page.upserts
    assert (red.price, red.attributes) == ("25.50", {"Color": "Red", "Size": "M"})
    assert (blue.price, blue.attributes) == ("20.00", {"Color": "Blue", "Size": "M"})
    assert (old.price, old.attributes) == ("9.00", {})


def test_rates_and_prices_as_strings() -> None:
    assert percent(15.0) == "15" and percent(7.25) == "7.25" and percent("x") is None
    assert money(12.5) == "12.50" and money(None) is None and money(True) is None


def test_full_sync_withdraws_what_odoo_no_longer_has_or_archived() -> None:
    store = [
        {"sku": "A", "odoo_id": 1},
        {"sku": "B", "odoo_id": 2},
        {"sku": "C", "odoo_id": 3},
        {"sku": "junk"},
    ]
    out = withdrawals_for(store, {1: True, 2: False})
    assert [(w.sku, w.odoo_id) for w in out] == [("B", 2), ("C", 3)]


def test_epoch_cursor_reads_everything() -> None:
    assert Cursor().domain() == [("write_date", ">=", EPOCH)]


def test_a_position_past_the_horizon_is_recorded_at_the_horizon() -> None:
    """What was read at or after the horizon is not recorded as seen: the next sync reads it
    again, and with it a write that committed late with an earlier write_date."""
    horizon = "2026-03-01 10:00:00"
    before = Cursor(stamp="2026-03-01 09:59:59", seen=[4, 5])
    at = Cursor(stamp=horizon, seen=[7])
    after = Cursor(stamp="2026-03-01 10:02:00", seen=[9])
    assert before.capped(horizon) == before
    assert at.capped(horizon) == Cursor(stamp=horizon, seen=[])
    assert after.capped(horizon) == Cursor(stamp=horizon, seen=[])
    both = CatalogCursor(variants=after, templates=before)
    capped = both.capped(horizon)
    assert capped == CatalogCursor(variants=Cursor(stamp=horizon), templates=before)
    assert both.capped(None) == both
    # A capped version sorts before the uncapped one and reads the horizon's second again.
    assert capped.version() < both.version()
    assert cursor_of_version(capped.version()).variants == Cursor(stamp=horizon)


def test_the_horizon_is_now_less_the_settle_time_in_odoo_utc_seconds() -> None:
    now = datetime(2026, 3, 1, 12, 0, 30, 900_000, tzinfo=timezone(timedelta(hours=2)))
    assert horizon_of(now, timedelta(seconds=120)) == "2026-03-01 09:58:30"
    assert horizon_of(now.astimezone(UTC), timedelta(0)) == "2026-03-01 10:00:30"
    assert horizon_of(now, timedelta(seconds=-5)) == "2026-03-01 10:00:30"


def test_v2_versions_follow_attribute_values_and_v1_versions_still_read() -> None:
    from workflows.catalog_sync import start_cursor

    v1 = "v1/2026-03-01 10:00:00#0000001+4/2026-03-01 09:00:00#0000000"
    old = cursor_of_version(v1)
    assert old.values is None and old.version() == v1
    later = CatalogCursor(
        variants=Cursor(stamp="2026-01-01 00:00:00"),
        templates=Cursor(stamp="2026-01-01 00:00:00"),
        values=Cursor(stamp="2026-03-02 08:00:00", seen=[3]),
    )
    v2 = later.version()
    assert v2.startswith("v2/") and v2.count("/") == 3
    assert cursor_of_version(v2) == later
    # Any v2 version sorts after any v1: a store at v1 never takes a v2 page as stale.
    assert v2 > v1
    # A store at v1 has followed no attribute values: that stream starts from the beginning.
    start = start_cursor([v1, v2])
    assert start.values == Cursor() and start.variants == Cursor(stamp="2026-01-01 00:00:00")
    assert start_cursor([v1], values=False).values is None
    capped = later.capped("2026-03-01 00:00:00")
    assert capped.values == Cursor(stamp="2026-03-01 00:00:00")
    with pytest.raises(BadVersion):
        cursor_of_version("v2/2026-03-01 10:00:00#0000001+4/2026-03-01 09:00:00#0000000")


def test_variants_already_read_since_their_change_are_left_out() -> None:
    from domain.catalog import unread_variants

    start = ("2026-03-01 10:00:00", "2026-03-01 11:00:00")
    rows = [
        # Made with its template in one go: the variants stream read it after.
        {"id": 1, "write_date": "2026-03-01 10:05:00", "product_tmpl_id": [11, "New"]},
        # Its template was written after it (a template-only price change): sent again.
        {"id": 2, "write_date": "2026-03-01 10:01:00", "product_tmpl_id": [12, "Repriced"]},
        # Written before the sync's variants stream started: not read by it, sent again.
        {"id": 3, "write_date": "2026-03-01 09:59:59", "product_tmpl_id": [13, "Old"]},
        # Written since the sync began: maybe read before its template's change, sent again.
        {"id": 6, "write_date": "2026-03-01 11:00:00", "product_tmpl_id": [14, "During"]},
    ]
    changed = {
        11: "2026-03-01 10:05:00",
        12: "2026-03-01 10:03:00",
        13: "2026-03-01 09:59:59",
        14: "2026-03-01 11:00:00",
    }
    kept = unread_variants(rows, changed, "product_tmpl_id", start)
    assert [r["id"] for r in kept] == [2, 3, 6]
    assert unread_variants(rows, changed, "product_tmpl_id", None) == rows
    # By attribute values: the newest change among the values a variant carries counts.
    link = "product_template_attribute_value_ids"
    by_value = [
        {"id": 4, "write_date": "2026-03-01 10:05:00", link: [21, 22]},
        {"id": 5, "write_date": "2026-03-01 10:05:00", link: [21, 23]},
    ]
    values = {21: "2026-03-01 10:04:00", 23: "2026-03-01 10:06:00"}
    assert [r["id"] for r in unread_variants(by_value, values, link, start)] == [5]


def test_a_stream_end_before_the_horizon_moves_to_the_next_second() -> None:
    horizon = "2026-03-01 10:00:00"
    bulk = Cursor(stamp="2026-03-01 09:00:00", seen=list(range(1, 5001)))
    assert bulk.settled(horizon) == Cursor(stamp="2026-03-01 09:00:01")
    at = Cursor(stamp=horizon, seen=[3])
    assert at.settled(horizon) == at  # still open: written again in it, it must come back
    assert bulk.settled(None) == bulk
    assert Cursor(stamp="2026-03-01 09:00:00").settled(horizon) == Cursor(
        stamp="2026-03-01 09:00:00"
    )
    # Nothing written in second 09:00:00 or later is skipped from the settled position.
    odoo = MicrosecondOdoo()
    odoo.write(1, "2026-03-01 09:00:00.100000")
    odoo.write(2, "2026-03-01 09:00:00.200000")
    cursor, got = drain(odoo, Cursor(), limit=5)
    assert sorted(got) == [1, 2]
    settled = cursor.settled(horizon)
    odoo.write(3, "2026-03-01 09:00:01.000000")
    assert drain(odoo, settled, limit=5)[1] == [3]
