"""Command line: ``python -m simulators.odoo --port 8069 --db var/odoo.sqlite [faults]``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

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


def _list(text: str) -> tuple[str, ...]:
    return tuple(filter(None, (part.strip() for part in text.split(","))))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.odoo", description="Odoo 17 JSON-RPC emulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8069)
    parser.add_argument(
        "--db", default=None, help="SQLite file (kept between runs); memory if omitted"
    )
    parser.add_argument("--dbname", default="retail", help="database name clients log into")
    parser.add_argument(
        "--list-dbs", type=_list, default=None, help="names db.list returns (default: --dbname)"
    )
    parser.add_argument(
        "--users", type=_pairs, default={"admin": "admin"}, help="login:password,..."
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument(
        "--faults", type=_list, default=FAULT_KINDS, help=f"subset of {','.join(FAULT_KINDS)}"
    )
    parser.add_argument(
        "--fault-mix", type=_pairs, default=None, help="kind=weight,... (overrides --faults)"
    )
    parser.add_argument(
        "--fault-methods",
        type=_list,
        default=None,
        help="only these methods, e.g. create,action_post",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.db:
        os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    faults = Faults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        kinds=args.faults,
        fault_mix={k: float(v) for k, v in args.fault_mix.items()} if args.fault_mix else None,
        methods=args.fault_methods,
        seed=args.seed,
    )
    emulator = OdooEmulator(
        db_path=args.db, dbname=args.dbname, users=args.users, dbs=args.list_dbs, faults=faults
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    logging.getLogger("simulators.odoo").info(
        "Odoo 17 emulator on http://%s:%s db=%s faults=%s",
        args.host,
        args.port,
        args.dbname,
        faults.to_dict(),
    )
    try:
        emulator.serve_forever(args.host, args.port)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
