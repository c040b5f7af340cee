"""`make bench ARGS="--only spike"`: a sales spike of 5× the sustainable rate against the ingress.

What runs, as in production (each its own process): the bench's Temporal dev server, an Odoo
emulator with the `odoo17` cost model and PostgreSQL-like concurrency (`--odoo-concurrency`:
colliding writers, e.g. two pickings moving one product's quants, are run again 5 times, each
after `--odoo-conflict-delay-ms`, 3 s: a real Odoo answers its serialization failure 15-18 s
after the call), a POS simulator (idle here: the bench's clients play the POS platform that
sends the sales), one `retailflow worker` (metrics endpoint on), and `retailflow ingress` with
a callers file holding the bench's bearer token. Sales go over HTTP to
`POST /v1/sales?mode=per-sale` (per-sale: the ingress's backlog counts SalePosting workflows,
docs/observability.md "Back-pressure").

1. Sustainable rate (`--sustainable-rate`, or measured): a warm-up of `--warmup-sales` sales
   submitted at once straight to Temporal; the rate is how fast SalePosting workflows complete
   once the pipeline is full (from the 25th percentile of completions to the last).
2. The ingress starts with back-pressure sized from that rate R (printed and saved):
   backlog limit `ceil(--backlog-seconds × R)` sales Posting (default 20 s of work: a sale
   accepted at the limit is posted about 20 s later; at least 10), a store's limit 35 % of it
   (the hot store meets it), backlog counts cached `--backlog-cache-s` (2 s, so the backlog
   overshoots its limit by at most about 2 s of arrivals), and the caller's token bucket
   `rate_per_s` = 3 R, `burst` = 6 R (a platform may send bursts above what Odoo sustains;
   the backlog limit is what holds the line).
3. Spike: open-loop arrivals at `--spike-factor` × R for `--spike-seconds`, one sale each,
   about 10 % of arrivals resubmitting an earlier sale; four stores, one of them hot (40 %).
   Each store's POS queues its sales and sends them in order over `--senders-per-store` (2)
   connections (0: every sale on its own, each retrying by itself: a retry storm).
   A sender behaves like a POS: a 429 keeps the sale and sends it again after `Retry-After`
   (plus up to 0.5 s of jitter); a timeout, 5xx or dropped connection sends it again after
   1 s; 2xx (202 accepted, 200 duplicate) ends it, and so does another 4xx (counted as an
   error: the sale is then never accepted, and the "nothing lost" check fails).
4. After the spike the clients keep retrying until every sale is accepted, then the bench waits
   for the backlog to drain (no SalePosting running).

Every second: arrivals offered, HTTP attempts, accepted, shed, timeouts, other errors, the
ingress's answer latency p50/p99, the backlog (visibility: what the ingress reads), sales posted
(the emulator's counters), Odoo calls and errors (the emulator's stats), the worker's
`retailflow_odoo_concurrency_limit` and `retailflow_external_call_errors_total{system="odoo"}`.

Checks (any failure: printed, and `python -m bench` exits 1): nothing lost (every distinct
sale posted in Odoo), nothing duplicated (each exactly once, no draft left), shed rather than
timed out (429s seen, no client timeout, other errors under 0.1 % of attempts), Odoo errors
under 1 % of Odoo calls, backlog drained within `60 + 2 × backlog limit / R` seconds of the
last acceptance. Output: bench/out/spike.json and bench/out/spike.png.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUT = HERE / "out"
BIN = Path(sys.executable).parent

# A request unanswered after this long is a timeout (the ingress's own limit is 30 s).
CLIENT_TIMEOUT_S = 10.0
# Bounds of the checks.
MAX_TIMEOUTS = 0
MAX_OTHER_ERROR_SHARE = 0.001
MAX_ODOO_ERROR_SHARE = 0.01
DRAIN_BOUND_BASE_S = 60.0
STORE_WEIGHTS = (("SPK0", 0.4), ("SPK1", 0.2), ("SPK2", 0.2), ("SPK3", 0.2))
SALE_PREFIX = "POS:SPK"


# --- Pure parts: per-second aggregation and the checks (tests/unit/test_spike_bench.py) ---


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


OUTCOMES = ("offered", "attempts", "accepted", "duplicates", "shed", "timeouts", "errors")
SAMPLES = (
    "queued",
    "backlog",
    "running",
    "posted",
    "odoo_calls",
    "odoo_errors",
    "odoo_limit",
    "worker_odoo_errors",
)


@dataclass
class Second:
    t: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    latencies: list[float] = field(default_factory=list)
    samples: dict[str, float | None] = field(default_factory=dict)


class Series:
    """Events and samples of a run, by whole second since its start.

    ``count(at, kind)`` counts one of OUTCOMES in the second ``at`` falls in (``latency_s``
    goes to the second's percentiles); ``sample(at, **values)`` keeps the last value of each
    of SAMPLES read in that second. ``rows()``: one dict per second from 0 to the last one
    seen, gaps included (counts 0, samples carried forward from the previous second)."""

    def __init__(self) -> None:
        self._seconds: dict[int, Second] = {}

    def _at(self, at_s: float) -> Second:
        t = max(0, int(at_s))
        return self._seconds.setdefault(t, Second(t))

    def count(self, at_s: float, kind: str, latency_s: float | None = None) -> None:
        if kind not in OUTCOMES:
            raise ValueError(f"count: unknown kind {kind!r}")
        second = self._at(at_s)
        second.counts[kind] += 1
        if latency_s is not None:
            second.latencies.append(latency_s)

    def sample(self, at_s: float, **values: float | None) -> None:
        unknown = set(values) - set(SAMPLES)
        if unknown:
            raise ValueError(f"sample: unknown {sorted(unknown)}")
        self._at(at_s).samples.update(values)

    def rows(self) -> list[dict[str, Any]]:
        if not self._seconds:
            return []
        rows: list[dict[str, Any]] = []
        last: dict[str, float | None] = dict.fromkeys(SAMPLES)
        for t in range(max(self._seconds) + 1):
            second = self._seconds.get(t, Second(t))
            last = {**last, **second.samples}
            p50, p99 = percentile(second.latencies, 50), percentile(second.latencies, 99)
            rows.append(
                {
                    "t": t,
                    **second.counts,
                    "latency_p50_ms": None if p50 is None else round(p50 * 1000, 1),
                    "latency_p99_ms": None if p99 is None else round(p99 * 1000, 1),
                    **last,
                }
            )
        return rows

    def all_latencies(self) -> list[float]:
        return [x for s in self._seconds.values() for x in s.latencies]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def evaluate(summary: dict[str, Any]) -> list[Check]:
    """The spike's pass/fail checks, from its summary (keys as `summarise` makes them)."""
    keys: set[str] = set(summary["sale_keys"])
    posted: dict[str, int] = summary["posted_per_key"]
    missing = sorted(k for k in keys if posted.get(k, 0) == 0)
    unaccepted = summary["unique_sales"] - summary["sales_accepted"]
    twice = sorted(k for k, n in posted.items() if n > 1)
    strangers = sorted(k for k in posted if k not in keys)
    drafts = summary["draft_moves"]
    attempts = summary["attempts"]
    errors_bound = MAX_OTHER_ERROR_SHARE * attempts
    calls = summary["odoo_calls"]
    odoo_share = summary["odoo_errors"] / calls if calls else 0.0
    drain, bound = summary["drain_s"], summary["drain_bound_s"]
    return [
        Check(
            "nothing lost",
            not missing and unaccepted == 0,
            f"{len(keys) - len(missing)}/{len(keys)} distinct sales posted, "
            f"{unaccepted} never accepted" + (f"; missing e.g. {missing[:3]}" if missing else ""),
        ),
        Check(
            "nothing duplicated",
            not twice and not strangers and drafts == 0,
            f"{len(twice)} sales posted more than once, {len(strangers)} unknown keys, "
            f"{drafts} draft moves left" + (f"; e.g. {twice[:3]}" if twice else ""),
        ),
        Check(
            "shed with 429, not timeouts",
            summary["shed"] > 0
            and summary["timeouts"] <= MAX_TIMEOUTS
            and summary["errors"] <= errors_bound,
            f"{summary['shed']} shed (429), {summary['timeouts']} timeouts (bound "
            f"{MAX_TIMEOUTS}), {summary['errors']} other errors (bound {errors_bound:.1f}: "
            f"{MAX_OTHER_ERROR_SHARE:.1%} of {attempts} attempts)",
        ),
        Check(
            "Odoo error rate < 1 %",
            odoo_share < MAX_ODOO_ERROR_SHARE,
            f"{summary['odoo_errors']} errors in {calls} Odoo calls ({odoo_share:.2%})",
        ),
        Check(
            "backlog drained",
            drain is not None and drain <= bound,
            (f"in {drain:.0f} s" if drain is not None else "not drained")
            + f" after the last acceptance (bound {bound:.0f} s)",
        ),
    ]


def summarise(
    rows: list[dict[str, Any]],
    latencies: list[float],
    sale_keys: Iterable[str],
    sales_accepted: int,
    posted_per_key: dict[str, int],
    draft_moves: int,
    odoo: dict[str, int],
    drain_s: float | None,
    drain_bound_s: float,
    spike_seconds: int,
) -> dict[str, Any]:
    """Totals of a run's per-second rows, and what the checks need."""
    keys = sorted(set(sale_keys))
    total = {k: sum(int(r[k]) for r in rows) for k in OUTCOMES}
    spike = [r for r in rows if r["t"] < spike_seconds]
    backlogs = [r["backlog"] for r in rows if r["backlog"] is not None]
    limits = [r["odoo_limit"] for r in rows if r["odoo_limit"] is not None]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return {
        **total,
        "unique_sales": len(keys),
        "sale_keys": keys,
        "sales_accepted": sales_accepted,
        "posted_per_key": posted_per_key,
        "draft_moves": draft_moves,
        "odoo_calls": odoo["calls"],
        "odoo_errors": odoo["errors"],
        "odoo_serialization_failures": odoo.get("serialization_failures", 0),
        "spike_offered_per_s": sum(r["offered"] for r in spike) / max(1, spike_seconds),
        "spike_accepted_per_s": sum(r["accepted"] for r in spike) / max(1, spike_seconds),
        "spike_shed_per_s": sum(r["shed"] for r in spike) / max(1, spike_seconds),
        "latency_p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "latency_p99_ms": None if p99 is None else round(p99 * 1000, 1),
        "backlog_peak": max(backlogs) if backlogs else None,
        "odoo_limit_min": min(limits) if limits else None,
        "drain_s": drain_s,
        "drain_bound_s": drain_bound_s,
        "run_s": len(rows),
    }


def parse_metrics(text: str) -> tuple[float | None, dict[str, float]]:
    """(the Odoo concurrency limit, Odoo call errors by `error_class`) from a Prometheus
    exposition; the limit is None when the gauge is not there."""
    limit: float | None = None
    errors: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        head, _, number = line.rpartition(" ")
        name, _, labels = head.partition("{")
        try:
            value = float(number)
        except ValueError:
            continue
        if name == "retailflow_odoo_concurrency_limit":
            limit = value
        elif name == "retailflow_external_call_errors_total" and 'system="odoo"' in labels:
            kind = labels.partition('error_class="')[2].partition('"')[0] or "?"
            errors[kind] = errors.get(kind, 0.0) + value
    return limit, errors


def arrivals(
    unique: list[dict[str, Any]], duplicate_ratio: float, rng: random.Random
) -> list[dict[str, Any]]:
    """The offered stream: the unique sales in order, and about ``duplicate_ratio`` of the
    arrivals resubmitting an earlier sale (always after that sale's own arrival)."""
    n = len(unique)
    if n == 0:
        return []
    dups = round(n * duplicate_ratio / (1 - duplicate_ratio))
    timed: list[tuple[float, int, dict[str, Any]]] = [(i / n, 0, s) for i, s in enumerate(unique)]
    for _ in range(dups):
        j = rng.randrange(n)
        timed.append((rng.uniform(j / n, 1.0) + 1e-9, 1, unique[j]))
    timed.sort(key=lambda x: (x[0], x[1]))
    return [s for _, _, s in timed]


# --- The run ---


@dataclass
class Limits:
    sustainable_rate: float
    max_backlog: int
    max_store_backlog: int
    backlog_cache_s: float
    caller_rate_per_s: float
    caller_burst: int

    @classmethod
    def for_rate(cls, rate: float, backlog_seconds: float, cache_s: float) -> Limits:
        backlog = max(10, math.ceil(backlog_seconds * rate))
        return cls(
            sustainable_rate=rate,
            max_backlog=backlog,
            max_store_backlog=max(3, math.ceil(0.35 * backlog)),
            backlog_cache_s=cache_s,
            caller_rate_per_s=round(3 * rate, 2),
            caller_burst=max(1, math.ceil(6 * rate)),
        )

    @property
    def drain_bound_s(self) -> float:
        return DRAIN_BOUND_BASE_S + 2 * self.max_backlog / self.sustainable_rate


def make_sales(count: int, tag: str, rng: random.Random) -> list[dict[str, Any]]:
    from simulators.sales import make_sale

    stores = [s for s, _ in STORE_WEIGHTS]
    weights = [w for _, w in STORE_WEIGHTS]
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    return [
        make_sale(
            rng,
            rng.choices(stores, weights)[0],
            f"{tag}{i:06d}",
            at + timedelta(seconds=i),
        )
        for i in range(count)
    ]


class Procs:
    """The processes of the run, stopped in reverse order."""

    def __init__(self, workdir: Path) -> None:
        self.log = (workdir / "spike.log").open("wb")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=self.log)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        from workers.devserver import stop

        for proc in reversed(self.procs):
            stop(proc)
        self.log.close()


def write_callers(path: Path, token: str, limits: Limits | None) -> None:
    from workers.auth import token_sha256

    rate = (
        f"rate_per_s = {limits.caller_rate_per_s}\nburst = {limits.caller_burst}\n"
        if limits
        else ""
    )
    path.write_text(
        '[[callers]]\nid = "pos-spike"\nscopes = ["sales:write", "sales:read"]\n'
        f"{rate}[[callers.credentials]]\n"
        f'token_sha256 = "{token_sha256(token)}"\n'
    )


class Run:
    """One spike run's clients, sampler and counters."""

    def __init__(self, ingress: str, token: str, odoo_stats: str, metrics: str) -> None:
        import httpx

        self.ingress = ingress
        self.odoo_stats = odoo_stats
        self.metrics = metrics
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(CLIENT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )
        self.series = Series()
        self.t0 = time.monotonic()
        self.accepted: set[str] = set()
        self.last_accept_s = 0.0
        self.shed_reasons: dict[str, int] = {}
        self.rng = random.Random(7)
        self.worker_errors: dict[str, float] = {}
        self.refused: dict[str, str] = {}
        self.error_kinds: dict[str, int] = {}
        # Sales offered and not yet accepted (or refused): queued at the POS.
        self.queued = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def sender(self, queue: asyncio.Queue[tuple[dict[str, Any], str] | None]) -> None:
        """One of a store's senders: its sales in arrival order, one at a time (a sale that
        waits out a Retry-After holds the queue behind it, as a store's POS does)."""
        while (item := await queue.get()) is not None:
            await self.deliver(*item)

    async def deliver(self, sale: dict[str, Any], key: str) -> None:
        """Like a POS: send until a 2xx; after a 429 wait Retry-After, after a failure 1 s."""
        try:
            await self._deliver(sale, key)
        finally:
            self.queued -= 1

    async def _deliver(self, sale: dict[str, Any], key: str) -> None:
        import httpx

        body = json.dumps(sale).encode()
        url = f"{self.ingress}/v1/sales?mode=per-sale"
        while True:
            self.series.count(self.now(), "attempts")
            sent = time.monotonic()
            wait = 1.0
            try:
                answer = await self.http.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.TimeoutException:
                self.series.count(self.now(), "timeouts")
            except httpx.HTTPError as e:
                self.series.count(self.now(), "errors")
                self._error(type(e).__name__)
            else:
                latency = time.monotonic() - sent
                at = self.now()
                if answer.status_code in (200, 202):
                    self.series.count(at, "accepted", latency)
                    if answer.json().get("status") == "duplicate":
                        self.series.count(at, "duplicates")
                    self.accepted.add(key)
                    self.last_accept_s = max(self.last_accept_s, at)
                    return
                if answer.status_code == 429:
                    self.series.count(at, "shed", latency)
                    reason = str(answer.json().get("error", ""))
                    kind = "caller rate" if reason.startswith("caller ") else "backlog"
                    if " of store " in reason:
                        kind = "store backlog"
                    self.shed_reasons[kind] = self.shed_reasons.get(kind, 0) + 1
                    try:
                        wait = float(answer.headers.get("Retry-After", "1"))
                    except ValueError:
                        wait = 1.0
                    wait += self.rng.uniform(0, 0.5)
                else:
                    self.series.count(at, "errors", latency)
                    self._error(f"HTTP {answer.status_code}")
                    if answer.status_code < 500:
                        # Refused (4xx): sending it again would not help; the sale stays
                        # unaccepted and the "nothing lost" check says so.
                        self.refused[key] = f"{answer.status_code} {answer.text[:200]}"
                        return
            await asyncio.sleep(wait)

    def _error(self, kind: str) -> None:
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    async def sample(self, count_posting: Any, count_running: Any) -> None:
        """One reading of every sampled figure; what cannot be read is left out."""
        values: dict[str, float | None] = {"queued": self.queued}
        try:
            values["backlog"] = await count_posting()
            values["running"] = await count_running()
        except Exception:  # a slow visibility read: the next second tries again
            pass
        try:
            stats = (await self.http.get(self.odoo_stats)).json()
            values["posted"] = stats.get("work", {}).get("post account.move", 0)
            values["odoo_calls"] = stats["calls"]
            values["odoo_errors"] = stats["errors"]
        except Exception:
            pass
        try:
            limit, errors = parse_metrics((await self.http.get(self.metrics)).text)
            values["odoo_limit"] = limit
            values["worker_odoo_errors"] = sum(errors.values())
            self.worker_errors = errors
        except Exception:
            pass
        self.series.sample(self.now(), **values)


async def measure_rate(client: Any, settings: Any, n: int, tag: str) -> float:
    """Sales per second SalePosting completes once the pipeline is full: `n` sales submitted
    at once; the rate from the completion of the first quarter of them to the last."""
    from workers.submit import Mode, submit_many

    done_q = f'WorkflowType = "SalePosting" AND ExecutionStatus = "Completed" AND StoreId = "{tag}"'
    sales = [
        {**s, "store_id": tag}
        for s in make_sales(n, f"{tag}-", random.Random(11))  # one store of its own
    ]
    await submit_many(client, settings, sales, Mode.PER_SALE, "bench-warmup", concurrency=64)
    quarter = max(1, n // 4)
    start: tuple[float, int] | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = (await client.count_workflows(done_q)).count
        if start is None and done >= quarter:
            start = (time.monotonic(), done)
        if done >= n and start is not None:
            elapsed = time.monotonic() - start[0]
            return (n - start[1]) / elapsed if elapsed > 0 else float(n)
        await asyncio.sleep(0.25)
    raise RuntimeError(f"warm-up: {n} sales not posted within 600 s")


async def run_spike(
    temporal_address: str, workdir: Path, cost_model: str, args: argparse.Namespace
) -> dict[str, Any]:
    import odoorpc

    from activities.odoo.client import OdooClient, OdooSettings
    from domain.posting import PostingProfile
    from domain.sale import parse_sale
    from simulators.sales import seed_catalogue
    from workers.audit import read_books
    from workers.backpressure import POSTING_QUERY
    from workers.client import connect
    from workers.devserver import free_port, wait_for_port
    from workers.settings import Settings, TemporalSettings

    odoo_port, pos_port, ingress_port, metrics_port = (free_port() for _ in range(4))
    procs = Procs(workdir)
    try:
        odoo_argv = [
            sys.executable,
            "-m",
            "simulators.odoo",
            "--port",
            str(odoo_port),
            "--db",
            str(workdir / "odoo-spike.sqlite"),
            "--cost-model",
            cost_model,
            "--concurrency",
            args.odoo_concurrency,
            "--log-level",
            "WARNING",
        ]
        if args.odoo_concurrency == "postgres":
            odoo_argv += [
                "--conflict-retries",
                "5",
                "--conflict-delay-ms",
                str(args.odoo_conflict_delay_ms),
                "--seed",
                "1",
            ]
        odoo = procs.start(odoo_argv)
        wait_for_port(odoo_port, odoo, "the Odoo emulator")
        rpc = odoorpc.ODOO("127.0.0.1", port=odoo_port, timeout=600)
        rpc.login("retail", "admin", "admin")
        seed_catalogue(rpc, on_hand=1_000_000)
        pos = procs.start(
            [
                sys.executable,
                "-m",
                "simulators.pos",
                "--stores",
                "4",
                "--port",
                str(pos_port),
                "--secret",
                "spike-secret",
                "--log-level",
                "WARNING",
            ]
        )
        wait_for_port(pos_port, pos, "the POS simulator")
        settings = Settings(
            task_queue="bench-spike",
            odoo_url=f"http://127.0.0.1:{odoo_port}",
            pos_url=f"http://127.0.0.1:{pos_port}",
            temporal=TemporalSettings(address=temporal_address),
        )
        callers = workdir / "callers.toml"
        token = "spike-" + os.urandom(16).hex()
        write_callers(callers, token, None)
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_address,
            "RETAILFLOW_TASK_QUEUE": settings.task_queue,
            "RETAILFLOW_ODOO_URL": settings.odoo_url,
            "RETAILFLOW_POS_URL": settings.pos_url or "",
            "RETAILFLOW_POS_SECRETS": json.dumps({"pos-main": "spike-secret"}),
            "RETAILFLOW_METRICS_PORT": str(metrics_port),
            "RETAILFLOW_CALLERS_FILE": str(callers),
            "RETAILFLOW_INGRESS_PORT": str(ingress_port),
        }
        worker = procs.start([str(BIN / "retailflow"), "worker"], env)
        wait_for_port(metrics_port, worker, "the worker's metrics endpoint")
        client = await connect(settings.temporal)

        # 1. The sustainable rate (this also warms the worker's Odoo sessions and caches).
        if args.sustainable_rate:
            rate = float(args.sustainable_rate)
            print(f"spike    sustainable rate {rate:.2f} sales/s (given)", flush=True)
        else:
            print(f"spike    warm-up: {args.warmup_sales} sales at once ...", flush=True)
            rate = await measure_rate(client, settings, args.warmup_sales, "WARM")
            print(f"spike    sustainable rate {rate:.2f} sales/s (measured)", flush=True)
        limits = Limits.for_rate(rate, args.backlog_seconds, args.backlog_cache_s)
        write_callers(callers, token, limits)

        # 2. The ingress with its back-pressure limits.
        ingress = procs.start(
            [str(BIN / "retailflow"), "ingress"],
            {
                **env,
                "RETAILFLOW_INGRESS_MAX_BACKLOG": str(limits.max_backlog),
                "RETAILFLOW_INGRESS_MAX_STORE_BACKLOG": str(limits.max_store_backlog),
                "RETAILFLOW_INGRESS_BACKLOG_CACHE_S": str(limits.backlog_cache_s),
            },
        )
        wait_for_port(ingress_port, ingress, "the ingress")
        print(f"spike    limits: {json.dumps(asdict(limits))}", flush=True)
        urllib_reset(odoo_port)
        before = await run_stats(odoo_port, metrics_port)

        offered_rate = args.spike_factor * rate
        unique_n = max(1, round(offered_rate * args.spike_seconds * (1 - args.duplicate_ratio)))
        rng = random.Random(5)
        unique = make_sales(unique_n, "T", rng)
        stream = arrivals(unique, args.duplicate_ratio, rng)
        keys = {id(s): parse_sale(s).key for s in unique}
        run = Run(
            f"http://127.0.0.1:{ingress_port}",
            token,
            f"http://127.0.0.1:{odoo_port}/_emulator/stats",
            f"http://127.0.0.1:{metrics_port}/metrics",
        )

        async def count(query: str) -> int:
            return int((await client.count_workflows(query)).count)

        running_q = 'WorkflowType = "SalePosting" AND ExecutionStatus = "Running"'
        stop_sampling = asyncio.Event()

        async def sampler() -> None:
            tick = 0
            while not stop_sampling.is_set():
                await run.sample(lambda: count(POSTING_QUERY), lambda: count(running_q))
                tick += 1
                delay = run.t0 + tick - time.monotonic()
                with_timeout = max(0.0, delay)
                try:
                    await asyncio.wait_for(stop_sampling.wait(), with_timeout)
                except TimeoutError:
                    pass

        # 3. The spike: open-loop arrivals.
        print(
            f"spike    {len(stream)} arrivals ({unique_n} distinct sales) at "
            f"{offered_rate:.1f}/s for {args.spike_seconds} s ...",
            flush=True,
        )
        run.t0 = time.monotonic()
        sampling = asyncio.create_task(sampler())
        deliveries: list[asyncio.Task[None]] = []
        queues: dict[str, asyncio.Queue[tuple[dict[str, Any], str] | None]] = {}
        if args.senders_per_store:
            for store, _ in STORE_WEIGHTS:
                queues[store] = asyncio.Queue()
                deliveries += [
                    asyncio.create_task(run.sender(queues[store]))
                    for _ in range(args.senders_per_store)
                ]
        for i, sale in enumerate(stream):
            delay = run.t0 + i / offered_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            run.series.count(run.now(), "offered")
            run.queued += 1
            if queues:
                queues[sale["store_id"]].put_nowait((sale, keys[id(sale)]))
            else:
                deliveries.append(asyncio.create_task(run.deliver(sale, keys[id(sale)])))
        for queue in queues.values():
            for _ in range(args.senders_per_store):
                queue.put_nowait(None)  # each sender stops once its store's queue is empty
        spike_end = run.now()
        print(f"spike    offered in {spike_end:.1f} s; retrying what was shed ...", flush=True)
        give_up = time.monotonic() + args.max_wait_s
        _, pending = await asyncio.wait(deliveries, timeout=args.max_wait_s)
        for task in pending:
            task.cancel()
        all_in = run.now()
        print(
            f"spike    {len(run.accepted)}/{unique_n} sales accepted at {all_in:.0f} s; "
            "draining ...",
            flush=True,
        )
        drain_s: float | None = None
        while time.monotonic() < give_up:
            try:
                if await count(running_q) == 0:
                    drain_s = run.now() - run.last_accept_s
                    break
            except Exception:  # a slow visibility read: try again
                pass
            await asyncio.sleep(1)
        await asyncio.sleep(1.5)  # one more sample after the drain
        stop_sampling.set()
        await sampling
        books = read_books(
            OdooClient(OdooSettings(url=settings.odoo_url)), PostingProfile(), SALE_PREFIX
        )
        after = await run_stats(odoo_port, metrics_port)
        await run.http.aclose()
        rows = run.series.rows()
        summary = summarise(
            rows,
            run.series.all_latencies(),
            keys.values(),
            len(run.accepted),
            books.posted_per_key,
            books.draft_moves,
            {
                "calls": int(after["calls"]),
                "errors": int(after["errors"]),
                "serialization_failures": int(after["serialization_failures"])
                - int(before["serialization_failures"]),
            },
            drain_s,
            limits.drain_bound_s,
            args.spike_seconds,
        )
        checks = evaluate(summary)
        summary["shed_reasons"] = run.shed_reasons
        summary["refused"] = dict(list(run.refused.items())[:20])
        summary["error_kinds"] = run.error_kinds
        summary["all_accepted_s"] = all_in
        # The worker's own count of failed Odoo calls in the run, by class.
        summary["worker_odoo_errors"] = {
            k: v - before["worker_errors"].get(k, 0.0)
            for k, v in after["worker_errors"].items()
            if v - before["worker_errors"].get(k, 0.0)
        }
        summary["odoo_rpcs_by_method"] = after["by_method"]
        result = {
            "cost_model": cost_model,
            "odoo_concurrency": args.odoo_concurrency,
            "spike_seconds": args.spike_seconds,
            "spike_factor": args.spike_factor,
            "sustainable_rate": rate,
            "sustainable_rate_measured": not args.sustainable_rate,
            "limits": asdict(limits),
            "summary": {
                k: v for k, v in summary.items() if k not in ("sale_keys", "posted_per_key")
            },
            "checks": [asdict(c) for c in checks],
            "passed": all(c.ok for c in checks),
            "series": rows,
        }
    finally:
        procs.stop()
    OUT.mkdir(exist_ok=True)
    (OUT / "spike.json").write_text(json.dumps(result, indent=2))
    plot(result, OUT / "spike.png")
    print_summary(result)
    return result


async def run_stats(odoo_port: int, metrics_port: int) -> dict[str, Any]:
    """The emulator's stats and the worker's Odoo error counts by class, now."""
    import httpx

    async with httpx.AsyncClient(timeout=30) as http:
        stats: dict[str, Any] = (
            await http.get(f"http://127.0.0.1:{odoo_port}/_emulator/stats")
        ).json()
        _, errors = parse_metrics((await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text)
    return {**stats, "worker_errors": errors}


def urllib_reset(port: int) -> None:
    """Zero the emulator's counters: the run's figures start here (after the warm-up)."""
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/_emulator/stats", method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as answer:
        answer.read()


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["series"]
    t = [r["t"] for r in rows]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    ax1.plot(t, [r["offered"] for r in rows], label="offered (new arrivals)", color="tab:gray")
    ax1.plot(t, [r["attempts"] for r in rows], label="attempts (with retries)", color="tab:blue")
    ax1.plot(t, [r["accepted"] for r in rows], label="accepted (2xx)", color="tab:green")
    ax1.plot(t, [r["shed"] for r in rows], label="shed (429)", color="tab:orange")
    ax1.plot(t, [r["timeouts"] + r["errors"] for r in rows], label="timeouts+errors", color="red")
    ax1.set_ylabel("requests / s")
    ax1.legend(loc="upper right", fontsize=8)
    ax1.set_title(
        f"Spike: {result['spike_factor']:g}× the sustainable "
        f"{result['sustainable_rate']:.2f} sales/s for {result['spike_seconds']} s "
        f"(Odoo emulator, {result['cost_model']} cost model)"
    )
    ax2.plot(t, [r["backlog"] for r in rows], label="backlog (sales Posting)", color="tab:purple")
    ax2.plot(t, [r["queued"] for r in rows], label="queued at the POS", color="tab:brown")
    ax2.axhline(
        result["limits"]["max_backlog"], ls=":", color="tab:purple", label="ingress backlog limit"
    )
    ax2.set_ylabel("sales")
    ax2b = ax2.twinx()
    ax2b.plot(t, [r["posted"] for r in rows], label="posted in Odoo (cumulative)", color="black")
    ax2b.set_ylabel("posted")
    lines = ax2.get_legend_handles_labels()
    more = ax2b.get_legend_handles_labels()
    ax2.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    ax3.step(t, [r["odoo_limit"] for r in rows], where="post", label="Odoo concurrency limit")
    errs = [r["odoo_errors"] for r in rows]
    per_s = [0] + [max(0, (b or 0) - (a or 0)) for a, b in itertools.pairwise(errs)]
    ax3.bar(t, per_s, color="red", alpha=0.5, label="Odoo errors / s")
    ax3.set_ylabel("slots / errors")
    ax3.set_xlabel("seconds since the spike started")
    ax3.legend(loc="upper right", fontsize=8)
    for ax in (ax1, ax2, ax3):
        ax.axvspan(0, result["spike_seconds"], color="tab:orange", alpha=0.06)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_summary(result: dict[str, Any]) -> None:
    s = result["summary"]
    lim = result["limits"]
    print(
        f"\nSpike: {result['spike_factor']:g}× {result['sustainable_rate']:.2f} sales/s for "
        f"{result['spike_seconds']} s; limits: backlog {lim['max_backlog']} (store "
        f"{lim['max_store_backlog']}, cache {lim['backlog_cache_s']:g} s), caller "
        f"{lim['caller_rate_per_s']:g}/s burst {lim['caller_burst']}"
    )
    print("| figure | value |")
    print("| --- | --- |")
    figures = [
        ("distinct sales / arrivals", f"{s['unique_sales']} / {s['offered']}"),
        ("offered during the spike", f"{s['spike_offered_per_s']:.1f}/s"),
        ("accepted during the spike", f"{s['spike_accepted_per_s']:.1f}/s"),
        ("shed during the spike", f"{s['spike_shed_per_s']:.1f}/s"),
        ("HTTP attempts / accepted / shed", f"{s['attempts']} / {s['accepted']} / {s['shed']}"),
        ("shed by reason", ", ".join(f"{k} {v}" for k, v in sorted(s["shed_reasons"].items()))),
        ("duplicates absorbed (200)", str(s["duplicates"])),
        (
            "timeouts / other errors",
            f"{s['timeouts']} / {s['errors']}"
            + "".join(f", {k} {v}" for k, v in sorted(s["error_kinds"].items())),
        ),
        ("ingress latency p50 / p99", f"{s['latency_p50_ms']} ms / {s['latency_p99_ms']} ms"),
        ("backlog peak", str(s["backlog_peak"])),
        ("Odoo limit, lowest", str(s["odoo_limit_min"])),
        (
            "Odoo calls / errors (serialization)",
            f"{s['odoo_calls']} / {s['odoo_errors']} ({s['odoo_serialization_failures']})",
        ),
        (
            "worker's failed Odoo calls by class",
            ", ".join(f"{k} {v:g}" for k, v in sorted(s["worker_odoo_errors"].items())) or "0",
        ),
        ("every sale accepted at", f"{s['all_accepted_s']:.0f} s"),
        (
            "drained after the last acceptance",
            "no" if s["drain_s"] is None else f"{s['drain_s']:.0f} s",
        ),
    ]
    for name, value in figures:
        print(f"| {name} | {value} |")
    print()
    for c in result["checks"]:
        print(f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}")
    print(
        f"\nbench/out/spike.json, bench/out/spike.png: {'passed' if result['passed'] else 'FAILED'}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spike-seconds", type=int, default=60)
    parser.add_argument("--spike-factor", type=float, default=5.0)
    parser.add_argument(
        "--sustainable-rate",
        type=float,
        default=None,
        help="sales/s the pipeline posts (default: measured in a warm-up)",
    )
    parser.add_argument("--warmup-sales", type=int, default=40, help="sales of the warm-up")
    parser.add_argument(
        "--backlog-seconds",
        type=float,
        default=20.0,
        help="the ingress's backlog limit, in seconds of posting at the sustainable rate",
    )
    parser.add_argument("--backlog-cache-s", type=float, default=2.0)
    parser.add_argument("--duplicate-ratio", type=float, default=0.1)
    parser.add_argument(
        "--senders-per-store",
        type=int,
        default=2,
        help="a store's POS sends its queued sales through this many connections, each in "
        "order; 0: every sale on its own (a retry storm: each waits out its own Retry-After)",
    )
    parser.add_argument(
        "--odoo-concurrency",
        choices=("postgres", "serial"),
        default="postgres",
        help="the emulator's concurrency (postgres: as a real Odoo, serialization failures)",
    )
    parser.add_argument(
        "--odoo-conflict-delay-ms",
        type=float,
        default=3000.0,
        help="postgres: the pause before each of Odoo's 5 retries of a serialization failure "
        "(Odoo sleeps a random 0..2^n s: a failure is answered 15-18 s after the call)",
    )
    parser.add_argument(
        "--max-wait-s", type=float, default=1800, help="give up waiting for acceptance/drain"
    )
