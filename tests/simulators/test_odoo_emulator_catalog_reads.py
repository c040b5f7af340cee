"""Conformance: the product reads an incremental catalog sync makes, as Odoo 17 answers them.

``write_date`` is stamped with the transaction's timestamp (microseconds in PostgreSQL) but
read back in whole seconds, and a domain on it compares against the stored value; archived
products are seen with ``active_test: False``; archiving and deleting behave as in Odoo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import odoorpc
import pytest

from .conftest import Fresh

ORDER = "write_date asc, id asc"
SYNC_FIELDS = [
    "default_code",
    "barcode",
    "name",
    "categ_id",
    "list_price",
    "taxes_id",
    "active",
    "write_date",
]
ALL = {"context": {"active_test": False}}


def at(fresh: Fresh, stamp: str) -> None:
    """The next calls' transaction timestamp (UTC)."""
    when = dt.datetime.fromisoformat(stamp)
    fresh.emu.database.clock = lambda: when


def product(odoo: odoorpc.ODOO, sku: str, **extra: Any) -> int:
    vals = {"name": f"Item {sku}", "default_code": sku, "list_price": 12.5, "type": "product"}
    return int(odoo.env["product.product"].create({**vals, **extra}))


def changed_since(
    odoo: odoorpc.ODOO, domain: list[Any], offset: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"fields": SYNC_FIELDS, "order": ORDER, "offset": offset, **ALL}
    if limit:
        kwargs["limit"] = limit
    rows: list[dict[str, Any]] = odoo.execute_kw("product.product", "search_read", [domain], kwargs)
    return rows


def test_search_read_gives_the_fields_the_sync_maps(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], barcode: Callable[[], str]
) -> None:
    sku, code = unique("CAT"), barcode()
    [pos_categ] = odoo.env["product.category"].search_read(
        [("complete_name", "=", "All / Saleable / PoS")], ["id"]
    )
    tid = odoo.env["product.template"].create(
        {
            "name": "Probe Widget",
            "default_code": sku,
            "barcode": code,
            "list_price": 12.5,
            "type": "product",
            "categ_id": pos_categ["id"],
            "taxes_id": [(6, 0, [1])],
        }
    )
    [row] = changed_since(odoo, [("default_code", "=", sku)])
    [variant_id] = odoo.env["product.template"].read([tid], ["product_variant_id"])[0][
        "product_variant_id"
    ][:1]
    assert row == {
        "id": variant_id,
        "default_code": sku,
        "barcode": code,
        "name": "Probe Widget",
        "categ_id": [pos_categ["id"], "All / Saleable / PoS"],
        "list_price": 12.5,
        "taxes_id": [1],
        "active": True,
        "write_date": row["write_date"],
    }
    dt.datetime.strptime(row["write_date"], "%Y-%m-%d %H:%M:%S")  # whole seconds


def test_write_date_is_read_in_seconds_but_compared_with_microseconds(fresh: Fresh) -> None:
    odoo = fresh.odoo
    at(fresh, "2025-03-01 10:00:07.810000")
    late = product(odoo, "LATE")  # the lower id, written later in the second
    at(fresh, "2025-03-01 10:00:07.420000")
    early = product(odoo, "EARLY")
    at(fresh, "2025-03-01 10:00:08.000001")
    after = product(odoo, "AFTER")
    rows = changed_since(odoo, [("write_date", ">=", "2025-03-01 10:00:07")])
    # Sorted on the stored value, not on what read shows (both read as :07).
    assert [r["id"] for r in rows] == [early, late, after]
    assert [r["write_date"] for r in rows] == [
        "2025-03-01 10:00:07",
        "2025-03-01 10:00:07",
        "2025-03-01 10:00:08",
    ]
    # '=' a whole second matches no row written within it; '>' it includes them.
    assert changed_since(odoo, [("write_date", "=", "2025-03-01 10:00:07")]) == []
    greater = changed_since(odoo, [("write_date", ">", "2025-03-01 10:00:07")])
    assert [r["id"] for r in greater] == [early, late, after]
    before = changed_since(odoo, [("write_date", "<", "2025-03-01 10:00:08")])
    assert {r["id"] for r in before} >= {early, late}
    assert after not in {r["id"] for r in before}
    # A date alone means the end of that day for '>'.
    assert changed_since(odoo, [("write_date", ">", "2025-03-01")]) == []
    on_day = changed_since(odoo, [("write_date", ">=", "2025-03-01")])
    assert [r["id"] for r in on_day] == [early, late, after]


def test_a_cursor_with_id_tie_breaker_on_a_read_second_never_matches(fresh: Fresh) -> None:
    """The (write_date = last, id > last_id) branch matches nothing: a sync must not rely on
    it; '>=' the last second (and dropping what it already has) misses nothing."""
    odoo = fresh.odoo
    at(fresh, "2025-03-01 10:00:07.100000")
    first = product(odoo, "FIRST")
    at(fresh, "2025-03-01 10:00:07.900000")
    second = product(odoo, "SECOND")
    [seen] = changed_since(odoo, [("id", "=", first)])
    tie = [
        "|",
        ("write_date", ">", seen["write_date"]),
        "&",
        ("write_date", "=", seen["write_date"]),
        ("id", ">", first),
    ]
    # Here '>' the read second still finds the rest of the same second.
    assert [r["id"] for r in changed_since(odoo, tie)] == [first, second]
    assert [r["id"] for r in changed_since(odoo, [("write_date", "=", seen["write_date"])])] == []


def test_a_page_boundary_within_one_second_loses_and_repeats_nothing(fresh: Fresh) -> None:
    odoo = fresh.odoo
    ids = []
    for n in range(7):
        at(fresh, f"2025-03-01 10:00:07.{(7 - n) * 100000:06d}")  # ids and stamps disagree
        ids.append(product(odoo, f"P{n}"))
    domain = [("write_date", ">=", "2025-03-01 10:00:07")]
    full = [r["id"] for r in changed_since(odoo, domain)]
    assert full == list(reversed(ids))
    paged: list[int] = []
    for offset in range(0, 7, 3):
        paged += [r["id"] for r in changed_since(odoo, domain, offset=offset, limit=3)]
    assert paged == full
    # An id range reads the same rows.
    by_ids = changed_since(odoo, [("id", ">", ids[2]), ("id", "<=", ids[5])])
    assert sorted(r["id"] for r in by_ids) == ids[3:6]


def test_archiving_bumps_write_date_and_is_seen_with_active_test_false(fresh: Fresh) -> None:
    odoo = fresh.odoo
    at(fresh, "2025-03-01 10:00:00.500000")
    pid = product(odoo, "ARCH")
    at(fresh, "2025-03-01 11:00:00.250000")
    odoo.execute_kw("product.product", "write", [[pid], {"active": False}])
    assert odoo.env["product.product"].search([("default_code", "=", "ARCH")]) == []
    [row] = changed_since(odoo, [("write_date", ">", "2025-03-01 10:00:00")])
    assert (row["id"], row["active"], row["write_date"]) == (pid, False, "2025-03-01 11:00:00")
    # Archived products are also searched for explicitly.
    explicit = odoo.env["product.product"].search([("active", "=", False)])
    assert explicit == [pid]


def test_action_archive_and_unarchive_follow_odoo(fresh: Fresh) -> None:
    odoo = fresh.odoo
    Product, Template = odoo.env["product.product"], odoo.env["product.template"]
    at(fresh, "2025-03-01 10:00:00.500000")
    pid = product(odoo, "ONE")
    [tid] = Product.read([pid], ["product_tmpl_id"])[0]["product_tmpl_id"][:1]
    at(fresh, "2025-03-01 10:05:00.500000")
    assert odoo.execute_kw("product.product", "action_archive", [[pid]]) is None
    # The template's only variant archived: the template is archived too.
    assert Template.read([tid], ["active"])[0]["active"] is False
    [row] = changed_since(odoo, [("id", "=", pid)])
    assert (row["active"], row["write_date"]) == (False, "2025-03-01 10:05:00")
    at(fresh, "2025-03-01 10:06:00.500000")
    odoo.execute_kw("product.product", "action_unarchive", [[pid]])
    assert Template.read([tid], ["active"])[0]["active"] is True
    assert changed_since(odoo, [("id", "=", pid)])[0]["active"] is True
    # Archiving the template archives its variant (and stamps it).
    at(fresh, "2025-03-01 10:07:00.500000")
    odoo.execute_kw("product.template", "action_archive", [[tid]])
    [row] = changed_since(odoo, [("id", "=", pid)])
    assert (row["active"], row["write_date"]) == (False, "2025-03-01 10:07:00")
    odoo.execute_kw("product.template", "write", [[tid], {"active": True}])
    assert changed_since(odoo, [("id", "=", pid)])[0]["active"] is True
    with pytest.raises(odoorpc.error.RPCError, match="No 'active' field on model"):
        odoo.execute_kw("account.move.line", "action_archive", [[1]])


def test_a_template_only_write_does_not_stamp_the_variant(fresh: Fresh) -> None:
    """As in Odoo: list_price written on the template stamps the template, not the variant;
    written through the variant, it stamps both."""
    odoo = fresh.odoo
    at(fresh, "2025-03-01 10:00:00.500000")
    pid = product(odoo, "PRICE")
    [tid] = odoo.env["product.product"].read([pid], ["product_tmpl_id"])[0]["product_tmpl_id"][:1]
    at(fresh, "2025-03-01 12:00:00.500000")
    odoo.execute_kw("product.template", "write", [[tid], {"list_price": 15.0}])
    [row] = changed_since(odoo, [("id", "=", pid)])
    assert (row["list_price"], row["write_date"]) == (15.0, "2025-03-01 10:00:00")
    [tmpl] = odoo.env["product.template"].read([tid], ["write_date"])
    assert tmpl["write_date"] == "2025-03-01 12:00:00"
    at(fresh, "2025-03-01 13:00:00.500000")
    odoo.execute_kw("product.product", "write", [[pid], {"list_price": 16.0}])
    [row] = changed_since(odoo, [("id", "=", pid)])
    assert (row["list_price"], row["write_date"]) == (16.0, "2025-03-01 13:00:00")


def test_unlink_without_moves_deletes_the_variant_and_its_template(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    pid = product(odoo, unique("DEL"))
    [tid] = odoo.env["product.product"].read([pid], ["product_tmpl_id"])[0]["product_tmpl_id"][:1]
    assert odoo.execute_kw("product.product", "unlink", [[pid]]) is True
    assert odoo.execute_kw("product.product", "exists", [[pid]]) == []
    assert odoo.execute_kw("product.template", "exists", [[tid]]) == []


def test_unlink_of_a_product_with_stock_moves_is_refused(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    pid = product(odoo, unique("MOVED"))
    odoo.env["stock.move"].create(
        {
            "name": "probe",
            "product_id": pid,
            "product_uom_qty": 1,
            "product_uom": 1,
            "location_id": 8,
            "location_dest_id": 5,
        }
    )
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.execute_kw("product.product", "unlink", [[pid]])
    message = str(err.value)
    assert "another model requires the record being deleted" in message
    assert "If possible, archive it instead." in message
    assert "stock_move_product_id_fkey" in message
    assert odoo.execute_kw("product.product", "exists", [[pid]]) == [pid]


def test_a_variant_field_written_on_the_template_stamps_both(fresh: Fresh) -> None:
    odoo = fresh.odoo
    at(fresh, "2025-03-01 10:00:00.500000")
    pid = product(odoo, "BC")
    [tid] = odoo.env["product.product"].read([pid], ["product_tmpl_id"])[0]["product_tmpl_id"][:1]
    at(fresh, "2025-03-01 14:00:00.500000")
    odoo.execute_kw("product.template", "write", [[tid], {"barcode": "4006381333931"}])
    [row] = changed_since(odoo, [("id", "=", pid)])
    assert (row["barcode"], row["write_date"]) == ("4006381333931", "2025-03-01 14:00:00")
    [tmpl] = odoo.env["product.template"].read([tid], ["write_date"])
    assert tmpl["write_date"] == "2025-03-01 14:00:00"
