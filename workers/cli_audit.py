"""`retailflow audit ...`: the hash-chained audit log (docs/security.md, "Audit trail").

* `audit collect`: run the AuditTrail collector now and wait for it (the `audit-trail`
  Schedule runs it every 15 minutes);
* `audit export --from D --to D [--out FILE] [--mask]`: the records of those days (UTC) as
  JSON Lines, each carrying the previous record's hash; `--mask` writes a copy for test, its
  actors and customer fields pseudonymised (RETAILFLOW_MASKING_KEY(_FILE), else a random key);
* `audit verify FILE`: exit 0 when the chain is intact, 1 naming the first bad line and why.

Not to be confused with workers/audit.py, the auditor's view of what Odoo holds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

import workers.cli as cli
from activities.audit_store import AuditStore
from domain.audit_log import canonical, mask_records, verify
from domain.masking import Masker
from workers.settings import Settings
from workflows.audit_trail import AUDIT_TRAIL_ID, AuditTrail, AuditTrailInput

MAX_EXPORT_DAYS = 366


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def masking_key(settings: Settings) -> bytes | None:
    """The configured masking key (RETAILFLOW_MASKING_KEY, or the file RETAILFLOW_MASKING_KEY_FILE
    names), or None for a random one."""
    if settings.masking_key is not None:
        key = settings.masking_key.get_secret_value().encode()
    elif settings.masking_key_file:
        path = Path(settings.masking_key_file)
        try:
            key = path.read_bytes().strip()
        except OSError as e:
            raise cli.CliError(
                f"RETAILFLOW_MASKING_KEY_FILE: cannot read {path}: {e.strerror}"
            ) from e
    else:
        return None
    if len(key) < 16:
        raise cli.CliError("RETAILFLOW_MASKING_KEY: at least 16 bytes")
    return key


async def cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    client = await cli._client(settings)
    # One by-hand run at a time: a second `collect` follows the one already going.
    handle = await client.start_workflow(
        AuditTrail.run,
        AuditTrailInput(scope=args.scope),
        id=f"{AUDIT_TRAIL_ID}-now",
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Audit trail collected by hand",
    )
    result = await handle.result()
    cursor = result.closed_since.isoformat() if result.closed_since else "-"
    print(
        f"recorded {result.events} audit events from {result.workflows} workflow histories "
        f"(closed workflows collected up to {cursor})"
    )
    return cli.EXIT_OK


def _store(settings: Settings) -> AuditStore:
    path = Path(settings.audit_db)
    if not path.is_file():
        raise cli.CliError(
            f"no audit log at {path} (RETAILFLOW_AUDIT_DB): the worker that runs AuditTrail "
            "writes it; `retailflow audit collect` fills it now"
        )
    return AuditStore(path)


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    first, last = args.first, args.last
    if last < first:
        raise cli.CliError(f"--to {last} is before --from {first}")
    if (last - first).days >= MAX_EXPORT_DAYS:
        raise cli.CliError(f"export at most {MAX_EXPORT_DAYS} days at a time")
    masker = Masker(masking_key(settings)) if args.mask else None
    store = _store(settings)
    try:
        start = datetime.combine(first, time(), tzinfo=UTC)
        end = datetime.combine(last, time(), tzinfo=UTC) + timedelta(days=1)
        records: Iterable[dict[str, Any]] = store.export(start, end)
        if masker is not None:
            records = mask_records(records, masker)
        with ExitStack() as stack:
            out: TextIO = sys.stdout
            if args.out:
                out = stack.enter_context(Path(args.out).open("w", encoding="utf-8"))
            n = 0
            for r in records:
                out.write(canonical(r) + "\n")
                n += 1
    except OSError as e:
        raise cli.CliError(f"--out {args.out}: cannot write: {e.strerror}") from e
    finally:
        store.close()
    what = "masked records" if masker else "records"
    where = f" to {args.out}" if args.out else ""
    print(f"exported {n} {what} of {first} to {last} (UTC){where}", file=sys.stderr)
    return cli.EXIT_OK


async def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    verdict = verify(cli._read_text(args.file).split("\n"))  # JSON Lines: split at \n only
    if not verdict.ok:
        raise cli.Outcome(f"{args.file}: {verdict.message()}", cli.EXIT_EXCEPTIONS)
    print(verdict.message())
    return cli.EXIT_OK


def add_parsers(sub: Any) -> None:
    """`audit collect|export|verify` under the main CLI's subcommands."""
    audit = sub.add_parser(
        "audit", help="the hash-chained audit log: collect, export, verify"
    ).add_subparsers(dest="audit_command", required=True)
    p = audit.add_parser("collect", help="fill the audit log from histories now, and wait")
    p.add_argument("--scope", default="", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_collect)
    p = audit.add_parser("export", help="the records of days FROM..TO (UTC) as JSON Lines")
    p.add_argument("--from", dest="first", required=True, type=_day, metavar="DAY")
    p.add_argument("--to", dest="last", required=True, type=_day, metavar="DAY")
    p.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    p.add_argument(
        "--mask", action="store_true", help="a copy for test: people and customers pseudonymised"
    )
    p.set_defaults(func=cmd_export)
    p = audit.add_parser("verify", help="check an export's hash chain")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_verify)
