"""`make demo`: a day of sales for three stores through everything real, on one machine.

Starts the Temporal dev server (SQLite file, Web UI on 8233), the Odoo 17 emulator (failing a
few percent of calls, lost responses included) and a `retailflow worker` process; submits a day
of sales with cashier retries and invalid sales (two stores per sale, one store batched), waits
until every sale is settled and prints what Odoo holds; then a price rollout and two refunds.
The stores' POS rings the day up in its journal and the gateway charges its card payments
(tagged with store and sale), and one card sale's submission is lost on the way: after
`schedules apply` (deploy/settlement.toml) the day is settled now, its reconciliation report
shows that one difference, and ops repost the sale from the POS's copy until the store-day is
Reconciled. Everything lives under `.demo/`.

Payloads are encrypted as in production, under a key the demo makes on each run
(`.demo/encryption.keys`, mode 0600); its codec server (127.0.0.1 only, letting the Web UI's
origin in without a token) shows them decrypted in the Web UI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timezone
from datetime import timedelta as td
from decimal import Decimal
from pathlib import Path
from typing import Any

import odoorpc
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from activities.odoo.client import OdooClient
from domain.posting import PostingProfile
from domain.reconciliation import ReconReport, ReconStatus
from domain.schedule import RegionSchedule, SettlementSchedule, load_schedule
from simulators.sales import day_of_sales, seed_catalogue
from workers import schedules
from workers.audit import OdooBooks, StoreBooks, read_books
from workers.auth import token_sha256
from workers.cli_recon import render_table
from workers.cli_settlement import start_settlement
from workers.client import connect, ensure_search_attributes
from workers.codec import ENV_KEYS, ENV_KEYS_FILE, EncryptionSettings, load_key_ring, write_key_file
from workers.demo_master_data import show_catalog, show_drift
from workers.devserver import dev_server_command, port_in_use, wait_for_port
from workers.identity import Issuer, User, add_user, load_issuer, new_key
from workers.refunds import request_refund
from workers.rollouts import start_rollout
from workers.settings import Settings, TemporalSettings
from workers.submit import Mode, Submission, Submitted, submit_many, wait_until_settled
from workflows.reconciliation import Reconciliation, ReconDecision, reconciliation_workflow_id
from workflows.refund import Approval, Refund, RefundResult, RefundStatus
from workflows.sale_posting import (
    EXCEPTION_STATES,
    OpsDecision,
    SalePosting,
    SalePostingResult,
    SaleStatus,
)
from workflows.settlement import DailySettlement
from workflows.store_ledger import StoreLedger

ROOT = Path(".demo")
# The demo's own namespace on its dev server (its environment: deploy/environments/demo.env).
DEMO_NAMESPACE = "retailflow-demo"
WEBHOOK_SECRET = "whsec_retailflow"
STORES = ("S001", "S002", "S003")
# Each store's configured posting mode: the three ways to book sales, side by side.
MODES = {"S001": Mode.PER_SALE, "S002": Mode.SUMMARY, "S003": Mode.BATCHED}
# The stores' UTC offset (as their POS reports it): the demo's day is today there.
STORE_TZ = timezone(td(hours=-5))
# The settlement schedule the demo applies (and README shows).
SCHEDULE_FILE = Path(__file__).resolve().parents[1] / "deploy" / "settlement.toml"


def write_callers(root: Path) -> tuple[str, Path]:
    """The demo's own callers file, with credentials made for this run: the POS platform
    `pos-main` signs its confirmations with a fresh HMAC secret, and holds a bearer token for
    posting and reading sales (in `pos-main.token`, to try the ingress with curl). Returns the
    secret (for the POS simulator) and the file."""
    secret, token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    for name, value in (("pos-main.secret", secret), ("pos-main.token", token)):
        (root / name).write_text(value + "\n")
        (root / name).chmod(0o600)
    path = root / "callers.toml"
    path.write_text(
        "# Written by `make demo` for this run only (docs/security.md).\n"
        "[[callers]]\n"
        'id = "pos-main"\n'
        'scopes = ["sales:write", "sales:read", "confirmations:write"]\n'
        "[[callers.credentials]]\n"
        f'hmac_secret_file = "{(root / "pos-main.secret").resolve()}"\n'
        "[[callers.credentials]]\n"
        f'token_sha256 = "{token_sha256(token)}"\n'
    )
    return secret, path


def _admin(port: int, path: str, body: object, method: str = "PUT") -> None:
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
        (args.codec_port, "--codec-port"),
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
    # The demo's own key: every process it starts reads it from this file.
    key_file = write_key_file(ROOT.resolve() / "encryption.keys", kid="demo")
    keys = load_key_ring(
        EncryptionSettings(encryption_keys=None, encryption_keys_file=str(key_file))
    )
    # Its own environment and namespace (deploy/environments/demo.env): nothing it does lands
    # in `default`, where a developer's own work runs.
    keyed = {k: v for k, v in os.environ.items() if k != ENV_KEYS} | {
        ENV_KEYS_FILE: str(key_file),
        "RETAILFLOW_ENVIRONMENT": "demo",
        "TEMPORAL_NAMESPACE": DEMO_NAMESPACE,
    }
    codec_url = f"http://127.0.0.1:{args.codec_port}"
    procs: list[subprocess.Popen[bytes]] = []
    log = (ROOT / "processes.log").open("ab")
    try:
        print("starting Temporal and its Web UI's codec server, the Odoo 17 emulator, the POS and")
        print("gateway simulators, a worker and the ingress (logs in .demo/processes.log)")

        def spawn(cmd: list[str], port: int, what: str, env: dict[str, str] | None = None) -> None:
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=log))
            wait_for_port(port, procs[-1], what)

        pos_secret, callers_file = write_callers(ROOT)

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
            dev_server_command(
                args.temporal_port,
                args.ui_port,
                ROOT / "temporal.sqlite",
                codec_url,
                namespace=DEMO_NAMESPACE,
            ),
            args.temporal_port,
            "the Temporal dev server",
        )
        retailflow = str(Path(sys.executable).parent / "retailflow")
        ui_origins = [f"http://{host}:{args.ui_port}" for host in ("localhost", "127.0.0.1")]
        spawn(
            [retailflow, "codec-server", "--port", str(args.codec_port)]
            + [arg for origin in ui_origins for arg in ("--origin", origin)]
            + ["--allow-ui-without-token"],
            args.codec_port,
            "the codec server",
            keyed,
        )
        spawn(simulator("odoo", args.odoo_port), args.odoo_port, "the Odoo emulator")
        spawn(
            simulator(
                "pos",
                args.pos_port,
                "--stores",
                str(len(STORES)),
                "--platform-id",
                "pos-main",
                "--apply-delay-ms",
                "200",
                "--log-level",
                "WARNING",
            ),
            args.pos_port,
            "the POS platform simulator",
            # The secret in its environment, not on a command line every user can read.
            env={**os.environ, "POS_SECRET": pos_secret},
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
            environment="demo",
            temporal=TemporalSettings(address=address, namespace=DEMO_NAMESPACE),
            **_demo_identity(ROOT / "identity"),
        )
        client = await connect(settings.temporal, keys=keys)
        await ensure_search_attributes(client)
        env = {
            **keyed,
            "TEMPORAL_ADDRESS": address,
            "RETAILFLOW_ODOO_URL": settings.odoo_url,
            "RETAILFLOW_POS_URL": settings.pos_url,
            "RETAILFLOW_CALLERS_FILE": str(callers_file.resolve()),
            "RETAILFLOW_GATEWAY_API_BASE": settings.gateway_api_base or "",
            "RETAILFLOW_INGRESS_PORT": str(args.ingress_port),
            "RETAILFLOW_GATEWAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
            # The approvals inbox (http://127.0.0.1:INGRESS/inbox/) signs with the demo's key.
            "RETAILFLOW_IDENTITY_KEY_FILE": settings.identity_key_file or "",
            "RETAILFLOW_USERS_FILE": settings.users_file or "",
            "RETAILFLOW_APPROVAL_PUBLIC_KEYS": settings.approval_public_keys or "",
        }
        procs.append(subprocess.Popen([retailflow, "worker"], env=env, stdout=log, stderr=log))
        procs.append(subprocess.Popen([retailflow, "ingress"], env=env, stdout=log, stderr=log))
        wait_for_port(args.ingress_port, procs[-1], "the ingress")

        day = datetime.now(STORE_TZ).date()
        stream, facts = day_of_sales(
            day,
            stores=STORES,
            per_store=args.per_store,
            resubmit_ratio=0.15,
            invalid_per_store=3,
            seed=2026,
            tz=STORE_TZ,
        )
        plan = plan_day(stream, facts)
        # What the stores rang up (the POS's journal, the source of truth), and their card
        # payments as the gateway took them, each tagged with its store and transaction.
        for store, rung in sorted(plan.rung.items()):
            _admin(args.pos_port, f"/_sim/stores/{store}/transactions", rung, "POST")
        for intent in plan.card_intents:
            _admin(args.gateway_port, "/_sim/payment_intents", intent, "POST")
        print(
            f"submitting {len(plan.stream)} sales ({facts['resubmitted']} cashier retries, "
            f"{len(facts['invalid'])} invalid); Odoo fails {args.fault_rate:.0%} of calls"
        )
        if plan.lost is not None:
            print(
                f"  planted: {plan.lost['store_id']} {plan.lost['txn_id']} is rung up at the POS "
                "and charged at the gateway, but its submission to retailflow is lost (never "
                "sent)"
            )
        stream = plan.stream
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
        fixed = await _fix_attention(client, odoo, settled)
        await _price_rollout(client, settings, args)
        refunds = await _refunds(client, settings, plan.submitted_valid)
        _ring_up_refunds(args.pos_port, refunds, plan.submitted_valid)
        clean = await _settle_and_reconcile(client, settings, day, plan, fixed, len(refunds))
        await _payouts(client, settings)
        catalog_ok = await show_catalog(client, settings, odoo, args.pos_port)
        drift_ok = await show_drift(client, settings, odoo, args.pos_port)
        if not (catalog_ok and drift_ok):
            print(
                "ERROR: the catalog or the inventory audit did not go as planted", file=sys.stderr
            )
            clean = False
        print(
            f"\nWeb UI: http://localhost:{args.ui_port}/namespaces/{DEMO_NAMESPACE}/workflows"
            '\n  exception inbox: RetailStatus IN ("Rejected", "NeedsAttention", "Failed")'
            f"\n  payloads are encrypted; the UI shows them decrypted by the codec server at "
            f"{codec_url}"
            f"\n  the CLI against the demo: export {ENV_KEYS_FILE}={key_file} "
            "RETAILFLOW_ENVIRONMENT=demo"
        )
        print("  rollout commands sent to a store: retailflow price-rollout commands --store S002")
        if args.keep_running:
            print("\neverything stays up: Ctrl-C to stop.", flush=True)
            await wait_for_ctrl_c()
        return 0 if clean else 1
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


# The demo's people (the inbox's logins): a cashier who requests, a manager who approves.
DEMO_PASSWORD = "demo-password"
CASHIER = User(subject="cashier-ann", name="Ann (cashier)", roles=("cashier",))
MANAGER = User(subject="manager-lee", name="Lee (store manager)", roles=("store_manager",))


def _demo_identity(root: Path) -> dict[str, Any]:
    """The demo's identity source: an issuer key and a users file under .demo/identity (made
    once), and the settings that trust that key and sign with it."""
    root.mkdir(parents=True, exist_ok=True)
    key, users = root / "inbox.key", root / "users.toml"
    if not key.exists():
        new_key(key, "demo-inbox")
    if not users.exists():
        for u in (CASHIER, MANAGER):
            add_user(users, u.subject, u.name, list(u.roles), DEMO_PASSWORD)
    issuer = load_issuer(key)
    return {
        "identity_key_file": str(key),
        "users_file": str(users),
        "approval_public_keys": issuer.public_line(),
    }


async def _refunds(
    client: Client, settings: Settings, valid: dict[str, dict[str, Any]]
) -> list[RefundResult]:
    """A small refund that passes by policy, and a large one a second person approves (both
    proven by assertions the demo's issuer signs, as the inbox would)."""
    issuer: Issuer = load_issuer(settings.identity_key_file or "")
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
        return []
    small_id = f"demo-{stamp}-small"
    _, small, _ = await request_refund(
        client,
        settings,
        {
            "refund_id": small_id,
            "store_id": "S001",
            "txn_id": small_sale["txn_id"],
            "amount": "2.00",
            "reason": "damaged",
            "requested_by": CASHIER.name,
        },
        issuer.assertion(CASHIER, "cashier", small_id, "request"),
    )
    shown = [await small.result()]
    if large is not None:
        amount, sale = large
        large_id = f"demo-{stamp}-large"
        _, big, _ = await request_refund(
            client,
            settings,
            {
                "refund_id": large_id,
                "store_id": "S001",
                "txn_id": sale["txn_id"],
                "amount": str(amount),
                "reason": "changed_mind",
                "requested_by": CASHIER.name,
            },
            issuer.assertion(CASHIER, "cashier", large_id, "request"),
        )
        while (await big.query(Refund.show)).status is not RefundStatus.AWAITING_APPROVAL:
            await asyncio.sleep(0.2)
        print(
            f"  {big.id} waits for approval ({amount} is over the policy limit);"
            " manager-lee approves it with the Update `approve` (a signed assertion; the inbox"
            f" at /inbox/ does the same: {MANAGER.subject} / {DEMO_PASSWORD})"
        )
        approval = issuer.assertion(MANAGER, "store_manager", large_id, "approve")
        await big.execute_update(
            Refund.approve, Approval(assertion=approval, comment="receipt seen")
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
    return shown


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


# -- the day as the stores rang it up -----------------------------------------------------------


@dataclass
class DayPlan:
    """What the demo's day is made of, beyond what retailflow is sent."""

    # What the stores send to retailflow, in arrival order (the lost sale left out).
    stream: list[Any]
    # Per store, what its POS rang up: every sale it accepted (the valid ones and a sale of a
    # product Odoo does not know yet); the invalid ones never pass the till.
    rung: dict[str, list[dict[str, Any]]]
    # The gateway's payment intents of the rung-up sales' card payments (its admin bodies).
    card_intents: list[dict[str, Any]]
    # The planted difference: a sale rung up and charged whose submission is lost.
    lost: dict[str, Any] | None
    # The valid sales retailflow is sent (sale key -> sale).
    submitted_valid: dict[str, dict[str, Any]] = field(default_factory=dict)


def plan_day(stream: list[Any], facts: dict[str, Any]) -> DayPlan:
    """Ring up the day at the POS, charge its card payments, and lose one card sale (of S002
    when it has one) on its way to retailflow: the one difference the reconciliation explains."""
    valid: dict[str, dict[str, Any]] = facts["valid"]
    pos_accepts = {(store, txn) for store, txn, kind in facts["invalid"] if kind == "unknown_sku"}
    rung_sales = dict(valid)
    for raw in stream:
        if isinstance(raw, dict) and (raw.get("store_id"), raw.get("txn_id")) in pos_accepts:
            rung_sales.setdefault(f"POS:{raw['store_id']}:{raw['txn_id']}", raw)
    card_only = sorted(
        (key for key, raw in valid.items() if [p["method"] for p in raw["payments"]] == ["card"]),
        key=lambda k: (not k.startswith("POS:S002:"), k),
    )
    lost = valid[card_only[0]] if card_only else None
    rung: dict[str, list[dict[str, Any]]] = {}
    intents: list[dict[str, Any]] = []
    for _, raw in sorted(rung_sales.items()):
        rung.setdefault(raw["store_id"], []).append(raw)
        created = int(datetime.fromisoformat(raw["occurred_at"]).timestamp())
        for p in raw["payments"]:
            if p["method"] == "card":
                intents.append(
                    {
                        "id": p["reference"],
                        "amount": int(Decimal(p["amount"]) * 100),
                        "currency": "usd",
                        "metadata": {"store_id": raw["store_id"], "txn_id": raw["txn_id"]},
                        "created": created,
                    }
                )

    def is_lost(raw: Any) -> bool:
        return (
            lost is not None
            and isinstance(raw, dict)
            and (raw.get("store_id"), raw.get("txn_id")) == (lost["store_id"], lost["txn_id"])
        )

    return DayPlan(
        stream=[raw for raw in stream if not is_lost(raw)],
        rung=rung,
        card_intents=intents,
        lost=lost,
        submitted_valid={k: v for k, v in valid.items() if not is_lost(v)},
    )


def refund_transactions(
    refunds: list[RefundResult], sales: dict[str, dict[str, Any]], at: datetime
) -> dict[str, list[dict[str, Any]]]:
    """The refunds made (per store) as the POS rings them up: `kind` refund, the refund's id
    as its transaction id, its tenders as payments, at `at` in the sale's own UTC offset (the
    store-day the refund is booked on)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in refunds:
        sale = sales.get(r.sale_key or "")
        if r.status is not RefundStatus.REFUNDED or sale is None or not r.refund_id:
            continue
        offset = datetime.fromisoformat(sale["occurred_at"]).tzinfo
        payments: list[dict[str, Any]] = []
        for t in r.tenders:
            payment: dict[str, Any] = {"method": t.method.value, "amount": str(t.amount)}
            if t.reference:
                payment["reference"] = t.reference
            payments.append(payment)
        out.setdefault(sale["store_id"], []).append(
            {
                "store_id": sale["store_id"],
                "txn_id": r.refund_id,
                "kind": "refund",
                "occurred_at": at.astimezone(offset).isoformat(),
                "currency": sale["currency"],
                "lines": [],
                "payments": payments,
            }
        )
    return out


def _ring_up_refunds(
    pos_port: int, refunds: list[RefundResult], sales: dict[str, dict[str, Any]]
) -> None:
    for store, txns in sorted(refund_transactions(refunds, sales, datetime.now(UTC)).items()):
        _admin(pos_port, f"/_sim/stores/{store}/transactions", txns, "POST")


async def _fix_attention(
    client: Client, odoo: odoorpc.ODOO, settled: dict[str, SalePostingResult]
) -> list[str]:
    """What ops do with a sale that needs attention because Odoo lacks its product: create
    the product, then retry the sale. Anything else is left in the inbox (and shows in the
    reconciliation as missing in Odoo). Returns the sales fixed."""
    fixed: list[str] = []
    for wf_id, r in sorted(settled.items()):
        if r.status is not SaleStatus.NEEDS_ATTENTION:
            continue
        found = re.search(r"unknown SKU '([^']+)'", "; ".join(r.reasons))
        if found is None:
            print(f"  {wf_id} stays in the inbox: the reconciliation shows it missing in Odoo")
            continue
        sku = found.group(1)
        if not odoo.execute_kw("product.product", "search", [[("default_code", "=", sku)]]):
            odoo.execute_kw(
                "product.product",
                "create",
                [{"name": f"Product {sku}", "default_code": sku, "type": "product"}],
            )
        handle = client.get_workflow_handle_for(SalePosting.run, wf_id)
        comment = f"created product {sku} in Odoo"
        await handle.signal(SalePosting.retry, OpsDecision(by="ops-demo", comment=comment))
        result = await asyncio.wait_for(handle.result(), timeout=120)
        print(
            f"\nops: {wf_id} needed product {sku}: ops-demo {comment} and retried it: "
            f"{result.status.value} (as `retailflow sale retry STORE TXN --by NAME` does), so "
            "the day closes with every sale the POS rang up booked"
        )
        fixed.append(wf_id)
    return fixed


# -- settlement: close the day, reconcile it, resolve the difference ---------------------------


def _schedule() -> SettlementSchedule:
    """The demo's schedule file, or (installed without the repository) the same in code."""
    if SCHEDULE_FILE.exists():
        return load_schedule(SCHEDULE_FILE)
    return SettlementSchedule(
        region=[RegionSchedule(name="demo", time_zone="America/New_York", stores=list(STORES))]
    )


async def _reports(
    client: Client, ids: list[str], timeout: td = td(minutes=3)
) -> list[ReconReport]:
    """Each reconciliation's report once its comparison has run."""
    deadline = time.monotonic() + timeout.total_seconds()
    out: list[ReconReport] = []
    for wf_id in ids:
        handle = client.get_workflow_handle_for(Reconciliation.run, wf_id)
        while True:
            report: ReconReport | None = None
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):
                report = await handle.query(Reconciliation.report)
            if report is not None and report.status is not ReconStatus.RECONCILING:
                out.append(report)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{wf_id} has no report after {timeout}")
            await asyncio.sleep(0.5)
    return out


def expected_diff(report: ReconReport, lost: dict[str, Any] | None) -> str | None:
    """The id of the planted difference when `report` is the lost sale's store-day."""
    if lost is None or report.store_id != lost["store_id"]:
        return None
    return f"missing_in_odoo:{lost['txn_id']}"


def unexplained(reports: list[ReconReport], lost: dict[str, Any] | None) -> list[str]:
    """Open differences other than the planted one (none, when the demo is right)."""
    return [
        f"{r.store_id}: {d.line()}"
        for r in reports
        for d in r.open_diffs
        if d.id != expected_diff(r, lost)
    ]


async def _settle_and_reconcile(
    client: Client,
    settings: Settings,
    day: date,
    plan: DayPlan,
    fixed: list[str],
    refunds: int,
) -> bool:
    """Apply the schedules, settle the day now, print its reconciliation, repost the lost
    sale. True when the day ends Reconciled with nothing unexplained."""
    config = _schedule()
    shown = SCHEDULE_FILE.relative_to(SCHEDULE_FILE.parents[1])
    print(f"\nsettlement schedules: $ retailflow schedules apply --config {shown}")
    for applied in await schedules.apply(client, config, settings.task_queue):
        print(f"  {applied.schedule_id}: {applied.change}")
    region = config.region[0]
    print(
        f"  their night runs at {region.close_at} {region.time_zone}; the demo settles "
        f"store-day {day} now, as `retailflow settlement run {region.name} {day} --wait` does"
    )
    handle = await client.start_workflow(
        DailySettlement.run,
        schedules.settlement_input(
            region,
            config,
            region.stores or STORES,
            business_day=day,
            settle_timeout=td(minutes=5),
            poll_every=td(seconds=1),
        ),
        id=schedules.settlement_run_id(region.name, day),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    settled = await asyncio.wait_for(handle.result(), timeout=300)
    for s in settled.stores:
        at = s.closed_at.isoformat(timespec="seconds") if s.closed_at else "-"
        print(f"  {s.store_id}: {s.close} at {at}; {s.reconciliation or '-'}")
    ids = [s.reconciliation for s in settled.stores if s.reconciliation]
    reports = await _reports(client, ids)
    print(f"\n$ retailflow recon report {day}")
    print(render_table(reports))
    odd = unexplained(reports, plan.lost)
    if odd:
        print("ERROR: differences the demo did not plant:", *odd, sep="\n  ", file=sys.stderr)
    print(
        "\nthe rejected sales are not in the POS's journal (its till refuses them)"
        + (f"; the {refunds} refund(s) are, rung up as refunds" if refunds else "")
        + (f"; {', '.join(fixed)} was fixed by ops before the close" if fixed else "")
        + "."
    )
    planted = next(
        (r for r in reports if (d := expected_diff(r, plan.lost)) and r.diff(d) is not None),
        None,
    )
    if planted is None or plan.lost is None:
        print("no planted difference to resolve (no card sale to lose: try a larger --per-store)")
        return not odd
    diff_id = f"missing_in_odoo:{plan.lost['txn_id']}"
    store = planted.store_id
    print(
        f"\nthe planted difference: {diff_id} in {store}: its submission was lost between the "
        "store and retailflow.\nops repost it from the POS's copy, through the normal sale "
        f"workflow:\n$ retailflow recon repost {store} {day} {diff_id} --by ops-demo"
    )
    recon = client.get_workflow_handle_for(
        Reconciliation.run, reconciliation_workflow_id(store, day)
    )
    answer = await recon.execute_update(
        Reconciliation.repost,
        ReconDecision(diff_id=diff_id, by="ops-demo", comment="submission lost on the way"),
    )
    print(f"  {answer}")
    final = await asyncio.wait_for(recon.result(), timeout=180)
    print(f"\n$ retailflow recon show {store} {day}")
    print(render_table([final]))
    print(
        "\nops commands:"
        f"\n  retailflow schedules list                      (also the Web UI's Schedules page)"
        f"\n  retailflow settlement run {region.name} {day} --config deploy/settlement.toml --wait"
        f"\n  retailflow recon report {day} [--store S002] [--format table|csv|json]"
        f"\n  retailflow recon show STORE {day}"
        f"\n  retailflow recon repost STORE {day} missing_in_odoo:TXN --by YOUR_NAME"
        f"\n  retailflow recon accept STORE {day} DIFF_ID|all --by YOUR_NAME --comment WHY"
    )
    return not odd and final.status is ReconStatus.RECONCILED


async def _payouts(client: Client, settings: Settings) -> None:
    """Book the gateway's payouts of yesterday and today (UTC) in Odoo, in one line."""
    today = datetime.now(UTC).date()
    handle = await start_settlement(client, settings.task_queue, today - td(days=1), today)
    try:
        result = await asyncio.wait_for(handle.result(), timeout=60)
    except TimeoutError:
        print(f"\ngateway payouts: {handle.id} is still running (retailflow settlement payouts)")
        return
    booked = [p for p in result.payouts if p.outcome in ("booked", "already booked")]
    pending = [p for p in result.payouts if p.outcome == "pending"]
    if not result.payouts:
        print(
            f"\ngateway payouts {result.date_from} to {result.date_to}: none yet (the gateway "
            "pays a UTC day out once it has ended; the day's charges are in tonight's payout)"
        )
        return
    print(
        f"\ngateway payouts {result.date_from} to {result.date_to}: {len(booked)} booked"
        + "".join(
            f"; {p.payout_id} {p.amount} {p.currency.upper()} as {p.move_name}" for p in booked
        )
        + (
            f"; {len(pending)} pending ({', '.join(f'{p.payout_id} {p.amount}' for p in pending)}"
            ": a day's payout is paid after the UTC day ends; the next run books it)"
            if pending
            else ""
        )
        + "\n  retailflow settlement payouts "
        + f"--from {result.date_from} --to {result.date_to} --wait"
    )
