"""`make bench` recon: three-way reconciliation of store-days at scale.

Setup (not timed), on a POS simulator, a gateway simulator and an Odoo emulator, each in its
own process:

* every store-day's sales (`simulators.sales.make_sale`, a store in UTC-5 open 09:00-19:00)
  are rung into the POS journal through its bulk admin route;
* their card payments become succeeded payment intents at the gateway (`metadata` store_id and
  txn_id, `created` when the sale happened), made by the simulator's own
  `Gateway.create_payment_intent` in a process of its own on the simulator's SQLite file
  (faster than its admin route, one HTTP request per intent), before the simulator is
  started on that file;
* Odoo books them as the summary mode does: one posted summary entry per batch of at most 500
  sales of a store-day, made by `OdooSummaryActivities.post_summary` itself, in this process,
  against the emulator running WITHOUT its cost model (100,000 sales through workflows would
  take hours); the emulator is then restarted on the same SQLite file WITH the cost model;
* planted in each store-day: its first sale is missing in Odoo, its last card sale has no
  payment intent at the gateway; each report must find exactly these two differences.

Timed: a fresh `retailflow worker` process per size; one `Reconciliation` workflow per
store-day started with `closed_at` (they only compare), until every one shows a verdict
(visibility: `RetailStatus` Reconciled or Unreconciled). Measured: wall time, the worker's peak
RSS (VmHWM), each process's CPU seconds, Odoo's RPCs and server time (the emulator's stats).
The reports are then checked, and the workflows that wait for ops terminated.

Sizes: `--recon-stores 100,200` store-days of `--recon-sales 500` sales, and `--recon-big
5000,10000` sales in one store-day: two sizes each, so the growth with sales shows.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import odoorpc
from temporalio.client import Client, WorkflowExecutionStatus

from activities.odoo.client import OdooClient, OdooSettings
from activities.odoo.summary import OdooSummaryActivities, PostSummaryInput
from bench.procs import Profile, peak_rss_mb
from domain.posting import PostingProfile, summary_ref
from domain.reconciliation import DiffKind, ReconReport, ReconStatus
from domain.sale import parse_sale
from simulators.gateway import Gateway
from simulators.pos.platform import fleet_ids
from simulators.sales import make_sale, seed_catalogue
from workers.client import connect
from workers.devserver import free_port, stop, wait_for_port
from workers.settings import TemporalSettings
from workflows.reconciliation import (
    Reconciliation,
    ReconciliationInput,
    reconciliation_workflow_id,
)

BIN = Path(sys.executable).parent
DAY = date(2026, 11, 26)
ZONE = timezone(timedelta(hours=-5))
SUMMARY_BATCH = 500  # what the ledger puts in one summary at most
PLANTED = Counter({DiffKind.MISSING_IN_ODOO: 1, DiffKind.MISSING_AT_GATEWAY: 1})


def day_sales(store: str, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` sales of `store` on DAY, spread over 09:00-19:00 local time."""
    rng = random.Random(seed)
    opening = datetime.combine(DAY, datetime.min.time(), ZONE) + timedelta(hours=9)
    return [
        make_sale(rng, store, f"T{i + 1:05d}", opening + timedelta(seconds=i * 36000 // n))
        for i in range(n)
    ]


def _spawn(module: str, port: int, log: Any, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--log-level", "WARNING", *extra],
        stdout=log,
        stderr=log,
    )
    wait_for_port(port, proc, module)
    return proc


def _admin(port: int, method: str) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_emulator/stats", method=method)
    with urllib.request.urlopen(req, timeout=30) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    return stats


class Stage:
    """The simulators of the run, seeded once for every size."""

    def __init__(self, workdir: Path, cost_model: str, stores: int, per_store: int, big: list[int]):
        self.workdir = workdir
        self.cost_model = cost_model
        self.log = (workdir / "recon.log").open("wb")
        self.db = workdir / "odoo-recon.sqlite"
        ids = fleet_ids(stores + len(big))
        # S001..: the store-days of `per_store` sales; the stores after them: one big day each.
        self.days: dict[str, int] = {s: per_store for s in ids[:stores]}
        self.big: dict[int, str] = {}
        for n, store in zip(big, ids[stores:], strict=True):
            self.days[store] = n
            self.big[n] = store
        self.pos_port, self.gw_port = free_port(), free_port()
        # The POS first, the gateway (on the file seeded) once seeded: procs[0] and [1].
        self.procs: list[subprocess.Popen[bytes]] = [
            _spawn("simulators.pos", self.pos_port, self.log, "--stores", str(len(ids)))
        ]
        self.gw_db = workdir / "gateway-recon.sqlite"
        self.odoo_port = free_port()
        self.odoo: subprocess.Popen[bytes] | None = None

    def start_odoo(self, cost_model: str) -> None:
        self.odoo = _spawn(
            "simulators.odoo", self.odoo_port, self.log, "--db", str(self.db),
            "--cost-model", cost_model,
        )  # fmt: skip

    def stop_odoo(self) -> None:
        if self.odoo is not None:
            stop(self.odoo)
            self.odoo = None

    def close(self) -> None:
        self.stop_odoo()
        for proc in reversed(self.procs):
            stop(proc)
        self.log.close()

    # -- setup --------------------------------------------------------------------------------

    def seed(self) -> dict[str, float]:
        """Ring up, capture and book every store-day (Odoo without its cost model), then
        restart Odoo with it. Returns the seconds each part took."""
        took: dict[str, float] = {}
        t = time.perf_counter()
        sales = {s: day_sales(s, n, seed=i) for i, (s, n) in enumerate(self.days.items())}
        took["generate_s"] = time.perf_counter() - t
        self.start_odoo("none")
        rpc = odoorpc.ODOO("127.0.0.1", port=self.odoo_port, timeout=600)
        rpc.login("retail", "admin", "admin")
        seed_catalogue(rpc, on_hand=1000)
        t = time.perf_counter()
        with httpx.Client(base_url=f"http://127.0.0.1:{self.pos_port}", timeout=120) as pos:
            for store, day in sales.items():
                for i in range(0, len(day), 2000):
                    r = pos.post(f"/_sim/stores/{store}/transactions", json=day[i : i + 2000])
                    r.raise_for_status()
        took["pos_s"] = time.perf_counter() - t
        # The gateway's file (in a process of its own) and Odoo are seeded at once.
        t = time.perf_counter()
        capturing = multiprocessing.get_context("spawn").Process(
            target=seed_gateway, args=(str(self.gw_db), card_payments(sales))
        )
        capturing.start()
        self._book(sales)
        took["odoo_s"] = time.perf_counter() - t
        capturing.join()
        if capturing.exitcode != 0:
            raise RuntimeError(f"seeding the gateway failed (exit code {capturing.exitcode})")
        took["gateway_s"] = time.perf_counter() - t
        self.procs.append(
            _spawn("simulators.gateway", self.gw_port, self.log, "--db", str(self.gw_db))
        )
        self.stop_odoo()
        self.start_odoo(self.cost_model)
        return took

    def _book(self, sales: dict[str, list[dict[str, Any]]]) -> None:
        """Summaries of at most 500 sales per store-day, as the summary mode books them; each
        store-day's first sale is left out (missing in Odoo)."""
        client = OdooClient(OdooSettings(url=f"http://127.0.0.1:{self.odoo_port}", timeout_s=600))
        summary = OdooSummaryActivities(client, PostingProfile())
        jobs = []
        for store, day in sales.items():
            booked = [parse_sale(s) for s in day[1:]]
            for b, i in enumerate(range(0, len(booked), SUMMARY_BATCH)):
                jobs.append(
                    PostSummaryInput(
                        store_id=store,
                        business_day=DAY,
                        ref=summary_ref(store, DAY, f"b{b + 1}"),
                        sales=booked[i : i + SUMMARY_BATCH],
                    )
                )

        def post(job: PostSummaryInput) -> None:
            result = summary.post_summary(job)
            assert all(o.posted for o in result.outcomes), f"{job.ref} not booked"

        with ThreadPoolExecutor(3) as pool:
            list(pool.map(post, jobs))


def card_payments(sales: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A payment intent per card payment, but for each store-day's last card sale."""
    bodies = []
    for store, day in sales.items():
        cards = [s for s in day if any(p["method"] == "card" for p in s["payments"])]
        for sale in cards[:-1]:
            at = int(datetime.fromisoformat(sale["occurred_at"]).timestamp())
            for p in sale["payments"]:
                if p["method"] == "card":
                    bodies.append(
                        {
                            "id": p["reference"],
                            "amount": int(Decimal(p["amount"]) * 100),
                            "metadata": {"store_id": store, "txn_id": sale["txn_id"]},
                            "created": at,
                        }
                    )
    return bodies


def seed_gateway(path: str, bodies: list[dict[str, Any]]) -> None:
    """Succeeded payment intents in the gateway simulator's file, as its admin route makes
    them (`Gateway.create_payment_intent`), without HTTP; the simulator is started on the
    file afterwards."""
    gateway = Gateway(db_path=path)
    for b in bodies:
        gateway.create_payment_intent(
            b["id"], b["amount"], metadata=b["metadata"], created=b["created"]
        )
    gateway.ledger.engine.dispose()


# -- the timed part ---------------------------------------------------------------------------


async def reconcile_all(
    stage: Stage, temporal_address: str, temporal_pid: int | None, stores: list[str], tag: str
) -> dict[str, Any]:
    """Reconcile `stores`' day with a fresh worker: the figures of one size."""
    queue = f"bench-recon-{tag}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_address,
        "RETAILFLOW_TASK_QUEUE": queue,
        "RETAILFLOW_ODOO_URL": f"http://127.0.0.1:{stage.odoo_port}",
        "RETAILFLOW_POS_URL": f"http://127.0.0.1:{stage.pos_port}",
        "RETAILFLOW_GATEWAY_API_BASE": f"http://127.0.0.1:{stage.gw_port}",
    }
    with (stage.workdir / f"worker-recon-{tag}.log").open("wb") as log:
        worker = subprocess.Popen(
            [str(BIN / "retailflow"), "worker"], env=env, stdout=log, stderr=log
        )
    client = await connect(TemporalSettings(address=temporal_address))
    try:
        await asyncio.sleep(2)  # worker connected and polling
        assert stage.odoo is not None
        _admin(stage.odoo_port, "DELETE")
        profile = Profile(
            **{
                "retailflow worker": worker.pid,
                "Temporal dev server": temporal_pid,
                "Odoo emulator": stage.odoo.pid,
                "POS simulator": stage.procs[0].pid,
                "gateway simulator": stage.procs[1].pid,
            }
        )
        # Closed once every entry was booked (the seeding just did it): none is late.
        closed_at = datetime.now(UTC)
        start = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    Reconciliation.run,
                    ReconciliationInput(store_id=s, business_day=DAY, closed_at=closed_at),
                    id=reconciliation_workflow_id(s, DAY),
                    task_queue=queue,
                )
                for s in stores
            )
        )
        query = (
            f"TaskQueue = '{queue}' AND "
            f"RetailStatus IN ('{ReconStatus.RECONCILED.value}', "
            f"'{ReconStatus.UNRECONCILED.value}')"
        )
        while (await client.count_workflows(query)).count < len(stores):
            await asyncio.sleep(0.2)
        wall = time.perf_counter() - start
        cpu = profile.stop()
        rss = peak_rss_mb(worker.pid)
        stats = _admin(stage.odoo_port, "GET")
        reports = [await _report(client, h.id) for h in handles]
        await _terminate(client, [h.id for h in handles])
    finally:
        stop(worker)
    return {
        "store_days": len(stores),
        "sales": sum(stage.days[s] for s in stores),
        "wall_s": wall,
        "worker_peak_rss_mb": rss,
        "cpu_s": cpu,
        "odoo": {
            "server_time_s": stats.get("server_time_s", 0.0),
            "rpcs": stats["calls"],
            "rpcs_by_method": stats["by_method"],
            "server_time_by_method": stats.get("server_time_by_method", {}),
        },
        **_check(reports, stage, stores),
    }


async def _report(client: Client, wf_id: str) -> ReconReport:
    handle = client.get_workflow_handle_for(Reconciliation.run, wf_id)
    report = await handle.query(Reconciliation.report)
    assert report is not None, f"{wf_id} has no report"
    return report


async def _terminate(client: Client, ids: list[str]) -> None:
    """End the workflows that wait for ops (the bench's own, not a decision)."""
    for wf_id in ids:
        handle = client.get_workflow_handle(wf_id)
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate(reason="bench: timed, no ops decision")


def _check(reports: list[ReconReport], stage: Stage, stores: list[str]) -> dict[str, Any]:
    """Every report matched all but the planted sales and found exactly the planted kinds."""
    kinds: Counter[str] = Counter()
    matched = 0
    for report, store in zip(reports, stores, strict=True):
        found = Counter(d.kind for d in report.diffs)
        assert found == PLANTED, f"{store}: {dict(found)}, expected {dict(PLANTED)}"
        assert report.status is ReconStatus.UNRECONCILED
        assert report.pos_transactions == stage.days[store]
        kinds.update(str(d.kind.value) for d in report.diffs)
        matched += report.matched
    return {"matched": matched, "diffs": dict(kinds)}


async def run_recon(
    temporal_address: str,
    temporal_pid: int | None,
    workdir: Path,
    cost_model: str,
    store_sizes: list[int],
    per_store: int,
    big_sizes: list[int],
) -> dict[str, Any]:
    stage = Stage(workdir, cost_model, max(store_sizes, default=0), per_store, big_sizes)
    try:
        setup = stage.seed()
        print(
            f"recon    setup: {sum(stage.days.values())} sales in {len(stage.days)} store-days: "
            + ", ".join(f"{k.removesuffix('_s')} {v:.0f} s" for k, v in setup.items()),
            flush=True,
        )
        runs: list[dict[str, Any]] = []
        fleet = [s for s in stage.days if s not in stage.big.values()]
        for n in store_sizes:
            runs.append(
                await reconcile_all(
                    stage, temporal_address, temporal_pid, fleet[:n], f"{n}x{per_store}"
                )
            )
            print_run(runs[-1])
        for n in big_sizes:
            runs.append(
                await reconcile_all(stage, temporal_address, temporal_pid, [stage.big[n]], f"1x{n}")
            )
            print_run(runs[-1])
    finally:
        stage.close()
    return {"setup_s": setup, "per_store": per_store, "runs": runs}


def print_run(r: dict[str, Any]) -> None:
    top = sorted(r["odoo"]["server_time_by_method"].items(), key=lambda kv: -kv[1])[:3]
    print(
        f"recon    {r['store_days']} store-day(s), {r['sales']} sales: {r['wall_s']:.1f} s, "
        f"worker peak RSS {r['worker_peak_rss_mb']:.0f} MB; odoo {r['odoo']['rpcs']} RPCs, "
        f"{r['odoo']['server_time_s']:.1f} s server ("
        + ", ".join(f"{m} {t:.1f} s" for m, t in top)
        + "); cpu "
        + ", ".join(f"{who} {s:.1f} s" for who, s in r["cpu_s"].items()),
        flush=True,
    )


def print_table(recon: dict[str, Any]) -> None:
    runs = recon["runs"]
    print(
        "\n| reconciliation | sales | wall s | sales/s | worker peak RSS | Odoo RPCs | "
        "Odoo server s | worker CPU s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        days = "1 store-day" if r["store_days"] == 1 else f"{r['store_days']} store-days"
        what = f"{days} × {r['sales'] // r['store_days']:,}"
        print(
            f"| {what} | {r['sales']:,} | {r['wall_s']:.1f} | {r['sales'] / r['wall_s']:,.0f} | "
            f"{r['worker_peak_rss_mb']:.0f} MB | {r['odoo']['rpcs']} | "
            f"{r['odoo']['server_time_s']:.1f} | {r['cpu_s']['retailflow worker']:.1f} |"
        )
    # Linear growth: each pair of sizes of the same kind, time ratio against sales ratio.
    fleet = [r for r in runs if r["store_days"] > 1]
    big = [r for r in runs if r["store_days"] == 1]
    for pair in (fleet, big):
        if len(pair) >= 2:
            a, b = pair[0], pair[-1]
            print(
                f"{b['sales']:,} / {a['sales']:,} sales ({b['sales'] / a['sales']:.2f}×): "
                f"wall {b['wall_s'] / a['wall_s']:.2f}×, worker CPU "
                f"{b['cpu_s']['retailflow worker'] / a['cpu_s']['retailflow worker']:.2f}×, "
                f"Odoo server time "
                f"{b['odoo']['server_time_s'] / max(a['odoo']['server_time_s'], 1e-9):.2f}×"
            )
