"""Conformance: the mail.blacklist and res.partner blacklist calls customer sync makes
(activities/odoo/customers.py), as Odoo 17 answers them (addons/mail/models/mail_blacklist.py,
mail_thread_blacklist.py, mail_thread.py's message_post)."""

from __future__ import annotations

import uuid
from typing import Any

import odoorpc
import pytest
from odoorpc.error import RPCError

from simulators.odoo.models.mail import email_normalize

BL = "mail.blacklist"
ALL = {"context": {"active_test": False}}


def an_email() -> str:
    return f"Probe.{uuid.uuid4().hex[:8]}@Example.COM"


def entries(odoo: odoorpc.ODOO, email: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = odoo.execute_kw(
        BL,
        "search_read",
        [[("email", "=", email)]],
        {"fields": ["email", "active", "write_date", "create_date"], **ALL},
    )
    return rows


def test_email_normalize_is_odoos() -> None:
    assert email_normalize("Jane <Jane.Roe@Example.COM>") == "jane.roe@example.com"
    assert email_normalize("a@b.c, d@e.f") is False
    assert email_normalize("not an address") is False
    assert email_normalize(False) is False


def test_create_normalises_and_returns_the_existing_entry(odoo: odoorpc.ODOO) -> None:
    email = an_email()
    first = odoo.execute_kw(BL, "create", [{"email": email}])
    # The same address, however written: the existing entry, never a second one.
    assert odoo.execute_kw(BL, "create", [{"email": f"Someone <{email.upper()}>"}]) == first
    [row] = entries(odoo, email.upper())  # a search on `email` is normalised too
    assert row["id"] == first and row["email"] == email.lower() and row["active"]
    assert row["create_date"] and row["write_date"]
    # Archived (un-blacklisted) entries are returned by create too, and stay archived.
    odoo.execute_kw(BL, "action_archive", [[first]])
    assert odoo.execute_kw(BL, "create", [{"email": email}]) == first
    assert [r["active"] for r in entries(odoo, email)] == [False]
    # Only active entries are found without active_test=False.
    assert odoo.execute_kw(BL, "search", [[("email", "=", email)]]) == []
    odoo.execute_kw(BL, "action_unarchive", [[first]])
    assert odoo.execute_kw(BL, "search", [[("email", "=", email)]]) == [first]


def test_create_refuses_what_is_no_address(odoo: odoorpc.ODOO) -> None:
    with pytest.raises(RPCError) as refused:
        odoo.execute_kw(BL, "create", [{"email": "nobody"}])
    assert refused.value.info["data"]["name"] == "odoo.exceptions.UserError"
    assert str(refused.value) == "Invalid email address “nobody”"


def test_the_address_is_unique(odoo: odoorpc.ODOO) -> None:
    a, b = an_email(), an_email()
    ida = odoo.execute_kw(BL, "create", [{"email": a}])
    odoo.execute_kw(BL, "create", [{"email": b}])
    with pytest.raises(RPCError) as refused:
        odoo.execute_kw(BL, "write", [[ida], {"email": b}])
    assert refused.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert str(refused.value) == "The operation cannot be completed: Email address already exists!"


def test_private_add_and_remove_are_refused(odoo: odoorpc.ODOO) -> None:
    for name in ("_add", "_remove"):
        with pytest.raises(RPCError) as refused:
            odoo.execute_kw(BL, name, [an_email()])
        assert refused.value.info["data"]["name"] == "odoo.exceptions.AccessError"
        assert str(refused.value) == (
            f"Private methods (such as {name}) cannot be called remotely."
        )


def test_message_post_records_a_note_and_leaves_the_entry_unwritten(odoo: odoorpc.ODOO) -> None:
    email = an_email()
    bid = odoo.execute_kw(BL, "create", [{"email": email}])
    [before] = entries(odoo, email)
    mid = odoo.execute_kw(
        BL,
        "message_post",
        [[bid]],
        {
            "body": "opted out <at> the till",
            "message_type": "comment",
            "subtype_xmlid": "mail.mt_note",
        },
    )
    assert isinstance(mid, int)
    found = odoo.execute_kw(
        "mail.message",
        "search_read",
        [[("model", "=", BL), ("res_id", "=", bid), ("body", "ilike", "opted out")]],
        {"fields": ["body", "message_type"]},
    )
    assert found == [
        {"id": mid, "body": "<p>opted out &lt;at&gt; the till</p>", "message_type": "comment"}
    ]
    mine = [("model", "=", BL), ("res_id", "=", bid)]
    assert (
        odoo.execute_kw("mail.message", "search_count", [[*mine, ("body", "ilike", "OPTED")]]) == 1
    )
    assert odoo.execute_kw("mail.message", "search_count", [[*mine, ("body", "ilike", "in")]]) == 0
    [after] = entries(odoo, email)
    assert after["write_date"] == before["write_date"]


def test_partner_blacklist_fields_follow_active_entries(odoo: odoorpc.ODOO) -> None:
    email = an_email()
    pid = odoo.execute_kw("res.partner", "create", [{"name": "Probe", "email": email}])
    fields = ["email_normalized", "is_blacklisted"]
    [row] = odoo.execute_kw("res.partner", "read", [[pid], fields])
    assert row == {"id": pid, "email_normalized": email.lower(), "is_blacklisted": False}
    listed = [("is_blacklisted", "=", True), ("id", "=", pid)]
    assert odoo.execute_kw("res.partner", "search", [listed]) == []
    bid = odoo.execute_kw(BL, "create", [{"email": email}])
    assert odoo.execute_kw("res.partner", "read", [[pid], ["is_blacklisted"]])[0]["is_blacklisted"]
    assert odoo.execute_kw("res.partner", "search", [listed]) == [pid]
    not_listed = [("is_blacklisted", "!=", True), ("id", "=", pid)]
    assert odoo.execute_kw("res.partner", "search", [not_listed]) == []
    odoo.execute_kw(BL, "action_archive", [[bid]])
    assert odoo.execute_kw("res.partner", "search", [not_listed]) == [pid]
    assert odoo.execute_kw("res.partner", "search", [listed]) == []
