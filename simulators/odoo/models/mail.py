"""mail: the email blacklist (`mail.blacklist`), the chatter messages retailflow posts on it
(`mail.message` through `message_post`), and the blacklist fields `mail` adds to res.partner
(`email_normalized`, `is_blacklisted`), as Odoo 17 has them (addons/mail/models/
mail_blacklist.py, mail_thread_blacklist.py).

Odoo's rules kept here: an email is stored normalised (the one address, lower-cased); `create`
with an address already listed returns the existing entry (active or not) instead of a second
one, and refuses a value that is no address with a UserError; searches on `email` are
normalised too; an archived entry no longer blacklists. `_add`/`_remove` are private, so over
RPC an entry is created, archived and unarchived with the public calls.
"""

from __future__ import annotations

import html
from email.utils import getaddresses
from typing import Any

from sqlalchemy import select
from sqlmodel import Field

from .. import fields as F
from .. import tables as T
from ..exceptions import UserError
from ..orm import BaseModel, api_model, api_records, normalize_ids
from . import base


def email_normalize(text: Any) -> str | bool:
    """Odoo's tools.email_normalize (strict): the single address of `text`, its domain
    lower-cased and its local part too when it is ASCII; False when there is not exactly one."""
    if not isinstance(text, str) or not text:
        return False
    emails = [addr for _, addr in getaddresses([text]) if "@" in addr]
    if len(emails) != 1:
        return False
    local, at, domain = emails[0].rpartition("@")
    if local.isascii():
        local = local.lower()
    return local + at + domain.lower()


class MailBlacklistTable(T.Record, table=True):
    __tablename__ = "mail_blacklist"
    email: str = Field(index=True)
    active: bool | None = None


class MailMessageTable(T.Record, table=True):
    __tablename__ = "mail_message"
    model: str | None = Field(default=None, index=True)
    res_id: int | None = Field(default=None, index=True)
    body: str | None = None
    message_type: str | None = None
    subtype_xmlid: str | None = None


class MailMessage(BaseModel):
    _name = "mail.message"
    _description = "Message"
    _table = MailMessageTable
    _order = "id desc"

    model = F.Char("Related Document Model")
    res_id = F.Integer("Related Document ID")
    body = F.Html("Contents")
    message_type = F.Selection(
        [
            ("email", "Incoming Email"),
            ("comment", "Comment"),
            ("email_outgoing", "Outgoing Email"),
            ("notification", "System notification"),
            ("auto_comment", "Automated Targeted Notification"),
            ("user_notification", "User Specific Notification"),
        ],
        "Type",
        default="email",
    )
    subtype_xmlid = F.Char("Subtype")


class MailBlacklist(BaseModel):
    _name = "mail.blacklist"
    _description = "Mail Blacklist"
    _table = MailBlacklistTable
    _rec_name = "email"
    _order = "id desc"

    email = F.Char("Email Address", required=True)
    active = F.Boolean("Active", default=True)

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        # _sql_constraints unique_email: unique (email).
        if "email" in names:
            self._check_unique(ids, ("email",), "Email address already exists!")

    def _search(
        self,
        domain: Any,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[int]:
        # Odoo normalises a string compared with `email` (any operator) before searching.
        def normalized(leaf: Any) -> Any:
            if isinstance(leaf, list | tuple) and len(leaf) == 3 and leaf[0] == "email":
                value = email_normalize(leaf[2]) if isinstance(leaf[2], str) else False
                if value:
                    return (leaf[0], leaf[1], value)
            return leaf

        return super()._search([normalized(x) for x in domain or []], offset, limit, order)

    @api_model
    def create(self, vals_list: dict[str, Any] | list[dict[str, Any]]) -> int | list[int]:
        single = isinstance(vals_list, dict)
        values = [vals_list] if isinstance(vals_list, dict) else list(vals_list)
        new: list[dict[str, Any]] = []
        seen: list[str] = []
        for vals in values:
            if not isinstance(vals, dict):
                raise TypeError(f"create() values must be dicts, not {type(vals).__name__}")
            email = email_normalize(vals.get("email"))
            if not isinstance(email, str):
                raise UserError(f"Invalid email address “{vals['email']}”")
            if email in seen:
                continue
            seen.append(email)
            new.append({**vals, "email": email})
        t = self._t
        rows = self._conn.execute(select(t.c.email, t.c.id).where(t.c.email.in_(seen)))
        existing = {email: rid for email, rid in rows}
        created = self._create([v for v in new if v["email"] not in existing])
        ids = list(existing.values()) + created
        # Odoo returns the recordset `existing | created`; over RPC a single dict gives its id.
        return ids[0] if single else ids

    @api_records
    def write(self, ids: Any, vals: dict[str, Any]) -> bool:
        if "email" in vals:
            vals = {**vals, "email": email_normalize(vals["email"])}
        self._write(normalize_ids(ids), vals)
        return True

    @api_records
    def action_add(self, ids: Any) -> None:
        """Blacklist (again) the address of the entry: Odoo's `_add(self.email)`."""
        for rid in normalize_ids(ids):
            email = self._get(rid, "email").email
            found = self.with_context(active_test=False)._search([("email", "=", email)])
            self._write(found, {"active": True})

    @api_records
    def message_post(
        self,
        ids: Any,
        *,
        body: str = "",
        message_type: str = "notification",
        subtype_xmlid: str | None = None,
        **kwargs: Any,
    ) -> int:
        """mail.thread's message_post on one entry: a plain-text body is escaped as Odoo 17
        escapes a str that is not Markup. It does not write the entry (its write_date stays)."""
        rid = ensure_entry(self, ids)
        return int(
            self.env["mail.message"]._create(
                [
                    {
                        "model": self._name,
                        "res_id": rid,
                        "body": f"<p>{html.escape(body)}</p>" if body else "",
                        "message_type": message_type,
                        "subtype_xmlid": subtype_xmlid,
                    }
                ]
            )[0]
        )


def ensure_entry(model: BaseModel, ids: Any) -> int:
    found = normalize_ids(ids)
    if len(found) != 1:
        raise ValueError(f"Expected singleton: {model._name}{tuple(found)!r}")
    model._ensure_exist(found)
    return found[0]


class ResPartner(base.ResPartner):
    """res.partner with the blacklist mixin `mail` adds (mail.thread.blacklist)."""

    email_normalized = F.Char("Normalized Email", compute="_compute_email_normalized")
    is_blacklisted = F.Boolean(
        "Blacklist", compute="_compute_is_blacklisted", search="_search_is_blacklisted"
    )

    def _compute_email_normalized(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        emails = self._column_values(ids, "email")
        return {i: {"email_normalized": email_normalize(emails.get(i))} for i in ids}

    def _blacklisted(self) -> set[str]:
        bl = self.env["mail.blacklist"]._t
        return set(self._conn.execute(select(bl.c.email).where(bl.c.active == True)).scalars())  # noqa: E712

    def _compute_is_blacklisted(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        listed = self._blacklisted()
        emails = self._column_values(ids, "email")
        return {i: {"is_blacklisted": email_normalize(emails.get(i)) in listed} for i in ids}

    def _search_is_blacklisted(self, operator: str, value: Any) -> list[Any]:
        # Odoo 17 handles '=' and '!=' with a boolean; anything else is NotImplementedError.
        if operator != "=":
            if operator == "!=" and isinstance(value, bool):
                value = not value
            else:
                raise NotImplementedError()
        listed = self._blacklisted()
        t = self._t
        rows = self._conn.execute(select(t.c.id, t.c.email).where(t.c.email.is_not(None)))
        hits = [rid for rid, email in rows if email_normalize(email) in listed]
        if value:
            return [("id", "in", hits)] if hits else [(0, "=", 1)]
        return [("id", "not in", hits)]


MODELS: list[type[BaseModel]] = [MailMessage, MailBlacklist, ResPartner]
