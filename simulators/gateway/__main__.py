"""Command line: ``python -m simulators.gateway --port 8090 --db var/gateway.sqlite``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from .faults import FAULT_KINDS, GatewayFaults
from .gateway import Gateway


def _list(text: str) -> tuple[str, ...]:
    return tuple(filter(None, (part.strip() for part in text.split(","))))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.gateway", description="Stripe-compatible gateway simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--db", default=None, help="SQLite file (kept between runs); memory if omitted"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument(
        "--faults", type=_list, default=FAULT_KINDS, help=f"subset of {','.join(FAULT_KINDS)}"
    )
    parser.add_argument("--fault-methods", type=_list, default=None, help="e.g. POST")
    parser.add_argument("--fault-paths", type=_list, default=None, help="e.g. /v1/refunds")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.db:
        os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    faults = GatewayFaults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        kinds=args.faults,
        methods=args.fault_methods,
        paths=args.fault_paths,
        seed=args.seed,
    )
    gateway = Gateway(db_path=args.db, seed=args.seed, faults=faults)

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    logging.getLogger("simulators.gateway").info(
        "Stripe gateway simulator on http://%s:%s faults=%s", args.host, args.port, faults.to_dict()
    )
    try:
        gateway.serve_forever(args.host, args.port)
    except KeyboardInterrupt:
        pass
    finally:
        gateway.ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
