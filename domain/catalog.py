"""The stores' catalog, built from Odoo's product master: mapping, cursor, versions, diffing.

Odoo owns products; the POS platform keeps one catalog per store (docs/catalog.md). This
module is pure: it turns `product.product` rows (as `search_read` returns them) into the POS
platform's catalog items, and keeps the incremental sync's cursor.

The cursor follows `write_date` with the ids as tie-breaker, as Odoo integrations do. Odoo 17
returns `write_date` at second resolution but stores (and compares) microseconds, so a record's
returned stamp `s` cannot be queried back with `write_date = s`, nor can "the rest of second s"
be asked for with `id > last`. The cursor therefore holds a second `s` and the ids already
processed in it; the next page asks `write_date >= s` ordered `write_date asc, id asc` and skips
those ids. Nothing written in second `s` or later is ever skipped; a record written again while
the sync runs comes back on a later page, or on the next run when it was written again within
the second it was read in (publishing is idempotent, so reading it twice is safe).

A product changes through its template too (a price or a name edited on `product.template`
leaves its variants' `write_date` alone), and through its attribute values (a `price_extra`
edit writes only the value), so the sync follows three such streams: the variants, the
templates and the attribute values, whose variants it reads again. The catalog version a store
holds names each stream's position; versions sort as strings in the order the sync made them.

PostgreSQL stamps `write_date` with the start of the writing transaction, so a write that
commits late carries a second the cursor may already have passed; and a record written twice in
one second keeps its stamp and its place among the seen ids. A store's recorded version is
therefore capped at a horizon (`now - settle`, never after the run's start second): what was
written after it is published at once, but read and published again by the next sync, which
then also sees any such write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

SKU_MAX = 64
# `YYYY-MM-DD HH:MM:SS`: Odoo's Datetime wire format, which sorts as a string.
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
EPOCH = "1970-01-01 00:00:00"
# The count of ids seen in the cursor's second, fixed width so versions sort as strings.
COUNT_DIGITS = 7
VERSION_PREFIX = "v1"  # the variants' and the templates' streams
VALUES_PREFIX = "v2"  # and the attribute values' stream
# Up to this many ids seen in the cursor's second are named in a version (a bulk import writes
# thousands in one second: those are only counted, and read again on catch-up).
IDS_IN_VERSION = 8


class BadVersion(ValueError):
    """A catalog version this sync did not make (a store's own, or garbled)."""


# -- the cursor --------------------------------------------------------------------------


class Cursor(BaseModel):
    """Where one stream stands: every record written before `stamp` was processed, and the
    records of second `stamp` whose ids are in `seen`."""

    stamp: str = EPOCH
    seen: list[int] = []

    def domain(self) -> list[Any]:
        """The records from the cursor's second on, less those already seen in it (skipping
        them in the query, not after it: a page full of seen ids would never move on). A seen
        record written again in a later second is not seen: it comes back."""
        if not self.seen:
            return [("write_date", ">=", self.stamp)]
        return [
            "|",
            ("write_date", ">=", next_second(self.stamp)),
            "&",
            ("write_date", ">=", self.stamp),
            ("id", "not in", sorted(self.seen)),
        ]

    def fresh(self, rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The rows of a page not yet processed: those of second `stamp` already seen drop."""
        seen = set(self.seen)
        return [r for r in rows if not (stamp_of(r) == self.stamp and r["id"] in seen)]

    def advance(self, rows: Iterable[Mapping[str, Any]]) -> Cursor:
        """The cursor after processing `rows` (a page in `write_date asc, id asc` order)."""
        stamp, seen = self.stamp, list(self.seen)
        for r in rows:
            s = stamp_of(r)
            if s > stamp:
                stamp, seen = s, []
            if s == stamp and r["id"] not in seen:
                seen.append(r["id"])
        return Cursor(stamp=stamp, seen=seen)

    def settled(self, horizon: str | None) -> Cursor:
        """This position at a stream's end (a page that was not full): every record of second
        `stamp` was read, and before the horizon no more can be written in it, so the next
        read starts at the following second with no ids to remember (a version names at most
        IDS_IN_VERSION of them: a bulk import's second would otherwise be read again by every
        sync). None: as it is."""
        if horizon is None or not self.seen or self.stamp >= horizon:
            return self
        return Cursor(stamp=next_second(self.stamp), seen=[])

    def capped(self, horizon: str) -> Cursor:
        """This position as a store may record it: nothing written at or after `horizon`
        counts as seen, so the next sync reads from there again (docs/catalog.md, "A write
        committed late")."""
        return self if self.stamp < horizon else Cursor(stamp=horizon, seen=[])

    def token(self) -> str:
        """This stream's part of a version: its second, how many of its records were seen (and
        which, when they are few: a store resuming from its version then skips them too)."""
        n = min(len(self.seen), 10**COUNT_DIGITS - 1)
        ids = f"+{','.join(str(i) for i in sorted(self.seen))}" if 0 < n <= IDS_IN_VERSION else ""
        return f"{self.stamp}#{n:0{COUNT_DIGITS}d}{ids}"


def next_second(stamp: str) -> str:
    """The second after `stamp` (`YYYY-MM-DD HH:MM:SS`), in the same format."""
    at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S") + timedelta(seconds=1)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def stamp_of(row: Mapping[str, Any]) -> str:
    """A row's `write_date` as Odoo returns it (seconds); a row without one sorts first."""
    value = row.get("write_date")
    text = value if isinstance(value, str) else ""
    return text[:19] if STAMP.match(text[:19]) else EPOCH


def unread_variants(
    rows: Sequence[Mapping[str, Any]],
    changed: Mapping[int, str],
    link: str,
    variants_read: tuple[str, str] | None,
) -> list[Mapping[str, Any]]:
    """The variants of changed templates (or attribute values) that this sync's variants
    stream has not already read since that change.

    `rows`: the variants, read with `link` (`product_tmpl_id`, or the attribute value ids);
    `changed`: each changed template's (value's) id -> its `write_date` second;
    `variants_read`: (the second the sync's variants stream started from, the sync's start
    second), None: keep all. A variant written in that window, in or after its change's
    second, was written before the sync began, so the variants stream read it, and read it
    after that change: publishing it again would only repeat it (a new product's variant,
    template and values are written together). One written since the sync began may have
    been read before the change: it is kept."""
    if variants_read is None:
        return list(rows)
    read_from, read_until = variants_read
    out: list[Mapping[str, Any]] = []
    for row in rows:
        value = row.get(link)
        ids = value if link != "product_tmpl_id" else [_many2one_id(value)]
        stamps = [changed[i] for i in ids or [] if isinstance(i, int) and i in changed]
        written = stamp_of(row)
        if not stamps or not read_from <= written < read_until or written < max(stamps):
            out.append(row)
    return out


class CatalogCursor(BaseModel):
    """The sync's position: the variants' stream, the templates' stream and the attribute
    values' stream (a `price_extra` edit moves neither a variant's nor its template's
    `write_date`). `values` None: a sync that does not follow that stream (one begun before
    it existed, or a store's v1 version)."""

    variants: Cursor = Cursor()
    templates: Cursor = Cursor()
    values: Cursor | None = None

    def version(self) -> str:
        """`v2/<variants>/<templates>/<values>` (`v1/<variants>/<templates>` without the values'
        stream): each part only grows as the sync goes on and has a fixed width, so a later
        version sorts later as a string (and any v2 after any v1)."""
        base = f"{self.variants.token()}/{self.templates.token()}"
        if self.values is None:
            return f"{VERSION_PREFIX}/{base}"
        return f"{VALUES_PREFIX}/{base}/{self.values.token()}"

    def capped(self, horizon: str | None) -> CatalogCursor:
        """Every stream capped at `horizon` (None: as they are)."""
        if horizon is None:
            return self
        return CatalogCursor(
            variants=self.variants.capped(horizon),
            templates=self.templates.capped(horizon),
            values=self.values.capped(horizon) if self.values is not None else None,
        )


def horizon_of(now: datetime, settle: timedelta) -> str:
    """The second from which writes are not yet settled: `now - settle` in Odoo's format."""
    at = now.astimezone(UTC) - max(settle, timedelta(0))
    return at.strftime("%Y-%m-%d %H:%M:%S")


def cursor_of_version(version: str | None) -> CatalogCursor:
    """Where to read from for a store at `version` (None: the store has nothing yet). The ids
    seen in each stream's second are not in the version, so that second is read again (a few
    records published twice, harmlessly). Raises BadVersion for a version this sync never made."""
    if version is None:
        return CatalogCursor()
    parts = version.split("/")
    if (parts[0], len(parts)) not in ((VERSION_PREFIX, 3), (VALUES_PREFIX, 4)):
        raise BadVersion(f"version: {version[:80]!r} is not a catalog sync version")
    streams = []
    for part in parts[1:]:
        stamp, _, rest = part.partition("#")
        count, _, ids = rest.partition("+")
        if not STAMP.match(stamp) or not count.isdigit():
            raise BadVersion(f"version: {version[:80]!r} is not a catalog sync version")
        seen = [int(i) for i in ids.split(",") if i.isdigit()] if ids else []
        if ids and len(seen) != int(count):
            raise BadVersion(f"version: {version[:80]!r} is not a catalog sync version")
        streams.append(Cursor(stamp=stamp, seen=seen))
    return CatalogCursor(
        variants=streams[0], templates=streams[1], values=streams[2] if len(streams) > 2 else None
    )


def earliest(cursors: Iterable[CatalogCursor]) -> CatalogCursor | None:
    """The cursor furthest behind (by version), or None when there are none."""
    return min(cursors, key=lambda c: c.version(), default=None)


# -- products -> POS items ------------------------------------------------------------------


class CatalogItem(BaseModel):
    """A POS catalog item (the platform's model, docs/catalog.md)."""

    sku: str
    barcode: str | None
    name: str
    category: str
    attributes: dict[str, str] = {}
    price: str
    currency: str
    tax_rates: list[str] = []
    odoo_id: int


class Withdrawal(BaseModel):
    sku: str
    odoo_id: int


class Unpublishable(BaseModel):
    """A product Odoo has that no store can take, with why (kept for ops, never dropped)."""

    odoo_id: int
    sku: str | None
    reason: str


class MappedPage(BaseModel):
    upserts: list[CatalogItem] = []
    withdrawals: list[Withdrawal] = []
    unpublishable: list[Unpublishable] = []


def percent(amount: Any) -> str | None:
    """A tax's rate as the POS takes it: `15.0` -> `"15"`, `7.25` -> `"7.25"`."""
    try:
        d = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    text = format(d.normalize(), "f")
    return text if text != "-0" else "0"


def money(amount: Any) -> str | None:
    """A list price as a two-decimal string (`12.5` -> `"12.50"`)."""
    try:
        d = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite() or isinstance(amount, bool):
        return None
    return str(d.quantize(Decimal("0.01")))


def _many2one_id(value: Any) -> int | None:
    if isinstance(value, list | tuple) and value and isinstance(value[0], int):
        return value[0]
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _many2one_name(value: Any) -> str | None:
    if isinstance(value, list | tuple) and len(value) > 1 and isinstance(value[1], str):
        return value[1]
    return None


def _text(value: Any) -> str | None:
    """Odoo sends `False` for an empty char field."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def _variant_price(row: Mapping[str, Any]) -> Any:
    """The variant's sales price: `lst_price` (the template's `list_price` plus the extras of
    the variant's attribute values), or `list_price` when it was not read."""
    lst = row.get("lst_price")
    if lst is not None and lst is not False:
        return lst
    return row.get("list_price")


def _attributes(value_ids: Any, attribute_values: Mapping[int, tuple[str, str]]) -> dict[str, str]:
    """`{attribute: value}` of a variant's attribute values (those of `no_variant` attributes
    are not on the variant, so they never show here)."""
    out: dict[str, str] = {}
    for v in value_ids if isinstance(value_ids, list | tuple) else []:
        if isinstance(v, int) and not isinstance(v, bool) and v in attribute_values:
            name, value = attribute_values[v]
            out[name] = value
    return out


def map_products(
    rows: Sequence[Mapping[str, Any]],
    tax_rates: Mapping[int, str],
    categories: Mapping[int, str],
    attribute_values: Mapping[int, tuple[str, str]],
    currency: str,
) -> MappedPage:
    """Odoo `product.product` rows (read with `active_test: False`) as POS upserts and
    withdrawals: an archived product (or one whose template is archived) is withdrawn; one
    without an SKU cannot be published and is reported, never dropped silently.

    `tax_rates`: account.tax id -> percent; `categories`: id -> complete name;
    `attribute_values`: product.template.attribute.value id -> (attribute, value). A variant's
    price is its `lst_price` (list price plus its values' extras)."""
    out = MappedPage()
    for row in rows:
        pid = row.get("id")
        if not isinstance(pid, int):
            continue
        sku = _text(row.get("default_code"))
        active = row.get("active", True) is not False and row.get("product_tmpl_active", True)
        if sku is None:
            reason = "sku: the product has no internal reference (default_code)"
            out.unpublishable.append(Unpublishable(odoo_id=pid, sku=None, reason=reason))
            continue
        if len(sku) > SKU_MAX:
            reason = f"sku: longer than {SKU_MAX} characters"
            out.unpublishable.append(Unpublishable(odoo_id=pid, sku=sku[:SKU_MAX], reason=reason))
            continue
        if not active:
            out.withdrawals.append(Withdrawal(sku=sku, odoo_id=pid))
            continue
        price = money(_variant_price(row))
        if price is None:
            reason = "price: no list price"
            out.unpublishable.append(Unpublishable(odoo_id=pid, sku=sku, reason=reason))
            continue
        categ_id = _many2one_id(row.get("categ_id"))
        category = categories.get(categ_id, "") if categ_id is not None else ""
        category = category or _many2one_name(row.get("categ_id")) or ""
        taxes = row.get("taxes_id") or []
        rates = [tax_rates[t] for t in taxes if isinstance(t, int) and t in tax_rates]
        attributes = _attributes(row.get("product_template_attribute_value_ids"), attribute_values)
        out.upserts.append(
            CatalogItem(
                sku=sku,
                barcode=_text(row.get("barcode")),
                name=_text(row.get("name")) or sku,
                category=category,
                attributes=attributes,
                price=price,
                currency=currency,
                tax_rates=rates,
                odoo_id=pid,
            )
        )
    return out


# -- a store's catalog against Odoo (--full) -------------------------------------------------


def withdrawals_for(
    store_items: Iterable[Mapping[str, Any]], odoo_active: Mapping[int, bool]
) -> list[Withdrawal]:
    """What a store holds that Odoo no longer has, or has archived: `odoo_active` maps each
    `odoo_id` the store holds that Odoo still knows to its `active` flag."""
    out: list[Withdrawal] = []
    for item in store_items:
        pid, sku = item.get("odoo_id"), item.get("sku")
        if not isinstance(pid, int) or not isinstance(sku, str):
            continue
        if not odoo_active.get(pid, False):
            out.append(Withdrawal(sku=sku, odoo_id=pid))
    return out
