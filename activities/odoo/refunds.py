"""Refunds in Odoo: the original sale (read back from its posted entry), the refund's
reservation (a draft entry holding its share of what the sale paid), and its posting."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.odoo.base import (
    OdooActivityBase,
    narration,
    raise_refusal,
    record_from_narration,
)
from activities.odoo.claim import Refusal, remove
from activities.odoo.client import OdooUnavailable
from activities.odoo.summary import sales_of_record
from domain.posting import refund_entry_for
from domain.refund import (
    PriorRefund,
    RefundLine,
    RefundRejected,
    RefundRequest,
    RefundValue,
    Tender,
    allocate,
    excess,
    refundable_amount,
    value_of,
)
from domain.sale import Sale, sale_key


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


class RedraftRefundInput(BaseModel):
    request: RefundRequest
    reservation: Reservation
    on: date


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


class OdooRefundActivities(OdooActivityBase):
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
            summarised = self._from_summary(input.store_id, key)
            if summarised is not None:
                return summarised
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

    def _from_summary(self, store_id: str, key: str) -> LoadedSale | None:
        """A sale booked in summary mode: the posted summary whose narration lists it."""
        rows = self.odoo.call(
            "account.move",
            "search_read",
            [
                ("ref", "=like", f"SUM:{store_id}:%"),
                ("state", "=", "posted"),
                ("narration", "ilike", key),
            ],
            fields=["name", "narration"],
            order="id asc",
        )
        for row in rows:
            # `ilike` also matches longer keys (T1 in T10): only an exact key counts.
            for sale in sales_of_record(record_from_narration(row["narration"])):
                if sale.key == key:
                    return LoadedSale(sale=sale, move_id=row["id"], move_name=row["name"])
        return None

    @activity.defn
    def reserve_refund(self, input: ReserveRefundInput) -> Reservation:
        """Claim the refund's share of the sale with a draft entry, exactly once.

        Every other refund of the sale, pending (draft) or done (posted), counts against what
        the sale paid, whatever its id: PostgreSQL makes commits visible out of id order, so an
        order by id decides nothing. The workflow calls this inside the sale's refund lock
        (workflows/sale_refunds.py), so no other reservation of the sale runs meanwhile; the
        draft is still checked again after it is written, and a draft left by an earlier
        attempt (a lost response, a crash) is checked like a new one, so a reservation that
        does not fit is removed and refused, never kept.
        """
        request, sale = input.request, input.sale
        own, others = self._own_and_others(request)
        if not own:
            value, tenders = self._value_and_tenders(request, sale, others)  # refuse early
            self._create_draft(request, value, tenders, input.on)
            own, others = self._own_and_others(request)
            if not own:
                raise OdooUnavailable(f"draft {request.key} vanished while being claimed")
        posted = [m for m in own if m["state"] == "posted"]
        survivor = posted[0] if posted else own[0]
        losers = [m["id"] for m in own if m["id"] != survivor["id"] and m["state"] == "draft"]
        if not posted:
            problems = excess(sale, [*others, self._prior(survivor)])
            if problems:
                remove(self.odoo, "account.move", [m["id"] for m in own if m["state"] == "draft"])
                left = refundable_amount(sale, others)
                raise ApplicationError(
                    f"refund {request.refund_id} does not fit what {request.sale_key} can still "
                    f"refund: {left} ({'; '.join(problems)})",
                    type="RefundExceedsSale",
                    non_retryable=True,
                )
        return self._reservation(survivor, losers)

    @activity.defn
    def redraft_refund(self, input: RedraftRefundInput) -> Reservation:
        """Write a paid refund's entry again after its draft was deleted in Odoo (by a person):
        the customer has the money, so the books must show it. Its values are the ones that
        were reserved; a live entry of the refund, if one is there again, is used instead."""
        request = input.request
        own, _ = self._own_and_others(request)
        if not own:
            r = input.reservation
            self._create_draft(request, r.value, r.tenders, input.on)
            own, _ = self._own_and_others(request)
            if not own:
                raise OdooUnavailable(f"draft {request.key} vanished while being written")
        posted = [m for m in own if m["state"] == "posted"]
        survivor = posted[0] if posted else own[0]
        losers = [m["id"] for m in own if m["id"] != survivor["id"] and m["state"] == "draft"]
        return self._reservation(survivor, losers)

    def _own_and_others(
        self, request: RefundRequest
    ) -> tuple[list[dict[str, Any]], list[PriorRefund]]:
        """This refund's live entries (lowest id first), and every other refund of its sale."""
        moves = self._refund_moves(request.sale_key)
        own = [m for m in moves if m["ref"] == request.key]
        return own, [self._prior(m) for m in moves if m["ref"] != request.key]

    def _create_draft(
        self, request: RefundRequest, value: RefundValue, tenders: list[Tender], on: date
    ) -> None:
        entry = refund_entry_for(
            request.key,
            request.sale_key,
            on,
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
        remove(self.odoo, "account.move", [input.move_id])

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
            answer = self._post_entry(input.refund_key, input.move_id)
            if isinstance(answer, Refusal):
                raise_refusal(answer)
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
        remove(self.odoo, "account.move", duplicates)
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
