"""Throughput of the simulator: commands accepted, applied and confirmed per second.

``python -m simulators.pos.loadtest --stores 2000 --commands 10000 --concurrency 100``
starts a platform (in this process, or ``--url`` of a running one with ``apply_delay_ms``
already 0), a local receiver for the confirmations, and ``--concurrency`` threads sending
commands round-robin over the fleet; it reports when the last confirmation arrived.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from .platform import PosPlatform


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.done = threading.Event()
        self.target = 0


def _receiver(counter: _Counter) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with counter.lock:
                counter.count += 1
                if counter.count >= counter.target:
                    counter.done.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def run(
    url: str, store_ids: list[str], commands: int, concurrency: int, run_id: str
) -> dict[str, Any]:
    counter = _Counter()
    counter.target = commands
    receiver = _receiver(counter)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/confirmations"
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(concurrency)]
    refused: list[int] = []
    start_gate = threading.Barrier(concurrency + 1)

    def send(worker: int) -> None:
        client = clients[worker]
        start_gate.wait()
        for n in range(worker, commands, concurrency):
            store_id = store_ids[n % len(store_ids)]
            body = {
                "command_id": f"{run_id}-{n}",
                "changes": [{"sku": "MILK-1L", "price": f"1.{n % 100:02d}", "currency": "USD"}],
                "effective_at": "2025-03-01T06:00:00+00:00",
                "callback_url": callback,
            }
            response = client.post(f"/v1/stores/{store_id}/price-commands", json=body)
            if response.status_code != 202:
                refused.append(response.status_code)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(concurrency)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    accepted_s = time.perf_counter() - started
    counter.done.wait(timeout=120)
    confirmed_s = time.perf_counter() - started
    for client in clients:
        client.close()
    receiver.shutdown()
    receiver.server_close()
    return {
        "stores": len(store_ids),
        "commands": commands,
        "concurrency": concurrency,
        "not_accepted": len(refused),
        "confirmed": counter.count,
        "accept_seconds": round(accepted_s, 3),
        "confirm_seconds": round(confirmed_s, 3),
        "commands_per_second": round(counter.count / confirmed_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.pos.loadtest")
    parser.add_argument("--stores", type=int, default=2000)
    parser.add_argument("--commands", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--db", default=None)
    parser.add_argument("--url", default=None, help="a running platform instead of our own")
    args = parser.parse_args(argv)
    platform = None
    if args.url:
        url = args.url.rstrip("/")
        with httpx.Client(base_url=url) as client:
            store_ids = [s["store_id"] for s in client.get("/v1/stores").json()["stores"]]
    else:
        platform = PosPlatform(stores=args.stores, db_path=args.db, seed=1)
        platform.set_fleet(apply_delay_ms=0)
        url = platform.start()
        store_ids = platform.store_ids()
    try:
        result = run(url, store_ids, args.commands, args.concurrency, f"lt{int(time.time())}")
        if platform is not None:
            result["platform_stats"] = platform.stats()
            result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        if platform is not None:
            platform.stop()
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0 if result["confirmed"] == args.commands and not result["not_accepted"] else 1


if __name__ == "__main__":
    sys.exit(main())
