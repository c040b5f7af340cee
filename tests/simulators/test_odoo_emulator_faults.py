"""Fault injection, statistics and the admin endpoints of the Odoo emulator."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import odoorpc
import pytest

from simulators.odoo import Faults, OdooEmulator

TRANSPORT_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError)
EntryVals = Callable[..., dict[str, Any]]


def admin(emu: OdooEmulator, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{emu.port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_lost_response_commits_but_the_client_sees_a_transport_error(
    emulator: OdooEmulator, odoo: odoorpc.ODOO, unique: Callable[[str], str], make_entry: EntryVals
) -> None:
    ref = unique("LOST")
    before = emulator.stats()["faults"]["lost_response"]
    emulator.faults = Faults(error_rate=1.0, kinds=("lost_response",), methods=("create",), seed=1)
    with pytest.raises(TRANSPORT_ERRORS) as err:
        odoo.env["account.move"].create(make_entry(ref, date="2024-05-05"))
    assert not isinstance(err.value, odoorpc.error.RPCError)
    assert isinstance(err.value, http.client.RemoteDisconnected)
    # Reads are not faulted (methods filter): the entry is there, committed.
    assert len(odoo.env["account.move"].search([("ref", "=", ref)])) == 1
    assert emulator.stats()["faults"]["lost_response"] == before + 1


def test_transport_fault_drops_the_call_before_the_work(
    emulator: OdooEmulator, odoo: odoorpc.ODOO, unique: Callable[[str], str], make_entry: EntryVals
) -> None:
    ref = unique("DROP")
    emulator.faults = Faults(error_rate=1.0, kinds=("transport",), methods=("create",))
    with pytest.raises(TRANSPORT_ERRORS) as err:
        odoo.env["account.move"].create(make_entry(ref, date="2024-05-05"))
    assert not isinstance(err.value, odoorpc.error.RPCError)
    emulator.faults = Faults()
    assert odoo.env["account.move"].search([("ref", "=", ref)]) == []


def test_http_500_before_the_work(
    emulator: OdooEmulator, odoo: odoorpc.ODOO, unique: Callable[[str], str], make_entry: EntryVals
) -> None:
    ref = unique("H500")
    emulator.faults = Faults(error_rate=1.0, kinds=("http_500",))
    with pytest.raises(urllib.error.HTTPError) as err:
        odoo.env["account.move"].create(make_entry(ref, date="2024-05-05"))
    assert err.value.code == 500
    err.value.close()
    emulator.faults = Faults()
    assert odoo.env["account.move"].search([("ref", "=", ref)]) == []
    assert emulator.stats()["faults"]["http_500"] >= 1


def test_faults_spare_login_version_and_other_services(emulator: OdooEmulator) -> None:
    emulator.faults = Faults(error_rate=1.0, kinds=("transport", "http_500"))
    client = odoorpc.ODOO("127.0.0.1", port=emulator.port)  # version_info
    client.login("retail", "admin", "admin")  # common.login, then res.users.context_get
    assert client.db.list() == ["retail"]
    with pytest.raises(TRANSPORT_ERRORS):
        client.execute_kw("res.partner", "read", [[1], ["name"]])
    emulator.faults = Faults(error_rate=1.0, kinds=("transport",), methods=("search",))
    assert client.execute_kw("res.partner", "read", [[1], ["name"]])[0]["name"] == "My Company"
    with pytest.raises(TRANSPORT_ERRORS):
        client.execute_kw("res.partner", "search", [[]])


def test_methods_may_name_a_model_method(emulator: OdooEmulator, odoo: odoorpc.ODOO) -> None:
    emulator.faults = Faults(
        error_rate=1.0, kinds=("transport",), methods=("res.partner.search_count",)
    )
    assert odoo.env["account.account"].search_count([]) > 0
    with pytest.raises(TRANSPORT_ERRORS):
        odoo.env["res.partner"].search_count([])


def test_latency_is_added_to_every_jsonrpc_call(emulator: OdooEmulator, odoo: odoorpc.ODOO) -> None:
    emulator.faults = Faults(latency_ms=150)
    start = time.perf_counter()
    odoo.env["res.partner"].search_count([])
    slow = time.perf_counter() - start
    emulator.faults = Faults()
    start = time.perf_counter()
    odoo.env["res.partner"].search_count([])
    fast = time.perf_counter() - start
    assert slow >= 0.15
    assert fast < slow


def test_error_rate_and_seed_are_reproducible() -> None:
    def draws(seed: int) -> list[str | None]:
        faults = Faults(error_rate=0.3, seed=seed)
        return [faults.draw("create") for _ in range(200)]

    first, second = draws(7), draws(7)
    assert first == second
    injected = [d for d in first if d]
    assert 30 <= len(injected) <= 90
    assert set(injected) == {"transport", "http_500", "lost_response"}
    weighted = Faults(error_rate=1.0, fault_mix={"lost_response": 1.0, "transport": 0.0}, seed=3)
    assert weighted.kinds == ("lost_response",)
    assert {weighted.draw("create") for _ in range(20)} == {"lost_response"}
    assert Faults(error_rate=0.0).draw("create") is None


def test_invalid_fault_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Faults(kinds=("meteor",))
    with pytest.raises(ValueError):
        Faults(error_rate=1.5)


def test_stats_count_calls_by_method(emulator: OdooEmulator, odoo: odoorpc.ODOO) -> None:
    before = emulator.stats()
    odoo.env["res.partner"].search_count([])
    odoo.env["res.partner"].search_count([])
    after = emulator.stats()
    assert after["calls"] == before["calls"] + 2
    assert after["object_calls"] == before["object_calls"] + 2
    assert (
        after["by_method"]["res.partner.search_count"]
        == before["by_method"].get("res.partner.search_count", 0) + 2
    )
    with pytest.raises(odoorpc.error.RPCError):
        odoo.env["res.partner"].search([("bogus", "=", 1)])
    assert emulator.stats()["errors"] == after["errors"] + 1


def test_admin_endpoints(fresh: Any, make_entry: EntryVals) -> None:
    emu: OdooEmulator = fresh.emu
    odoo: odoorpc.ODOO = fresh.odoo
    assert admin(emu, "GET", "/_emulator/faults")["error_rate"] == 0.0
    changed = admin(
        emu,
        "PUT",
        "/_emulator/faults",
        {"error_rate": 1.0, "kinds": ["lost_response"], "methods": ["create"], "seed": 5},
    )
    assert changed["error_rate"] == 1.0
    assert changed["kinds"] == ["lost_response"]
    assert emu.faults.methods == ("create",)
    with pytest.raises(TRANSPORT_ERRORS):
        odoo.env["account.move"].create(make_entry("ADMIN-1"))
    stats = admin(emu, "GET", "/_emulator/stats")
    assert stats["faults"] == {"transport": 0, "http_500": 0, "lost_response": 1}
    assert stats["faults_total"] == 1
    assert admin(emu, "PUT", "/_emulator/faults", {"error_rate": 0})["kinds"] == ["lost_response"]
    assert odoo.env["account.move"].search_count([("ref", "=", "ADMIN-1")]) == 1
    assert admin(emu, "DELETE", "/_emulator/stats")["calls"] == 0
    assert admin(emu, "POST", "/_emulator/reset", {}) == {"reset": True}
    assert odoo.env["account.move"].search_count([]) == 0
    assert odoo.env["account.account"].search_count([("code", "=", "400000")]) == 1
    with pytest.raises(urllib.error.HTTPError) as err:
        admin(emu, "PUT", "/_emulator/faults", {"kinds": ["meteor"]})
    assert err.value.code == 400
    err.value.close()
