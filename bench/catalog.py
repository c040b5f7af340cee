"""`make bench` catalog: CatalogSync at scale (docs/catalog.md).

Two runs, each on its own Odoo emulator (seeded without the cost model, then restarted on the
same SQLite file with it), POS simulator and `retailflow worker` process:

* full: `--catalog-full PRODUCTSxSTORES` (default 20000x80): empty stores, so every product goes
  to every store;
* incremental: `--catalog-incremental CHANGEDxSTORES` (default 50x2000): the stores first
  caught up with the demo catalogue (setup, not timed), then CHANGED products edited in Odoo
  and one sync timed.

Measured: wall time of the timed sync, Odoo's RPCs and server time (the emulator's stats), the
worker's peak RSS (VmHWM), pages and commands. The stores' catalogs are checked afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import odoorpc

from bench.procs import peak_rss_mb
from simulators.sales import seed_catalogue
from workers.client import connect
from workers.devserver import free_port, stop, wait_for_port
from workers.settings import Settings, TemporalSettings
from workflows.catalog_sync import CatalogSync, CatalogSyncInput, sync_workflow_id

BIN = Path(sys.executable).parent
BATCH = 500


def parse_size(text: str) -> tuple[int, int]:
    """`20000x80` -> (20000, 80)."""
    a, _, b = text.partition("x")
    return int(a), int(b)


class Stage:
    """An Odoo emulator, a POS fleet and a worker of their own."""

    def __init__(self, workdir: Path, name: str, cost_model: str, stores: int) -> None:
        self.workdir, self.name, self.cost_model = workdir, name, cost_model
        self.db = workdir / f"odoo-catalog-{name}.sqlite"
        self.log = (workdir / f"catalog-{name}.log").open("wb")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.odoo_port = free_port()
        self.odoo = self._odoo("none")
        self.pos_port = free_port()
        self.procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "simulators.pos",
                    "--stores",
                    str(stores),
                    "--port",
                    str(self.pos_port),
                    "--apply-delay-ms",
                    "0",
                    "--log-level",
                    "WARNING",
                ],
                stdout=self.log,
                stderr=self.log,
            )
        )
        wait_for_port(self.pos_port, self.procs[-1], "the POS simulator")
        self.rpc = self._login()
        seed_catalogue(self.rpc)
        self.worker: subprocess.Popen[bytes] | None = None

    def _odoo(self, cost_model: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulators.odoo",
                "--port",
                str(self.odoo_port),
                "--db",
                str(self.db),
                "--cost-model",
                cost_model,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.odoo_port, proc, "the Odoo emulator")
        return proc

    def _login(self) -> odoorpc.ODOO:
        rpc = odoorpc.ODOO("127.0.0.1", port=self.odoo_port, timeout=600)
        rpc.login("retail", "admin", "admin")
        return rpc

    def with_cost_model(self) -> None:
        """Restart Odoo on the same file, costing what Odoo 17 costs."""
        stop(self.odoo)
        self.odoo = self._odoo(self.cost_model)
        self.rpc = self._login()

    def products(self, n: int, tag: str) -> list[int]:
        ids: list[int] = []
        for start in range(0, n, BATCH):
            vals = [
                {
                    "name": f"Bench {tag} {i}",
                    "default_code": f"B{tag}-{i:06d}",
                    "list_price": 1 + i % 50,
                }
                for i in range(start, min(n, start + BATCH))
            ]
            ids += self.rpc.execute_kw("product.product", "create", [vals])
        return ids

    def start_worker(self, temporal_address: str) -> Settings:
        settings = Settings(
            task_queue=f"bench-catalog-{self.name}",
            odoo_url=f"http://127.0.0.1:{self.odoo_port}",
            pos_url=f"http://127.0.0.1:{self.pos_port}",
            temporal=TemporalSettings(address=temporal_address),
        )
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_address,
            "RETAILFLOW_TASK_QUEUE": settings.task_queue,
            "RETAILFLOW_ODOO_URL": settings.odoo_url,
            "RETAILFLOW_POS_URL": settings.pos_url,
        }
        self.worker = subprocess.Popen(
            [str(BIN / "retailflow"), "worker"], env=env, stdout=self.log, stderr=self.log
        )
        self.procs.append(self.worker)
        return settings

    def stats(self, method: str) -> dict[str, Any]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.odoo_port}/_emulator/stats", method=method
        )
        with urllib.request.urlopen(req, timeout=30) as answer:
            stats: dict[str, Any] = json.loads(answer.read())
        return stats

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        stop(self.odoo)
        self.log.close()


async def sync_once(settings: Settings, name: str, **over: Any) -> dict[str, Any]:
    client = await connect(settings.temporal)
    sid = f"bench-{name}-{int(time.time())}"
    started = time.monotonic()
    report = await client.execute_workflow(
        CatalogSync.run,
        CatalogSyncInput(sync_id=sid, **over),
        id=sync_workflow_id(sid),
        task_queue=settings.task_queue,
    )
    return {"wall_s": time.monotonic() - started, "report": report}


async def run_catalog(
    temporal_address: str, workdir: Path, cost_model: str, full: str, incremental: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    products, stores = parse_size(full)
    stage = Stage(workdir, "full", cost_model, stores)
    try:
        stage.products(products, "F")
        stage.with_cost_model()
        settings = stage.start_worker(temporal_address)
        stage.stats("DELETE")
        run = await sync_once(settings, "full", page_size=200)
        out["full"] = measured(stage, run, products, stores)
        print_run("full", out["full"])
    finally:
        stage.close()
    changed, stores = parse_size(incremental)
    stage = Stage(workdir, "incremental", cost_model, stores)
    try:
        ids = stage.products(changed, "I")
        stage.with_cost_model()
        settings = stage.start_worker(temporal_address)
        # Settled: no settle time for the setup, and a second between it and the changes, so
        # the timed sync reads only the changed products (docs/catalog.md, "The settle time":
        # in steady state a sync also reads again the last 2 minutes before the previous one).
        await sync_once(settings, "incremental-setup", page_size=200, settle=timedelta(0))
        await asyncio.sleep(1.1)
        stage.rpc.execute_kw("product.product", "write", [ids, {"list_price": 99.5}])
        stage.stats("DELETE")
        run = await sync_once(settings, "incremental", page_size=200)
        out["incremental"] = measured(stage, run, changed, stores)
        print_run("incremental", out["incremental"])
    finally:
        stage.close()
    return out


def measured(stage: Stage, run: dict[str, Any], products: int, stores: int) -> dict[str, Any]:
    """What one sync cost: every store caught up, or the bench fails."""
    r, stats = run["report"], stage.stats("GET")
    assert not r.behind and r.caught_up == stores, r.behind
    return {
        "products": products,
        "stores": stores,
        "wall_s": run["wall_s"],
        "pages": r.pages,
        "products_read": r.products_read,
        "upserts": r.upserts,
        "commands": r.commands_sent,
        "odoo_rpcs": stats["calls"],
        "odoo_server_s": stats.get("server_time_s", 0.0),
        "worker_peak_rss_mb": peak_rss_mb(stage.worker.pid) if stage.worker else None,
    }


def print_run(kind: str, r: dict[str, Any]) -> None:
    print(
        f"catalog  {kind}: {r['products']} products to {r['stores']} stores in "
        f"{r['wall_s']:.1f} s; {r['pages']} pages ({r['products_read']} rows read, "
        f"{r['upserts']} upserts), {r['commands']} commands, "
        f"{r['odoo_rpcs']} Odoo RPCs ({r['odoo_server_s']:.1f} s server), worker peak RSS "
        f"{r['worker_peak_rss_mb']:.0f} MB",
        flush=True,
    )
