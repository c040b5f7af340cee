"""`retailflow`: start and steer retail workflows from a shell.

retailflow worker                          run a worker (Odoo activities, all workflows)
retailflow ingress                         HTTP API: POST /v1/sales
retailflow sale post FILE.jsonl [--mode per-sale|batched|summary] [--wait]
retailflow sale status STORE TXN
retailflow sale retry|dismiss STORE TXN --by NAME [--comment TEXT]
retailflow sale exceptions [--store S]     the exception inbox (sales, ledgers' parked stock)
retailflow ledger retry-stock|dismiss-stock STORE DAY --by NAME [--comment TEXT]
retailflow price-rollout start|status|cancel|commands ...
retailflow refund request|approve|reject|retry|resolved|list|show ...
retailflow identity new-key|add-user|assert ...   who requests and decides refunds
retailflow schedules apply|list|pause|unpause|trigger|backfill ...
retailflow settlement run REGION DAY | close STORE DAY | payouts --from D --to D
retailflow recon run|show|accept|repost STORE DAY ... | report DAY [--store S] [--format F]
retailflow audit collect | export --from D --to D [--out F] [--mask] | verify FILE
retailflow codec-server [--host H --port P --origin URL]  decrypt payloads for the Web UI
retailflow keys new [--kid K]              print a new payload encryption key line
retailflow status [--json]                 health: backlog, exceptions, settlement, workers
retailflow demo [--keep-running]           everything on the embedded default

Exit codes: 0 done; 1 done, but some of it was rejected or ended in an exception state (sales
rejected or needing attention, a refund or rollout rejected by its checks); 2 refused before
anything was done (bad usage, input, settings, Temporal unreachable, an unknown id, or a command
that does not apply, e.g. `refund retry` on a refund that does not need attention); 3
unexpected error (a bug: `--debug` shows the traceback); 4 still running when the wait ended
(`--timeout`, `--check-timeout`); 130 interrupted. The README has the same table.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
import traceback
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.approval import Action
from domain.customer import load_loyalty_policy
from domain.ids import BadIdPart
from domain.limits import (
    MAX_AMOUNT,
    MAX_ID_LENGTH,
    LimitExceeded,
    MalformedJson,
    load_json,
    visibility_literal,
)
from domain.posting import load_profile
from domain.pricing import (
    RolloutRejected,
    StoreTarget,
    parse_duration,
    parse_rollout,
    read_changes,
    store_id_problem,
)
from domain.refund import RefundRejected, load_policy
from domain.sale import SaleRefused
from domain.validation import field_errors
from workers.auth import load_callers
from workers.client import connect
from workers.codec import EncryptionKeyError
from workers.identity import (
    IdentityError,
    add_user,
    configured_user,
    decision_role,
    issuer_from,
    new_key,
)
from workers.refunds import first_verdict, request_refund
from workers.rollouts import start_rollout, store_commands, validation_verdict
from workers.settings import Settings, load_settings, refuse_unsafe_credentials
from workers.submit import (
    Mode,
    Submission,
    Submitted,
    raw_from_text,
    sale_result,
    submit_many,
    wait_until_settled,
)
from workflows.price_rollout import (
    CancelRequest,
    PriceRollout,
    RolloutReport,
    RolloutStatus,
    legacy_rollout_workflow_id,
    rollout_workflow_id,
)
from workflows.refund import (
    Approval,
    OpsAction,
    Refund,
    RefundResult,
    RefundStatus,
    refund_workflow_ids,
)
from workflows.sale_posting import (
    EXCEPTION_STATES,
    OpsDecision,
    SalePosting,
    SaleStatus,
    posting_workflow_id,
)
from workflows.store_ledger import StoreLedger, ledger_workflow_id, legacy_ledger_workflow_id


async def _signal_open(handle: Any, signal: Any, arg: Any, what: str) -> None:
    """Signal a workflow the CLI has just seen open; it may have closed since."""
    try:
        await handle.signal(signal, arg)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"{what} has closed meanwhile") from e
        raise


class CliError(Exception):
    """An error to show the user as one clear line (exit code 2: nothing was done)."""


class Outcome(Exception):
    """Done, but not all well: the message is printed and the CLI exits with `code`."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


EXIT_OK, EXIT_EXCEPTIONS, EXIT_REFUSED, EXIT_BUG, EXIT_STILL_RUNNING = 0, 1, 2, 3, 4


def _read_text(path: str) -> str:
    """A whole text file; every problem is a CliError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise CliError(f"{path}: no such file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CliError(f"{path}: cannot read: {e.strerror}") from e
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CliError(f"{path}: line {line} is not UTF-8 text (a binary file?)") from e


def _read_jsonl(path: str) -> list[dict[str, Any] | str]:
    """Every sale of a JSON Lines file, checked whole before anything is submitted: a line
    beyond the edge's limits refuses the file (nothing submitted, each bad line named)."""
    raws: list[dict[str, Any] | str] = []
    problems: list[str] = []
    # JSON Lines are separated by "\n" alone: str.splitlines() would also cut at characters a
    # JSON string may hold unescaped (U+2028, U+0085, \x1c...), and str.strip() would take a
    # line of such characters for a blank one and drop it. Blank is JSON's whitespace only.
    for n, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip(" \t\r"):
            continue
        try:
            raws.append(raw_from_text(line))
        except SaleRefused as e:
            problems.append(f"line {n}: {'; '.join(map(str, e.errors))}")
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise CliError(f"{path}: {len(problems)} lines refused, nothing submitted: {shown}")
    return raws


def _name(text: str) -> str:
    """A person's name for the history (`--by`, `--requested-by`)."""
    name = text.strip()
    if not name:
        raise argparse.ArgumentTypeError("must not be empty")
    if len(name) > MAX_ID_LENGTH or any(not c.isprintable() for c in name):
        raise argparse.ArgumentTypeError(f"at most {MAX_ID_LENGTH} printable characters")
    return name


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 7 * 86400:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 604800 (7 days)")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (and exit code 2), like every other CLI error."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_REFUSED, f"{self.prog}: {message} (see {self.prog} --help)\n")


async def _client(settings: Settings) -> Client:
    try:
        return await connect(settings.temporal)
    except RuntimeError as e:
        raise CliError(
            f"cannot reach Temporal at {settings.temporal.address} "
            f"(namespace {settings.temporal.namespace}): {e}. Set TEMPORAL_ADDRESS, or start a "
            "dev server: .venv/bin/temporal server start-dev"
        ) from e


async def _first_known(
    client: Client, ids: list[str]
) -> tuple[str, WorkflowExecutionDescription] | None:
    """The first of these workflow ids that Temporal knows (newest id form first), with its
    description; None when it knows none of them."""
    for wf_id in ids:
        try:
            return wf_id, await client.get_workflow_handle(wf_id).describe()
        except RPCError as e:
            # INVALID_ARGUMENT: an id Temporal would never have accepted (e.g. far too long).
            if e.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise
    return None


def _ids(*forms: Any, of: str) -> list[str]:
    """The workflow ids `of` may live under (each form a function of it); a form that refuses
    it (e.g. a `:` in it) cannot hold it."""
    out = []
    for form in forms:
        try:
            out.append(form(of))
        except BadIdPart:
            continue
    return out


def _comment(text: str) -> str:
    """A required comment (`--comment` where it is the record of what a person did)."""
    comment = text.strip()
    if not comment:
        raise argparse.ArgumentTypeError("must not be empty")
    if len(comment) > 2000:
        raise argparse.ArgumentTypeError("at most 2000 characters")
    return comment


def _describe(s: Submitted) -> str:
    who = f"{s.store_id or '?'}/{s.txn_id or '?'}"
    line = f"{who:<22} {s.submission.value:<10} {s.workflow_id}"
    if s.errors:
        line += "\n" + "\n".join(f"{'':<24}- {e}" for e in s.errors)
    return line


async def cmd_sale_post(args: argparse.Namespace, settings: Settings) -> int:
    raws = _read_jsonl(args.file)
    client = await _client(settings)
    submitted = await submit_many(
        client, settings, raws, Mode(args.mode) if args.mode else None, source=f"cli:{args.file}"
    )
    for s in submitted:
        print(_describe(s))
    counts = {k: sum(1 for s in submitted if s.submission is k) for k in Submission}
    print(
        f"\n{len(submitted)} lines: " + ", ".join(f"{n} {k.value}" for k, n in counts.items() if n)
    )
    failed = counts[Submission.FAILED]
    if failed:
        print(f"{failed} lines were not submitted (see 'failed' above): send them again")
    if not args.wait:
        return EXIT_EXCEPTIONS if failed or counts[Submission.REJECTED] else EXIT_OK
    followed = [s for s in submitted if s.submission is not Submission.FAILED]
    try:
        results = await wait_until_settled(client, followed, timedelta(seconds=args.timeout))
    except TimeoutError as e:
        raise Outcome(f"still running: {e}", EXIT_STILL_RUNNING) from e
    exceptions = {w: r for w, r in results.items() if r.status in EXCEPTION_STATES}
    print(f"settled: {len(results) - len(exceptions)} posted, {len(exceptions)} in exception state")
    for wf_id, r in sorted(exceptions.items()):
        print(f"  {wf_id}: {r.status.value}: {'; '.join(r.reasons)}")
    return EXIT_EXCEPTIONS if exceptions or failed else EXIT_OK


def _split_sale(args: argparse.Namespace) -> tuple[str, str]:
    return args.store, args.txn


async def cmd_sale_status(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    try:
        result = await sale_result(client, *_split_sale(args))
    except (WorkflowQueryFailedError, RPCError) as e:
        raise CliError(
            f"sale {args.store}/{args.txn}: its workflow cannot answer now ({_first_line(e)}); "
            "see it in the Web UI"
        ) from e
    if result is None:
        raise CliError(f"no sale {args.store}/{args.txn} is known to Temporal")
    print(json.dumps(result.model_dump(mode="json"), indent=2))
    return 0


async def cmd_sale_decide(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    sale = f"{args.store}/{args.txn}"
    try:
        wf_id = posting_workflow_id(args.store, args.txn)
    except BadIdPart as e:
        raise CliError(f"no workflow for sale {sale}") from e
    handle = client.get_workflow_handle_for(SalePosting.run, wf_id)
    try:
        decision = OpsDecision(by=args.by, comment=args.comment)
    except ValidationError as e:
        raise CliError(f"{field_errors(e, 'decision')[0]}") from e
    try:
        state = await handle.query(SalePosting.status)
        if state.status is SaleStatus.REJECTED:
            raise CliError(
                f"sale {sale} was rejected ({'; '.join(state.reasons)[:300]}): post the "
                "corrected sale (`retailflow sale post`); it replaces the rejected one"
            )
        if state.status is not SaleStatus.NEEDS_ATTENTION:
            raise CliError(
                f"sale {args.store}/{args.txn} is {state.status.value}: only a sale that needs "
                "attention can be retried or dismissed"
            )
        signal = SalePosting.retry if args.action == "retry" else SalePosting.dismiss
        await handle.signal(signal, decision)
    except WorkflowQueryFailedError as e:
        raise CliError(f"sale {sale}: its workflow cannot answer now ({_first_line(e)})") from e
    except RPCError as e:
        if e.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise CliError(f"no workflow for sale {sale}") from e
        raise
    print(f"{args.action} sent to {handle.id} by {args.by}")
    return 0


def _store_literal(store: str | None) -> str | None:
    """--store as a quoted visibility-query string (None when not given); CliError when it
    could change the query."""
    if store is None:
        return None
    try:
        return visibility_literal(store, "--store")
    except ValueError as e:
        raise CliError(str(e)) from e


async def cmd_sale_exceptions(args: argparse.Namespace, settings: Settings) -> int:
    store = _store_literal(args.store)
    client = await _client(settings)
    query = (
        'WorkflowType = "SalePosting" AND RetailStatus IN ("Rejected", "NeedsAttention", "Failed")'
    )
    if store:
        query += f" AND StoreId = {store}"
    n = 0
    async for wf in client.list_workflows(query, limit=args.limit):
        handle = client.get_workflow_handle_for(SalePosting.run, wf.id, run_id=wf.run_id)
        r = await handle.query(SalePosting.status)
        if r.status is SaleStatus.REJECTED and await _replaced(client, wf.id, wf.run_id):
            continue  # its corrected sale runs (or ran) under the same id
        print(f"{wf.id:<32} {r.status.value:<15} {'; '.join(r.reasons)}")
        n += 1
    print(f"{n} sales in the exception inbox")
    ledgers = 'WorkflowType = "StoreLedger" AND RetailStatus = "NeedsAttention"'
    if store:
        ledgers += f" AND StoreId = {store}"
    parked = 0
    async for wf in client.list_workflows(ledgers, limit=args.limit):
        ledger = client.get_workflow_handle_for(StoreLedger.run, wf.id, run_id=wf.run_id)
        progress = await ledger.query(StoreLedger.progress)
        for p in progress.stock_problems:
            txns = ", ".join(sorted(p.txn_ids)[:5]) + (", ..." if len(p.txn_ids) > 5 else "")
            print(
                f"{wf.id:<32} {'NeedsAttention':<15} stock of {len(p.txn_ids)} sales ({txns}) "
                f"parked: {p.reason}"
            )
        if progress.stock_problems:
            parked += 1
            print(
                f"{'':<49}retailflow ledger retry-stock|dismiss-stock {progress.store_id} "
                f"{progress.business_day} --by NAME"
            )
    print(f"{parked} ledgers with parked stock")
    return 0


async def _replaced(client: Client, workflow_id: str, run_id: str | None) -> bool:
    """Whether a later run of this workflow id exists (a rejected sale's corrected one)."""
    try:
        latest = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return latest.run_id != run_id


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise CliError(f"DAY: {text!r} is not a date like 2026-11-20") from e


async def cmd_ledger_stock(args: argparse.Namespace, settings: Settings) -> int:
    day = _day(args.day)
    ledger = f"the ledger of store {args.store} for {day}"
    try:
        decision = OpsDecision(by=args.by, comment=args.comment)
    except ValidationError as e:
        raise CliError(f"{field_errors(e, 'decision')[0]}") from e
    client = await _client(settings)
    # Ledgers started before ids were joined by `:` keep their old id until they close.
    legacy = legacy_ledger_workflow_id(args.store, day)
    found = await _first_known(
        client, [*_ids(lambda s: ledger_workflow_id(s, day), of=args.store), legacy]
    )
    if found is None:
        raise CliError(f"no ledger for store {args.store} on {day}")
    handle = client.get_workflow_handle_for(StoreLedger.run, found[0])
    try:
        progress = await handle.query(StoreLedger.progress)
    except (WorkflowQueryFailedError, RPCError) as e:
        raise CliError(f"{ledger} cannot answer now ({_first_line(e)})") from e
    if not progress.stock_problems:
        raise CliError(f"{ledger} has no parked stock: nothing to retry or dismiss")
    signal = StoreLedger.retry_stock if args.action == "retry-stock" else StoreLedger.dismiss_stock
    await _signal_open(handle, signal, decision, ledger)
    sales = sum(len(p.txn_ids) for p in progress.stock_problems)
    print(
        f"{args.action} sent to {handle.id} by {args.by}: "
        f"{len(progress.stock_problems)} parked batches, {sales} sales"
    )
    return 0


MAX_CONFIRM_WITHIN = timedelta(days=7)
MAX_AHEAD = timedelta(days=366)


def _duration(text: str, flag: str, longest: timedelta) -> timedelta:
    try:
        d = parse_duration(text)
    except (ValueError, OverflowError) as e:
        raise CliError(f"{flag}: {text!r} is not a duration like 90s, 15m, 2h or 1d") from e
    if d > longest:
        raise CliError(f"{flag}: {text!r} is longer than {longest.days} days")
    return d


def _effective_at(text: str) -> datetime:
    """ISO-8601 with an offset, `now`, or `+DURATION` from now (e.g. `+5m`); within a year."""
    now = datetime.now(UTC)
    if text == "now":
        return now
    if text.startswith("+"):
        return now + _duration(text[1:], "--effective-at", MAX_AHEAD)
    try:
        at = datetime.fromisoformat(text)
    except ValueError as e:
        raise CliError(f"--effective-at: {text!r} is not ISO-8601, 'now' or '+15m'") from e
    if at.tzinfo is None:
        raise CliError(f"--effective-at: {text!r} needs an offset, e.g. {text}+00:00")
    if at - now > MAX_AHEAD:
        raise CliError(f"--effective-at: {text!r} is more than {MAX_AHEAD.days} days ahead")
    return at


def _over_limit(value: Any) -> bool:
    """A money value at or beyond MAX_AMOUNT (not-a-number is left to the contract)."""
    try:
        return abs(Decimal(str(value).strip())) >= MAX_AMOUNT
    except ArithmeticError:
        return False


def _read_changes(text: str, path: str) -> list[Any]:
    """A rollout file's price changes: a CSV, or JSON read within the edge's limits with
    exact decimal prices (never floats)."""
    if not path.endswith(".json"):
        try:
            return read_changes(text, Path(path).name)
        except RolloutRejected as e:
            raise CliError(f"{path}: {e}") from e
        except (csv.Error, ValueError) as e:
            raise CliError(f"{path}: cannot be read: {_first_line(e)}") from e
    try:
        data = load_json(text)
    except LimitExceeded as e:
        raise CliError(f"{path}: refused, nothing was changed: {e}") from e
    except MalformedJson as e:
        raise CliError(f"{path}: malformed JSON: {_first_line(e)}") from e
    if isinstance(data, dict):
        data = data.get("changes", data)
    if not isinstance(data, list):
        raise CliError(f'{path}: must hold a JSON list of changes (or {{"changes": [...]}})')
    return data


async def cmd_rollout_start(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    text = _read_text(args.file)
    try:
        target = StoreTarget.parse(args.stores)
    except ValidationError as e:
        raise CliError(f"--stores {args.stores!r}: {field_errors(e, 'stores')[0].message}") from e
    confirm_within = _duration(args.confirm_within, "--confirm-within", MAX_CONFIRM_WITHIN)
    if not 0 <= args.max_failure_ratio <= 1:
        raise CliError(f"--max-failure-ratio: {args.max_failure_ratio} is not between 0 and 1")
    changes = _read_changes(text, args.file)
    too_large = [
        f"changes[{i}].price: must be less than {MAX_AMOUNT}"
        for i, c in enumerate(changes)
        if isinstance(c, dict) and _over_limit(c.get("price"))
    ]
    if too_large:
        raise CliError("rollout refused, nothing was changed: " + "; ".join(too_large[:5]))
    raw = {
        "rollout_id": args.id or f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{path.stem}",
        "changes": changes,
        "target": target.model_dump(mode="json"),
        "effective_at": _effective_at(args.effective_at).isoformat(),
        "confirm_within": confirm_within.total_seconds(),
        "max_failure_ratio": args.max_failure_ratio,
        "requested_by": args.requested_by,
    }
    try:
        parse_rollout(raw)  # the whole rollout checked before Temporal is even reached
        client = await _client(settings)
        rollout, handle = await start_rollout(client, settings, raw)
    except RolloutRejected as e:
        raise CliError(
            "rollout refused, nothing was changed: " + "; ".join(map(str, e.errors))
        ) from e
    except WorkflowAlreadyStartedError as e:
        raise CliError(f"rollout {raw['rollout_id']} already exists: pick another --id") from e
    print(
        f"rollout {rollout.rollout_id} started ({handle.id}): {len(rollout.changes)} prices to "
        f"{rollout.target}, effective {rollout.effective_at.isoformat()}"
    )
    follow = f"follow it: retailflow price-rollout status {rollout.rollout_id}"
    try:
        report = await validation_verdict(handle, timedelta(seconds=args.check_timeout))
    except TimeoutError as e:
        raise Outcome(f"its checks have not finished yet; {follow}", EXIT_STILL_RUNNING) from e
    if report is not None and report.status is RolloutStatus.REJECTED:
        reasons = "; ".join(report.reasons)
        raise Outcome(
            f"rollout {rollout.rollout_id} rejected, nothing was changed: {reasons}",
            EXIT_EXCEPTIONS,
        )
    print(f"checked: its SKUs are in Odoo and its stores on the POS platform\n{follow}")
    return EXIT_OK


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


async def cmd_rollout_status(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    handle, _ = await _rollout(client, args.id)
    live = sys.stdout.isatty() and not args.once
    while True:
        try:
            desc = await handle.describe()
            progress = await handle.query(PriceRollout.progress)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise CliError(f"no rollout {args.id}") from e
            raise
        c = progress.counts
        settled = progress.total - c.get("pending", 0) - c.get("commanded", 0)
        counts = ", ".join(f"{n} {k}" for k, n in sorted(c.items()))
        status = progress.status.value if progress.status else "?"
        bar = _bar(settled, progress.total)
        line = f"{status:<12} {bar} {settled}/{progress.total}  {counts}"
        print(("\r" + line + "\033[K") if live else line, end="" if live else "\n", flush=True)
        if desc.status != WorkflowExecutionStatus.RUNNING or not live:
            break
        await asyncio.sleep(1)
    if live:
        print()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        report = await handle.query(PriceRollout.report)
        _print_rollout_report(report)
    return 0


def _print_rollout_report(report: RolloutReport) -> None:
    print(
        f"\nrollout {report.rollout_id}: {report.status.value}, requested by {report.requested_by}"
    )
    for reason in report.reasons:
        print(f"  {reason}")
    for store, r in report.stores.items():
        if r.outcome.value != "confirmed":
            print(f"  {store:<8} {r.outcome.value:<12} {r.reason or ''}")
    confirmed = sum(1 for r in report.stores.values() if r.outcome.value == "confirmed")
    if report.stores:
        n = len(report.stores)
        print(f"  {confirmed} of {n} stores confirmed ({report.failure_ratio:.1%} failed)")
    if report.compensation:
        c = report.compensation
        print(f"  compensated: {c.why}")
        print(
            f"    old prices restored in {len(c.stores_reverted)} stores; "
            f"Odoo items removed: {c.odoo_items_removed}"
        )
        for store, why in c.stores_not_reverted.items():
            print(f"    NOT restored in {store}: {why}")


async def _rollout(
    client: Client, rollout_id: str
) -> tuple[WorkflowHandle[PriceRollout, RolloutReport], WorkflowExecutionDescription]:
    """The rollout's workflow: under `price-rollout:{id}`, or the id a rollout started by an
    older release has."""
    ids = _ids(rollout_workflow_id, legacy_rollout_workflow_id, of=rollout_id)
    found = await _first_known(client, ids)
    if found is None:
        raise CliError(f"no rollout {rollout_id}")
    return client.get_workflow_handle_for(PriceRollout.run, found[0]), found[1]


async def cmd_rollout_cancel(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    handle, desc = await _rollout(client, args.id)
    if desc.status != WorkflowExecutionStatus.RUNNING:
        state = desc.status.name.lower() if desc.status else "?"
        raise CliError(f"rollout {args.id} is already closed ({state})")
    await handle.signal(PriceRollout.cancel, CancelRequest(by=args.by, reason=args.reason))
    print(f"cancel sent to {handle.id} by {args.by}: old prices return wherever the change reached")
    return 0


async def cmd_rollout_commands(args: argparse.Namespace, settings: Settings) -> int:
    """Every command the newest rollouts sent to one store (the change, any revert)."""
    problem = store_id_problem(args.store)
    if problem:
        raise CliError(f"--store: {problem}")
    _store_literal(args.store)
    if args.limit < 1:
        raise CliError(f"--limit: {args.limit} is not a positive number of rollouts")
    client = await _client(settings)
    found = await store_commands(client, args.store, limit=args.limit)
    if not found.commands:
        print(f"no command sent to {args.store} by the newest {args.limit} rollouts")
    else:
        print(f"{'rollout':<32} {'command':<48} {'outcome':<12} {'sends':>5}  confirmed / reason")
    for c in found.commands:
        rollout = c.rollout_workflow_id.removeprefix("price-rollout:")
        at = c.confirmed_at.isoformat(timespec="seconds") if c.confirmed_at else c.reason or ""
        print(f"{rollout:<32} {c.command_id:<48} {c.outcome:<12} {c.sends:>5}  {at}")
    if found.unanswered:
        print(
            f"{len(found.unanswered)} rollout(s) did not answer (is a worker running?): "
            + ", ".join(sorted(found.unanswered)[:10])
        )
    return EXIT_OK


async def cmd_refund_request(args: argparse.Namespace, settings: Settings) -> int:
    if args.file:
        try:
            raw = load_json(_read_text(args.file))
        except (LimitExceeded, MalformedJson) as e:
            raise CliError(f"{args.file}: malformed JSON: {e}") from e
        if not isinstance(raw, dict):
            raise CliError(f"{args.file}: must hold one refund request (a JSON object)")
    else:
        if not (args.store and args.txn):
            raise CliError("give a FILE, or --store and --txn (with --amount or --line)")
        raw = {
            "refund_id": args.id or f"{args.store}-{args.txn}-{datetime.now(UTC):%H%M%S}",
            "store_id": args.store,
            "txn_id": args.txn,
            "reason": args.reason,
            "restock": args.restock,
        }
        if args.amount is not None:
            raw["amount"] = args.amount
        if args.line:
            try:
                raw["lines"] = [
                    {"sku": sku, "qty": qty} for sku, qty in (x.rsplit(":", 1) for x in args.line)
                ]
            except ValueError as e:
                raise CliError("--line takes SKU:QTY, e.g. --line MUG-WHITE:1") from e
    if _over_limit(raw.get("amount", 0)):
        raise CliError(f"refund request refused: amount: must be less than {MAX_AMOUNT}")
    _check_config_files(settings)
    refund_id = raw.get("refund_id")
    if not isinstance(refund_id, str) or not refund_id.strip():
        raise CliError("refund request refused: refund_id: a refund id is needed")
    assertion = _assertion(args, settings, refund_id, "request")
    client = await _client(settings)
    try:
        request, handle, duplicate = await request_refund(client, settings, raw, assertion)
    except IdentityError as e:
        raise CliError(str(e)) from e
    except RefundRejected as e:
        problems = "; ".join(map(str, e.errors))
        raise CliError(f"refund request refused: {problems}") from e
    if duplicate:
        print(f"refund {request.refund_id} was already requested ({handle.id}): nothing new")
    else:
        print(f"refund {request.refund_id} requested ({handle.id})")
    follow = f"follow it: retailflow refund show {request.refund_id}"
    try:
        shown = await first_verdict(handle, timedelta(seconds=args.check_timeout))
    except TimeoutError as e:
        raise Outcome(f"it is still being checked; {follow}", EXIT_STILL_RUNNING) from e
    if shown.status is RefundStatus.REJECTED:
        raise Outcome(
            f"refund {request.refund_id} rejected: {'; '.join(shown.reasons)}", EXIT_EXCEPTIONS
        )
    detail = f": {shown.reasons[-1]}" if shown.reasons else ""
    print(f"checked: {shown.status.value}{detail}\n{follow}")
    return EXIT_OK


async def _refund(client: Client, refund_id: str) -> WorkflowHandle[Refund, RefundResult]:
    """The refund's workflow: under `refund:{id}`, or `refund-{id}` (requested before ids
    were joined by `:`)."""
    try:
        ids = refund_workflow_ids(refund_id)
    except BadIdPart:  # e.g. a `:` in it: no refund has that id
        ids = []
    found = await _first_known(client, ids)
    if found is None:
        raise CliError(f"no refund {refund_id}")
    return client.get_workflow_handle_for(Refund.run, found[0])


_IDENTITY_FROM_ASSERTION = (
    "{flag} is gone: who acts now comes from a signed assertion (RETAILFLOW_IDENTITY_KEY_FILE "
    "and RETAILFLOW_IDENTITY_SUBJECT, or --assertion / --assertion-file from your identity "
    "provider)"
)


def _assertion(args: argparse.Namespace, settings: Settings, refund_id: str, action: str) -> str:
    return _identity(args, settings, refund_id, action).assertion or ""


def _identity(
    args: argparse.Namespace, settings: Settings, refund_id: str, action: str
) -> Approval:
    """The signed assertion for this refund and action: given (`--assertion`,
    `--assertion-file`, e.g. from the retailer's identity provider), or signed by the
    configured issuer for RETAILFLOW_IDENTITY_SUBJECT (then also the name and role, which
    refunds started before approvals were signed take instead)."""
    for flag in ("by", "role", "requested_by"):
        if getattr(args, flag, None) is not None:
            raise CliError(_IDENTITY_FROM_ASSERTION.format(flag="--" + flag.replace("_", "-")))
    if args.assertion:
        return Approval(assertion=str(args.assertion).strip())
    if args.assertion_file:
        return Approval(assertion=_read_text(args.assertion_file).strip())
    try:
        issuer, user = issuer_from(settings), configured_user(settings)
        if action == "request":
            role = user.roles[0] if user.roles else "requester"
        else:
            role = decision_role(user, load_policy(settings.refund_policy))
    except ValueError as e:  # the identity source or the refund policy is misconfigured
        raise CliError(str(e)) from e
    verb: Action = (
        "approve" if action == "approve" else "reject" if action == "reject" else "request"
    )
    return Approval(
        assertion=issuer.assertion(user, role, refund_id, verb), by=user.name, role=role
    )


async def cmd_refund_decide(args: argparse.Namespace, settings: Settings) -> int:
    who = _identity(args, settings, args.id, args.action)
    client = await _client(settings)
    handle = await _refund(client, args.id)
    update = Refund.approve if args.action == "approve" else Refund.reject
    try:
        answer = await handle.execute_update(
            update, who.model_copy(update={"comment": args.comment})
        )
    except WorkflowUpdateFailedError as e:
        raise CliError(f"{args.action} refused: {e.cause}") from e
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            if "completed" in str(e):
                raise CliError(f"refund {args.id} is closed: it takes no decision") from e
            raise CliError(f"no refund {args.id}") from e
        raise
    print(answer)
    return 0


def _assertion_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--assertion", help="a signed assertion (token) from your identity provider")
    p.add_argument("--assertion-file", help="a file holding that token")


async def cmd_identity_new_key(args: argparse.Namespace, settings: Settings) -> int:
    try:
        line = new_key(args.out, args.kid)
    except (IdentityError, OSError) as e:
        raise CliError(f"new-key: {e}") from e
    print(f"wrote {args.out} (private: only the identity service reads it)")
    print("trust it where refunds start (RETAILFLOW_APPROVAL_PUBLIC_KEYS, comma-separated):")
    print(line)
    return EXIT_OK


async def cmd_identity_add_user(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.users_file:
        raise CliError("set RETAILFLOW_USERS_FILE: the users file to write")
    password: str | None = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not args.no_password:
        import getpass

        password = getpass.getpass(f"password for {args.subject}: ")
    if password is not None and len(password) < 8:
        raise CliError("add-user: a password has at least 8 characters")
    try:
        user = add_user(settings.users_file, args.subject, args.name, args.role, password)
    except (IdentityError, OSError) as e:
        raise CliError(f"add-user: {e}") from e
    print(f"user {user.subject} ({user.name}): roles {', '.join(user.roles)}")
    return EXIT_OK


async def cmd_identity_assert(args: argparse.Namespace, settings: Settings) -> int:
    token = _assertion(args, settings, args.refund, args.action)
    print(token)
    if args.action != "request":
        print(
            f'Web UI signal {args.action}_from_ui input: {{"assertion": "{token}", '
            '"comment": "..."}',
            file=sys.stderr,
        )
    return EXIT_OK


async def cmd_refund_list(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    query = 'WorkflowType = "Refund"'
    if args.pending:
        query += (
            ' AND RetailStatus IN ("AwaitingApproval", "NeedsAttention")'
            ' AND ExecutionStatus = "Running"'
        )
    n = 0
    async for wf in client.list_workflows(query, limit=args.limit):
        handle = client.get_workflow_handle_for(Refund.run, wf.id, run_id=wf.run_id)
        try:
            r = await handle.query(Refund.show)
        except (WorkflowQueryFailedError, RPCError) as e:
            print(f"{wf.id:<24} cannot answer now: {_first_line(e)}")
            n += 1
            continue
        # What needs attention is the latest problem; otherwise every reason tells the story.
        reasons = r.reasons[-1:] if r.status is RefundStatus.NEEDS_ATTENTION else r.reasons
        print(
            f"{r.refund_id or wf.id:<24} {r.status.value:<19} {r.amount or '':>9}  "
            f"by {r.requested_by or '?':<14} {'; '.join(reasons)}"
        )
        n += 1
    print(f"{n} refunds" + (" waiting for a decision or for ops" if args.pending else ""))
    return 0


async def cmd_refund_show(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    handle = await _refund(client, args.id)
    try:
        r = await handle.query(Refund.show)
    except (WorkflowQueryFailedError, RPCError) as e:
        raise CliError(f"refund {args.id} cannot answer now ({_first_line(e)})") from e
    print(json.dumps(r.model_dump(mode="json"), indent=2))
    return 0


async def cmd_refund_ops(args: argparse.Namespace, settings: Settings) -> int:
    """`refund retry|resolved`: for a refund that needs attention (signals `retry`,
    `resolved_by_hand`)."""
    try:
        action = OpsAction(by=args.by, comment=args.comment)
    except ValidationError as e:
        raise CliError(f"{field_errors(e, 'action')[0]}") from e
    client = await _client(settings)
    handle = await _refund(client, args.id)
    try:
        r = await handle.query(Refund.show)
    except (WorkflowQueryFailedError, RPCError) as e:
        raise CliError(f"refund {args.id} cannot answer now ({_first_line(e)})") from e
    if r.status is not RefundStatus.NEEDS_ATTENTION:
        raise CliError(
            f"refund {args.id} is {r.status.value}: only a refund that needs attention can be "
            "retried or resolved by hand"
        )
    signal = Refund.retry if args.action == "retry" else Refund.resolved_by_hand
    await _signal_open(handle, signal, action, f"refund {args.id}")
    what = "retry" if args.action == "retry" else "resolved by hand"
    print(f"{what} sent to {handle.id} by {args.by}")
    print(f"it needed attention: {r.reasons[-1] if r.reasons else '?'}")
    print(f"follow it: retailflow refund show {args.id}")
    return 0


def _check_config_files(settings: Settings) -> None:
    """A bad posting profile or refund policy is a one-line error at start, not a traceback."""
    try:
        load_profile(settings.posting_profile)
        load_policy(settings.refund_policy)
        load_loyalty_policy(settings.loyalty_policy)
    except ValueError as e:
        raise CliError(str(e)) from e


def _check_credentials(settings: Settings, callers: bool = False) -> None:
    """Default or live credentials where they must not be used, or a callers file that does
    not load: one line and exit code 2 before anything starts."""
    try:
        refuse_unsafe_credentials(settings)
        if callers:
            load_callers(settings.callers_file, settings.pos_secrets)
    except ValueError as e:
        raise CliError(str(e)) from e


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.worker import run_worker

    _check_credentials(settings)
    _check_config_files(settings)
    await run_worker(settings)
    return 0


async def cmd_ingress(args: argparse.Namespace, settings: Settings) -> int:
    from workers.ingress import serve

    _check_credentials(settings, callers=True)
    await serve(
        settings, host=args.host or settings.ingress_host, port=args.port or settings.ingress_port
    )
    return 0


async def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    from workers.codec_server import DEFAULT_ORIGINS, CodecServerError, serve

    origins = args.origin or list(DEFAULT_ORIGINS)
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise CliError(f"--origin {origin!r}: give scheme://host[:port], no path")
    try:
        await serve(args.host, args.port, origins, args.allow_ui_without_token)
    except (CodecServerError, EncryptionKeyError) as e:
        raise CliError(str(e)) from e
    return 0


async def cmd_keys_new(args: argparse.Namespace, settings: Settings) -> int:
    from workers.codec import generate_key_line

    try:
        print(generate_key_line(args.kid))
    except EncryptionKeyError as e:
        raise CliError(f"--kid: {e}") from e
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from workers.demo import run_demo

    return await run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="retailflow", description="Durable POS ⇄ Odoo integration on Temporal.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run a worker")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("ingress", help="serve the HTTP ingress API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_ingress)

    sale = sub.add_parser("sale", help="post sales and follow them").add_subparsers(
        dest="sale_command", required=True
    )
    p = sale.add_parser("post", help="submit the sales of a JSON Lines file")
    p.add_argument("file")
    p.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=None,
        help="how to book them (default: each store's configured mode, "
        "RETAILFLOW_STORE_POSTING_MODES, else RETAILFLOW_POSTING_MODE)",
    )
    p.add_argument("--wait", action="store_true", help="return when every sale is settled")
    p.add_argument(
        "--timeout", type=_positive_seconds, default=600.0, help="seconds to wait (with --wait)"
    )
    p.set_defaults(func=cmd_sale_post)

    p = sale.add_parser("status", help="where one sale stands")
    p.add_argument("store")
    p.add_argument("txn")
    p.set_defaults(func=cmd_sale_status)

    for action in ("retry", "dismiss"):
        p = sale.add_parser(action, help=f"{action} a sale that needs attention")
        p.add_argument("store")
        p.add_argument("txn")
        p.add_argument("--by", required=True, type=_name, help="who decides (kept in the history)")
        p.add_argument("--comment", default="")
        p.set_defaults(func=cmd_sale_decide, action=action)

    p = sale.add_parser(
        "exceptions", help="list sales rejected or needing attention, and parked stock"
    )
    p.add_argument("--store")
    p.add_argument("--limit", type=_positive_int, default=100)
    p.set_defaults(func=cmd_sale_exceptions)

    ledger = sub.add_parser(
        "ledger", help="a store's ledger of the day (batched mode)"
    ).add_subparsers(dest="ledger_command", required=True)
    p = ledger.add_parser("retry-stock", help="move the ledger's parked stock again")
    p.add_argument("store")
    p.add_argument("day", help="the business day, e.g. 2026-11-20")
    p.add_argument("--by", required=True, type=_name, help="who decides (kept in the history)")
    p.add_argument("--comment", default="")
    p.set_defaults(func=cmd_ledger_stock, action="retry-stock")
    p = ledger.add_parser("dismiss-stock", help="forget the ledger's parked stock (moved by hand)")
    p.add_argument("store")
    p.add_argument("day", help="the business day, e.g. 2026-11-20")
    p.add_argument("--by", required=True, type=_name, help="who decides (kept in the history)")
    p.add_argument("--comment", required=True, type=_comment, help="what was done instead")
    p.set_defaults(func=cmd_ledger_stock, action="dismiss-stock")

    rollout = sub.add_parser("price-rollout", help="roll prices out to stores").add_subparsers(
        dest="rollout_command", required=True
    )
    p = rollout.add_parser(
        "start", help="start a rollout from a CSV (sku,price[,start,end]) or JSON"
    )
    p.add_argument("file")
    p.add_argument("--stores", required=True, help="all | S001,S002 | region:north")
    p.add_argument("--effective-at", required=True, help="ISO-8601 with offset, now, or +15m")
    p.add_argument("--confirm-within", default="15m")
    p.add_argument("--max-failure-ratio", type=float, default=0.1)
    p.add_argument("--id", help="rollout id (default: time and file name)")
    p.add_argument("--requested-by", type=_name, default=os.environ.get("USER", "cli"))
    p.add_argument(
        "--check-timeout",
        type=_positive_seconds,
        default=60.0,
        help="seconds to wait for the rollout's checks (SKUs, stores)",
    )
    p.set_defaults(func=cmd_rollout_start)
    p = rollout.add_parser("status", help="progress of a rollout (live until it ends)")
    p.add_argument("id")
    p.add_argument("--once", action="store_true", help="print once and return")
    p.set_defaults(func=cmd_rollout_status)
    p = rollout.add_parser("cancel", help="cancel a rollout: restores the old prices")
    p.add_argument("id")
    p.add_argument("--by", required=True, type=_name)
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_rollout_cancel)
    p = rollout.add_parser("commands", help="every command the newest rollouts sent to a store")
    p.add_argument("--store", required=True)
    p.add_argument(
        "--limit", type=int, default=50, help="how many of the newest rollouts to ask (50)"
    )
    p.set_defaults(func=cmd_rollout_commands)

    refund = sub.add_parser("refund", help="refunds with approval").add_subparsers(
        dest="refund_command", required=True
    )
    p = refund.add_parser("request", help="request a refund (a JSON file, or the options)")
    p.add_argument("file", nargs="?")
    p.add_argument("--id", help="refund id (default: store, txn and time)")
    p.add_argument("--store")
    p.add_argument("--txn")
    p.add_argument("--amount")
    p.add_argument("--line", action="append", help="SKU:QTY of an item returned (repeatable)")
    p.add_argument("--reason", default="changed_mind")
    p.add_argument("--requested-by", help=argparse.SUPPRESS)
    p.add_argument("--restock", action="store_true", help="returned items go back to stock")
    _assertion_options(p)
    p.add_argument(
        "--check-timeout",
        type=_positive_seconds,
        default=60.0,
        help="seconds to wait for the refund's checks (sale, amounts, gateway)",
    )
    p.set_defaults(func=cmd_refund_request)
    for action in ("approve", "reject"):
        p = refund.add_parser(action, help=f"{action} a refund waiting for a decision")
        p.add_argument("id")
        p.add_argument("--comment", default="")
        p.add_argument("--by", help=argparse.SUPPRESS)
        p.add_argument("--role", help=argparse.SUPPRESS)
        _assertion_options(p)
        p.set_defaults(func=cmd_refund_decide, action=action)
    p = refund.add_parser("retry", help="try the failed step of a refund needing attention")
    p.add_argument("id")
    p.add_argument("--by", required=True, type=_name, help="who acts (kept in the audit trail)")
    p.add_argument("--comment", default="")
    p.set_defaults(func=cmd_refund_ops, action="retry")
    p = refund.add_parser(
        "resolved", help="record that a person did the failed step of a refund by hand"
    )
    p.add_argument("id")
    p.add_argument("--by", required=True, type=_name, help="who acts (kept in the audit trail)")
    p.add_argument("--comment", required=True, type=_comment, help="what was done, how")
    p.set_defaults(func=cmd_refund_ops, action="resolved_by_hand")
    p = refund.add_parser("list", help="refunds, from Temporal's visibility")
    p.add_argument(
        "--pending",
        action="store_true",
        help="only those waiting for a decision or needing attention",
    )
    p.add_argument("--limit", type=_positive_int, default=100)
    p.set_defaults(func=cmd_refund_list)
    p = refund.add_parser("show", help="one refund, with its audit trail")
    p.add_argument("id")
    p.set_defaults(func=cmd_refund_show)

    identity = sub.add_parser(
        "identity", help="keys, users and signed assertions for refund approvals"
    ).add_subparsers(dest="identity_command", required=True)
    p = identity.add_parser(
        "new-key", help="a new Ed25519 issuer key; prints its line for the trusted keys"
    )
    p.add_argument("--kid", required=True, help="the key's id (in every token's header)")
    p.add_argument("--out", required=True, help="the private key file to write (mode 0600)")
    p.set_defaults(func=cmd_identity_new_key)
    p = identity.add_parser("add-user", help="add or replace a user of the users file")
    p.add_argument("subject", help="the user's stable login id")
    p.add_argument("--name", required=True, type=_name, help="display name")
    p.add_argument("--role", action="append", required=True, type=_name, help="repeatable")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (else it is asked; none: no inbox login)",
    )
    p.add_argument("--no-password", action="store_true", help="a user who never logs in")
    p.set_defaults(func=cmd_identity_add_user)
    p = identity.add_parser(
        "assert", help="print a signed assertion (e.g. for the Web UI's signal dialog)"
    )
    p.add_argument("--refund", required=True)
    p.add_argument("--action", required=True, choices=("approve", "reject", "request"))
    p.set_defaults(func=cmd_identity_assert, assertion=None, assertion_file=None)

    # These import this module: loaded once it is complete.
    from workers import (
        cli_audit,
        cli_catalog,
        cli_customers,
        cli_inventory,
        cli_recon,
        cli_schedules,
        status,
    )

    cli_schedules.add_parsers(sub)
    cli_recon.add_parsers(sub)
    cli_audit.add_parsers(sub)
    cli_catalog.add_parsers(sub)
    cli_customers.add_parsers(sub)
    cli_inventory.add_parsers(sub)
    status.add_parser(sub)

    p = sub.add_parser(
        "codec-server", help="decrypt payloads for the Web UI (Temporal's remote codec protocol)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument(
        "--origin",
        action="append",
        help="a Web UI origin allowed by CORS (repeat; default http://localhost:8233 and "
        "http://127.0.0.1:8233)",
    )
    p.add_argument(
        "--allow-ui-without-token",
        action="store_true",
        help="let the allowed UI origins in without the bearer token (the demo; loopback only)",
    )
    p.set_defaults(func=cmd_codec_server)

    keys = sub.add_parser("keys", help="payload encryption keys").add_subparsers(
        dest="action", required=True
    )
    p = keys.add_parser(
        "new",
        help="print a new key line: prepend it to RETAILFLOW_ENCRYPTION_KEYS[_FILE], keep the "
        "old keys while histories they encrypted are retained",
    )
    p.add_argument("--kid", help="the key id (default: k + the UTC time)")
    p.set_defaults(func=cmd_keys_new)

    p = sub.add_parser("demo", help="run the demo on the embedded default")
    p.add_argument("--keep-running", action="store_true", help="leave everything up afterwards")
    p.add_argument("--per-store", type=int, default=60, help="sales per store")
    p.add_argument("--temporal-port", type=int, default=7233)
    p.add_argument("--ui-port", type=int, default=8233)
    p.add_argument("--odoo-port", type=int, default=8069)
    p.add_argument("--pos-port", type=int, default=8070)
    p.add_argument("--ingress-port", type=int, default=8080)
    p.add_argument("--gateway-port", type=int, default=8090)
    p.add_argument("--codec-port", type=int, default=8081, help="the demo's codec server")
    p.add_argument("--fault-rate", type=float, default=0.05, help="Odoo faults injected (0-1)")
    p.set_defaults(func=cmd_demo)
    return parser


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def _positive_int(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 100000")
    return int(text)


def run(argv: list[str] | None = None) -> int:
    """The CLI without the process exit: every error is one line on stderr and an exit code
    (see the module docstring); a traceback only with --debug."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO
        if args.verbose or args.command in ("worker", "ingress")
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
    except ValueError as e:
        print(f"retailflow: {e}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        code: int = asyncio.run(args.func(args, settings))
    except (CliError, EncryptionKeyError) as e:
        print(f"retailflow: {e}", file=sys.stderr)
        code = EXIT_REFUSED
    except Outcome as e:
        print(f"retailflow: {e}", file=sys.stderr)
        code = e.code
    except KeyboardInterrupt:
        code = 130
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        print(
            f"retailflow: unexpected error: {type(e).__name__}: {_first_line(e)}"
            + ("" if args.debug else " (run with --debug for details)"),
            file=sys.stderr,
        )
        code = EXIT_BUG
    return code


def main(argv: list[str] | None = None) -> None:
    code = run(argv)
    # Exit without interpreter finalization: temporalio's Rust threads can abort it
    # (sdk-python#300), turning a success into exit code 134.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
