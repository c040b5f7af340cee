"""Helpers for the fault e2e tests: processes a test owns (a Temporal dev server on a SQLite
file, the Odoo emulator on a SQLite file) that it can kill and start again on the same data and
port, and the exactly-once checks read from Odoo."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.odoo.client import OdooClient
from domain.posting import PostingProfile
from tests.workflows.helpers import eventually
from workers.audit import read_books
from workers.client import connect
from workers.devserver import dev_server_command, free_port, port_in_use, wait_for_port
from workers.settings import Settings, TemporalSettings
from workers.submit import Mode, Submitted, submit_many
from workflows.store_ledger import StoreLedger, ledger_workflow_id

REPO = Path(__file__).resolve().parents[2]


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)


class OwnedProcess:
    """A server process of the test's own, on a fixed port and a SQLite file that outlive it:
    `start`, `kill` (SIGKILL: no clean shutdown), `start` again on the same data, `close`."""

    what = "process"

    def __init__(self, db_file: Path, log: Path, port: int | None = None) -> None:
        self.db_file = db_file
        self.log = log
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    async def start(self, timeout: float = 60) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.what} already running"
        # The port was just freed by a killed process: wait until nobody listens on it.
        await asyncio.to_thread(self._wait_port_free, timeout)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command(), cwd=REPO, stdout=out, stderr=out)
        await asyncio.to_thread(wait_for_port, self.port, self.proc, self.what, timeout)

    def _wait_port_free(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while port_in_use(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} still in use after {timeout:.0f} s")
            time.sleep(0.1)

    async def kill(self) -> None:
        await asyncio.to_thread(_kill, self.proc)

    def close(self) -> None:
        """Stop it whatever state it is in (for `finally`)."""
        _terminate(self.proc)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class TemporalDevServer(OwnedProcess):
    """`temporal server start-dev` on a SQLite file, with the project's search attributes."""

    what = "the Temporal dev server"

    def command(self) -> list[str]:
        return dev_server_command(self.port, None, self.db_file)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def client(self, timeout: float = 60) -> Client:
        """A client of the project's own factory, once the server answers."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                client = await connect(TemporalSettings(address=self.address))
                await client.count_workflows()
                return client
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)


class OdooProcess(OwnedProcess):
    """The Odoo emulator as its own process (`python -m simulators.odoo`) on a SQLite file."""

    what = "the Odoo emulator"

    def __init__(
        self, db_file: Path, log: Path, port: int | None = None, args: Iterable[str] = ()
    ) -> None:
        super().__init__(db_file, log, port)
        self.args = list(args)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "simulators.odoo",
            "--port",
            str(self.port),
            "--db",
            str(self.db_file),
            "--log-level",
            "WARNING",
            *self.args,
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# -- exactly-once checks, read from Odoo as an auditor would ------------------------------------


def posted_keys(odoo: OdooClient, stores: Iterable[str]) -> dict[str, int]:
    """Sale key -> number of posted entries, for these stores."""
    ours = set(stores)
    books = read_books(odoo, PostingProfile())
    return {k: n for k, n in books.posted_per_key.items() if k.split(":")[1] in ours}


def draft_entries(odoo: OdooClient, store: str) -> list[str]:
    rows = odoo.call(
        "account.move",
        "search_read",
        [
            "|",
            ("ref", "=like", f"POS:{store}:%"),
            ("ref", "=like", f"SUM:{store}:%"),
            ("state", "=", "draft"),
        ],
        fields=["ref"],
    )
    return [r["ref"] for r in rows]


def store_origins(store: str, field: str = "origin") -> list[Any]:
    """A domain for the store's pickings: per sale (`POS:{store}:{txn}`), per ledger batch
    (`batch:{store}:{day}:{uuid}`) or per summary (`SUM:{store}:{day}:{batch}`)."""
    return [
        "|",
        "|",
        (field, "=like", f"POS:{store}:%"),
        (field, "=like", f"batch:{store}:%"),
        (field, "=like", f"SUM:{store}:%"),
    ]


def pickings_of(odoo: OdooClient, store: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = odoo.call(
        "stock.picking", "search_read", store_origins(store), fields=["origin", "state", "name"]
    )
    return rows


def stock_out_by_sku(odoo: OdooClient, store: str) -> dict[str, Decimal]:
    """Quantity per SKU that left stock (done moves) for the store's sales, whatever the
    pickings are keyed by (one per sale or one per batch)."""
    moves = odoo.call(
        "stock.move",
        "search_read",
        [*store_origins(store, "picking_id.origin"), ("state", "=", "done")],
        fields=["product_id", "quantity", "location_dest_id"],
    )
    product_ids = sorted({m["product_id"][0] for m in moves})
    skus = {
        p["id"]: p["default_code"]
        for p in odoo.call("product.product", "read", product_ids, ["default_code"])
    }
    out: dict[str, Decimal] = defaultdict(Decimal)
    for m in moves:
        out[skus[m["product_id"][0]]] += Decimal(str(m["quantity"]))
    return dict(out)


def expected_stock_out(sales: Iterable[dict[str, Any]]) -> dict[str, Decimal]:
    """What must leave stock when each of these sales (distinct) moves its goods once."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for sale in sales:
        for line in sale["lines"]:
            out[line["sku"]] += Decimal(line["qty"])
    return dict(out)


def done_pickings_per_key(odoo: OdooClient, store: str) -> Counter[str]:
    """Per-sale stock: origin (the sale key) -> number of done pickings."""
    return Counter(p["origin"] for p in pickings_of(odoo, store) if p["state"] == "done")


def _same(actual: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
    """Assert two mappings are equal, naming what differs (this module is not rewritten by
    pytest, so a bare `assert a == b` would not say)."""
    differ = {
        k: (actual.get(k), expected.get(k))
        for k in sorted(set(actual) | set(expected))
        if actual.get(k) != expected.get(k)
    }
    if differ:
        shown = ", ".join(f"{k}: {a} (expected {e})" for k, (a, e) in list(differ.items())[:10])
        raise AssertionError(f"{what}: {len(differ)} differ: {shown}")


def assert_each_sale_posted_and_moved_once(
    odoo: OdooClient,
    valid: dict[str, dict[str, Any]],
    per_sale_stores: Iterable[str] = (),
    batched_stores: Iterable[str] = (),
) -> None:
    """The exactly-once check: each sale key booked by one posted entry (its own, or a summary
    listing it) and no draft entry; every picking
    done; one done picking per sale key for per-sale stores; and for every store, the
    quantities that left stock are those of its sales counted once."""
    per_sale, batched = list(per_sale_stores), list(batched_stores)
    stores = per_sale + batched
    _same(posted_keys(odoo, stores), dict.fromkeys(valid, 1), "posted entries per sale key")
    for store in stores:
        pickings = pickings_of(odoo, store)
        if not pickings:
            raise AssertionError(f"no stock moved for {store}")
        if drafts := draft_entries(odoo, store):
            raise AssertionError(f"draft entries left for {store}: {drafts}")
        if undone := [p for p in pickings if p["state"] != "done"]:
            raise AssertionError(f"pickings not done for {store}: {undone}")
        sales = [v for k, v in valid.items() if k.split(":")[1] == store]
        _same(
            stock_out_by_sku(odoo, store),
            expected_stock_out(sales),
            f"quantity out of stock per SKU for {store} ({len(pickings)} pickings)",
        )
    for store in per_sale:
        keys = [k for k in valid if k.split(":")[1] == store]
        _same(done_pickings_per_key(odoo, store), dict.fromkeys(keys, 1), "done pickings per key")


async def close_ledger(
    client: Client, store: str, business_day: date, timeout: float = 120
) -> None:
    """End the store's ledger run for the day and wait for it: a sale the ledger reports
    posted may still have its batch's stock to move until then."""
    ledger = client.get_workflow_handle_for(
        StoreLedger.run, ledger_workflow_id(store, business_day)
    )
    await ledger.signal(StoreLedger.close)
    return await asyncio.wait_for(ledger.result(), timeout=timeout)


async def submit_until_under_way(
    client: Client,
    settings: Settings,
    per_sale: list[dict[str, Any]],
    batched: list[dict[str, Any]],
    source: str,
    posted: Callable[[], Awaitable[Counter[str]]],
) -> list[Submitted]:
    """Submit a store's sales batched, and once some are posted another store's per sale, and
    return once some of those are posted too: a fault injected then lands with both modes
    under way (per-sale workflows run in parallel and would otherwise finish first)."""
    batched_store, per_sale_store = batched[0]["store_id"], per_sale[0]["store_id"]
    submitted = await submit_many(client, settings, batched, Mode.BATCHED, source)
    await eventually(posted, lambda n: n[batched_store] >= 10, timeout=60)
    submitted += await submit_many(client, settings, per_sale, Mode.PER_SALE, source)
    await eventually(posted, lambda n: n[per_sale_store] >= 10, timeout=60)
    return submitted
