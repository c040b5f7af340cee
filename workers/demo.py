"""`make demo`: a day of sales for three stores through everything real, on one machine.

Starts the Temporal dev server (SQLite file, Web UI on 8233), the Odoo 17 emulator (failing a
few percent of calls, lost responses included) and a `retailflow worker` process; submits a day
of sales with cashier retries and invalid sales (two stores per sale, one store batched), waits
until every sale is settled and prints what Odoo holds. Everything lives under `.demo/`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime
from datetime import timedelta as td
from decimal import Decimal
from pathlib import Path
from typing import Any

import odoorpc
from temporalio.client import Client

from activities.odoo.client import OdooClient
from domain.posting import PostingProfile
from simulators.sales import day_of_sales, seed_catalogue
from workers.audit import OdooBooks, StoreBooks, read_books
from workers.client import connect, ensure_search_attributes
from workers.devserver import dev_server_command, port_in_use, wait_for_port
from workers.refunds import request_refund
from workers.rollouts import start_rollout
from workers.settings import Settings, TemporalSettings
from workers.submit import Mode, Submission, Submitted, submit_many, wait_until_settled
from workflows.refund import Approval, Refund, RefundStatus
from workflows.sale_posting import EXCEPTION_STATES, SalePostingResult, SaleStatus
from workflows.store_ledger import StoreLedger

ROOT = Path(".demo")
POS_SECRET = "demo-secret"
WEBHOOK_SECRET = "whsec_retailflow"
STORES = ("S001", "S002", "S003")
# Each store's configured posting mode: the three ways to book sales, side by side.
MODES = {"S001": Mode.PER_SALE, "S002": Mode.SUMMARY, "S003": Mode.BATCHED}


def _admin(port: int, path: str, body: dict[str, object], method: str = "PUT") -> None:
    """Call a simulator's admin endpoint."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def _set_faults(odoo_port: int, rate: float) -> None:
    kinds = ["transport", "http_500", "lost_response"]
    _admin(odoo_port, "/_emulator/faults", {"error_rate": rate, "kinds": kinds, "seed": 42})


async def run_demo(args: argparse.Namespace) -> int:
    for port, flag in (
        (args.temporal_port, "--temporal-port"),
        (args.ui_port, "--ui-port"),
        (args.odoo_port, "--odoo-port"),
        (args.pos_port, "--pos-port"),
        (args.ingress_port, "--ingress-port"),
        (args.gateway_port, "--gateway-port"),
    ):
        if port_in_use(port):
            print(
                f"retailflow demo: port {port} is already in use; stop what runs there "
                f"or pick another with {flag}",
                file=sys.stderr,
            )
            return 2
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    log = (ROOT / "processes.log").open("ab")
    try:
        print("starting Temporal, the Odoo 17 emulator, the POS and gateway simulators, a worker")
        print("and the ingress (logs in .demo/processes.log)")

        def spawn(cmd: list[str], port: int, what: str) -> None:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
            wait_for_port(port, procs[-1], what)

        def simulator(name: str, port: int, *extra: str) -> list[str]:
            return [
                sys.executable,
                "-m",
                f"simulators.{name}",
                "--port",
                str(port),
                "--db",
                str(ROOT / f"{name}.sqlite"),
                *extra,
            ]

        spawn(
            dev_server_command(args.temporal_port, args.ui_port, ROOT / "temporal.sqlite"),
            args.temporal_port,
            "the Temporal dev server",
        )
        spawn(simulator("odoo", args.odoo_port), args.odoo_port, "the Odoo emulator")
        spawn(
            simulator(
                "pos",
                args.pos_port,
                "--stores",
                str(len(STORES)),
                "--secret",
                POS_SECRET,
                "--platform-id",
                "pos-main",
                "--apply-delay-ms",
                "200",
                "--log-level",
                "WARNING",
            ),
            args.pos_port,
            "the POS platform simulator",
        )
        spawn(
            simulator(
                "gateway",
                args.gateway_port,
                "--log-level",
                "WARNING",
                # Refunds the gateway fails later reach their workflow through the ingress.
                "--webhook-url",
                f"http://127.0.0.1:{args.ingress_port}/v1/gateway/webhook",
                "--webhook-secret",
                WEBHOOK_SECRET,
            ),
            args.gateway_port,
            "the payment gateway simulator",
        )

        odoo = odoorpc.ODOO("127.0.0.1", port=args.odoo_port)
        odoo.login("retail", "admin", "admin")
        seed_catalogue(odoo)
        _set_faults(args.odoo_port, args.fault_rate)

        address = f"127.0.0.1:{args.temporal_port}"
        settings = Settings(
            odoo_url=f"http://127.0.0.1:{args.odoo_port}",
            pos_url=f"http://127.0.0.1:{args.pos_port}",
            gateway_api_base=f"http://127.0.0.1:{args.gateway_port}",
            confirmation_url=f"http://127.0.0.1:{args.ingress_port}/v1/pos/confirmations",
            batch_size=20,
            summary_batch_size=50,
            batch_max_age_s=1.0,
            store_posting_modes={store: mode.value for store, mode in MODES.items()},
            ledger_idle_close_s=60.0,
            temporal=TemporalSettings(address=address),
        )
        client = await connect(settings.temporal)
        await ensure_search_attributes(client)
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": address,
            "RETAILFLOW_ODOO_URL": settings.odoo_url,
            "RETAILFLOW_POS_URL": settings.pos_url,
            "RETAILFLOW_POS_SECRETS": json.dumps({"pos-main": POS_SECRET}),
            "RETAILFLOW_GATEWAY_API_BASE": settings.gateway_api_base or "",
            "RETAILFLOW_INGRESS_PORT": str(args.ingress_port),
            "RETAILFLOW_GATEWAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        retailflow = str(Path(sys.executable).parent / "retailflow")
        procs.append(subprocess.Popen([retailflow, "worker"], env=env, stdout=log, stderr=log))
        procs.append(subprocess.Popen([retailflow, "ingress"], env=env, stdout=log, stderr=log))
        wait_for_port(args.ingress_port, procs[-1], "the ingress")

        stream, facts = day_of_sales(
            date.today(),
            stores=STORES,
            per_store=args.per_store,
            resubmit_ratio=0.15,
            invalid_per_store=3,
            seed=2026,
        )
        # The card payments of the day, as the POS took them through the gateway.
        for raw in facts["valid"].values():
            for p in raw["payments"]:
                if p["method"] == "card":
                    cents = int(Decimal(p["amount"]) * 100)
                    _admin(
                        args.gateway_port,
                        "/_sim/payment_intents",
                        {"id": p["reference"], "amount": cents, "currency": "usd"},
                        "POST",
                    )
        print(
            f"submitting {len(stream)} sales ({facts['resubmitted']} cashier retries, "
            f"{len(facts['invalid'])} invalid); Odoo fails {args.fault_rate:.0%} of calls"
        )
        # No mode named: each store's configured one (MODES).
        submitted = await submit_many(client, settings, stream, None, "demo")
        followed = [s for s in submitted if s.submission is not Submission.FAILED]
        settled = await wait_until_settled(client, followed, td(minutes=10))
        _set_faults(args.odoo_port, 0.0)

        books = read_books(OdooClient(settings.odoo()), PostingProfile())
        ledger_dups: Counter[str] = Counter()
        for s in submitted:
            if s.submission is Submission.QUEUED and s.store_id and s.store_id not in ledger_dups:
                p = await client.get_workflow_handle_for(StoreLedger.run, s.workflow_id).query(
                    StoreLedger.progress
                )
                ledger_dups[s.store_id] = p.duplicates
        _print_summary(submitted, settled, books, ledger_dups, args)
        if books.duplicated_keys:
            print(f"ERROR: sales posted twice: {books.duplicated_keys}", file=sys.stderr)
            return 1
        await _price_rollout(client, settings, args)
        await _refunds(client, settings, facts["valid"])
        print(
            f"\nWeb UI: http://localhost:{args.ui_port}/namespaces/default/workflows"
            '\n  exception inbox: RetailStatus IN ("Rejected", "NeedsAttention", "Failed")'
        )
        print("  rollout commands sent to a store: retailflow price-rollout commands --store S002")
        if args.keep_running:
            print("\neverything stays up: Ctrl-C to stop.", flush=True)
            await wait_for_ctrl_c()
        return 0
    finally:
        stop_all(procs)
        log.close()


async def wait_for_ctrl_c() -> None:
    """Until Ctrl-C (SIGINT) or SIGTERM. Both are handled here, on the loop: a demo started as
    a background job of a script inherits SIGINT ignored, which turns asyncio.run's own Ctrl-C
    handling off (seen: a demo and its Odoo emulator still running long after Ctrl-C)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def stop_all(procs: list[subprocess.Popen[bytes]], grace: float = 3.0) -> None:
    """Stop every process the demo started, all at once: SIGTERM, then SIGKILL whatever is
    still running after `grace` seconds (one stubborn process must not hold up the rest)."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


async def _refunds(client: Client, settings: Settings, valid: dict[str, dict[str, Any]]) -> None:
    """A small refund that passes by policy, and a large one a second person approves."""
    card_sales = sorted(
        (Decimal(p["amount"]), raw)
        for raw in valid.values()
        for p in raw["payments"]
        if p["method"] == "card" and raw["store_id"] == "S001"
    )
    small_sale = next((raw for a, raw in card_sales if a >= Decimal("5")), None)
    large = next(((a, raw) for a, raw in card_sales if a > Decimal("30")), None)
    stamp = f"{datetime.now(UTC):%H%M%S}"
    print("\nrefunds:")
    if small_sale is None:
        print("  none: S001 has no card sale of 5.00 or more to refund (try a larger --per-store)")
        return
    _, small, _ = await request_refund(
        client,
        settings,
        {
            "refund_id": f"demo-{stamp}-small",
            "store_id": "S001",
            "txn_id": small_sale["txn_id"],
            "amount": "2.00",
            "reason": "damaged",
            "requested_by": "cashier-ann",
        },
    )
    shown = [await small.result()]
    if large is not None:
        amount, sale = large
        _, big, _ = await request_refund(
            client,
            settings,
            {
                "refund_id": f"demo-{stamp}-large",
                "store_id": "S001",
                "txn_id": sale["txn_id"],
                "amount": str(amount),
                "reason": "changed_mind",
                "requested_by": "cashier-ann",
            },
        )
        while (await big.query(Refund.show)).status is not RefundStatus.AWAITING_APPROVAL:
            await asyncio.sleep(0.2)
        print(
            f"  {big.id} waits for approval ({amount} is over the policy limit);"
            " manager-lee approves it with the Update `approve`"
        )
        await big.execute_update(
            Refund.approve, Approval(by="manager-lee", role="store_manager", comment="receipt seen")
        )
        shown.append(await big.result())
    for r in shown:
        decided = r.decided_by or "policy"
        tenders = ", ".join(f"{t.method.value} {t.amount}" for t in r.tenders)
        gateway = ", ".join(r.gateway_refunds) or "-"
        if r.status is RefundStatus.REJECTED:
            print(f"  {r.refund_id}: Rejected: {'; '.join(r.reasons)}")
            continue
        print(
            f"  {r.refund_id}: {r.status.value}, {r.amount} to {tenders}; requested by "
            f"{r.requested_by}, approved by {decided}; gateway {gateway}; Odoo {r.move_name}"
        )
    print("  pending decisions: retailflow refund list --pending")


async def _price_rollout(client: Client, settings: Settings, args: argparse.Namespace) -> None:
    """Tomorrow's prices, to every demo store; S002 drops offline for a while and catches up."""
    changes = [
        {"sku": "MILK-1L", "price": "1.19"},
        {"sku": "COFFEE-250", "price": "5.99"},
        {"sku": "CHOC-DARK", "price": "1.79", "end": (datetime.now(UTC) + td(days=7)).isoformat()},
    ]
    _admin(args.pos_port, "/_sim/stores/S002", {"offline_windows": [[0, 8]]})
    print(
        f"\nprice rollout: {len(changes)} prices to {', '.join(STORES)}, effective now; "
        "S002 is offline for the next 8 s"
    )
    rollout, handle = await start_rollout(
        client,
        settings,
        {
            "rollout_id": f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}",
            "changes": changes,
            "target": {"kind": "all"},
            "effective_at": datetime.now(UTC).isoformat(),
            "confirm_within": "PT60S",
            "requested_by": "demo-merchandiser",
        },
        poll_every=td(seconds=5),
    )
    report = await handle.result()
    print(f"\n{'store':<6} {'outcome':<12} {'sends':>5}  {'confirmed at':<26} reason")
    print("-" * 70)
    for store, r in report.stores.items():
        at = r.confirmed_at.isoformat(timespec="seconds") if r.confirmed_at else "-"
        print(f"{store:<6} {r.outcome.value:<12} {r.sends:>5}  {at:<26} {r.reason or ''}")
    print(
        f"rollout {rollout.rollout_id}: {report.status.value}; Odoo pricelist items "
        f"{report.odoo_items} written before any store was commanded; old prices kept for "
        f"compensation: {', '.join(f'{k} {v}' for k, v in report.old_prices.items())}"
    )
    print(f"  follow or replay it: retailflow price-rollout status {rollout.rollout_id}")


def _print_summary(
    submitted: list[Submitted],
    settled: dict[str, SalePostingResult],
    books: OdooBooks,
    ledger_dups: Counter[str],
    args: argparse.Namespace,
) -> None:
    received: Counter[str] = Counter(s.store_id or "?" for s in submitted)
    dups: Counter[str] = Counter(
        s.store_id or "?" for s in submitted if s.submission is Submission.DUPLICATE
    )
    dups.update(ledger_dups)
    exceptions = {w: r for w, r in settled.items() if r.status in EXCEPTION_STATES}
    # Rejected: invalid input, kept with its reasons. Attention: valid sales Odoo refused
    # (NeedsAttention, or Failed when nobody decided in time): ops work, not bad input.
    rejected: Counter[str] = Counter(
        _store_of(r) for r in exceptions.values() if r.status is SaleStatus.REJECTED
    )
    attention: Counter[str] = Counter(
        _store_of(r) for r in exceptions.values() if r.status is not SaleStatus.REJECTED
    )
    head = (
        f"{'store':<6} {'mode':<9} {'received':>8} {'posted':>7} {'dups':>5} {'rejected':>8} "
        f"{'attention':>9} {'revenue':>10} {'tax':>8}  {'debit = credit'}"
    )
    print("\n" + head + "\n" + "-" * (len(head) + 8))
    for store in STORES:
        b = books.stores.get(store) or StoreBooks(store_id=store)
        print(
            f"{store:<6} {MODES[store].value:<9} {received[store]:>8} {b.entries:>7} "
            f"{dups[store]:>5} {rejected[store]:>8} {attention[store]:>9} {b.revenue:>10} "
            f"{b.tax:>8}  {b.debit} = {b.credit}"
        )
    if received["?"]:
        print(
            f"{'?':<6} {'':<9} {received['?']:>8} {'':>7} {'':>5} {rejected['?']:>8} "
            f"{attention['?']:>9}  (unreadable)"
        )
    print(
        f"\nOdoo books {sum(books.posted_per_key.values())} sales (in entries of their own, or "
        f"listed by {sum(b.summaries for b in books.stores.values())} summary entries), "
        f"{len(books.duplicated_keys)} booked twice, {books.draft_moves} drafts left over."
    )
    print(f"\nException inbox ({len(exceptions)} sales, kept in Temporal with their reasons):")
    for wf_id, r in sorted(exceptions.items()):
        print(f"  {wf_id:<34} {r.status.value:<15} {'; '.join(r.reasons)}")
    if any(r.status is SaleStatus.NEEDS_ATTENTION for r in exceptions.values()):
        print(
            "  NeedsAttention: fix the cause in Odoo (e.g. create the product), then\n"
            "    retailflow sale retry STORE TXN --by YOUR_NAME   (or: sale dismiss ...)"
        )


def _store_of(r: SalePostingResult) -> str:
    """The store of a sale's result, from its key `POS:{store}:{txn}`."""
    parts = (r.key or "").split(":")
    return parts[1] if len(parts) == 3 else "?"
