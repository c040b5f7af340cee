"""Command line: ``python -m simulators.gateway --port 8090 --db var/gateway.sqlite``."""

from __future__ import annotations

import argparse
import sys

from simulators.serving import add_server_arguments, comma_list, prepare, serve

from .faults import FAULT_KINDS, GatewayFaults
from .gateway import Gateway


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.gateway", description="Stripe-compatible gateway simulator"
    )
    add_server_arguments(parser, port=8090)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument(
        "--faults", type=comma_list, default=FAULT_KINDS, help=f"subset of {','.join(FAULT_KINDS)}"
    )
    parser.add_argument("--fault-methods", type=comma_list, default=None, help="e.g. POST")
    parser.add_argument("--fault-paths", type=comma_list, default=None, help="e.g. /v1/refunds")
    parser.add_argument(
        "--idempotency-ttl-s",
        type=float,
        default=24 * 3600,
        help="how long idempotency keys are kept (Stripe: 24 h)",
    )
    parser.add_argument("--webhook-url", default=None, help="where to POST events")
    parser.add_argument("--webhook-secret", default="whsec_retailflow")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prepare(args)
    faults = GatewayFaults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        kinds=args.faults,
        methods=args.fault_methods,
        paths=args.fault_paths,
        seed=args.seed,
    )
    gateway = Gateway(
        db_path=args.db,
        seed=args.seed,
        faults=faults,
        idempotency_ttl_s=args.idempotency_ttl_s,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    return serve(
        gateway,
        args.host,
        args.port,
        "simulators.gateway",
        "Stripe gateway simulator on http://%s:%s faults=%s",
        args.host,
        args.port,
        faults.to_dict(),
    )


if __name__ == "__main__":
    sys.exit(main())
