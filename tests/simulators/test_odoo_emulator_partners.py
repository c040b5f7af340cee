"""Conformance: the res.partner calls customer sync makes (activities/odoo/customers.py), as
Odoo 17 answers them (docs/odoo17-behaviour.md; Odoo's res_partner.py for check_name)."""

from __future__ import annotations

import uuid

import odoorpc
import pytest
from odoorpc.error import RPCError


def test_a_contact_requires_a_name(odoo: odoorpc.ODOO) -> None:
    # _sql_constraints check_name: CHECK((type='contact' AND name IS NOT NULL) OR type!='contact')
    for vals in ({}, {"name": False, "email": "x@example.com"}):
        with pytest.raises(RPCError) as refused:
            odoo.execute_kw("res.partner", "create", [vals])
        assert refused.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
        assert str(refused.value) == "The operation cannot be completed: Contacts require a name"
    pid = odoo.execute_kw("res.partner", "create", [{"name": "Probe"}])
    with pytest.raises(RPCError, match="Contacts require a name"):
        odoo.execute_kw("res.partner", "write", [[pid], {"name": False}])
    # Other address types may be nameless.
    assert odoo.execute_kw("res.partner", "create", [{"type": "delivery", "parent_id": pid}])


def test_archived_partners_are_found_only_when_the_domain_asks(odoo: odoorpc.ODOO) -> None:
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    notes = f'<p>retailflow customer: {{"binder": "{marker}"}}</p>'
    pid = odoo.execute_kw(
        "res.partner", "create", [{"name": "Draft", "active": False, "comment": notes}]
    )
    assert odoo.execute_kw("res.partner", "search", [[("comment", "ilike", marker)]]) == []
    archived = odoo.execute_kw(
        "res.partner", "search", [[("active", "=", False), ("comment", "ilike", marker)]]
    )
    assert archived == [pid]
    both = odoo.execute_kw(
        "res.partner",
        "search_read",
        [[("id", "=", pid), ("active", "in", [True, False])]],
        {"fields": ["comment", "active"]},
    )
    assert both == [{"id": pid, "comment": notes, "active": False}]
    # read by id ignores active; a write activates it and clears fields with False.
    odoo.execute_kw("res.partner", "write", [[pid], {"active": True, "email": False}])
    [row] = odoo.execute_kw("res.partner", "read", [[pid], ["active", "email", "name"]])
    assert row == {"id": pid, "active": True, "email": False, "name": "Draft"}


def test_the_contact_fields_an_erasure_clears_exist(odoo: odoorpc.ODOO) -> None:
    fields = ("email", "phone", "mobile", "street", "street2", "city", "zip", "website", "function")
    pid = odoo.execute_kw(
        "res.partner", "create", [{"name": "Probe", **dict.fromkeys(fields, "x")}]
    )
    odoo.execute_kw("res.partner", "write", [[pid], dict.fromkeys(fields, False)])
    [row] = odoo.execute_kw("res.partner", "read", [[pid], list(fields)])
    assert [row[f] for f in fields] == [False] * len(fields)
