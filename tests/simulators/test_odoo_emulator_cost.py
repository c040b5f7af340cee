"""The ``odoo17`` cost model (docs/odoo17-behaviour.md §h, "Cost model").

The charges are read from the emulator's stats (what it charged), not from wall time, so they
are exact whatever the machine does. The wall-clock tests only check lower bounds, which a
busy machine can only make longer: a charged call takes at least its cost, and two heavy calls
at once share one interpreter (Odoo ``workers=0``), which a parallel sleep would not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import odoorpc
import pytest

from simulators.odoo import CostModel, OdooEmulator
from simulators.odoo.cost import is_scan

from .conftest import entry_vals, login

INVENTORY_MODE = {"context": {"inventory_mode": True}}


class Costed:
    """An emulator of its own with the odoo17 cost model and a logged-in client."""

    def __init__(self, emu: OdooEmulator) -> None:
        self.emu = emu
        self.odoo = login(emu)

    def charged(self, call: Any) -> tuple[Any, dict[str, float]]:
        """Run ``call``; its result and the server seconds charged meanwhile, by method."""
        self.emu.reset_stats()
        result = call()
        return result, self.emu.stats()["server_time_by_method"]

    def rpc(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.odoo.execute_kw(model, method, list(args), kwargs)


@pytest.fixture(scope="module")
def costed() -> Iterator[Costed]:
    # The charges do not depend on the concurrency mode; the tests at the end check how
    # each mode uses the time.
    emu = OdooEmulator(cost_model="odoo17")
    emu.start()
    try:
        yield Costed(emu)
    finally:
        emu.stop()


def near(value: float, expected: float, tolerance: float = 0.25) -> bool:
    return abs(value - expected) <= tolerance * expected


def entries(tag: str, n: int) -> list[dict[str, Any]]:
    return [entry_vals(f"{tag}{i:04d}", amount=10.0 + i) for i in range(n)]


def storable(c: Costed, code: str) -> int:
    pid = int(
        c.rpc("product.product", "create", {"name": code, "default_code": code, "type": "product"})
    )
    c.rpc(
        "stock.quant",
        "create",
        {"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": 1000},
        **INVENTORY_MODE,
    )
    return pid


def s1p_picking(origin: str, pids: list[int]) -> dict[str, Any]:
    """Stock sequence S1p (docs/odoo17-behaviour.md §d): quantity and picked at create."""
    return {
        "picking_type_id": 2,
        "location_id": 8,
        "location_dest_id": 5,
        "origin": origin,
        "move_ids": [
            (
                0,
                0,
                {
                    "name": f"line {i}",
                    "product_id": pid,
                    "product_uom": 1,
                    "product_uom_qty": 1.0,
                    "quantity": 1.0,
                    "picked": True,
                    "location_id": 8,
                    "location_dest_id": 5,
                },
            )
            for i, pid in enumerate(pids)
        ],
    }


# -- charges against the measurements --------------------------------------------------------


def test_sequential_create_and_post_of_a_3_line_entry_costs_119_ms(costed: Costed) -> None:
    (move,), created = costed.charged(lambda: costed.rpc("account.move", "create", entries("C", 1)))
    _, posted = costed.charged(lambda: costed.rpc("account.move", "action_post", [move]))
    assert near(created["account.move.create"], 0.0687)
    assert near(posted["account.move.action_post"], 0.0485)
    assert near(created["account.move.create"] + posted["account.move.action_post"], 0.119)


def test_create_of_100_entries_then_one_post_costs_2_s(costed: Costed) -> None:
    ids, created = costed.charged(lambda: costed.rpc("account.move", "create", entries("H", 100)))
    _, posted = costed.charged(lambda: costed.rpc("account.move", "action_post", ids))
    assert len(ids) == 100
    assert near(created["account.move.create"], 1.14)
    assert near(posted["account.move.action_post"], 0.85)
    assert near(created["account.move.create"] + posted["account.move.action_post"], 1.99)


def test_one_entry_of_100_lines_costs_331_ms(costed: Costed) -> None:
    vals = entry_vals("L100", amount=97.0)
    vals["line_ids"] = [
        (0, 0, {"account_id": 24, "debit": 0, "credit": 1.0, "name": f"sale {i}"})
        for i in range(99)
    ] + [(0, 0, {"account_id": 42, "debit": 99.0, "credit": 0, "name": "cash"})]
    move, created = costed.charged(lambda: costed.rpc("account.move", "create", vals))
    _, posted = costed.charged(lambda: costed.rpc("account.move", "action_post", [move]))
    assert near(created["account.move.create"], 0.255)
    assert near(posted["account.move.action_post"], 0.076)


@pytest.mark.parametrize(
    ("moves", "create_s", "validate_s"), [(1, 0.135, 0.168), (10, 0.343, 0.393), (100, 2.40, 2.22)]
)
def test_s1p_picking_costs_what_odoo_spends_never_less(
    costed: Costed, moves: int, create_s: float, validate_s: float
) -> None:
    pids = [storable(costed, f"COST-{moves}-{i}") for i in range(min(moves, 5))]
    vals = s1p_picking(f"cost-{moves}", [pids[i % len(pids)] for i in range(moves)])
    pick, created = costed.charged(lambda: costed.rpc("stock.picking", "create", vals))
    answer, validated = costed.charged(
        lambda: costed.rpc("stock.picking", "button_validate", [pick])
    )
    assert answer is True
    assert near(created["stock.picking.create"], create_s)
    assert near(validated["stock.picking.button_validate"], validate_s)
    # From the measurements on the busier machine: never kinder than they are.
    assert created["stock.picking.create"] >= create_s * 0.99
    assert validated["stock.picking.button_validate"] >= validate_s * 0.99


def test_indexed_search_read_costs_28_7_ms(costed: Costed) -> None:
    _, charged = costed.charged(
        lambda: costed.rpc(
            "product.product",
            "search_read",
            [("default_code", "=", "NOPE")],
            fields=["name", "default_code", "list_price", "uom_id"],
        )
    )
    assert near(charged["product.product.search_read"], 0.0287)


def test_unindexed_journal_item_search_grows_with_the_ledger(costed: Costed) -> None:
    domain = [("name", "=like", "POS:S001:T00042%")]

    def search() -> float:
        _, charged = costed.charged(lambda: costed.rpc("account.move.line", "search", domain))
        return charged["account.move.line.search"]

    before = search()
    costed.rpc("account.move", "create", entries("SCAN", 200))  # 600 more journal items
    after = search()
    assert after - before == pytest.approx(600 * CostModel().scan_per_row_s, rel=0.05)
    # At the measured ledger size (24.8k items) the search costs 40-47 ms.
    assert (
        0.040
        <= CostModel().read_call_s + CostModel().rpc_floor_s + 24_800 * (CostModel().scan_per_row_s)
        <= 0.047
    )


def test_scan_needs_an_unindexed_field_and_no_selective_key() -> None:
    assert is_scan("account.move.line", [("name", "=like", "POS:%")])
    assert not is_scan("account.move.line", [("move_id", "=", 4), ("name", "=like", "POS:%")])
    assert not is_scan("account.move", [("ref", "=", "POS:S001:T1")])
    assert is_scan("account.move", ["|", ("narration", "ilike", "T1"), ("ref", "=", "x")])


def test_failed_calls_cost_at_least_the_floor(costed: Costed) -> None:
    def fail() -> None:
        with pytest.raises(odoorpc.error.RPCError):
            costed.rpc("account.move", "action_post", [10**9])

    _, charged = costed.charged(fail)
    assert charged["account.move.action_post"] >= CostModel().rpc_floor_s
    assert costed.emu.stats()["errors"] == 1


def test_other_creates_and_writes_cost_per_record(costed: Costed) -> None:
    pid, created = costed.charged(
        lambda: costed.rpc("product.product", "create", {"name": "Cost tee", "default_code": "CT"})
    )
    _, written = costed.charged(
        lambda: costed.rpc("product.product", "write", [pid], {"name": "T"})
    )
    model = CostModel()
    assert created["product.product.create"] >= model.rpc_floor_s + model.create_call_s
    assert written["product.product.write"] == pytest.approx(
        model.rpc_floor_s + model.write_call_s + model.write_per_record_s
    )


def test_stats_report_charged_and_used_server_time(costed: Costed) -> None:
    costed.emu.reset_stats()
    costed.rpc("account.move", "create", entries("ST", 2))
    stats = costed.emu.stats()
    assert stats["cost_model"] == "odoo17"
    assert stats["server_time_s"] == pytest.approx(sum(stats["server_time_by_method"].values()))
    # The time charged is really used by the request threads.
    assert stats["server_cpu_s"] >= stats["server_time_s"] * 0.99
    assert stats["work"]["create account.move"] == 2
    assert stats["work"]["create account.move.line"] == 6


def test_off_by_default_charges_nothing() -> None:
    with OdooEmulator() as emu:
        emu.start()
        odoo = login(emu)
        odoo.execute_kw("account.move", "create", [entries("OFF", 1)])
        stats = emu.stats()
    assert stats["cost_model"] is None
    assert stats["server_time_s"] == 0
    assert stats["server_time_by_method"] == {}


def test_unknown_cost_model_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="cost model: expected one of odoo17, got 'odoo16'"):
        OdooEmulator(cost_model="odoo16")


# -- the time is really consumed (lower bounds only) -----------------------------------------


def timed_create(emu: OdooEmulator, tag: str, n: int) -> float:
    odoo = login(emu)
    start = time.perf_counter()
    odoo.execute_kw("account.move", "create", [entries(tag, n)])
    return time.perf_counter() - start


@pytest.mark.parametrize("concurrency", ["serial", "postgres"])
def test_a_charged_call_takes_at_least_its_cost(concurrency: str) -> None:
    with OdooEmulator(cost_model="odoo17", concurrency=concurrency) as emu:
        emu.start()
        emu.reset_stats()
        took = timed_create(emu, "W", 40)
        charged = emu.stats()["server_time_by_method"]["account.move.create"]
    assert charged > 0.3
    assert took >= charged


@pytest.mark.parametrize("concurrency", ["serial", "postgres"])
def test_two_concurrent_heavy_calls_share_the_cpu_like_odoo_threads(concurrency: str) -> None:
    """Under the GIL, two calls of cost C that overlap for a time o share the CPU meanwhile:
    together they take 2C + o of wall time (a parallel sleep takes 2C, whatever o). A loaded
    machine only adds time; calls that hardly overlapped (a thread started late) are run again.
    The calls are pickings of a consumable: nearly all their cost is the model's."""
    with OdooEmulator(cost_model="odoo17", concurrency=concurrency) as emu:
        emu.start()
        clients = [login(emu), login(emu)]
        pid = clients[0].execute_kw(
            "product.product", "create", [{"name": "Bag", "default_code": "BAG", "type": "consu"}]
        )
        for attempt in range(4):
            emu.reset_stats()
            spans: list[tuple[float, float]] = []
            barrier = threading.Barrier(2)

            def run(
                i: int, attempt: int, barrier: threading.Barrier, spans: list[tuple[float, float]]
            ) -> None:
                vals = s1p_picking(f"pair-{attempt}-{i}", [pid] * 20)
                barrier.wait()
                start = time.perf_counter()
                clients[i].execute_kw("stock.picking", "create", [vals])
                spans.append((start, time.perf_counter()))

            threads = [
                threading.Thread(target=run, args=(i, attempt, barrier, spans)) for i in range(2)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            single = emu.stats()["server_time_by_method"]["stock.picking.create"] / 2
            overlap = min(e for _, e in spans) - max(s for s, _ in spans)
            if overlap >= 0.5 * single:
                break
    assert len(spans) == 2 and single > 0.5
    assert overlap >= 0.5 * single, "the two calls never ran at the same time"
    took = sum(e - s for s, e in spans)
    assert took >= 2 * single + 0.8 * overlap


def test_postgres_mode_uses_the_time_before_the_commit() -> None:
    """Odoo's transaction stays open while the server works: the rows become visible no
    earlier than the call's cost after it started."""
    with OdooEmulator(cost_model="odoo17", concurrency="postgres") as emu:
        emu.start()
        writer, reader = login(emu), login(emu)
        emu.reset_stats()
        start = time.perf_counter()
        thread = threading.Thread(
            target=writer.execute_kw, args=("account.move", "create", [entries("VIS", 40)])
        )
        thread.start()
        seen_at = None
        while seen_at is None:
            if reader.execute_kw("account.move", "search_count", [[("ref", "=like", "VIS%")]]):
                seen_at = time.perf_counter() - start
        thread.join()
        charged = emu.stats()["server_time_by_method"]["account.move.create"]
    assert charged > 0.3
    assert seen_at >= charged


def test_command_line_turns_the_cost_model_on() -> None:
    from simulators.odoo.__main__ import parse_args

    assert parse_args([]).cost_model == "none"
    assert parse_args(["--cost-model", "odoo17"]).cost_model == "odoo17"
    with pytest.raises(SystemExit):
        parse_args(["--cost-model", "odoo16"])
