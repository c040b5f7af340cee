"""`make bench`: sales posted per second, end to end on the embedded default.

Every Odoo emulator runs with the `odoo17` cost model (`--cost-model odoo17`): each call uses
the server time a real Odoo 17 (workers=0, this 2-core machine) spends on it, as CPU under
the GIL (docs/odoo17-behaviour.md §h, "Cost model"). `--no-cost-model` runs the emulator as
fast as it answers, for comparison.

Ways to post the same kind of day (valid sales only, several stores):
  direct    a plain odoorpc loop, no Temporal: create + post the entry, create + validate the
            picking (stock sequence S1p: quantity and picked at create, then button_validate,
            which must answer True), one sale after another: the baseline, what a correct
            hand-rolled script does; every other mode is reported as a ratio to it
  per-sale  `retailflow sale post --mode per-sale`: one SalePosting workflow per sale
  batched   `retailflow sale post --mode batched`: StoreLedger micro-batches per store
  summary   `--mode summary`, when `workers.submit.Mode` has it (skipped otherwise)
Each runs against a fresh Odoo emulator process; Temporal is one dev server (SQLite file, WAL)
and one `retailflow worker` process, as `make demo` runs them. Rates are steady, so direct and
per-sale post fewer sales (`--few-sales`) than the other modes (`--sales`). For each run the
Odoo server-time split is read from the emulator's `/_emulator/stats`: server seconds, RPCs by
method, seconds by method (results.json, `odoo`).

  rollout   a PriceRollout of 20 SKUs to 80, 500, 2,000 and 10,000 simulated stores at once
            (POS simulator in its own process, confirmations through `retailflow ingress`):
            the Odoo phase (pricelist items written) on its own, then wall time from when
            stores were commanded (the effective time, or once Odoo was written if later) to
            the last store confirmation, the rollout's history length, and the worker
            process's peak memory (VmHWM).

  refunds   auto-approved refunds per second end to end (gateway refund + Odoo entry), and
            the latency from an approval Update to the gateway's refund (median, p95).

  recon     three-way reconciliation (bench/recon.py): 100 and 200 store-days of 500 sales,
            and one store-day of 5,000 and of 10,000 sales (`--recon-stores`, `--recon-sales`,
            `--recon-big`), Odoo seeded in summary mode: wall time until every Reconciliation
            has a verdict, the worker's peak memory, Odoo's RPCs and server time.

  catalog   CatalogSync (bench/catalog.py): a full sync of 20,000 products to 80 stores and an
            incremental one of 50 changed products to 2,000 stores (`--catalog-full`,
            `--catalog-incremental`): wall time, pages, commands, Odoo RPCs and server time,
            the worker's peak memory.

  spike     a spike of 5× the sustainable rate for 60 s over HTTP through `retailflow ingress`
            with back-pressure on (bench/spike.py): nothing lost or duplicated, 429s rather than
            timeouts, Odoo errors under 1 %, the backlog drained (`--spike-seconds`,
            `--spike-factor`, `--sustainable-rate`); bench/out/spike.json and spike.png. A
            failed check makes `python -m bench` exit 1.

Results: bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import odoorpc

from activities.odoo.client import OdooClient, OdooSettings
from bench.catalog import run_catalog
from bench.procs import Profile, peak_rss_mb
from bench.recon import print_table, run_recon
from bench.spike import add_arguments as add_spike_arguments
from bench.spike import run_spike
from domain.posting import PostingProfile, journal_entry_for, stock_lines_for
from domain.sale import parse_sale
from simulators.sales import day_of_sales, seed_catalogue
from workers.audit import read_books
from workers.client import connect
from workers.codec import ENV_KEYS, ENV_KEYS_FILE, generate_key_line
from workers.devserver import dev_server_command, free_port, stop, wait_for_port
from workers.settings import Settings, TemporalSettings
from workers.submit import Mode, submit_many, wait_until_settled

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent


# Set by --no-cost-model: emulators answer as fast as they can.
COST_MODEL = "odoo17"
# The dev server's pid, for the CPU profile of each run.
TEMPORAL_PID: int | None = None


class Odoo:
    """A fresh emulator process (with the cost model unless --no-cost-model) and the demo
    catalogue."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulators.odoo",
                "--port",
                str(self.port),
                "--db",
                str(workdir / f"odoo-{name}.sqlite"),
                "--cost-model",
                COST_MODEL,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc, "the Odoo emulator")
        self.rpc = odoorpc.ODOO("127.0.0.1", port=self.port, timeout=600)
        self.rpc.login("retail", "admin", "admin")
        self.products = seed_catalogue(self.rpc, on_hand=100_000)
        self.polls = 0

    def posted(self, prefix: str) -> int:
        """Posted entries whose ref starts with ``prefix`` (one RPC: it costs server time)."""
        self.polls += 1
        n: int = self.rpc.execute_kw(
            "account.move",
            "search_count",
            [[("ref", "=like", f"{prefix}%"), ("state", "=", "posted")]],
        )
        return n

    def _admin(self, method: str) -> dict[str, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/_emulator/stats", method=method)
        with urllib.request.urlopen(req, timeout=30) as answer:
            stats: dict[str, Any] = json.loads(answer.read())
        return stats

    def work(self, what: str) -> int:
        """A count of what committed calls did, e.g. ``"post account.move"`` (free: read from
        the emulator's stats, not an RPC)."""
        return int(self._admin("GET").get("work", {}).get(what, 0))

    def stock_done(self) -> bool:
        """Every stock move created since ``reset_stats`` is validated (done)."""
        work = self._admin("GET").get("work", {})
        created = int(work.get("create stock.move", 0))
        return created > 0 and int(work.get("done stock.move", 0)) >= created

    def reset_stats(self) -> None:
        self.polls = 0
        self._admin("DELETE")

    def server_split(self) -> dict[str, Any]:
        """Where Odoo's time went since ``reset_stats``: server seconds and RPCs by method
        (the bench's own progress polls included, and counted apart)."""
        stats = self._admin("GET")
        return {
            "cost_model": stats.get("cost_model"),
            "server_time_s": stats.get("server_time_s", 0.0),
            "server_cpu_s": stats.get("server_cpu_s", 0.0),
            "rpcs": stats["calls"],
            "rpcs_by_method": stats["by_method"],
            "server_time_by_method": stats.get("server_time_by_method", {}),
            "bench_polls": self.polls,
            "errors": stats["errors"],
        }

    def close(self) -> None:
        stop(self.proc)


def sales_for(tag: str, n: int, stores: int) -> list[dict[str, Any]]:
    names = tuple(f"{tag}{i:02d}" for i in range(stores))
    _, facts = day_of_sales(
        date(2026, 11, 26),
        stores=names,
        per_store=n // stores,
        resubmit_ratio=0.0,
        invalid_per_store=0,
        seed=99,
    )
    return list(facts["valid"].values())


def run_direct(odoo: Odoo, sales: list[dict[str, Any]]) -> float:
    """The baseline: what a correct script does without Temporal, sale after sale (stock
    sequence S1p of docs/odoo17-behaviour.md §d)."""
    rpc, profile = odoo.rpc, PostingProfile()
    accounts = {
        r["code"]: r["id"]
        for r in rpc.execute_kw("account.account", "search_read", [[]], {"fields": ["code"]})
    }
    journal = rpc.execute_kw("account.journal", "search", [[("code", "=", "MISC")]])[0]
    wh = rpc.execute_kw(
        "stock.warehouse",
        "search_read",
        [[("code", "=", "WH")]],
        {"fields": ["lot_stock_id", "out_type_id"]},
    )[0]
    customers = rpc.execute_kw("stock.location", "search", [[("usage", "=", "customer")]])[0]
    stock = wh["lot_stock_id"][0]
    start = time.perf_counter()
    for raw in sales:
        sale = parse_sale(raw)
        entry = journal_entry_for(sale, profile)
        move = rpc.execute_kw(
            "account.move",
            "create",
            [
                {
                    "move_type": "entry",
                    "journal_id": journal,
                    "date": entry.date.isoformat(),
                    "ref": entry.ref,
                    "line_ids": [
                        (
                            0,
                            0,
                            {
                                "account_id": accounts[ln.account_code],
                                "name": ln.name,
                                "debit": float(ln.debit),
                                "credit": float(ln.credit),
                            },
                        )
                        for ln in entry.lines
                    ],
                }
            ],
        )
        rpc.execute_kw("account.move", "action_post", [[move]])
        pick = rpc.execute_kw(
            "stock.picking",
            "create",
            [
                {
                    "picking_type_id": wh["out_type_id"][0],
                    "location_id": stock,
                    "location_dest_id": customers,
                    "origin": sale.key,
                    "move_ids": [
                        (
                            0,
                            0,
                            {
                                "name": ln.sku,
                                "product_id": odoo.products[ln.sku],
                                "product_uom_qty": float(ln.qty),
                                "quantity": float(ln.qty),
                                "picked": True,
                                "product_uom": 1,
                                "location_id": stock,
                                "location_dest_id": customers,
                            },
                        )
                        for ln in sale.lines
                    ],
                }
            ],
        )
        answer = rpc.execute_kw("stock.picking", "button_validate", [[pick]])
        if answer is not True:
            raise RuntimeError(f"button_validate of {sale.key} answered {answer!r}, not True")
    return time.perf_counter() - start


async def run_workflows(
    temporal_address: str,
    odoo: Odoo,
    sales: list[dict[str, Any]],
    mode: Mode,
    tag: str,
    workdir: Path,
    entry_per_sale: bool = True,
) -> tuple[float, float, dict[str, float]]:
    """(seconds until Odoo holds every entry, seconds until every workflow is settled, CPU
    seconds of each process meanwhile).

    ``entry_per_sale`` False (summary): entries are not counted, posted is settled."""
    settings = Settings(
        task_queue=f"bench-{tag}",
        odoo_url=f"http://127.0.0.1:{odoo.port}",
        batch_size=100,
        batch_max_age_s=1.0,
        temporal=TemporalSettings(address=temporal_address),
    )
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_address,
        "RETAILFLOW_TASK_QUEUE": settings.task_queue,
        "RETAILFLOW_ODOO_URL": settings.odoo_url,
    }
    with (workdir / f"worker-{tag}.log").open("wb") as log:
        worker = subprocess.Popen(
            [str(BIN / "retailflow"), "worker"], env=env, stdout=log, stderr=log
        )
    try:
        client = await connect(settings.temporal)
        await asyncio.sleep(2)  # worker connected and polling
        # Warm up, as the direct loop looks up its accounts and logs in before its clock
        # starts: the worker's Odoo sessions (one per activity thread) and lookup caches.
        warm = await submit_many(client, settings, sales_for(f"W{tag}", 20, 2), mode, "warm-up")
        await wait_until_settled(client, warm, timedelta(minutes=5), poll=0.25)
        while not odoo.stock_done():
            await asyncio.sleep(0.1)
        odoo.reset_stats()
        profile = Profile(
            **{
                "retailflow worker": worker.pid,
                "Temporal dev server": TEMPORAL_PID,
                "Odoo emulator": odoo.proc.pid,
            }
        )
        start = time.perf_counter()
        submitted = await submit_many(client, settings, sales, mode, source="bench", concurrency=64)
        posted = None
        if entry_per_sale:
            # Progress from the emulator's stats: an RPC would cost Odoo server time.
            while odoo.work("post account.move") < len(sales):
                await asyncio.sleep(0.1)
            posted = time.perf_counter() - start
        if mode is Mode.PER_SALE:
            # Settled when Odoo holds every entry and every sale's goods moved (what ends the
            # direct loop too), read from the emulator's stats: following 150 workflows
            # through Temporal would cost the 2 cores more than the workflows themselves. The
            # workflows are checked after the clock stops.
            moves = sum(len(stock_lines_for([parse_sale(s)])) for s in sales)
            while odoo.work("done stock.move") < moves:
                await asyncio.sleep(0.1)
            settled = time.perf_counter() - start
            cpu = profile.stop()
            await wait_until_settled(client, submitted, timedelta(minutes=30), poll=0.5)
            return posted if posted is not None else settled, settled, cpu
        await wait_until_settled(client, submitted, timedelta(minutes=30), poll=0.25)
        # Settled includes the stock: a ledger moves a batch's goods after its sales posted.
        while not odoo.stock_done():
            await asyncio.sleep(0.1)
        settled = time.perf_counter() - start
        return posted if posted is not None else settled, settled, profile.stop()
    finally:
        stop(worker)


async def run_rollout(temporal_address: str, workdir: Path, stores: int) -> dict[str, float]:
    """One rollout of 20 SKUs to `stores` stores; fresh simulators and worker each time."""
    from simulators.sales import CATALOGUE
    from workers.rollouts import start_rollout

    odoo = Odoo(workdir, f"rollout-{stores}")
    pos_port, ingress_port = free_port(), free_port()
    secret = "bench-secret"
    procs: list[subprocess.Popen[bytes]] = []
    log = (workdir / f"rollout-{stores}.log").open("wb")
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "simulators.pos",
                    "--stores",
                    str(stores),
                    "--port",
                    str(pos_port),
                    "--secret",
                    secret,
                    "--apply-delay-ms",
                    "0",
                    # Each store of a fleet confirms on its own: enough senders at once.
                    "--confirmation-workers",
                    "64",
                    "--log-level",
                    "WARNING",
                ],
                stdout=log,
                stderr=log,
            )
        )
        wait_for_port(pos_port, procs[-1], "the POS simulator")
        settings = Settings(
            task_queue=f"bench-rollout-{stores}",
            odoo_url=f"http://127.0.0.1:{odoo.port}",
            pos_url=f"http://127.0.0.1:{pos_port}",
            rollout_concurrency=200,
            confirmation_url=f"http://127.0.0.1:{ingress_port}/v1/pos/confirmations",
            temporal=TemporalSettings(address=temporal_address),
        )
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_address,
            "RETAILFLOW_TASK_QUEUE": settings.task_queue,
            "RETAILFLOW_ODOO_URL": settings.odoo_url,
            "RETAILFLOW_POS_URL": settings.pos_url,
            "RETAILFLOW_INGRESS_PORT": str(ingress_port),
            "RETAILFLOW_POS_SECRETS": json.dumps({"pos-main": secret}),
        }
        worker = subprocess.Popen(
            [str(BIN / "retailflow"), "worker"], env=env, stdout=log, stderr=log
        )
        procs.append(worker)
        ingress = subprocess.Popen(
            [str(BIN / "retailflow"), "ingress"], env=env, stdout=log, stderr=log
        )
        procs.append(ingress)
        wait_for_port(ingress_port, ingress, "the ingress")
        client = await connect(settings.temporal)
        started = datetime.now(UTC)
        effective = started + timedelta(seconds=3)
        _, handle = await start_rollout(
            client,
            settings,
            {
                "rollout_id": f"bench-{stores}-{int(time.time())}",
                "changes": [
                    {"sku": sku, "price": str(Decimal(p) - Decimal("0.10"))}
                    for sku, _, p, _ in CATALOGUE[:20]
                ],
                "target": {"kind": "all"},
                "effective_at": effective.isoformat(),
                "confirm_within": "PT15M",
                "requested_by": "bench",
            },
        )
        report = await handle.result()
        done = time.time()
        confirmed = [r.confirmed_at for r in report.stores.values() if r.confirmed_at]
        assert len(confirmed) == stores, f"{stores - len(confirmed)} stores not confirmed"
        assert report.odoo_written_at and report.commanding_started_at
        last = max(confirmed)
        # Stores are commanded at the effective time, or once Odoo is written if that took
        # longer: the rollout figure counts from then, the Odoo phase is reported on its own.
        commanding = report.commanding_started_at
        history = await handle.fetch_history()
        return {
            "stores": stores,
            "odoo_items": report.odoo_items,
            "odoo_phase_s": (report.odoo_written_at - started).total_seconds(),
            "effective_after_odoo": effective >= report.odoo_written_at,
            "commanding_to_last_confirmation_s": (last - commanding).total_seconds(),
            "effective_to_last_confirmation_s": (last - effective).total_seconds(),
            "effective_to_workflow_end_s": done - effective.timestamp(),
            "parent_history_events": len(history.events),
            "worker_peak_rss_mb": peak_rss_mb(worker.pid),
            "ingress_peak_rss_mb": peak_rss_mb(ingress.pid),
        }
    finally:
        for proc in reversed(procs):
            stop(proc)
        odoo.close()
        log.close()


async def run_refunds(
    temporal_address: str, workdir: Path, n: int, approvals: int
) -> dict[str, float]:
    import statistics

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from simulators.sales import make_sale
    from workers.identity import Issuer, User
    from workers.refunds import request_refund
    from workflows.refund import Approval, Refund, RefundStatus

    # Requests and approvals are signed assertions: a key of the bench's own, trusted below.
    issuer = Issuer(kid="bench", key=Ed25519PrivateKey.generate())
    cashier = User(subject="cashier", name="Cashier", roles=("cashier",))
    lee = User(subject="lee", name="Lee", roles=("finance",))

    odoo = Odoo(workdir, "refunds")
    gw_port = free_port()
    log = (workdir / "refunds.log").open("wb")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "simulators.gateway",
                    "--port",
                    str(gw_port),
                    "--log-level",
                    "WARNING",
                ],
                stdout=log,
                stderr=log,
            )
        )
        wait_for_port(gw_port, procs[-1], "the gateway simulator")
        settings = Settings(
            task_queue="bench-refunds",
            odoo_url=f"http://127.0.0.1:{odoo.port}",
            gateway_api_base=f"http://127.0.0.1:{gw_port}",
            batch_size=100,
            approval_public_keys=issuer.public_line(),
            temporal=TemporalSettings(address=temporal_address),
        )
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_address,
            "RETAILFLOW_TASK_QUEUE": settings.task_queue,
            "RETAILFLOW_ODOO_URL": settings.odoo_url,
            "RETAILFLOW_GATEWAY_API_BASE": settings.gateway_api_base or "",
        }
        procs.append(
            subprocess.Popen([str(BIN / "retailflow"), "worker"], env=env, stdout=log, stderr=log)
        )
        client = await connect(settings.temporal)
        import random
        import urllib.request

        rng, at = random.Random(3), datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        sales = []
        for i in range(n + approvals):
            sale = make_sale(rng, "BR", f"R{i:05d}", at)
            sale["lines"] = [
                {"sku": "TEE-BLK-M", "qty": "4", "unit_price": "12.50", "tax_rate": "0.15"}
            ]
            sale["payments"] = [{"method": "card", "amount": "57.50", "reference": f"pi_BR_{i}"}]
            body = json.dumps({"id": f"pi_BR_{i}", "amount": 5750, "currency": "usd"}).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{gw_port}/_sim/payment_intents",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(req, timeout=5).read()
            sales.append(sale)
        submitted = await submit_many(client, settings, sales, Mode.BATCHED, "bench")
        await wait_until_settled(client, submitted, timedelta(minutes=5))

        def ask(i: int, amount: str) -> Any:
            raw = {
                "refund_id": f"bench-{i}",
                "store_id": "BR",
                "txn_id": f"R{i:05d}",
                "amount": amount,
                "reason": "changed_mind",
                "requested_by": "cashier",
            }
            signed = issuer.assertion(cashier, "cashier", raw["refund_id"], "request")
            return request_refund(client, settings, raw, signed)

        start = time.perf_counter()
        started = await asyncio.gather(*(ask(i, "5.00") for i in range(n)))
        results = await asyncio.gather(*(h.result() for _, h, _ in started))
        auto_s = time.perf_counter() - start
        assert all(r.status is RefundStatus.REFUNDED for r in results)

        pending = await asyncio.gather(*(ask(n + i, "40.00") for i in range(approvals)))
        for _, h, _ in pending:
            while (await h.query(Refund.show)).status is not RefundStatus.AWAITING_APPROVAL:
                await asyncio.sleep(0.05)
        latencies = []
        for req, h, _ in pending:
            sent = datetime.now(UTC)
            signed = issuer.assertion(lee, "finance", req.refund_id, "approve")
            await h.execute_update(Refund.approve, Approval(assertion=signed))
            r = await h.result()
            paid = next(e.at for e in r.audit if e.who == "gateway")
            latencies.append((paid - sent).total_seconds() * 1000)
        latencies.sort()
        return {
            "auto_refunds": n,
            "auto_refunds_per_s": n / auto_s,
            "approval_to_gateway_ms_median": statistics.median(latencies),
            "approval_to_gateway_ms_p95": latencies[max(0, int(len(latencies) * 0.95) - 1)],
        }
    finally:
        for proc in reversed(procs):
            stop(proc)
        odoo.close()
        log.close()


def workflow_modes() -> dict[str, tuple[str, Mode, bool]]:
    """Bench name -> (sale-key tag, posting mode, one entry per sale). ``summary`` joins when
    ``workers.submit.Mode`` has it (one summary entry per batch: its runs count settled)."""
    return {
        "per-sale": ("P", Mode.PER_SALE, True),
        "batched": ("B", Mode.BATCHED, True),
        "summary": ("S", Mode.SUMMARY, False),
    }


def print_split(name: str, split: dict[str, Any], wall_s: float) -> None:
    """One line: Odoo's server time in the run, its busy share, the heaviest methods."""
    top = sorted(split["server_time_by_method"].items(), key=lambda kv: -kv[1])[:4]
    detail = ", ".join(f"{m} {split['rpcs_by_method'].get(m, 0)}× {t:.1f} s" for m, t in top)
    busy = split["server_time_s"] / wall_s if wall_s else float("nan")
    print(
        f"          odoo: {split['server_time_s']:.1f} s server time in {split['rpcs']} RPCs "
        f"({split['bench_polls']} bench polls), busy {busy:.0%} of the run: {detail}",
        flush=True,
    )


async def run_mode(
    name: str, address: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any] | None:
    """One posting figure on a fresh emulator; None when this code has no such mode."""
    modes = workflow_modes()
    if name != "direct" and name not in modes:
        print(f"{name:<9} skipped: workers.submit.Mode has no such mode yet", flush=True)
        return None
    tag, mode, entry_per_sale = ("D", None, True) if name == "direct" else modes[name]
    count = {"direct": args.few_sales, "per-sale": args.few_sales, "summary": args.summary_sales}
    sales = sales_for(tag, count.get(name, args.sales), args.stores)
    odoo = Odoo(workdir, name)
    try:
        if mode is None:
            odoo.reset_stats()
            profile = Profile(**{"Odoo emulator": odoo.proc.pid})
            secs = run_direct(odoo, sales)
            r: dict[str, Any] = {"posted_s": secs, "settled_s": secs, "cpu_s": profile.stop()}
        else:
            posted, settled, cpu = await run_workflows(
                address, odoo, sales, mode, tag, workdir, entry_per_sale
            )
            r = {"posted_s": posted, "settled_s": settled, "cpu_s": cpu}
        r["odoo"] = odoo.server_split()
        if entry_per_sale:
            assert odoo.posted(f"POS:{tag}") == len(sales)
        else:
            # Each sale in exactly one posted summary, read as an auditor would.
            books = read_books(
                OdooClient(OdooSettings(url=f"http://127.0.0.1:{odoo.port}")),
                PostingProfile(),
                f"POS:{tag}",
            )
            assert books.posted_per_key == {parse_sale(s).key: 1 for s in sales}, "not once"
            assert books.draft_moves == 0
            r["summaries"] = sum(b.summaries for b in books.stores.values())
    finally:
        odoo.close()
    r["sales"] = len(sales)
    r["posted_per_s"] = len(sales) / r["posted_s"]
    r["settled_per_s"] = len(sales) / r["settled_s"]
    print(
        f"{name:<9} {len(sales)} sales: posted in {r['posted_s']:.1f} s "
        f"({r['posted_per_s']:.1f}/s), settled in {r['settled_s']:.1f} s "
        f"({r['settled_per_s']:.1f}/s)",
        flush=True,
    )
    print_split(name, r["odoo"], r["settled_s"])
    print(
        "          cpu: "
        + ", ".join(f"{who} {secs:.1f} s" for who, secs in r["cpu_s"].items())
        + f" (wall {r['settled_s']:.1f} s, 2 cores)",
        flush=True,
    )
    return r


async def main(args: argparse.Namespace) -> int:
    """Runs the benches of --only; the exit status: 1 when a check of the spike failed."""
    global COST_MODEL
    COST_MODEL = "none" if args.no_cost_model else "odoo17"
    results: dict[str, Any] = {
        "cost_model": None if args.no_cost_model else COST_MODEL,
        "sales": args.sales,
        "few_sales": args.few_sales,
        "stores": args.stores,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "runs": {},
    }
    status = 0
    with tempfile.TemporaryDirectory(prefix="retailflow-bench-") as tmp:
        workdir = Path(tmp)
        tport = free_port()
        with (workdir / "temporal.log").open("wb") as log:
            temporal = subprocess.Popen(
                dev_server_command(tport, None, workdir / "temporal.sqlite"), stdout=log, stderr=log
            )
        global TEMPORAL_PID
        TEMPORAL_PID = temporal.pid
        try:
            wait_for_port(tport, temporal, "the Temporal dev server")
            address = f"127.0.0.1:{tport}"
            for name in args.only.split(","):
                if name == "spike":
                    spike = await run_spike(address, workdir, COST_MODEL, args)
                    # The per-second series is in bench/out/spike.json.
                    results["spike"] = {k: v for k, v in spike.items() if k != "series"}
                    status = status or (0 if spike["passed"] else 1)
                    continue
                if name == "refunds":
                    r = await run_refunds(address, workdir, args.refunds, args.approvals)
                    results["refunds"] = r
                    print(
                        f"refunds  {r['auto_refunds']} auto-approved: "
                        f"{r['auto_refunds_per_s']:.1f}/s; "
                        f"approval Update -> gateway refund: median "
                        f"{r['approval_to_gateway_ms_median']:.0f} ms, p95 "
                        f"{r['approval_to_gateway_ms_p95']:.0f} ms",
                        flush=True,
                    )
                    continue
                if name == "catalog":
                    results["catalog"] = await run_catalog(
                        address, workdir, COST_MODEL, args.catalog_full, args.catalog_incremental
                    )
                    continue
                if name == "recon":
                    results["recon"] = await run_recon(
                        address,
                        TEMPORAL_PID,
                        workdir,
                        COST_MODEL,
                        [int(x) for x in args.recon_stores.split(",") if x],
                        args.recon_sales,
                        [int(x) for x in args.recon_big.split(",") if x],
                    )
                    continue
                if name == "rollout":
                    results["rollouts"] = []
                    for n in (int(x) for x in args.rollout_stores.split(",")):
                        r = await run_rollout(address, workdir, n)
                        results["rollouts"].append(r)
                        when = (
                            "the effective time"
                            if r["effective_after_odoo"]
                            else "once Odoo was written, after the effective time"
                        )
                        print(
                            f"rollout  20 SKUs to {n} stores: Odoo ({r['odoo_items']} items) "
                            f"written in {r['odoo_phase_s']:.1f} s; last confirmation "
                            f"{r['commanding_to_last_confirmation_s']:.1f} s after commanding "
                            f"started ({when}), "
                            f"{r['parent_history_events']} history events, worker peak RSS "
                            f"{r['worker_peak_rss_mb']:.0f} MB",
                            flush=True,
                        )
                    continue
                run = await run_mode(name, address, workdir, args)
                if run is not None:
                    results["runs"][name] = run
        finally:
            stop(temporal)
    runs = results["runs"]
    base = runs.get("direct")
    if runs:
        model = results["cost_model"] or "no cost model"
        print(f"\nOdoo emulator: {model}; ratios to the direct odoorpc loop on the same emulator")
        print("| mode | sales | sales/s posted | sales/s settled (incl. stock) | vs direct |")
        print("| --- | --- | --- | --- | --- |")
    for name, r in runs.items():
        # Exactly once, entries and stock: the settled rates are compared.
        ratio = r["settled_per_s"] / base["settled_per_s"] if base else float("nan")
        r["vs_direct"] = ratio
        print(
            f"| {name} | {r['sales']} | {r['posted_per_s']:.1f} | {r['settled_per_s']:.1f} | "
            f"{ratio:.2f}× |"
        )
    if runs:
        print("\n| mode | Odoo server s | RPCs | server s per sale | busy share of the run |")
        print("| --- | --- | --- | --- | --- |")
        for name, r in runs.items():
            o = r["odoo"]
            print(
                f"| {name} | {o['server_time_s']:.1f} | {o['rpcs']} | "
                f"{o['server_time_s'] / r['sales']:.3f} | "
                f"{o['server_time_s'] / r['settled_s']:.0%} |"
            )
    if runs:
        names = list(dict.fromkeys(n for r in runs.values() for n in r["cpu_s"]))
        print("\n| mode | wall s | " + " | ".join(f"{n} CPU s" for n in names) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in names) + " |")
        for name, r in runs.items():
            cells = " | ".join(f"{r['cpu_s'].get(n, 0.0):.1f}" for n in names)
            print(f"| {name} | {r['settled_s']:.1f} | {cells} |")
    if results.get("rollouts"):
        print(
            "\n| stores | Odoo phase (items) | effective → last confirmation | → workflow end "
            "| parent history events | worker peak RSS | ingress peak RSS |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in results["rollouts"]:
            late = "" if r["effective_after_odoo"] else " (from Odoo written)"
            print(
                f"| {r['stores']:,} | {r['odoo_phase_s']:.1f} s ({r['odoo_items']:,}) | "
                f"{r['commanding_to_last_confirmation_s']:.1f} s{late} | "
                f"{r['effective_to_workflow_end_s']:.1f} s | {r['parent_history_events']:,} | "
                f"{r['worker_peak_rss_mb']:.0f} MB | {r['ingress_peak_rss_mb']:.0f} MB |"
            )
    if results.get("recon"):
        print_table(results["recon"])
    if "per-sale" in runs and "batched" in runs:
        speedup = runs["batched"]["settled_per_s"] / runs["per-sale"]["settled_per_s"]
        print(f"\nbatched / per-sale: {speedup:.1f}×")
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    return status


if __name__ == "__main__":
    # The bench's own dev server, worker and clients share one encryption key made for the
    # run (payloads are encrypted as in production: their cost is part of what is measured).
    if not (os.environ.get(ENV_KEYS) or os.environ.get(ENV_KEYS_FILE)):
        os.environ[ENV_KEYS] = generate_key_line("bench")
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--sales", type=int, default=300, help="sales posted by batched")
    parser.add_argument(
        "--summary-sales", type=int, default=3000, help="sales posted in summary mode"
    )
    parser.add_argument(
        "--few-sales",
        type=int,
        default=150,
        help="sales posted by direct and per-sale (a sale at a time: the rate is steady)",
    )
    parser.add_argument("--stores", type=int, default=3)
    parser.add_argument(
        "--only", default="direct,per-sale,batched,summary,rollout,refunds,recon,catalog,spike"
    )
    parser.add_argument(
        "--no-cost-model",
        action="store_true",
        help="emulators answer as fast as they can (no odoo17 cost model), for comparison",
    )
    parser.add_argument("--refunds", type=int, default=200, help="auto-approved refunds")
    parser.add_argument("--approvals", type=int, default=40, help="refunds approved by Update")
    parser.add_argument("--rollout-stores", default="80,500,2000,10000")
    parser.add_argument(
        "--recon-stores", default="100,200", help="store-days reconciled at once, per size"
    )
    parser.add_argument(
        "--catalog-full", default="20000x80", help="PRODUCTSxSTORES of the full catalog sync"
    )
    parser.add_argument(
        "--catalog-incremental",
        default="50x2000",
        help="CHANGEDxSTORES of the incremental catalog sync",
    )
    parser.add_argument("--recon-sales", type=int, default=500, help="sales per store-day")
    parser.add_argument(
        "--recon-big", default="5000,10000", help="sales of one store-day, per size"
    )
    add_spike_arguments(parser)
    status = asyncio.run(main(parser.parse_args()))
    sys.stdout.flush()
    os._exit(status)
