"""Command line: ``python -m simulators.pos --stores 80 --port 8070 [--db var/pos.sqlite]``."""

from __future__ import annotations

import argparse
import os
import sys

from simulators.serving import add_server_arguments, prepare, serve

from .platform import PosPlatform


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.pos", description="POS platform simulator: a fleet of stores"
    )
    parser.add_argument("--stores", type=int, default=80, help="fleet size (S001..)")
    add_server_arguments(parser, port=8070)
    parser.add_argument(
        "--secret",
        default=os.environ.get("POS_SECRET", "s3cret"),
        help="shared secret that signs the confirmations (default $POS_SECRET or s3cret)",
    )
    parser.add_argument("--platform-id", default="pos-main")
    parser.add_argument("--seed", type=int, default=None, help="makes random rejections repeat")
    parser.add_argument("--apply-delay-ms", type=float, default=None, help="for every store")
    parser.add_argument(
        "--confirmation-workers",
        type=int,
        default=16,
        help="confirmations sent at once (each store of a real fleet sends its own: a large "
        "fleet wants more)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.confirmation_workers < 1:
        parser.error("--confirmation-workers must be at least 1")
    if args.stores < 1:
        parser.error("--stores must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prepare(args)
    platform = PosPlatform(
        stores=args.stores,
        db_path=args.db,
        secret=args.secret,
        platform_id=args.platform_id,
        seed=args.seed,
        confirmation_workers=args.confirmation_workers,
    )
    if args.apply_delay_ms is not None:
        platform.set_fleet(apply_delay_ms=args.apply_delay_ms)
    return serve(
        platform,
        args.host,
        args.port,
        "simulators.pos",
        "POS platform %s: %d stores on http://%s:%s",
        args.platform_id,
        len(platform.store_ids()),
        args.host,
        args.port,
    )


if __name__ == "__main__":
    sys.exit(main())
