"""The ``postgres`` concurrency mode: out-of-order commits, serialization failures under
contention (and only then), each call still all-or-nothing, and the journal's first-name
collision of concurrent drafts.

Overlap is made deterministic, not timed: the first writing call gets a long scripted commit
delay, the test waits until the emulator reports it pending, then makes the second call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import odoorpc
import pytest

from simulators.odoo import OdooEmulator
from simulators.odoo.__main__ import parse_args
from simulators.odoo.concurrency import Concurrency

from .conftest import entry_vals, login

SERIALIZATION = "psycopg2.errors.SerializationFailure"
SERIALIZATION_MESSAGE = "could not serialize access due to concurrent update"
HOLD_MS = 600.0


class Pg:
    """An emulator in ``postgres`` mode with two clients."""

    def __init__(self, emu: OdooEmulator) -> None:
        self.emu = emu
        self.a = login(emu)
        self.b = login(emu)

    def hold_next_commit(self, **settings: Any) -> None:
        """The next writing call commits after HOLD_MS; later ones at once."""
        settings = {"commit_jitter_ms": 0, "conflict_delay_ms": 0, **settings}
        self.emu.database.concurrency = Concurrency(
            mode="postgres", delays_ms=(HOLD_MS,), **settings
        )

    def overlap(
        self, slow: Callable[[], Any], fast: Callable[[], Any], **settings: Any
    ) -> tuple[Any, Any, int]:
        """Run ``slow`` until its work is done but not committed, then ``fast``: their
        results (or the exceptions raised) and how many commits were still pending when
        ``fast`` returned."""
        self.hold_next_commit(**settings)
        outcome: dict[str, Any] = {}

        def run_slow() -> None:
            try:
                outcome["slow"] = slow()
            except Exception as exc:  # returned to the test
                outcome["slow"] = exc

        thread = threading.Thread(target=run_slow)
        thread.start()
        deadline = time.monotonic() + 30
        while self.emu.database.pending_commits == 0 and thread.is_alive():
            assert time.monotonic() < deadline, "the slow call never reached its commit"
            time.sleep(0.002)
        try:
            fast_result: Any = fast()
        except Exception as exc:  # returned to the test
            fast_result = exc
        still_pending = self.emu.database.pending_commits
        thread.join(timeout=60)
        return outcome["slow"], fast_result, still_pending


@pytest.fixture
def pg() -> Iterator[Pg]:
    emu = OdooEmulator(
        concurrency=Concurrency(mode="postgres", commit_jitter_ms=0, conflict_delay_ms=0, seed=3)
    )
    emu.start()
    try:
        yield Pg(emu)
    finally:
        emu.stop()


def product(odoo: odoorpc.ODOO, name: str, stock: float = 0) -> int:
    pid = int(odoo.env["product.product"].create({"name": name, "type": "product"}))
    if stock:
        odoo.execute_kw(
            "stock.quant",
            "create",
            [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": stock}],
            {"context": {"inventory_mode": True}},
        )
    return pid


def s1p(pid: int, origin: str, qty: float = 5) -> dict[str, Any]:
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
                    "name": origin,
                    "product_id": pid,
                    "product_uom": 1,
                    "product_uom_qty": qty,
                    "quantity": qty,
                    "picked": True,
                    "location_id": 8,
                    "location_dest_id": 5,
                },
            )
        ],
    }


def stock(odoo: odoorpc.ODOO, pid: int) -> tuple[float, float]:
    [row] = odoo.env["product.product"].read([pid], ["qty_available"])
    quants = odoo.env["stock.quant"].search_read([("product_id", "=", pid)], ["reserved_quantity"])
    return row["qty_available"], sum(q["reserved_quantity"] for q in quants)


def assert_serialization_failure(result: Any) -> None:
    assert isinstance(result, odoorpc.error.RPCError), result
    assert result.info["data"]["name"] == SERIALIZATION
    assert str(result) == SERIALIZATION_MESSAGE


# -- out-of-order visibility ------------------------------------------------------------------


def test_a_search_sees_a_higher_id_before_a_lower_one(pg: Pg) -> None:
    Partner = "res.partner"
    slow, fast, pending = pg.overlap(
        lambda: pg.a.env[Partner].create({"name": "ORDER-SLOW"}),
        lambda: (
            pg.b.env[Partner].create({"name": "ORDER-FAST"}),
            pg.b.env[Partner].search([("name", "like", "ORDER-")], order="id"),
        ),
    )
    fast_id, seen = fast
    assert pending == 1
    assert fast_id > slow  # ids are taken at insert...
    assert seen == [fast_id]  # ...but the lower one was not committed yet
    assert pg.b.env[Partner].search([("name", "like", "ORDER-")], order="id") == [slow, fast_id]


def test_an_uncommitted_row_reads_as_missing(pg: Pg) -> None:
    slow, fast, _pending = pg.overlap(
        lambda: pg.a.env["res.partner"].create({"name": "UNSEEN"}),
        lambda: pg.b.env["res.partner"].search_count([("name", "=", "UNSEEN")]),
    )
    assert fast == 0
    assert pg.b.env["res.partner"].search_count([("name", "=", "UNSEEN")]) == 1
    assert pg.b.env["res.partner"].read([slow], ["name"])[0]["name"] == "UNSEEN"


# -- serialization failures -------------------------------------------------------------------


def test_overlapping_validations_of_one_product_fail_one_and_it_can_be_validated_later(
    pg: Pg,
) -> None:
    pid = product(pg.a, "Contended")
    first = pg.a.env["stock.picking"].create(s1p(pid, "POS:1"))
    second = pg.a.env["stock.picking"].create(s1p(pid, "POS:2"))
    slow, fast, _pending = pg.overlap(
        lambda: pg.a.env["stock.picking"].button_validate([first]),
        lambda: pg.b.env["stock.picking"].button_validate([second]),
    )
    assert slow is True
    assert_serialization_failure(fast)
    assert pg.emu.stats()["serialization_failures"] == 1
    # The failed call changed nothing: its transfer is still ready, its stock still there.
    states = pg.b.env["stock.picking"].read([first, second], ["state"])
    assert [s["state"] for s in states] == ["done", "assigned"]
    assert stock(pg.b, pid) == (-5.0, 5.0)
    assert pg.b.env["stock.picking"].button_validate([second]) is True
    assert stock(pg.b, pid) == (-10.0, 0.0)


def test_a_create_that_fails_leaves_no_picking(pg: Pg) -> None:
    pid = product(pg.a, "Contended create")
    slow, fast, _pending = pg.overlap(
        lambda: pg.a.env["stock.picking"].create(s1p(pid, "POS:A")),
        lambda: pg.b.env["stock.picking"].create(s1p(pid, "POS:B")),
    )
    assert isinstance(slow, int)
    assert_serialization_failure(fast)
    assert pg.b.env["stock.picking"].search([("origin", "=", "POS:B")]) == []
    assert pg.b.env["stock.move"].search([("origin", "=", "POS:B")]) == []
    assert stock(pg.b, pid) == (0.0, 5.0)
    again = pg.b.env["stock.picking"].create(s1p(pid, "POS:B"))
    assert pg.b.env["stock.picking"].search([("origin", "=", "POS:B")]) == [again]


def test_two_calls_writing_one_record_fail_one(pg: Pg) -> None:
    partner = pg.a.env["res.partner"].create({"name": "Shared"})
    slow, fast, _pending = pg.overlap(
        lambda: pg.a.env["res.partner"].write([partner], {"ref": "A"}),
        lambda: pg.b.env["res.partner"].write([partner], {"ref": "B"}),
    )
    assert slow is True
    assert_serialization_failure(fast)
    assert pg.b.env["res.partner"].read([partner], ["ref"])[0]["ref"] == "A"


def test_no_serialization_failure_without_contention(pg: Pg) -> None:
    one, two = product(pg.a, "One"), product(pg.a, "Two")
    first = pg.a.env["stock.picking"].create(s1p(one, "POS:one"))
    second = pg.a.env["stock.picking"].create(s1p(two, "POS:two"))
    # Overlapping, but on different products.
    slow, fast, _pending = pg.overlap(
        lambda: pg.a.env["stock.picking"].button_validate([first]),
        lambda: pg.b.env["stock.picking"].button_validate([second]),
    )
    assert (slow, fast) == (True, True)
    # Same product, one after the other.
    third = pg.a.env["stock.picking"].create(s1p(one, "POS:three"))
    fourth = pg.b.env["stock.picking"].create(s1p(one, "POS:four"))
    assert pg.a.env["stock.picking"].button_validate([third]) is True
    assert pg.b.env["stock.picking"].button_validate([fourth]) is True
    assert pg.emu.stats()["serialization_failures"] == 0
    assert pg.emu.stats()["write_conflicts"] == 0
    assert stock(pg.a, one) == (-15.0, 0.0)


def test_retries_absorb_a_conflict_as_odoo_does(pg: Pg) -> None:
    pid = product(pg.a, "Retried")
    first = pg.a.env["stock.picking"].create(s1p(pid, "POS:r1"))
    second = pg.a.env["stock.picking"].create(s1p(pid, "POS:r2"))
    # The conflict is run again after the first call has committed.
    slow, fast, _pending = pg.overlap(
        lambda: pg.a.env["stock.picking"].button_validate([first]),
        lambda: pg.b.env["stock.picking"].button_validate([second]),
        retries=1,
        conflict_delay_ms=HOLD_MS * 2.5,
    )
    assert (slow, fast) == (True, True)
    assert pg.emu.stats()["write_conflicts"] == 1
    assert pg.emu.stats()["serialization_failures"] == 0
    assert stock(pg.a, pid) == (-10.0, 0.0)


# -- all or nothing ---------------------------------------------------------------------------


def test_each_call_is_all_or_nothing(pg: Pg) -> None:
    pid = product(pg.a, "Atomic")
    before = pg.a.env["stock.picking"].search_count([])
    bad = s1p(pid, "POS:bad")
    bad["move_ids"][0][2]["product_id"] = 999_999  # fails after both transfers are inserted
    with pytest.raises(odoorpc.error.RPCError) as err:
        pg.a.env["stock.picking"].create([s1p(pid, "POS:ok"), bad])
    assert err.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert pg.a.env["stock.picking"].search_count([]) == before
    assert pg.a.env["stock.move"].search([("product_id", "=", pid)]) == []
    assert stock(pg.a, pid) == (0.0, 0.0)
    # The ids the failed call took are not handed out again, as with PostgreSQL sequences.
    ok = pg.a.env["stock.picking"].create(s1p(pid, "POS:ok"))
    assert ok > before + 2


# -- the journal's first name -----------------------------------------------------------------


def test_concurrent_first_entries_of_a_period_share_a_name_and_one_post_fails(pg: Pg) -> None:
    Move = "account.move"
    slow, fast, _pending = pg.overlap(
        lambda: pg.a.env[Move].create(entry_vals("FIRST-A", date="2023-02-10")),
        lambda: pg.b.env[Move].create(entry_vals("FIRST-B", date="2023-02-11")),
    )
    names = [r["name"] for r in pg.a.env[Move].read([slow, fast], ["name"])]
    assert names == ["MISC/2023/02/0001"] * 2
    assert pg.a.env[Move].action_post([slow]) is False
    with pytest.raises(odoorpc.error.RPCError) as err:
        pg.b.env[Move].action_post([fast])
    assert err.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert str(err.value) == (
        "The operation cannot be completed: Another entry with the same name already exists."
    )


def test_concurrent_entries_of_an_existing_period_get_distinct_names(pg: Pg) -> None:
    Move = "account.move"
    seed = pg.a.env[Move].create(entry_vals("SEED", date="2023-03-01"))
    pg.a.env[Move].action_post([seed])

    def create_and_post(client: odoorpc.ODOO, ref: str) -> int:
        mid = int(client.env[Move].create(entry_vals(ref, date="2023-03-10")))
        client.env[Move].action_post([mid])
        return mid

    slow, fast, _pending = pg.overlap(
        lambda: create_and_post(pg.a, "LATER-A"), lambda: create_and_post(pg.b, "LATER-B")
    )
    names = {r["name"] for r in pg.a.env[Move].read([seed, slow, fast], ["name"])}
    assert len(names) == 3


# -- settings ---------------------------------------------------------------------------------


def test_random_commit_delays_are_reproducible_with_a_seed() -> None:
    def draws(seed: int) -> list[float]:
        settings = Concurrency(mode="postgres", commit_jitter_ms=50, seed=seed)
        return [settings.commit_delay() for _ in range(20)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert all(0 <= d <= 0.05 for d in draws(7))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="concurrency: expected one of serial, postgres"):
        OdooEmulator(concurrency="mysql")
    with pytest.raises(ValueError, match="commit_jitter_ms"):
        Concurrency(mode="postgres", commit_jitter_ms=-1)


def test_command_line_flag() -> None:
    assert parse_args([]).concurrency == "serial"
    args = parse_args(["--concurrency", "postgres", "--commit-jitter-ms", "5"])
    assert (args.concurrency, args.commit_jitter_ms) == ("postgres", 5.0)
    with pytest.raises(SystemExit):
        parse_args(["--concurrency", "mysql"])


def test_contended_s1p_with_client_retries_moves_each_sale_exactly_once() -> None:
    """Four clients, three shared products, random commit order: a client that retries
    on serialization failures ends with every transfer done once and stock exact."""
    emu = OdooEmulator(
        concurrency=Concurrency(mode="postgres", commit_jitter_ms=5, conflict_delay_ms=1, seed=11)
    )
    emu.start()
    try:
        setup = login(emu)
        pids = [product(setup, f"Shared {n}") for n in range(3)]
        errors: list[BaseException] = []

        def retrying(call: Callable[[], Any]) -> Any:
            while True:
                try:
                    return call()
                except odoorpc.error.RPCError as exc:
                    if exc.info["data"]["name"] != SERIALIZATION:
                        raise

        def worker(n: int) -> None:
            client = login(emu)
            Picking = client.env["stock.picking"]
            try:
                for i in range(6):
                    vals = s1p(pids[(n + i) % 3], f"W{n}:{i}", qty=1)
                    pick = retrying(lambda vals=vals: Picking.create(vals))
                    assert retrying(lambda pick=pick: Picking.button_validate([pick])) is True
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        pickings = setup.env["stock.picking"].search_read([], ["origin", "state"])
        assert sorted(p["origin"] for p in pickings) == sorted(
            f"W{n}:{i}" for n in range(4) for i in range(6)
        )
        assert {p["state"] for p in pickings} == {"done"}
        assert sum(stock(setup, pid)[0] for pid in pids) == -24.0
        assert all(stock(setup, pid)[1] == 0.0 for pid in pids)
    finally:
        emu.stop()
