"""Customers in Odoo: one `res.partner` per POS customer id, bound by an external id, kept up
to date without overwriting what Odoo owns, with consent and loyalty in retailflow's paragraph
of the partner's Notes, and anonymised on request (docs/customers.md).

The binder is `ir.model.data` `retailflow.customer_<platform>-<pos id>` (Odoo keeps (module,
name) unique, so two attempts cannot both bind). A partner is created archived, marked
`pending` with its binder name in its Notes, and only activated once it is bound: an attempt
that dies between creating and binding leaves an archived draft that the next attempt adopts
(the lowest-id draft of the key wins, the others are removed), never a second live contact.

Every call is idempotent: a retry after a lost response reads the partner again and writes the
same values; a loyalty event is applied only if it is not the last one the partner's block
records (one CustomerSync workflow per customer applies events one at a time, so a retry is
always of the last one).
"""

from __future__ import annotations

import json
import re
from typing import Any

from odoorpc.error import RPCError
from pydantic import BaseModel
from temporalio import activity

from activities.odoo.base import OdooActivityBase
from activities.odoo.claim import remove
from activities.odoo.client import OdooUnavailable, raise_classified
from activities.odoo.pricing import MODULE, UNIQUE_VIOLATION, external_ids, key_part
from domain.customer import (
    ERASED_NAME,
    BlacklistEntry,
    BlacklistMark,
    BlacklistStep,
    ConsentRecord,
    Customer,
    CustomerBlock,
    blacklist_note,
    blacklist_note_key,
    blacklist_step,
    newer_consent,
    next_blacklist_mark,
    partner_create_values,
    partner_fill_values,
    read_block,
    write_block,
)

PARTNER = "res.partner"
BLACKLIST = "mail.blacklist"
# One address, as Odoo's email_normalize accepts it (else there is nothing to list).
ONE_ADDRESS = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+")
BINDER = external_ids(PARTNER)
# Personal contact fields of a res.partner in Odoo 17 (base) that an erasure clears; the
# name is replaced, the Notes rewritten. Company, accounting and tax fields are Odoo's.
PERSONAL_FIELDS = (
    "email",
    "phone",
    "mobile",
    "street",
    "street2",
    "city",
    "zip",
    "website",
    "function",
)
MAX_ROUNDS = 6


def binder_name(platform: str, pos_customer_id: str) -> str:
    """`customer_<platform>-<id>` (key_part never yields '-': the parts cannot blur)."""
    return f"customer_{key_part(platform)}-{key_part(pos_customer_id)}"


class PendingBlock(CustomerBlock):
    """The block of a partner created but not yet bound: its binder name marks it."""

    binder: str | None = None
    pending: bool = False


def _marker(binder: str) -> str:
    return json.dumps({"binder": binder})[1:-1]  # `"binder": "<name>"`, as the block holds it


class SyncCustomerInput(BaseModel):
    platform: str
    pos_customer_id: str
    # The customer as the store gave it (its personal data none after an erasure).
    customer: Customer
    consent: ConsentRecord | None = None
    # A loyalty event (`sale:<key>`, `refund:<id>`) and the points it adds (negative: removes).
    loyalty_event: str | None = None
    loyalty_delta: int = 0
    # The customer asked to be erased: nothing personal is written, whatever arrives.
    erased: bool = False


class SyncCustomerResult(BaseModel):
    partner_id: int
    created: bool
    filled: list[str]
    consent: ConsentRecord | None
    loyalty_points: int
    loyalty_applied: bool


class EraseCustomerInput(BaseModel):
    platform: str
    pos_customer_id: str


class EraseCustomerResult(BaseModel):
    partner_id: int | None


class OdooCustomerActivities(OdooActivityBase):
    @activity.defn
    def sync_customer(self, input: SyncCustomerInput) -> SyncCustomerResult:
        """Upsert the customer's partner (exactly one per POS id), fill its empty contact
        fields, record newer consent, apply a loyalty event once."""
        key = binder_name(input.platform, input.pos_customer_id)
        erased = input.erased
        create = {} if erased else partner_create_values(input.customer)
        partner_id, created = self._partner(key, create)
        row = self._read(partner_id)
        block = read_block(row["comment"])
        erased = erased or block.erased
        fill = {} if erased else partner_fill_values(row, input.customer)
        new = block.model_copy(
            update={"consent": newer_consent(block.consent, input.consent), "erased": erased}
        )
        if not erased:
            email = fill.get("email") or row["email"]
            new.blacklist = self._blacklist(email, new.consent, block.blacklist)
        applied = False
        if input.loyalty_event and block.last_loyalty_event != input.loyalty_event:
            new.loyalty_points += input.loyalty_delta
            new.last_loyalty_event = input.loyalty_event
            applied = True
        vals = dict(fill)
        if new != block:
            vals["comment"] = write_block(row["comment"], new)
        if vals:
            self.odoo.call(PARTNER, "write", [partner_id], vals)
        return SyncCustomerResult(
            partner_id=partner_id,
            created=created,
            filled=sorted(fill),
            consent=new.consent,
            loyalty_points=new.loyalty_points,
            loyalty_applied=applied,
        )

    @activity.defn
    def erase_customer(self, input: EraseCustomerInput) -> EraseCustomerResult:
        """Anonymise the customer's partner: name replaced, personal fields and Odoo's own notes
        cleared; the binder, consent record and loyalty balance stay (they name nobody)."""
        key = binder_name(input.platform, input.pos_customer_id)
        bound = self._bound(key)
        if bound is None:
            return EraseCustomerResult(partner_id=None)
        row = self._read(bound)
        # The blacklist mark goes: its entry id would lead from the erased partner to the
        # address (the entry itself stays, so the opt-out is still honoured).
        block = read_block(row["comment"]).model_copy(update={"erased": True, "blacklist": None})
        vals: dict[str, Any] = {f: False for f in PERSONAL_FIELDS}
        vals["name"] = ERASED_NAME
        vals["comment"] = write_block(False, block)
        self.odoo.call(PARTNER, "write", [bound], vals)
        return EraseCustomerResult(partner_id=bound)

    # -- Odoo's email blacklist ----------------------------------------------------------------

    def _blacklist(
        self, email: Any, consent: ConsentRecord | None, mark: BlacklistMark | None
    ) -> BlacklistMark | None:
        """List the partner's address on an opt-out, take it off on a newer opt-in when the
        entry is older than that opt-in; the new mark, written with the consent it acts on.
        Idempotent: the entry is unique per address (create returns the existing one), the
        note is looked for before it is posted, archive/unarchive of a record already so do
        nothing, and the mark, once written, makes a retry do nothing."""
        if consent is None or not isinstance(email, str) or not ONE_ADDRESS.fullmatch(email):
            return mark
        if mark is not None and mark.consent_at == consent.at:
            return mark
        before = self._entry(email)
        key = blacklist_note_key(consent)
        noted = before is not None and self._noted(before.id, key)
        step = blacklist_step(consent, mark, before, noted)
        if step is None:
            return mark
        if step is BlacklistStep.ADD:
            # Created archived, noted, then listed: a lost answer anywhere is retried into
            # the same entry and one note.
            bid = (
                before.id
                if before
                else self.odoo.call(BLACKLIST, "create", {"email": email, "active": False})
            )
            if not self._noted(bid, key):
                self._note(bid, consent)
            self.odoo.call(BLACKLIST, "action_unarchive", [bid])
        elif step is BlacklistStep.LIFT:
            assert before is not None
            if not noted:
                self._note(before.id, consent)
            self.odoo.call(BLACKLIST, "action_archive", [before.id])
        after = self._entry(email) if step is not BlacklistStep.KEEP else before
        return next_blacklist_mark(consent, mark, step, before, after)

    def _entry(self, email: str) -> BlacklistEntry | None:
        # Odoo normalises an email compared in a mail.blacklist domain.
        rows = self.odoo.call(
            BLACKLIST,
            "search_read",
            [("email", "=", email)],
            fields=["active", "write_date"],
            context={"active_test": False},
        )
        return BlacklistEntry.model_validate(rows[0]) if rows else None

    def _noted(self, entry_id: int, key: str) -> bool:
        found = self.odoo.call(
            "mail.message",
            "search_count",
            [("model", "=", BLACKLIST), ("res_id", "=", entry_id), ("body", "ilike", key)],
        )
        return bool(found)

    def _note(self, entry_id: int, consent: ConsentRecord) -> None:
        self.odoo.call(
            BLACKLIST,
            "message_post",
            [entry_id],
            body=blacklist_note(consent),
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )

    # -- the binder ---------------------------------------------------------------------------

    def _read(self, partner_id: int) -> dict[str, Any]:
        rows = self.odoo.call(
            PARTNER, "read", [partner_id], ["name", "email", "phone", "comment", "active"]
        )
        if not rows:
            raise OdooUnavailable(f"partner {partner_id} vanished while being synced")
        row: dict[str, Any] = rows[0]
        return row

    def _bound(self, key: str) -> int | None:
        rows = self.odoo.call(
            "ir.model.data",
            "search_read",
            [*BINDER.domain, ("name", "=", key)],
            fields=["res_id"],
            order="id asc",
        )
        return next((r["res_id"] for r in rows if r.get("res_id")), None)

    def _drafts(self, key: str) -> list[int]:
        """Archived partners created for `key` and not yet bound, lowest id first (`ilike`
        treats `_` as a wildcard: the marker is checked exactly here)."""
        rows = self.odoo.call(
            PARTNER,
            "search_read",
            [("active", "=", False), ("comment", "ilike", _marker(key))],
            fields=["comment"],
            order="id asc",
        )
        return [r["id"] for r in rows if _marker(key) in (r["comment"] or "")]

    def _partner(self, key: str, create: dict[str, Any]) -> tuple[int, bool]:
        """The partner bound to `key`, created (and bound) when there is none. True when this
        call bound it."""
        bound_here = False
        for _ in range(MAX_ROUNDS):
            bound = self._bound(key)
            if bound is not None:
                self._settle(key, bound)
                return bound, bound_here
            drafts = self._drafts(key)
            if not drafts:
                block = PendingBlock(binder=key, pending=True)
                self.odoo.call(
                    PARTNER,
                    "create",
                    {**create, "active": False, "comment": write_block(False, block)},
                )
                continue  # read the drafts back: another attempt's may be lower
            try:
                self.odoo.call_raw(
                    "ir.model.data",
                    "create",
                    {"module": MODULE, "name": key, "model": PARTNER, "res_id": drafts[0]},
                )
                bound_here = True
            except RPCError as e:
                if UNIQUE_VIOLATION not in str(e):
                    raise_classified(e, f"ir.model.data.create {key}")
        raise OdooUnavailable(f"customer {key}: binder did not settle after {MAX_ROUNDS} rounds")

    def _settle(self, key: str, partner_id: int) -> None:
        """Activate a bound partner still pending and remove the key's other drafts."""
        rows = self.odoo.call(
            PARTNER,
            "search_read",
            [("id", "=", partner_id), ("active", "in", [True, False])],
            fields=["comment", "active"],
        )
        if not rows:
            # The partner was deleted but not its binder: drop the binder, retry from scratch.
            stale = self.odoo.call("ir.model.data", "search", [*BINDER.domain, ("name", "=", key)])
            remove(self.odoo, "ir.model.data", stale)
            raise OdooUnavailable(f"customer {key}: bound partner {partner_id} is gone")
        comment = rows[0]["comment"]
        if _marker(key) in (comment or "") and not rows[0]["active"]:
            # Created by retailflow, bound, not yet activated: it is now the customer's.
            block = write_block(False, read_block(comment))
            self.odoo.call(PARTNER, "write", [partner_id], {"active": True, "comment": block})
        others = [d for d in self._drafts(key) if d != partner_id]
        remove(self.odoo, PARTNER, others)
