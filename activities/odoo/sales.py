"""Sales into the general ledger: one posted journal entry per sale, exactly once.

Each sale's entry carries the sale key (`POS:{store}:{txn}`) in `ref` and the whole sale, as
JSON, in its narration (so refunds can be answered from Odoo alone); it is claimed by draft
(activities/odoo/claim.py), alone or in batches of many sales per RPC.

Exactly-once stock: the narration also names the stock origin (picking key) responsible for the
sale's goods, the one of the path whose draft became the posted entry. Every path reads it back
and moves a sale's stock only when the entry names its own origin (docs/architecture.md,
"Exactly-once stock").
"""

from __future__ import annotations

from typing import Any

from odoorpc.error import RPCError
from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities.odoo.base import (
    OdooActivityBase,
    first_attempt,
    narration,
    raise_refusal,
    refusal_of,
    stock_origin_of,
)
from activities.odoo.claim import MOVE, Claimed, Refusal, claim
from domain.posting import AmountNotBookable, CurrencyNotBooked, journal_entry_for
from domain.sale import Sale
from workers.metrics import record_sale_outcomes


class PostSaleInput(BaseModel):
    sale: Sale
    # The picking origin that will move this sale's goods if this call's draft is the one
    # posted. None: the sale key (the per-sale path).
    stock_origin: str | None = None


class PostSaleResult(BaseModel):
    key: str
    move_id: int
    # The posted entry's name when this call knows it without another RPC (Odoo names a draft
    # `/` until it is posted): an entry that was already posted, or the first of a period.
    # The entry is found by its ref, the sale key, in any case.
    move_name: str | None = None
    # True when this key was already posted before this activity ran (a resubmitted sale, or
    # a retry after a lost response): nothing new was booked.
    already_posted: bool
    # The stock origin the posted entry names, and whether it is this call's: only then does
    # the caller move the sale's stock (a retry after a lost response owns it too). Defaults
    # keep results recorded before entries named an origin meaning what they meant.
    stock_origin: str | None = None
    owns_stock: bool = True


class PostSalesBatchInput(BaseModel):
    sales: list[Sale]
    # The batch's picking origin, made once when the batch is formed. None: each sale's key.
    stock_origin: str | None = None


class SaleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    txn_id: str
    posted: bool
    move_id: int | None = None
    move_name: str | None = None
    already_posted: bool = False
    stock_origin: str | None = None
    owns_stock: bool = True
    error_type: str | None = None
    reason: str | None = None


class PostSalesBatchResult(BaseModel):
    outcomes: list[SaleOutcome]


class OdooSalesActivities(OdooActivityBase):
    _currency: str | None = None

    @activity.defn
    def post_sale(self, input: PostSaleInput) -> PostSaleResult:
        """Post one sale's entry exactly once. Business refusals are non-retryable."""
        # One sale: what the claim read is enough, no read back (an RPC a sale, docs/
        # odoo17-behaviour.md §h).
        outcome = self._post([input.sale], input.stock_origin, read_back=False)[0]
        record_sale_outcomes("per-sale", [outcome])
        if not outcome.posted:
            raise_refusal(Refusal(outcome.error_type or "OdooError", outcome.reason or "refused"))
        assert outcome.move_id is not None
        return PostSaleResult(
            key=outcome.key,
            move_id=outcome.move_id,
            move_name=outcome.move_name,
            already_posted=outcome.already_posted,
            stock_origin=outcome.stock_origin,
            owns_stock=outcome.owns_stock,
        )

    @activity.defn
    def post_sales_batch(self, input: PostSalesBatchInput) -> PostSalesBatchResult:
        """Post many sales in a few RPCs. A refused sale is reported, never blocks the rest."""
        outcomes = self._post(input.sales, input.stock_origin)
        record_sale_outcomes("batched", outcomes)
        return PostSalesBatchResult(outcomes=outcomes)

    def _post(
        self, sales: list[Sale], stock_origin: str | None, read_back: bool = True
    ) -> list[SaleOutcome]:
        """Claim and post the sales' entries. `read_back`: read the posted entries' names (one
        RPC for the batch); without it, what the claim read (narration, and a name if the
        draft had one) is used."""
        refused = self._screen(sales)
        vals: dict[str, dict[str, Any]] = {}
        origins = {s.key: stock_origin or s.key for s in sales}
        for sale in sales:
            if sale.key in refused:
                continue
            vals[sale.key] = self._move_vals(journal_entry_for(sale, self.profile))
            # The whole sale rides along, so Odoo alone can answer a refund later.
            vals[sale.key]["narration"] = narration(
                "sale", sale.ledger_record(), stock_origin=origins[sale.key]
            )

        claimed = claim(
            self.odoo,
            MOVE,
            vals,
            create=lambda keys: self._create_drafts({k: vals[k] for k in keys}),
            finish=self._post_entries,
            # A first attempt expects no entry yet: create at once (a duplicate still shows
            # in the read that follows). A retry reads first.
            fresh=first_attempt(),
            fields=() if read_back else ("narration",),
        )
        posted = [c for c in claimed.values() if isinstance(c, Claimed)]
        if read_back:
            named, names = self._stock_origins(posted)
        else:
            named = {c.id: stock_origin_of(c.values.get("narration")) for c in posted}
            names = {c.id: c.name for c in posted if c.name and c.name != "/"}
        return [
            self._outcome(sale, refused.get(sale.key) or claimed[sale.key], named, origins, names)
            for sale in sales
        ]

    def _screen(self, sales: list[Sale]) -> dict[str, Refusal]:
        """The sales Odoo cannot book, by key, with why: unknown or ambiguous SKUs, a currency
        the company does not book, amounts too large to travel exactly."""
        refused: dict[str, Refusal] = {}
        _, problems = self.odoo.products({line.sku for s in sales for line in s.lines})
        company_currency = self._company_currency()
        for sale in sales:
            unknown = [problems[ln.sku] for ln in sale.lines if ln.sku in problems]
            if unknown:
                kind = "UnknownSku" if unknown[0].startswith("unknown") else "AmbiguousSku"
                refused[sale.key] = Refusal(kind, "; ".join(dict.fromkeys(unknown)))
                continue
            if sale.currency != company_currency:
                # Booking it needs currency_id, amount_currency and Odoo's rate on each item;
                # until retailflow does that, refuse it rather than book it as company money.
                refused[sale.key] = Refusal(
                    "CurrencyNotBooked",
                    f"currency: {sale.currency} is not the company's currency "
                    f"({company_currency}): foreign-currency sales are not booked by retailflow",
                )
                continue
            try:
                journal_entry_for(sale, self.profile)
            except CurrencyNotBooked as e:
                refused[sale.key] = Refusal("CurrencyNotBooked", str(e))
            except AmountNotBookable as e:
                refused[sale.key] = Refusal("AmountNotBookable", str(e))
        return refused

    def _stock_origins(self, posted: list[Claimed]) -> tuple[dict[int, str | None], dict[int, str]]:
        """The stock origin each posted entry names, and its posted name, by move id (read
        back: the surviving draft may be another attempt's, carrying that attempt's origin, and
        a draft is named `/` until it is posted)."""
        if not posted:
            return {}, {}
        rows = self.odoo.call("account.move", "read", [c.id for c in posted], ["narration", "name"])
        return (
            {r["id"]: stock_origin_of(r.get("narration")) for r in rows},
            {r["id"]: r["name"] for r in rows},
        )

    def _company_currency(self) -> str:
        if self._currency is None:
            journal = self.odoo.call(
                "account.journal",
                "read",
                [self.odoo.journal_id(self.profile.journal_code)],
                ["company_id"],
            )
            company = journal[0]["company_id"][0] if journal and journal[0]["company_id"] else 1
            rows = self.odoo.call("res.company", "read", [company], ["currency_id"])
            self._currency = rows[0]["currency_id"][1]
        return self._currency

    @staticmethod
    def _outcome(
        sale: Sale,
        result: Claimed | Refusal,
        named: dict[int, str | None],
        origins: dict[str, str],
        names: dict[int, str],
    ) -> SaleOutcome:
        if isinstance(result, Refusal):
            return SaleOutcome(
                key=sale.key,
                txn_id=sale.txn_id,
                posted=False,
                error_type=result.error_type,
                reason=result.reason,
            )
        return SaleOutcome(
            key=sale.key,
            txn_id=sale.txn_id,
            posted=True,
            move_id=result.id,
            move_name=names.get(result.id),
            already_posted=result.already,
            stock_origin=named.get(result.id),
            # An entry naming no origin was posted before entries named one: the path that
            # posted it moved (or is moving) its stock.
            owns_stock=named.get(result.id) == origins[sale.key],
        )

    def _create_drafts(self, vals: dict[str, dict[str, Any]]) -> dict[str, Refusal]:
        """Create every draft in one RPC; if Odoo refuses the batch, find the culprit(s)."""
        try:
            self.odoo.call_raw("account.move", "create", list(vals.values()))
            return {}
        except RPCError as e:
            if len(vals) == 1:
                key = next(iter(vals))
                return {key: refusal_of(e, f"account.move.create {key}")}
        refused: dict[str, Refusal] = {}
        for key, one in vals.items():
            try:
                self.odoo.call_raw("account.move", "create", one)
            except RPCError as e:
                refused[key] = refusal_of(e, f"account.move.create {key}")
        return refused
