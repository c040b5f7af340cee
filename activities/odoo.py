"""OdooActivities: exactly-once journal posting and stock moves for sales.

Posting follows the claim-by-draft protocol (ARCHITECTURE.md, "Exactly-once posting"): create
drafts carrying the sale key in `ref`, then converge every attempt, racing or retried, on one
posted move per key. Stock leaves through one outgoing picking per posting, claimed the same
way by its `origin`. Every method is a plain `def`: odoorpc blocks, so the worker runs these on
a thread pool.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from odoorpc.error import RPCError
from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.odoo_client import (
    OdooClient,
    OdooUnavailable,
    error_name,
    is_sequence_collision,
    raise_classified,
)
from domain.money import cents
from domain.posting import (
    CurrencyNotBooked,
    JournalEntry,
    PostingProfile,
    StockLine,
    journal_entry_for,
    refund_entry_for,
)
from domain.pricing import PriceChange
from domain.refund import (
    PriorRefund,
    RefundLine,
    RefundRejected,
    RefundRequest,
    RefundValue,
    Tender,
    allocate,
    value_of,
)
from domain.sale import Sale, sale_key


class PostSaleInput(BaseModel):
    sale: Sale


class PostSaleResult(BaseModel):
    key: str
    move_id: int
    move_name: str
    # True when this key was already posted before this activity ran (a resubmitted sale, or
    # a retry after a lost response): nothing new was booked.
    already_posted: bool


class PostSalesBatchInput(BaseModel):
    sales: list[Sale]


class SaleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    txn_id: str
    posted: bool
    move_id: int | None = None
    move_name: str | None = None
    already_posted: bool = False
    error_type: str | None = None
    reason: str | None = None


class PostSalesBatchResult(BaseModel):
    outcomes: list[SaleOutcome]


class DecrementStockInput(BaseModel):
    # Idempotency key of the picking: a sale key, or a batch key derived from its sales.
    origin: str
    lines: list[StockLine]
    # False: goods leave (stock -> customers); True: goods come back (a refund's restock).
    incoming: bool = False


class DecrementStockResult(BaseModel):
    picking_id: int | None
    picking_name: str | None
    already_done: bool = False
    # Services and SKUs Odoo does not know move no stock; they are reported, not fatal.
    skipped_skus: list[str] = []


class PreparePriceRolloutInput(BaseModel):
    changes: list[PriceChange]
    # When the old prices are read: the rollout's effective time.
    at: datetime
    pricelist: str


class PreparedPriceRollout(BaseModel):
    pricelist_id: int
    product_ids: dict[str, int]
    # The price each SKU had in the stores' pricelist at the effective time: what compensation
    # restores in the stores.
    old_prices: dict[str, Decimal]


class PricelistItem(BaseModel):
    product_id: int
    price: Decimal
    start: datetime
    end: datetime | None = None


class WritePricelistItemsInput(BaseModel):
    pricelist_id: int
    items: list[PricelistItem]


class WrittenPricelistItems(BaseModel):
    item_ids: list[int]


class RemovePricelistItemsInput(BaseModel):
    item_ids: list[int]


NARRATION_PREFIX = "retailflow "


def narration(kind: str, record: dict[str, Any]) -> str:
    """What retailflow keeps in a move's narration: a JSON record, readable by people too."""
    return f"{NARRATION_PREFIX}{kind}: {json.dumps(record, sort_keys=True)}"


def record_from_narration(text: str | bool | None) -> dict[str, Any] | None:
    """The JSON record of a narration (Odoo stores it as HTML: tags and escapes undone)."""
    if not isinstance(text, str) or "{" not in text:
        return None
    plain = html.unescape(re.sub(r"<[^>]+>", "", text))
    try:
        record = json.loads(plain[plain.index("{") : plain.rindex("}") + 1])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def odoo_datetime(at: datetime) -> str:
    """Odoo's Datetime wire format: naive UTC 'YYYY-MM-DD HH:MM:SS'."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class LoadSaleInput(BaseModel):
    store_id: str
    txn_id: str


class LoadedSale(BaseModel):
    sale: Sale
    move_id: int
    move_name: str


class ReserveRefundInput(BaseModel):
    request: RefundRequest
    sale: Sale
    on: date


class Reservation(BaseModel):
    """A refund's draft entry in Odoo: it holds the refund's share of the sale until it is
    posted (paid) or removed (rejected), so concurrent refunds can never together exceed it."""

    move_id: int
    value: RefundValue
    tenders: list[Tender]


class ReleaseRefundInput(BaseModel):
    move_id: int


class PostRefundInput(BaseModel):
    move_id: int
    refund_key: str
    # Who asked, who approved and why, the gateway's refund ids: kept with the entry.
    audit: dict[str, Any]


class PostedRefund(BaseModel):
    move_id: int
    move_name: str


class _Refused(Exception):
    """A sale this batch cannot post; the others go on."""

    def __init__(self, error_type: str, reason: str) -> None:
        super().__init__(reason)
        self.error_type = error_type
        self.reason = reason


class OdooActivities:
    def __init__(self, odoo: OdooClient, profile: PostingProfile) -> None:
        self.odoo = odoo
        self.profile = profile

    # -- activities ---------------------------------------------------------------------------

    @activity.defn
    def post_sale(self, input: PostSaleInput) -> PostSaleResult:
        """Post one sale's entry exactly once. Business refusals are non-retryable."""
        outcome = self._post([input.sale])[0]
        if not outcome.posted:
            raise ApplicationError(
                outcome.reason or "refused", type=outcome.error_type, non_retryable=True
            )
        assert outcome.move_id is not None and outcome.move_name is not None
        return PostSaleResult(
            key=outcome.key,
            move_id=outcome.move_id,
            move_name=outcome.move_name,
            already_posted=outcome.already_posted,
        )

    @activity.defn
    def post_sales_batch(self, input: PostSalesBatchInput) -> PostSalesBatchResult:
        """Post many sales in a few RPCs. A refused sale is reported, never blocks the rest."""
        return PostSalesBatchResult(outcomes=self._post(input.sales))

    @activity.defn
    def decrement_stock(self, input: DecrementStockInput) -> DecrementStockResult:
        """One outgoing picking (stock → customers) per posting, validated exactly once.
        With `incoming`, the receipt that puts returned goods back (customers → stock)."""
        route = self.odoo.stock_route(self.profile.warehouse_code)
        src, dest = route.stock_location_id, route.customer_location_id
        picking_type = route.out_type_id
        if input.incoming:
            src, dest, picking_type = dest, src, route.in_type_id
        found, _ = self.odoo.products(line.sku for line in input.lines)
        lines = [ln for ln in input.lines if ln.sku in found and found[ln.sku].moves_stock]
        skipped = sorted({ln.sku for ln in input.lines} - {ln.sku for ln in lines})
        if not lines:
            return DecrementStockResult(picking_id=None, picking_name=None, skipped_skus=skipped)

        done = self._done_picking(input.origin)
        if done:
            return DecrementStockResult(
                picking_id=done["id"],
                picking_name=done["name"],
                already_done=True,
                skipped_skus=skipped,
            )
        mine = self.odoo.call(
            "stock.picking",
            "create",
            {
                "picking_type_id": picking_type,
                "location_id": src,
                "location_dest_id": dest,
                "origin": input.origin,
                "move_ids": [
                    (
                        0,
                        0,
                        {
                            "name": f"{input.origin} {ln.sku}",
                            "product_id": found[ln.sku].id,
                            "product_uom": found[ln.sku].uom_id,
                            # Preset quantity: validate in full even without stock (no backorder).
                            "product_uom_qty": float(ln.qty),
                            "quantity": float(ln.qty),
                            "location_id": src,
                            "location_dest_id": dest,
                        },
                    )
                    for ln in lines
                ],
            },
        )
        rows = self._pickings(input.origin)
        done_rows = [r for r in rows if r["state"] == "done"]
        if done_rows:
            self._unlink_quietly("stock.picking", [mine])
            return DecrementStockResult(
                picking_id=done_rows[0]["id"],
                picking_name=done_rows[0]["name"],
                already_done=True,
                skipped_skus=skipped,
            )
        live = [r for r in rows if r["state"] != "cancel"]
        if not live:
            raise OdooUnavailable(f"picking {input.origin} vanished while being claimed")
        survivor = live[0]["id"]
        self._unlink_quietly("stock.picking", [r["id"] for r in live[1:]])
        try:
            answer = self.odoo.call_raw("stock.picking", "button_validate", [survivor])
        except RPCError as e:
            # Another attempt may have validated it between our read and our call.
            if self._done_picking(input.origin) is None:
                raise_classified(e, f"stock.picking.button_validate {input.origin}")
            answer = True
        if answer is not True:
            raise OdooUnavailable(f"picking {input.origin} not validated, Odoo answered {answer!r}")
        done = self._done_picking(input.origin)
        if done is None:
            raise OdooUnavailable(f"picking {input.origin} validated but not done")
        return DecrementStockResult(
            picking_id=done["id"], picking_name=done["name"], skipped_skus=skipped
        )

    @activity.defn
    def prepare_price_rollout(self, input: PreparePriceRolloutInput) -> PreparedPriceRollout:
        """Check every SKU exists and read the prices in force, before anything is written."""
        found, problems = self.odoo.products(c.sku for c in input.changes)
        if problems:
            raise ApplicationError(
                "; ".join(problems[sku] for sku in sorted(problems)),
                type="UnknownSku",
                non_retryable=True,
            )
        pricelist_id = self._claim_one(
            "product.pricelist", [("name", "=", input.pricelist)], {"name": input.pricelist}
        )
        context = {"pricelist": pricelist_id, "date": odoo_datetime(input.at), "quantity": 1}
        old = {
            c.sku: cents(
                Decimal(
                    str(
                        self.odoo.call(
                            "product.product",
                            "get_contextual_price",
                            [found[c.sku].id],
                            context=context,
                        )
                    )
                )
            )
            for c in input.changes
        }
        return PreparedPriceRollout(
            pricelist_id=pricelist_id,
            product_ids={sku: info.id for sku, info in found.items()},
            old_prices=old,
        )

    @activity.defn
    def write_pricelist_items(self, input: WritePricelistItemsInput) -> WrittenPricelistItems:
        """One fixed-price item per change, exactly once (claimed by its natural key)."""
        ids = []
        for item in input.items:
            vals: dict[str, Any] = {
                "pricelist_id": input.pricelist_id,
                "applied_on": "0_product_variant",
                "product_id": item.product_id,
                "compute_price": "fixed",
                "fixed_price": float(item.price),
                "date_start": odoo_datetime(item.start),
                "date_end": odoo_datetime(item.end) if item.end else False,
            }
            ids.append(
                self._claim_one(
                    "product.pricelist.item", [(k, "=", v) for k, v in vals.items()], vals
                )
            )
        return WrittenPricelistItems(item_ids=ids)

    @activity.defn
    def remove_pricelist_items(self, input: RemovePricelistItemsInput) -> None:
        """Compensation: the rollout's items go, so the prices in force before it apply again."""
        self._unlink_quietly("product.pricelist.item", input.item_ids)

    # -- refunds ----------------------------------------------------------------------------

    @activity.defn
    def load_sale_for_refund(self, input: LoadSaleInput) -> LoadedSale:
        """The original sale, as its posted entry in Odoo keeps it."""
        key = sale_key(input.store_id, input.txn_id)
        rows = self.odoo.call(
            "account.move",
            "search_read",
            [("ref", "=", key), ("state", "=", "posted")],
            fields=["name", "narration"],
            order="id asc",
            limit=1,
        )
        if not rows:
            raise ApplicationError(
                f"sale {key} has no posted entry in Odoo (not posted yet, or unknown)",
                type="SaleNotPosted",
                non_retryable=True,
            )
        record = record_from_narration(rows[0]["narration"])
        if record is None:
            raise ApplicationError(
                f"entry {rows[0]['name']} of {key} does not carry the sale (posted outside "
                "retailflow?): refund it in Odoo by hand",
                type="SaleNotReadable",
                non_retryable=True,
            )
        return LoadedSale(
            sale=Sale.model_validate(record), move_id=rows[0]["id"], move_name=rows[0]["name"]
        )

    @activity.defn
    def reserve_refund(self, input: ReserveRefundInput) -> Reservation:
        """Claim the refund's share of the sale with a draft entry, exactly once.

        Every refund of a sale, pending (draft) or done (posted), counts against what the sale
        paid. Concurrent requests are ordered by their draft's id: a draft only counts the
        refunds with lower ids, which were created before it and are therefore visible to it,
        so two requests can never both take the same money. The loser's draft is removed.
        """
        request, sale = input.request, input.sale
        mine = [m for m in self._refund_moves(request.sale_key) if m["ref"] == request.key]
        if mine:
            return self._reservation(mine[0], [m["id"] for m in mine[1:]])
        prior = [self._prior(m) for m in self._refund_moves(request.sale_key)]
        value, tenders = self._value_and_tenders(request, sale, prior)
        entry = refund_entry_for(
            request.key,
            request.sale_key,
            input.on,
            value.net,
            value.tax_by_rate,
            [(t.method, t.amount) for t in tenders],
            self.profile,
        )
        vals = self._move_vals(entry)
        record = {
            "refund_id": request.refund_id,
            "sale_key": request.sale_key,
            "amount": str(value.amount),
            "net": str(value.net),
            "tax_by_rate": {str(k): str(v) for k, v in value.tax_by_rate.items()},
            "tenders": [t.model_dump(mode="json") for t in tenders],
            "lines": [ln.model_dump(mode="json") for ln in request.lines or []],
            "requested_by": request.requested_by,
            "reason": request.reason,
        }
        vals["narration"] = narration("refund", record)
        self.odoo.call("account.move", "create", vals)
        moves = self._refund_moves(request.sale_key)
        own = [m for m in moves if m["ref"] == request.key]
        if not own:
            raise OdooUnavailable(f"draft {request.key} vanished while being claimed")
        survivor = own[0]
        before = [
            self._prior(m) for m in moves if m["id"] < survivor["id"] and m["ref"] != request.key
        ]
        try:
            self._value_and_tenders(request, sale, before)
        except ApplicationError:
            # A concurrent refund got there first: ours does not fit any more.
            self._unlink_quietly("account.move", [m["id"] for m in own if m["state"] == "draft"])
            raise
        return self._reservation(survivor, [m["id"] for m in own[1:]])

    @activity.defn
    def release_refund(self, input: ReleaseRefundInput) -> None:
        """A refund that will not be paid gives its share back: its draft goes."""
        rows = self.odoo.call("account.move", "read", [input.move_id], ["state", "name"])
        if rows and rows[0]["state"] == "posted":
            raise ApplicationError(
                f"refund entry {rows[0]['name']} is posted: a paid refund is never unwound",
                type="RefundAlreadyPosted",
                non_retryable=True,
            )
        self._unlink_quietly("account.move", [input.move_id])

    @activity.defn
    def post_refund(self, input: PostRefundInput) -> PostedRefund:
        """Post the refund's entry (its draft, with the audit trail in the narration), once."""
        rows = self.odoo.call(
            "account.move", "read", [input.move_id], ["state", "name", "narration"]
        )
        if not rows:
            raise ApplicationError(
                f"refund entry {input.move_id} ({input.refund_key}) is gone from Odoo",
                type="RefundEntryMissing",
                non_retryable=True,
            )
        if rows[0]["state"] != "posted":
            record = record_from_narration(rows[0]["narration"]) or {}
            record.update(input.audit)
            self.odoo.call(
                "account.move", "write", [input.move_id], {"narration": narration("refund", record)}
            )
            refused: dict[str, _Refused] = {}
            self._post_one(input.refund_key, input.move_id, refused)
            if input.refund_key in refused:
                r = refused[input.refund_key]
                raise ApplicationError(r.reason, type=r.error_type, non_retryable=True)
        row = self.odoo.call("account.move", "read", [input.move_id], ["state", "name"])[0]
        if row["state"] != "posted":
            raise OdooUnavailable(f"refund entry {input.move_id} not posted after posting")
        return PostedRefund(move_id=input.move_id, move_name=row["name"])

    def _refund_moves(self, key_of_sale: str) -> list[dict[str, Any]]:
        """Every refund entry of a sale, draft or posted, lowest id first."""
        lines = self.odoo.call(
            "account.move.line",
            "search_read",
            [("name", "=like", f"REFUND:% {key_of_sale} %"), ("move_id.ref", "=like", "REFUND:%")],
            fields=["move_id"],
        )
        ids = sorted({ln["move_id"][0] for ln in lines})
        if not ids:
            return []
        rows: list[dict[str, Any]] = self.odoo.call(
            "account.move", "read", ids, ["ref", "state", "narration", "name"]
        )
        return sorted((r for r in rows if r["state"] in ("draft", "posted")), key=lambda r: r["id"])

    def _prior(self, move: dict[str, Any]) -> PriorRefund:
        record = record_from_narration(move["narration"]) or {}
        return PriorRefund(
            refund_id=str(record.get("refund_id", move["ref"])),
            tenders=[Tender.model_validate(t) for t in record.get("tenders", [])],
            lines=[RefundLine.model_validate(ln) for ln in record.get("lines", [])],
        )

    def _value_and_tenders(
        self, request: RefundRequest, sale: Sale, prior: list[PriorRefund]
    ) -> tuple[RefundValue, list[Tender]]:
        try:
            value = value_of(request, sale, prior)
            return value, allocate(value.amount, sale, prior)
        except RefundRejected as e:
            raise ApplicationError(str(e), type="RefundExceedsSale", non_retryable=True) from e

    def _reservation(self, move: dict[str, Any], duplicates: list[int]) -> Reservation:
        self._unlink_quietly("account.move", duplicates)
        record = record_from_narration(move["narration"]) or {}
        return Reservation(
            move_id=move["id"],
            value=RefundValue(
                amount=Decimal(record["amount"]),
                net=Decimal(record["net"]),
                tax_by_rate={Decimal(k): Decimal(v) for k, v in record["tax_by_rate"].items()},
            ),
            tenders=[Tender.model_validate(t) for t in record["tenders"]],
        )

    # -- posting ------------------------------------------------------------------------------

    def _post(self, sales: list[Sale]) -> list[SaleOutcome]:
        refused: dict[str, _Refused] = {}
        vals: dict[str, dict[str, Any]] = {}
        _, problems = self.odoo.products({line.sku for s in sales for line in s.lines})
        for sale in sales:
            try:
                unknown = [problems[ln.sku] for ln in sale.lines if ln.sku in problems]
                if unknown:
                    kind = "UnknownSku" if unknown[0].startswith("unknown") else "AmbiguousSku"
                    raise _Refused(kind, "; ".join(dict.fromkeys(unknown)))
                vals[sale.key] = self._move_vals(journal_entry_for(sale, self.profile))
                # The whole sale rides along, so Odoo alone can answer a refund later.
                vals[sale.key]["narration"] = narration("sale", sale.model_dump(mode="json"))
            except CurrencyNotBooked as e:
                refused[sale.key] = _Refused("CurrencyNotBooked", str(e))
            except _Refused as e:
                refused[sale.key] = e

        posted: dict[str, tuple[int, str, bool]] = {}
        if vals:
            self._create_drafts(vals, refused)
            keys = [k for k in vals if k not in refused]
            posted = self._converge(keys, refused)

        outcomes = []
        for sale in sales:
            if sale.key in refused:
                r = refused[sale.key]
                outcomes.append(
                    SaleOutcome(
                        key=sale.key,
                        txn_id=sale.txn_id,
                        posted=False,
                        error_type=r.error_type,
                        reason=r.reason,
                    )
                )
            else:
                move_id, name, already = posted[sale.key]
                outcomes.append(
                    SaleOutcome(
                        key=sale.key,
                        txn_id=sale.txn_id,
                        posted=True,
                        move_id=move_id,
                        move_name=name,
                        already_posted=already,
                    )
                )
        return outcomes

    def _move_vals(self, entry: JournalEntry) -> dict[str, Any]:
        accounts = self.odoo.account_ids(line.account_code for line in entry.lines)
        return {
            "move_type": "entry",
            "journal_id": self.odoo.journal_id(entry.journal_code),
            "date": entry.date.isoformat(),
            "ref": entry.ref,
            "line_ids": [
                (
                    0,
                    0,
                    {
                        "account_id": accounts[line.account_code],
                        "name": line.name,
                        "debit": float(line.debit),
                        "credit": float(line.credit),
                    },
                )
                for line in entry.lines
            ],
        }

    def _create_drafts(self, vals: dict[str, dict[str, Any]], refused: dict[str, _Refused]) -> None:
        """Create every draft in one RPC; if Odoo refuses the batch, find the culprit(s)."""
        keys = [k for k in vals if k not in refused]
        if not keys:
            return
        try:
            self.odoo.call_raw("account.move", "create", [vals[k] for k in keys])
            return
        except RPCError as e:
            if len(keys) == 1:
                self._refuse_or_raise(e, keys[0], refused)
                return
        for key in keys:
            try:
                self.odoo.call_raw("account.move", "create", vals[key])
            except RPCError as e:
                self._refuse_or_raise(e, key, refused)

    def _refuse_or_raise(self, e: RPCError, key: str, refused: dict[str, _Refused]) -> None:
        try:
            raise_classified(e, f"account.move.create {key}")
        except ApplicationError as app:
            refused[key] = _Refused(app.type or "OdooError", str(e))

    def _converge(
        self, keys: list[str], refused: dict[str, _Refused]
    ) -> dict[str, tuple[int, str, bool]]:
        """Resolve each key to one posted move: keep a posted one, else post the lowest draft."""
        by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self._moves(keys):
            by_ref[row["ref"]].append(row)
        result: dict[str, tuple[int, str, bool]] = {}
        to_unlink: list[int] = []
        survivors: dict[str, int] = {}
        for key in keys:
            rows = by_ref.get(key, [])
            posted = [r for r in rows if r["state"] == "posted"]
            drafts = [r["id"] for r in rows if r["state"] == "draft"]
            if posted:
                result[key] = (posted[0]["id"], posted[0]["name"], True)
                to_unlink.extend(drafts)
            elif drafts:
                survivors[key] = drafts[0]
                to_unlink.extend(drafts[1:])
            else:
                raise OdooUnavailable(f"draft for {key} vanished while being claimed")
        self._unlink_quietly("account.move", to_unlink)
        if survivors:
            self._post_moves(survivors, refused)
            names = {r["id"]: r for r in self._moves_by_id(list(survivors.values()))}
            for key, move_id in survivors.items():
                if key in refused:
                    continue
                move = names.get(move_id)
                if move is None or move["state"] != "posted":
                    raise OdooUnavailable(f"entry {move_id} for {key} is not posted after posting")
                result[key] = (move_id, move["name"], False)
        return result

    def _post_moves(self, survivors: dict[str, int], refused: dict[str, _Refused]) -> None:
        ids = list(survivors.values())
        try:
            self.odoo.call_raw("account.move", "action_post", ids)
            return
        except RPCError:
            pass  # find out which one, below
        for key, move_id in survivors.items():
            self._post_one(key, move_id, refused)

    def _post_one(self, key: str, move_id: int, refused: dict[str, _Refused]) -> None:
        for _ in range(3):
            try:
                self.odoo.call_raw("account.move", "action_post", [move_id])
                return
            except RPCError as e:
                if is_sequence_collision(e):
                    # Two drafts got the same sequence name (first move of a period, created
                    # concurrently): reset the name and let Odoo number it again (facts §h).
                    self.odoo.call("account.move", "write", [move_id], {"name": "/"})
                    continue
                if "must be in draft" in str(e):
                    return  # another attempt posted it first
                if error_name(e) == "odoo.exceptions.MissingError":
                    raise OdooUnavailable(f"entry {move_id} for {key} vanished") from e
                self._refuse_or_raise(e, key, refused)
                return
        raise OdooUnavailable(f"entry {move_id} for {key}: sequence name kept colliding")

    # -- reads --------------------------------------------------------------------------------

    def _moves(self, refs: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.odoo.call(
            "account.move",
            "search_read",
            [("ref", "in", refs)],
            fields=["ref", "state", "name"],
            order="id asc",
        )
        return rows

    def _moves_by_id(self, ids: list[int]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.odoo.call("account.move", "read", ids, ["state", "name"])
        return rows

    def _pickings(self, origin: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.odoo.call(
            "stock.picking",
            "search_read",
            [("origin", "=", origin)],
            fields=["state", "name"],
            order="id asc",
        )
        return rows

    def _done_picking(self, origin: str) -> dict[str, Any] | None:
        return next((r for r in self._pickings(origin) if r["state"] == "done"), None)

    def _claim_one(self, model: str, domain: list[Any], vals: dict[str, Any]) -> int:
        """The record matching `domain`, created once even across retries and races: the lowest
        id wins and any other copy is removed."""
        found: list[int] = self.odoo.call(model, "search", domain, order="id asc")
        if found:
            return found[0]
        self.odoo.call(model, "create", vals)
        found = self.odoo.call(model, "search", domain, order="id asc")
        if not found:
            raise OdooUnavailable(f"{model} created but not found by {domain}")
        self._unlink_quietly(model, found[1:])
        return found[0]

    def _unlink_quietly(self, model: str, ids: list[int]) -> None:
        """Delete leftovers of other attempts; one a racing attempt deleted first is fine."""
        if not ids:
            return
        try:
            self.odoo.call_raw(model, "unlink", ids)
        except RPCError:
            for one in ids:
                try:
                    self.odoo.call_raw(model, "unlink", [one])
                except RPCError as e:
                    if error_name(e) != "odoo.exceptions.MissingError":
                        raise_classified(e, f"{model}.unlink {one}")
