"""Conformance: JSON-RPC transport, login, error envelope, generic ORM methods
(docs/odoo17-behaviour.md §a, §g)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import odoorpc
import pytest

from simulators.odoo import OdooEmulator

VERSION = {
    "server_version": "17.0",
    "server_version_info": [17, 0, 0, "final", 0, ""],
    "server_serie": "17.0",
    "protocol_version": 1,
}


def post(emu: OdooEmulator, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": 4242}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{emu.port}{path}",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_version_info_endpoint_and_common_version(emulator: OdooEmulator) -> None:
    status, payload = post(emulator, "/web/webclient/version_info", {})
    assert status == 200
    assert payload == {"jsonrpc": "2.0", "id": 4242, "result": VERSION}
    _, common = post(emulator, "/jsonrpc", {"service": "common", "method": "version", "args": []})
    assert common["result"] == VERSION
    assert odoorpc.ODOO("127.0.0.1", port=emulator.port).version == "17.0"


def test_login_gives_admin_uid_2_and_user_context(odoo: odoorpc.ODOO) -> None:
    assert odoo.env.uid == 2
    assert odoo.env.context == {"lang": "en_US", "tz": False, "uid": 2}
    assert odoo.execute("res.users", "context_get") == {"lang": "en_US", "tz": False, "uid": 2}


@pytest.mark.parametrize(("login", "password"), [("admin", "wrong"), ("nobody", "admin")])
def test_bad_credentials_make_login_return_false(
    emulator: OdooEmulator, login: str, password: str
) -> None:
    _, raw = post(
        emulator,
        "/jsonrpc",
        {"service": "common", "method": "login", "args": ["retail", login, password]},
    )
    assert raw["result"] is False
    client = odoorpc.ODOO("127.0.0.1", port=emulator.port)
    with pytest.raises(odoorpc.error.RPCError) as err:
        client.login("retail", login, password)
    assert str(err.value) == "Wrong login ID or password"
    assert err.value.info is False


def test_bad_db_is_a_psycopg2_operational_error(emulator: OdooEmulator) -> None:
    client = odoorpc.ODOO("127.0.0.1", port=emulator.port)
    with pytest.raises(odoorpc.error.RPCError) as err:
        client.login("no_such_db", "admin", "admin")
    assert err.value.info["data"]["name"] == "psycopg2.OperationalError"
    assert str(err.value) == (
        'connection to server at "127.0.0.1", port 5433 failed: '
        'FATAL:  database "no_such_db" does not exist'
    )


def test_wrong_password_after_login_is_access_denied(emulator: OdooEmulator) -> None:
    client = odoorpc.ODOO("127.0.0.1", port=emulator.port)
    client.login("retail", "admin", "admin")
    client._password = "not-the-password"
    with pytest.raises(odoorpc.error.RPCError) as err:
        client.execute_kw("res.partner", "search", [[]])
    assert str(err.value) == "Access Denied"
    assert err.value.info["data"]["name"] == "odoo.exceptions.AccessDenied"


def test_db_list_and_server_version(odoo: odoorpc.ODOO, emulator: OdooEmulator) -> None:
    assert odoo.db.list() == ["retail"]
    _, raw = post(emulator, "/jsonrpc", {"service": "db", "method": "server_version", "args": []})
    assert raw["result"] == "17.0"


def test_db_list_is_configurable() -> None:
    emu = OdooEmulator(dbs=["retail", "retail_demo"])
    emu.start()
    try:
        assert odoorpc.ODOO("127.0.0.1", port=emu.port).db.list() == ["retail", "retail_demo"]
    finally:
        emu.stop()


ERRORS = [
    pytest.param(
        ("res.partner", "_get_name", [[1]], {}),
        "odoo.exceptions.AccessError",
        "Private methods (such as _get_name) cannot be called remotely.",
        id="private-method",
    ),
    pytest.param(
        ("no.such.model", "search", [[]], {}),
        "odoo.exceptions.UserError",
        "Object no.such.model doesn't exist",
        id="unknown-model",
    ),
    pytest.param(
        ("res.partner", "no_such_method", [[]], {}),
        "builtins.AttributeError",
        "The method 'no_such_method' does not exist on the model 'res.partner'",
        id="unknown-method",
    ),
    pytest.param(
        ("res.partner", "write", [[99999999], {"name": "x"}], {}),
        "odoo.exceptions.MissingError",
        "Record does not exist or has been deleted.\n(Record: res.partner(99999999,), User: 2)",
        id="write-missing-id",
    ),
    pytest.param(
        ("res.partner", "create", [{"name": "x", "no_such_field": 1}], {}),
        "builtins.ValueError",
        "Invalid field 'no_such_field' on model 'res.partner'",
        id="unknown-field-in-vals",
    ),
    pytest.param(
        ("res.partner", "search", [[("no_such_field", "=", 1)]], {}),
        "builtins.ValueError",
        "Invalid field res.partner.no_such_field in leaf ('no_such_field', '=', 1)",
        id="unknown-field-in-domain",
    ),
    pytest.param(
        ("res.partner", "search", [[]], {"bogus_kw": 1}),
        "builtins.TypeError",
        "BaseModel.search() got an unexpected keyword argument 'bogus_kw'",
        id="bad-kwarg",
    ),
]


@pytest.mark.parametrize(("call", "name", "message"), ERRORS)
def test_error_names_and_messages(
    odoo: odoorpc.ODOO, call: tuple[Any, ...], name: str, message: str
) -> None:
    model, method, args, kwargs = call
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.execute_kw(model, method, args, kwargs)
    info = err.value.info
    assert info["code"] == 200
    assert info["message"] == "Odoo Server Error"
    assert info["data"]["name"] == name
    assert info["data"]["message"] == message
    assert str(err.value) == err.value.args[0] == message
    assert repr(err.value) == f"RPCError({message!r})"
    assert info["data"]["debug"].startswith("Traceback (most recent call last):")
    assert info["data"]["context"] == {}


def test_error_envelope_is_http_200_with_request_id(emulator: OdooEmulator) -> None:
    status, payload = post(
        emulator,
        "/jsonrpc",
        {
            "service": "object",
            "method": "execute_kw",
            "args": ["retail", 2, "admin", "no.such.model", "search", [[]]],
        },
    )
    assert status == 200
    assert payload["id"] == 4242
    assert payload["jsonrpc"] == "2.0"
    assert "result" not in payload
    assert payload["error"]["data"]["arguments"] == ["Object no.such.model doesn't exist"]


def test_read_of_missing_id_is_empty_not_an_error(odoo: odoorpc.ODOO) -> None:
    assert odoo.execute_kw("res.partner", "read", [[99999999]], {"fields": ["name"]}) == []


def test_create_returns_int_for_dict_and_list_for_list(odoo: odoorpc.ODOO, unique: Any) -> None:
    one = odoo.env["res.partner"].create({"name": unique("P")})
    many = odoo.env["res.partner"].create([{"name": unique("P")}, {"name": unique("P")}])
    assert isinstance(one, int)
    assert isinstance(many, list)
    assert len(many) == 2
    assert all(isinstance(i, int) for i in many)


def test_read_formats_many2one_dates_and_all_fields(odoo: odoorpc.ODOO) -> None:
    [company] = odoo.execute_kw(
        "res.company", "read", [[1]], {"fields": ["name", "currency_id", "create_date"]}
    )
    assert company["currency_id"] == [1, "USD"]
    assert len(company["create_date"]) == 19  # 'YYYY-MM-DD HH:MM:SS'
    [raw] = odoo.execute_kw(
        "res.company", "read", [[1]], {"fields": ["currency_id"], "load": "_classic_write"}
    )
    assert raw["currency_id"] == 1
    [full] = odoo.execute_kw("res.company", "read", [[1]])
    assert {"id", "name", "display_name", "account_sale_tax_id", "write_date"} <= set(full)


def test_browsing_the_user_reads_through_relations(odoo: odoorpc.ODOO) -> None:
    user = odoo.env.user
    assert user.login == "admin"
    assert user.name == "Administrator"
    assert user.company_id.id == 1
    assert user.company_id.currency_id.name == "USD"
    assert user.company_id.account_sale_tax_id.id == 1
    assert user.company_id.account_journal_payment_debit_account_id.id == 44


def test_fields_get_shape_and_attributes(odoo: odoorpc.ODOO) -> None:
    fields = odoo.execute_kw("account.move", "fields_get", [], {})
    assert fields["journal_id"]["type"] == "many2one"
    assert fields["journal_id"]["relation"] == "account.journal"
    assert fields["journal_id"]["required"] is True
    assert fields["line_ids"]["type"] == "one2many"
    assert fields["line_ids"]["relation_field"] == "move_id"
    assert ["posted", "Posted"] in fields["state"]["selection"]
    assert fields["date"]["type"] == "date"
    only = odoo.execute_kw(
        "product.template", "fields_get", [["detailed_type"]], {"attributes": ["type", "selection"]}
    )
    assert only == {
        "detailed_type": {
            "type": "selection",
            "selection": [
                ["consu", "Consumable"],
                ["service", "Service"],
                ["product", "Storable Product"],
                ["combo", "Combo"],
            ],
        }
    }


def test_external_ids(odoo: odoorpc.ODOO) -> None:
    assert odoo.env.ref("stock.stock_location_stock").id == 8
    assert odoo.env.ref("stock.stock_location_customers").id == 5
    assert odoo.env.ref("stock.warehouse0").id == 1
    assert odoo.execute("ir.model.data", "check_object_reference", "base", "user_admin") == [
        "res.users",
        2,
    ]
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.env.ref("stock.no_such_xmlid")
    assert err.value.info["data"]["name"] == "builtins.ValueError"
    assert str(err.value) == "External ID not found in the system: stock.no_such_xmlid"


def test_model_presence_uses_ir_model(odoo: odoorpc.ODOO) -> None:
    assert "account.move" in odoo.env
    assert "no.such.model" not in odoo.env


def test_search_offset_limit_order_and_count(odoo: odoorpc.ODOO) -> None:
    Account = odoo.env["account.account"]
    all_ids = Account.search([], order="id asc")
    assert all_ids[:3] == [1, 2, 3]
    assert Account.search([], order="id desc", limit=2) == sorted(all_ids, reverse=True)[:2]
    assert Account.search([], order="id asc", offset=5, limit=3) == all_ids[5:8]
    assert Account.search_count([]) == len(all_ids)
    assert Account.search([], count=True) == len(all_ids)
    assert Account.search_count([], limit=4) == 4
    by_code = Account.search_read(
        [("code", "in", ["400000", "121000"])], ["code"], order="code desc"
    )
    assert [a["code"] for a in by_code] == ["400000", "121000"]


def test_name_search_and_name_get(odoo: odoorpc.ODOO) -> None:
    assert odoo.execute_kw("account.account", "name_search", ["400000"], {}) == [
        [24, "400000 Product Sales"]
    ]
    assert odoo.execute_kw("account.journal", "name_get", [[3]], {}) == [
        [3, "Miscellaneous Operations"]
    ]
    [record] = odoo.execute_kw("stock.location", "read", [[8]], {"fields": ["display_name"]})
    assert record["display_name"] == "WH/Stock"


def test_inactive_records_are_hidden_unless_asked(odoo: odoorpc.ODOO) -> None:
    Currency = odoo.env["res.currency"]
    assert Currency.search([("name", "=", "EUR")]) == []
    assert Currency.search([("name", "=", "EUR"), ("active", "=", False)]) == [2]
    assert Currency.search([("name", "=", "EUR")], context={"active_test": False}) == [2]


def test_write_then_read_back_and_unlink(odoo: odoorpc.ODOO, unique: Any) -> None:
    Partner = odoo.env["res.partner"]
    pid = Partner.create({"name": unique("W"), "email": "a@example.com"})
    assert Partner.write([pid], {"email": False, "phone": "123"}) is True
    [row] = Partner.read([pid], ["email", "phone"])
    assert row == {"id": pid, "email": False, "phone": "123"}
    assert Partner.unlink([pid]) is True
    assert Partner.read([pid], ["name"]) == []


MODELS = [
    "ir.model",
    "ir.model.data",
    "ir.sequence",
    "res.currency",
    "res.partner",
    "res.company",
    "res.users",
    "uom.uom",
    "product.category",
    "product.template",
    "product.product",
    "product.pricelist",
    "product.pricelist.item",
    "account.account",
    "account.journal",
    "account.tax",
    "account.tax.repartition.line",
    "account.move",
    "account.move.line",
    "stock.location",
    "stock.warehouse",
    "stock.picking.type",
    "stock.quant",
    "stock.move",
    "stock.picking",
    "stock.change.product.qty",
    "account.move.reversal",
]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_describes_and_reads_all_its_fields(odoo: odoorpc.ODOO, model: str) -> None:
    fields = odoo.execute_kw(model, "fields_get", [], {"attributes": ["type", "string"]})
    assert {"id", "display_name", "create_date"} <= set(fields)
    rows = odoo.execute_kw(
        model, "search_read", [[]], {"limit": 3, "context": {"active_test": False}}
    )
    for row in rows:
        assert set(row) == set(fields)
        for name, value in row.items():
            if fields[name]["type"] == "many2one":
                assert value is False or (isinstance(value, list) and len(value) == 2), name
            elif fields[name]["type"] in ("one2many", "many2many"):
                assert isinstance(value, list), name


def test_x2many_commands(odoo: odoorpc.ODOO, unique: Any) -> None:
    Partner, Template = odoo.env["res.partner"], odoo.env["product.template"]
    parent = Partner.create(
        {
            "name": unique("Co"),
            "is_company": True,
            "child_ids": [(0, 0, {"name": "Ann"}), (0, 0, {"name": "Bob"})],
        }
    )
    ann, bob = Partner.read([parent], ["child_ids"])[0]["child_ids"]
    loose = Partner.create({"name": "Cid"})

    def children() -> list[int]:
        return list(Partner.read([parent], ["child_ids"])[0]["child_ids"])

    Partner.write([parent], {"child_ids": [(1, ann, {"name": "Ann B."}), (4, loose)]})
    assert sorted(children()) == sorted([ann, bob, loose])
    assert Partner.read([ann], ["name", "display_name"])[0]["display_name"].endswith(", Ann B.")
    Partner.write([parent], {"child_ids": [(3, bob)]})  # unlink from parent (parent_id is optional)
    assert bob not in children()
    assert Partner.read([bob], ["parent_id"])[0]["parent_id"] is False
    Partner.write([parent], {"child_ids": [(2, loose)]})  # delete
    assert Partner.read([loose], ["name"]) == []
    Partner.write([parent], {"child_ids": [(6, 0, [bob])]})
    assert children() == [bob]
    Partner.write([parent], {"child_ids": [(5,)]})
    assert children() == []

    tid = Template.create({"name": unique("Taxed"), "taxes_id": [(6, 0, [])]})

    def taxes() -> list[int]:
        return list(Template.read([tid], ["taxes_id"])[0]["taxes_id"])

    assert taxes() == []
    Template.write([tid], {"taxes_id": [(4, 1), (4, 2)]})
    assert taxes() == [1, 2]
    Template.write([tid], {"taxes_id": [(3, 2)]})
    assert taxes() == [1]
    Template.write([tid], {"taxes_id": [(5,)]})
    assert taxes() == []
    Template.write([tid], {"taxes_id": [(6, 0, [2])]})
    assert taxes() == [2]
    assert Template.search([("id", "=", tid), ("taxes_id", "in", [2])]) == [tid]
    assert Template.search([("id", "=", tid), ("taxes_id", "=", False)]) == []


def test_default_get(odoo: odoorpc.ODOO) -> None:
    values = odoo.execute_kw("account.move", "default_get", [["state", "move_type", "currency_id"]])
    assert values == {"state": "draft", "move_type": "entry", "currency_id": 1}
    ctx = {"context": {"default_ref": "FROM-CONTEXT"}}
    assert odoo.execute_kw("account.move", "default_get", [["ref"]], ctx) == {"ref": "FROM-CONTEXT"}
