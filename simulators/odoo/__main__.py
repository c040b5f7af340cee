"""Command line: ``python -m simulators.odoo --port 8069 --db var/odoo.sqlite [faults]``."""

from __future__ import annotations

import argparse
import sys

from simulators.serving import add_server_arguments, comma_list, prepare, serve

from .concurrency import MODES, Concurrency
from .cost import MODELS as COST_MODELS
from .emulator import OdooEmulator
from .faults import FAULT_KINDS, Faults


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition(":") if ":" in item else item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected key:value, got {item!r}")
        out[key] = value
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.odoo", description="Odoo 17 JSON-RPC emulator"
    )
    add_server_arguments(parser, port=8069)
    parser.add_argument("--dbname", default="retail", help="database name clients log into")
    parser.add_argument(
        "--list-dbs",
        type=comma_list,
        default=None,
        help="names db.list returns (default: --dbname)",
    )
    parser.add_argument(
        "--users", type=_pairs, default={"admin": "admin"}, help="login:password,..."
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument(
        "--faults", type=comma_list, default=FAULT_KINDS, help=f"subset of {','.join(FAULT_KINDS)}"
    )
    parser.add_argument(
        "--fault-mix", type=_pairs, default=None, help="kind=weight,... (overrides --faults)"
    )
    parser.add_argument(
        "--fault-methods",
        type=comma_list,
        default=None,
        help="only these methods, e.g. create,action_post",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--concurrency",
        choices=MODES,
        default="serial",
        help="serial: one call at a time; postgres: calls interleave, commits land out of id "
        "order and colliding writers fail with a serialization failure",
    )
    parser.add_argument(
        "--commit-jitter-ms",
        type=float,
        default=20.0,
        help="postgres mode: a commit becomes visible after up to this delay",
    )
    parser.add_argument(
        "--conflict-delay-ms",
        type=float,
        default=10.0,
        help="postgres mode: delay after a lost write conflict",
    )
    parser.add_argument(
        "--conflict-retries",
        type=int,
        default=0,
        help="postgres mode: run a call that lost a write conflict again this many times "
        "before answering the serialization failure (Odoo: 5)",
    )
    parser.add_argument(
        "--cost-model",
        choices=("none", *COST_MODELS),
        default="none",
        help="odoo17: each call uses the server time a real Odoo 17 (workers=0) spends on it "
        "(CPU under the GIL, shared by concurrent calls); none: answer at once",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prepare(args)
    faults = Faults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        kinds=args.faults,
        fault_mix={k: float(v) for k, v in args.fault_mix.items()} if args.fault_mix else None,
        methods=args.fault_methods,
        seed=args.seed,
    )
    try:
        concurrency = Concurrency(
            mode=args.concurrency,
            commit_jitter_ms=args.commit_jitter_ms,
            conflict_delay_ms=args.conflict_delay_ms,
            retries=args.conflict_retries,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"python -m simulators.odoo: {exc}", file=sys.stderr)
        return 2
    emulator = OdooEmulator(
        db_path=args.db,
        dbname=args.dbname,
        users=args.users,
        dbs=args.list_dbs,
        faults=faults,
        concurrency=concurrency,
        cost_model=None if args.cost_model == "none" else args.cost_model,
    )
    return serve(
        emulator,
        args.host,
        args.port,
        "simulators.odoo",
        "Odoo 17 emulator on http://%s:%s db=%s faults=%s concurrency=%s cost_model=%s",
        args.host,
        args.port,
        args.dbname,
        faults.to_dict(),
        concurrency.to_dict(),
        args.cost_model,
    )


if __name__ == "__main__":
    sys.exit(main())
