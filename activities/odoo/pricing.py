"""Prices in Odoo for a rollout: check the SKUs, read the prices in force, write the rollout's
fixed-price pricelist items (exactly once), and remove them again when the rollout is undone.

Each store has its own pricelist (`{base} {store}`, e.g. `Store prices S001`), so a rollout to
S003 never changes Odoo's price for S001. A store pricelist holds the items of the rollouts that
reached the store, over one global rule that falls back to the shared base pricelist (`Store
prices`): a store without an item of its own, or without a pricelist, has the base price. A
rollout to all stores therefore writes its items once into the base pricelist, plus one in each
store pricelist whose own rules would come first for the product (Odoo picks a product's items
before the fallback, the newest first), so the newest rollout still wins there
(docs/architecture.md, "Price rollouts").

Every record retailflow writes here is keyed by an external id (`ir.model.data`, module
`retailflow`), the way Odoo connectors bind their own keys: `store_pricelist_<base>-<store>`
for a store's pricelist, `rollout_<rollout>_<pricelist id>_<product id>` for a rollout's item. Items
are found by their rollout's key, never by their values, so two rollouts with identical changes
own two items and undoing one leaves the other's in force. Items are created parked (a 1970
window that never applies) and only given their real window once their key is claimed: an
attempt that dies between creating an item and binding its key leaves nothing in force.

Work grows with the input, so the workflow calls these in chunks (a few hundred items each) and
each chunk costs a handful of RPCs, except the old prices: Odoo 17 computes a price for one
product per call (`get_contextual_price`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from odoorpc.error import RPCError
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.odoo.base import OdooActivityBase, odoo_datetime
from activities.odoo.claim import Claimed, ClaimKind, Creator, Refusal, claim, remove
from activities.odoo.client import OdooUnavailable, raise_classified
from domain.money import cents
from domain.pricing import PriceChange

MODULE = "retailflow"
ITEM = "product.pricelist.item"
PRICELIST = "product.pricelist"
# How Odoo reports a violated SQL constraint (here: an external id already taken).
UNIQUE_VIOLATION = "The operation cannot be completed"
# A window that never applies: an item is in force only once its key is bound.
PARKED = {"date_start": "1970-01-01 00:00:00", "date_end": "1970-01-01 00:00:01"}

PRICELIST_BY_NAME = ClaimKind(PRICELIST, "name", frozenset(), draft_is_goal=True, has_state=False)


def external_ids(model: str) -> ClaimKind:
    return ClaimKind(
        "ir.model.data",
        "name",
        frozenset(),
        draft_is_goal=True,
        has_state=False,
        domain=(("module", "=", MODULE), ("model", "=", model)),
    )


def key_part(text: str) -> str:
    """An id made safe for an external id name, injectively: letters and digits stay, every
    other character (`_` too) becomes `_<hex>_`."""
    return re.sub(r"[^A-Za-z0-9]", lambda m: f"_{ord(m.group()):x}_", text)


def store_pricelist_key(base: str, store_id: str) -> str:
    """`store_pricelist_<base>-<store>` (key_part never yields '-': the parts cannot blur)."""
    return f"store_pricelist_{key_part(base)}-{key_part(store_id)}"


def item_key(rollout_id: str, pricelist_id: int, product_id: int) -> str:
    return f"rollout_{key_part(rollout_id)}_{pricelist_id}_{product_id}"


def store_pricelist_name(base: str, store_id: str) -> str:
    return f"{base} {store_id}"


class PreparePriceRolloutInput(BaseModel):
    changes: list[PriceChange]
    # When the old prices are read: the rollout's effective time.
    at: datetime
    pricelist: str
    stores: list[str] = []


class PreparedPriceRollout(BaseModel):
    product_ids: dict[str, int]
    # The price each SKU had in the base pricelist at the effective time: what compensation
    # restores in a store, unless the store had its own (below).
    old_prices: dict[str, Decimal]
    # Only where a store's own pricelist gave another price: store -> SKU -> price.
    store_old_prices: dict[str, dict[str, Decimal]] = {}


class ClaimStorePricelistsInput(BaseModel):
    pricelist: str
    stores: list[str]


class StorePricelists(BaseModel):
    base_id: int
    by_store: dict[str, int]


class PricelistItem(BaseModel):
    product_id: int
    price: Decimal
    start: datetime
    end: datetime | None = None


class ItemsInto(StrEnum):
    """Where a rollout's items go."""

    # Into each listed store's own pricelist (created the first time a rollout reaches it).
    STORES = "stores"
    # Once into the base pricelist, which every store's pricelist falls back to.
    BASE = "base"
    # Into those of the listed stores' pricelists that have rules of their own for the
    # products (an earlier rollout's item would shadow the base item there). No pricelist is
    # created: a store without one has the base price.
    OVERRIDES = "overrides"


class WritePricelistItemsInput(BaseModel):
    rollout_id: str
    # The base pricelist's name; each store's own is `{pricelist} {store}`.
    pricelist: str
    # Every item goes into each of these stores' pricelists, keyed by the rollout.
    stores: list[str]
    items: list[PricelistItem]
    into: ItemsInto = ItemsInto.STORES


class WrittenPricelistItems(BaseModel):
    written: int
    created: int


class RemovePricelistItemsInput(BaseModel):
    rollout_id: str
    pricelist: str
    stores: list[str]
    product_ids: list[int]
    # The rollout's items in the base pricelist go too.
    base: bool = False


class RemovedPricelistItems(BaseModel):
    removed: int


class OdooPricingActivities(OdooActivityBase):
    @activity.defn
    def prepare_price_rollout(self, input: PreparePriceRolloutInput) -> PreparedPriceRollout:
        """Check every SKU exists and read the prices in force per store, writing nothing."""
        found, problems = self.odoo.products(c.sku for c in input.changes)
        if problems:
            raise ApplicationError(
                "; ".join(problems[sku] for sku in sorted(problems)),
                type="UnknownSku",
                non_retryable=True,
            )
        base = self.odoo.call(
            PRICELIST, "search", [("name", "=", input.pricelist)], order="id asc", limit=1
        )
        base_id: int | None = base[0] if base else None
        product_ids = {c.sku: found[c.sku].id for c in input.changes}
        old = {sku: self._price(base_id, pid, input.at) for sku, pid in product_ids.items()}
        own = self._bound(
            PRICELIST, [store_pricelist_key(input.pricelist, s) for s in input.stores]
        )
        store_lists = {
            s: own[store_pricelist_key(input.pricelist, s)]
            for s in input.stores
            if store_pricelist_key(input.pricelist, s) in own
        }
        deviations: dict[str, dict[str, Decimal]] = {}
        for store, sku in self._may_differ(store_lists, base_id, product_ids):
            price = self._price(store_lists[store], product_ids[sku], input.at)
            if price != old[sku]:
                deviations.setdefault(store, {})[sku] = price
        return PreparedPriceRollout(
            product_ids=product_ids, old_prices=old, store_old_prices=deviations
        )

    def _store_pricelists(self, input: ClaimStorePricelistsInput) -> StorePricelists:
        """The base pricelist and each store's own, created exactly once."""

        base = claim(self.odoo, PRICELIST_BY_NAME, [input.pricelist], create=self._create_base)
        base_id = _claimed(base[input.pricelist]).id
        keys = {store_pricelist_key(input.pricelist, s): s for s in input.stores}

        created_here: dict[str, int] = {}

        def create(missing: list[str]) -> dict[str, Refusal]:
            vals = {
                key: {
                    "name": store_pricelist_name(input.pricelist, keys[key]),
                    # Below every item of its own: the base pricelist's price.
                    "item_ids": [
                        (
                            0,
                            0,
                            {
                                "applied_on": "3_global",
                                "compute_price": "formula",
                                "base": "pricelist",
                                "base_pricelist_id": base_id,
                            },
                        )
                    ],
                }
                for key in missing
            }
            created = self._create_pricelists(vals)
            created_here.update(created)
            self._bind(PRICELIST, created)
            return {}

        bound = self._claim_bound(PRICELIST, list(keys), create)
        # Pricelists this attempt created whose key another attempt bound first.
        remove(self.odoo, PRICELIST, sorted(set(created_here.values()) - set(bound.values())))
        return StorePricelists(base_id=base_id, by_store={keys[k]: v for k, v in bound.items()})

    @activity.defn
    def write_pricelist_items(self, input: WritePricelistItemsInput) -> WrittenPricelistItems:
        """The rollout's fixed-price items, exactly once, where `into` says: one per store and
        product in the stores' own pricelists (claimed here the first time a rollout reaches a
        store), one per product in the base pricelist, or one per product in each store
        pricelist whose own rules would shadow the base item."""
        wanted: dict[str, tuple[int, PricelistItem]] = {}
        if input.into is ItemsInto.STORES:
            pricelists = self._store_pricelists(
                ClaimStorePricelistsInput(pricelist=input.pricelist, stores=input.stores)
            )
            targets = {pl: input.items for pl in pricelists.by_store.values()}
        elif input.into is ItemsInto.BASE:
            base = claim(self.odoo, PRICELIST_BY_NAME, [input.pricelist], create=self._create_base)
            targets = {_claimed(base[input.pricelist]).id: input.items}
        else:
            targets = self._shadowing(input.pricelist, input.stores, input.items)
        for pl in sorted(targets):
            for item in targets[pl]:
                wanted[item_key(input.rollout_id, pl, item.product_id)] = (pl, item)
        if not wanted:
            return WrittenPricelistItems(written=0, created=0)
        created_here: dict[str, int] = {}

        def create(missing: list[str]) -> dict[str, Refusal]:
            ids = self._create_many(
                ITEM,
                [
                    {
                        "pricelist_id": wanted[key][0],
                        "applied_on": "0_product_variant",
                        "product_id": wanted[key][1].product_id,
                        "compute_price": "fixed",
                        "fixed_price": float(wanted[key][1].price),
                        **PARKED,
                    }
                    for key in missing
                ],
            )
            made = dict(zip(missing, ids, strict=True))
            created_here.update(made)
            self._bind(ITEM, made)
            return {}

        bound = self._claim_bound(ITEM, list(wanted), create)
        # Items this attempt created whose key another attempt bound first: never in force.
        remove(self.odoo, ITEM, sorted(set(created_here.values()) - set(bound.values())))
        # Put each bound item in force (again, after a retry: the same values).
        windows: dict[tuple[str, str | bool], list[int]] = defaultdict(list)
        for key, item_id in bound.items():
            item = wanted[key][1]
            end = odoo_datetime(item.end) if item.end else False
            windows[(odoo_datetime(item.start), end)].append(item_id)
        for (start, end), ids in windows.items():
            self.odoo.call(ITEM, "write", sorted(ids), {"date_start": start, "date_end": end})
        return WrittenPricelistItems(written=len(bound), created=len(created_here))

    @activity.defn
    def remove_pricelist_items(self, input: RemovePricelistItemsInput) -> RemovedPricelistItems:
        """Compensation: the rollout's own items go (found by its keys, never by their values),
        so the prices in force before it apply again; other rollouts' items stay."""
        own = self._bound(
            PRICELIST, [store_pricelist_key(input.pricelist, s) for s in input.stores]
        )
        lists = set(own.values())
        if input.base:
            base = self.odoo.call(
                PRICELIST, "search", [("name", "=", input.pricelist)], order="id asc", limit=1
            )
            lists.update(base[:1])
        keys = [
            item_key(input.rollout_id, pl, pid) for pl in sorted(lists) for pid in input.product_ids
        ]
        if not keys:
            return RemovedPricelistItems(removed=0)
        rows = self.odoo.call(
            "ir.model.data",
            "search_read",
            [*external_ids(ITEM).domain, ("name", "in", keys)],
            fields=["res_id"],
        )
        item_ids = sorted({r["res_id"] for r in rows if r.get("res_id")})
        existing = self.odoo.call(ITEM, "search", [("id", "in", item_ids)]) if item_ids else []
        remove(self.odoo, ITEM, item_ids)
        # Odoo drops an unlinked record's external ids itself; leftovers are removed here too.
        remove(self.odoo, "ir.model.data", [r["id"] for r in rows])
        return RemovedPricelistItems(removed=len(existing))

    # -- helpers ----------------------------------------------------------------------------

    def _create_base(self, names: list[str]) -> dict[str, Refusal]:
        self._create_pricelists({n: {"name": n} for n in names})
        return {}

    def _shadowing(
        self, base_name: str, stores: list[str], items: list[PricelistItem]
    ) -> dict[int, list[PricelistItem]]:
        """The store pricelists (among `stores`' existing ones) where a rule of their own
        comes before the fallback to the base pricelist for one of the items' products, and
        the items each needs so that the rollout's item is still the newest there. Rules are
        counted whatever their window: one that applies at another time, or is parked by a
        rollout being written, still comes first when it applies."""
        own = self._bound(PRICELIST, [store_pricelist_key(base_name, s) for s in stores])
        if not own:
            return {}
        found = self.odoo.call(
            PRICELIST, "search", [("name", "=", base_name)], order="id asc", limit=1
        )
        base_id: int | None = found[0] if found else None
        by_product = {str(i.product_id): i.product_id for i in items}
        lists = {str(pl): pl for pl in own.values()}
        pairs = self._may_differ(lists, base_id, by_product)
        item_of = {i.product_id: i for i in items}
        out: dict[int, list[PricelistItem]] = defaultdict(list)
        for pl, pid in sorted({(lists[p], by_product[s]) for p, s in pairs}):
            out[pl].append(item_of[pid])
        return dict(out)

    def _price(self, pricelist_id: int | None, product_id: int, at: datetime) -> Decimal:
        context: dict[str, Any] = {"date": odoo_datetime(at), "quantity": 1}
        if pricelist_id is not None:
            context["pricelist"] = pricelist_id
        price = self.odoo.call(
            "product.product", "get_contextual_price", [product_id], context=context
        )
        return cents(Decimal(str(price)))

    def _may_differ(
        self, store_lists: dict[str, int], base_id: int | None, product_ids: dict[str, int]
    ) -> list[tuple[str, str]]:
        """The (store, SKU) pairs whose price may differ from the base pricelist's: the store's
        pricelist has an item for the product, or a rule of someone else's (then every SKU)."""
        if not store_lists:
            return []
        rows = self.odoo.call(
            ITEM,
            "search_read",
            [
                ("pricelist_id", "in", sorted(set(store_lists.values()))),
                "|",
                ("product_id", "in", sorted(product_ids.values())),
                ("applied_on", "!=", "0_product_variant"),
            ],
            fields=["pricelist_id", "product_id", "applied_on", "base", "base_pricelist_id"],
        )
        sku_of = {pid: sku for sku, pid in product_ids.items()}
        store_of: dict[int, list[str]] = defaultdict(list)
        for store, pl in store_lists.items():
            store_of[pl].append(store)
        pairs: set[tuple[str, str]] = set()
        for r in rows:
            item_pl: int = r["pricelist_id"][0] if r["pricelist_id"] else 0
            base_pl = r["base_pricelist_id"][0] if r["base_pricelist_id"] else None
            if r["applied_on"] == "0_product_variant" and r["product_id"]:
                skus = [sku_of[r["product_id"][0]]] if r["product_id"][0] in sku_of else []
            elif r["applied_on"] == "3_global" and r["base"] == "pricelist" and base_pl == base_id:
                skus = []  # the fallback to the base pricelist
            else:
                skus = list(product_ids)
            for store in store_of.get(item_pl, []):
                pairs.update((store, sku) for sku in skus)
        return sorted(pairs)

    def _create_many(self, model: str, vals: list[dict[str, Any]]) -> list[int]:
        if not vals:
            return []
        ids = self.odoo.call(model, "create", vals)
        return [ids] if isinstance(ids, int) else list(ids)

    def _create_pricelists(self, vals: dict[str, dict[str, Any]]) -> dict[str, int]:
        keys = list(vals)
        return dict(zip(keys, self._create_many(PRICELIST, [vals[k] for k in keys]), strict=True))

    def _bind(self, model: str, records: dict[str, int]) -> None:
        """Give each record its external id (retailflow.<key>). Odoo keeps (module, name)
        unique: a key a racing attempt bound first is skipped (its record is then not bound,
        and the caller removes it)."""
        vals = [
            {"module": MODULE, "name": key, "model": model, "res_id": rid, "noupdate": True}
            for key, rid in records.items()
        ]
        if not vals:
            return
        try:
            self.odoo.call_raw("ir.model.data", "create", vals)
            return
        except RPCError:
            pass  # one by one, below
        for one in vals:
            try:
                self.odoo.call_raw("ir.model.data", "create", [one])
            except RPCError as e:
                if UNIQUE_VIOLATION not in str(e):
                    raise_classified(e, f"ir.model.data.create {one['name']}")

    def _bound(self, model: str, keys: Iterable[str]) -> dict[str, int]:
        """The record each key is bound to (the lowest external id of a key wins)."""
        keys = list(keys)
        if not keys:
            return {}
        rows = self.odoo.call(
            "ir.model.data",
            "search_read",
            [*external_ids(model).domain, ("name", "in", keys)],
            fields=["name", "res_id"],
            order="id asc",
        )
        bound: dict[str, int] = {}
        for r in rows:
            if r.get("res_id"):
                bound.setdefault(r["name"], r["res_id"])
        return bound

    def _claim_bound(self, model: str, keys: list[str], create: Creator) -> dict[str, int]:
        """Claim an external id per key (creating and binding records for missing ones), and
        return the record each is bound to, checking those records still exist."""
        claimed = claim(self.odoo, external_ids(model), keys, create=create)
        for key in keys:
            _claimed(claimed[key])
        bound = self._bound(model, keys)
        alive = set(self.odoo.call(model, "search", [("id", "in", sorted(set(bound.values())))]))
        gone = [k for k in keys if bound.get(k) not in alive]
        if gone:
            # Someone deleted the record but not its key (or the key lost its record): drop
            # the key and let the retry create the record again.
            rows = self.odoo.call(
                "ir.model.data",
                "search",
                [*external_ids(model).domain, ("name", "in", gone)],
            )
            remove(self.odoo, "ir.model.data", rows)
            raise OdooUnavailable(f"{len(gone)} {model} record(s) gone from under their keys")
        return bound


def _claimed(outcome: object) -> Claimed:
    if not isinstance(outcome, Claimed):
        raise ApplicationError(
            f"Odoo refused a pricelist record: {outcome}", type="OdooRefused", non_retryable=True
        )
    return outcome
