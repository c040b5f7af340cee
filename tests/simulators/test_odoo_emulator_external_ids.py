"""Conformance: external ids (ir.model.data) are unique by (module, name) and go with their
record, as in Odoo 17 (docs/odoo17-behaviour.md)."""

from __future__ import annotations

import uuid

import odoorpc
import pytest
from odoorpc.error import RPCError


def test_an_external_id_is_unique_by_module_and_name(odoo: odoorpc.ODOO) -> None:
    name = f"probe_{uuid.uuid4().hex[:8]}"
    vals = {"module": "retailflow", "name": name, "model": "res.partner", "res_id": 1}
    odoo.execute_kw("ir.model.data", "create", [vals])
    with pytest.raises(RPCError) as dup:
        odoo.execute_kw("ir.model.data", "create", [vals])
    assert dup.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert str(dup.value) == (
        "The operation cannot be completed: duplicate key value violates unique constraint "
        '"ir_model_data_module_name_uniq_index"\n'
        f"DETAIL:  Key (module, name)=(retailflow, {name}) already exists.\n"
    )
    # A batch with a duplicate inside it is refused whole.
    other = f"probe_{uuid.uuid4().hex[:8]}"
    with pytest.raises(RPCError):
        odoo.execute_kw("ir.model.data", "create", [[{**vals, "name": other}] * 2])
    assert odoo.execute_kw("ir.model.data", "search", [[("name", "=", other)]]) == []


def test_deleting_a_record_deletes_its_external_ids(odoo: odoorpc.ODOO) -> None:
    partner = odoo.execute_kw("res.partner", "create", [{"name": "Probe"}])
    name = f"probe_{uuid.uuid4().hex[:8]}"
    odoo.execute_kw(
        "ir.model.data",
        "create",
        [{"module": "retailflow", "name": name, "model": "res.partner", "res_id": partner}],
    )
    odoo.execute_kw("res.partner", "unlink", [[partner]])
    assert odoo.execute_kw("ir.model.data", "search", [[("name", "=", name)]]) == []
