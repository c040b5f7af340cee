"""The spike bench's pure parts: per-second aggregation, the checks, the metrics it scrapes,
the offered stream (bench/spike.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bench.spike import (
    Limits,
    Series,
    arrivals,
    evaluate,
    parse_metrics,
    percentile,
    summarise,
)


def test_percentile_is_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_series_counts_by_second_fills_gaps_and_carries_samples() -> None:
    s = Series()
    s.count(0.1, "offered")
    s.count(0.2, "attempts")
    s.count(0.9, "accepted", latency_s=0.010)
    s.count(0.95, "shed", latency_s=0.030)
    s.sample(0.5, backlog=3, posted=0, odoo_limit=16)
    s.count(2.5, "timeouts")
    s.sample(2.7, backlog=5)
    rows = s.rows()
    assert [r["t"] for r in rows] == [0, 1, 2]
    first, gap, last = rows
    assert (first["offered"], first["attempts"], first["accepted"], first["shed"]) == (1, 1, 1, 1)
    assert first["latency_p50_ms"] == 10.0 and first["latency_p99_ms"] == 30.0
    # A second with nothing: zero counts, no latency, the samples of the second before.
    assert gap["accepted"] == 0 and gap["latency_p50_ms"] is None
    assert (gap["backlog"], gap["posted"], gap["odoo_limit"]) == (3, 0, 16)
    # A new reading replaces only what it read.
    assert (last["timeouts"], last["backlog"], last["posted"]) == (1, 5, 0)
    assert sorted(s.all_latencies()) == [0.010, 0.030]


def test_series_refuses_unknown_names() -> None:
    s = Series()
    with pytest.raises(ValueError, match="unknown kind"):
        s.count(0, "lost")
    with pytest.raises(ValueError, match="unknown"):
        s.sample(0, queue=1)


def _summary(**overrides: Any) -> dict[str, Any]:
    """A run where everything went right: 3 sales, each posted once."""
    s = Series()
    for t, kind in [(0, "offered"), (0, "attempts"), (0, "shed"), (1, "attempts")]:
        s.count(t, kind)
    for t in (1, 1, 2):
        s.count(t, "accepted", latency_s=0.02)
    s.sample(0, backlog=2, odoo_limit=16)
    s.sample(3, backlog=0, odoo_limit=11)
    keys = ["POS:A:1", "POS:A:2", "POS:B:1"]
    args: dict[str, Any] = {
        "rows": s.rows(),
        "latencies": s.all_latencies(),
        "sale_keys": keys,
        "sales_accepted": 3,
        "posted_per_key": dict.fromkeys(keys, 1),
        "draft_moves": 0,
        "odoo": {"calls": 1000, "errors": 9},
        "drain_s": 30.0,
        "drain_bound_s": 100.0,
        "spike_seconds": 2,
    }
    args.update(overrides)
    return summarise(**args)


def _failed(summary: dict[str, Any]) -> list[str]:
    return [c.name for c in evaluate(summary) if not c.ok]


def test_summary_totals_and_a_good_run_passes() -> None:
    summary = _summary()
    assert (summary["attempts"], summary["accepted"], summary["shed"]) == (2, 3, 1)
    assert summary["backlog_peak"] == 2 and summary["odoo_limit_min"] == 11
    assert summary["spike_offered_per_s"] == 0.5
    assert _failed(summary) == []


@pytest.mark.parametrize(
    ("overrides", "failed"),
    [
        # A sale never posted, or never accepted by the ingress: lost.
        ({"posted_per_key": {"POS:A:1": 1, "POS:A:2": 1}}, ["nothing lost"]),
        ({"sales_accepted": 2}, ["nothing lost"]),
        # Posted twice, a move for a sale never sent, a draft left: duplicated.
        (
            {"posted_per_key": {"POS:A:1": 2, "POS:A:2": 1, "POS:B:1": 1}},
            ["nothing duplicated"],
        ),
        (
            {"posted_per_key": {"POS:A:1": 1, "POS:A:2": 1, "POS:B:1": 1, "POS:C:9": 1}},
            ["nothing duplicated"],
        ),
        ({"draft_moves": 1}, ["nothing duplicated"]),
        # Odoo errors at 1 % of calls: over.
        ({"odoo": {"calls": 1000, "errors": 10}}, ["Odoo error rate < 1 %"]),
        # Not drained, or too late.
        ({"drain_s": None}, ["backlog drained"]),
        ({"drain_s": 100.5}, ["backlog drained"]),
    ],
)
def test_each_check_fails_on_its_own_fault(overrides: dict[str, Any], failed: list[str]) -> None:
    assert _failed(_summary(**overrides)) == failed


def test_shedding_check_wants_429s_and_no_timeouts() -> None:
    ok = _summary()
    assert _failed({**ok, "timeouts": 1}) == ["shed with 429, not timeouts"]
    assert _failed({**ok, "shed": 0}) == ["shed with 429, not timeouts"]
    # Other errors: at most 0.1 % of attempts.
    assert _failed({**ok, "attempts": 2000, "errors": 2}) == []
    assert _failed({**ok, "attempts": 2000, "errors": 3}) == ["shed with 429, not timeouts"]


def test_no_odoo_calls_is_no_error_rate() -> None:
    assert _failed(_summary(odoo={"calls": 0, "errors": 0})) == []


def test_parse_metrics_reads_the_limit_and_odoo_errors_by_class() -> None:
    text = "\n".join(
        [
            "# HELP retailflow_odoo_concurrency_limit Concurrent Odoo calls",
            "# TYPE retailflow_odoo_concurrency_limit gauge",
            'retailflow_odoo_concurrency_limit{otel_scope_name="retailflow"} 11.0',
            'retailflow_external_call_errors_total{error_class="5xx",system="odoo"} 2.0',
            'retailflow_external_call_errors_total{error_class="transport",system="odoo"} 1.0',
            'retailflow_external_call_errors_total{error_class="5xx",system="pos"} 7.0',
            "retailflow_ingress_requests_total 3.0",
            "garbage line",
        ]
    )
    assert parse_metrics(text) == (11.0, {"5xx": 2.0, "transport": 1.0})
    assert parse_metrics("") == (None, {})


def test_arrivals_resubmit_about_a_tenth_and_only_after_the_original() -> None:
    unique = [{"txn_id": f"T{i}"} for i in range(900)]
    stream = arrivals(unique, 0.1, random.Random(1))
    assert len(stream) == 1000  # 100 resubmissions: 10 % of the arrivals
    # Every sale arrives first in its own order: no resubmission comes before its original.
    order = [s["txn_id"] for s in stream]
    assert list(dict.fromkeys(order)) == [s["txn_id"] for s in unique]
    assert arrivals([], 0.1, random.Random(1)) == []


def test_limits_scale_with_the_sustainable_rate() -> None:
    limits = Limits.for_rate(2.0, backlog_seconds=20, cache_s=2)
    assert (limits.max_backlog, limits.max_store_backlog) == (40, 14)
    assert (limits.caller_rate_per_s, limits.caller_burst) == (6.0, 12)
    assert limits.drain_bound_s == 60 + 2 * 40 / 2.0
    assert Limits.for_rate(0.1, 20, 2).max_backlog == 10  # never below 10
