"""The project's metrics: one OpenTelemetry meter per process, read by Prometheus.

The adapters (Odoo, POS, gateway) time every call they make and classify its outcome; the
ingress counts its answers; the posting activities count what they booked; the worker's
activity interceptor counts retries. Workflows record nothing here: the few counts only a
workflow sees (a duplicate confirmation or refund request) go through the Temporal SDK's
workflow metric meter, which is replay-safe and served on the SDK metrics endpoint. Business
gauges are filled from Temporal visibility by the worker's collector
(workers/business_metrics.py). Every metric is listed in
docs/observability.md, "Metrics".

Scraping: the worker serves `/metrics` on RETAILFLOW_METRICS_PORT (0: off), the Temporal SDK's
own metrics on RETAILFLOW_SDK_METRICS_PORT; the ingress answers `GET /metrics` itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, start_http_server

System = Literal["odoo", "pos", "gateway"]
Outcome = Literal["ok", "transport", "server_error", "business_refusal"]
OUTCOMES: tuple[str, ...] = ("ok", "transport", "server_error", "business_refusal")

CALL_SECONDS = "retailflow_external_call_seconds"
CALL_ERRORS = "retailflow_external_call_errors_total"
INGRESS_REQUESTS = "retailflow_ingress_requests_total"
POSTINGS = "retailflow_postings_total"
DUPLICATES = "retailflow_duplicates_absorbed_total"
ACTIVITY_RETRIES = "retailflow_activity_retries_total"
WORKFLOWS_BY_STATUS = "retailflow_workflows_by_status"
OLDEST_AGE = "retailflow_oldest_age_seconds"
UNRECONCILED_AMOUNT = "retailflow_unreconciled_amount"
ROLLOUT_UNCONFIRMED = "retailflow_rollout_unconfirmed_stores"
INVENTORY_DRIFT = "retailflow_inventory_drift"
COLLECTOR_LAST_SUCCESS = "retailflow_business_metrics_last_success_timestamp_seconds"
ODOO_CONCURRENCY_LIMIT = "retailflow_odoo_concurrency_limit"

# External calls take from a few ms (a cached read) to tens of seconds (Odoo giving up on a
# serialization failure): the default OTel buckets stop at 10 s and start at 5 ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)


class BusinessGauges:
    """The last values the collector read, observed on each scrape (never computed there)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}

    def set(self, name: str, values: dict[tuple[tuple[str, str], ...], float]) -> None:
        with self._lock:
            self._values[name] = dict(values)

    def get(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        with self._lock:
            return dict(self._values.get(name, {}))

    def callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(v, dict(attrs)) for attrs, v in self.get(name).items()]

        return observe


class Metrics:
    """The instruments. Build once per process (`metrics()`): the Prometheus reader registers
    itself with prometheus_client's default registry."""

    def __init__(self) -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        self.reader = PrometheusMetricReader(disable_target_info=True)
        self.provider = MeterProvider(
            metric_readers=[self.reader],
            views=[
                View(
                    instrument_name=CALL_SECONDS,
                    aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS),
                )
            ],
        )
        meter = self.provider.get_meter("retailflow")
        self.call_seconds = meter.create_histogram(
            CALL_SECONDS,
            unit="s",
            description="Latency of calls to Odoo, the POS platform and the gateway, by outcome",
        )
        self.call_errors = meter.create_counter(
            CALL_ERRORS, description="Failed external calls by system and error class"
        )
        self.ingress_requests = meter.create_counter(
            INGRESS_REQUESTS, description="Ingress answers by route and HTTP status"
        )
        self.postings = meter.create_counter(
            POSTINGS, description="Sales the posting activities handled, by mode and outcome"
        )
        self.duplicates = meter.create_counter(
            DUPLICATES, description="Resubmissions absorbed without booking twice, by kind"
        )
        self.activity_retries = meter.create_counter(
            ACTIVITY_RETRIES,
            description="Activity attempts after the first, by activity type and system",
        )
        self.gauges = BusinessGauges()
        for name, description in (
            (WORKFLOWS_BY_STATUS, "Open workflows by type and RetailStatus (from visibility)"),
            (OLDEST_AGE, "Age of the oldest open workflow in a status, seconds"),
            (UNRECONCILED_AMOUNT, "Unreconciled amount of store-days (0 until measured)"),
            (ROLLOUT_UNCONFIRMED, "Stores of running rollouts unconfirmed past the deadline"),
            (INVENTORY_DRIFT, "Products left in drift by the latest inventory audit, by store"),
            (COLLECTOR_LAST_SUCCESS, "When the business-metrics collector last read visibility"),
        ):
            meter.create_observable_gauge(
                name, callbacks=[self.gauges.callback(name)], description=description
            )
        # The worker's adaptive limit toward Odoo (activities/odoo/limiter.py), read live.
        self.odoo_limit: Callable[[], float] | None = None
        meter.create_observable_gauge(
            ODOO_CONCURRENCY_LIMIT,
            callbacks=[self._observe_odoo_limit],
            description="Concurrent Odoo calls this worker allows now (adaptive, AIMD)",
        )

    def _observe_odoo_limit(self, options: CallbackOptions) -> Iterable[Observation]:
        read = self.odoo_limit
        return [Observation(float(read()))] if read is not None else []

    def record_call(self, system: System, operation: str, outcome: str, seconds: float) -> None:
        self.call_seconds.record(
            seconds, {"system": system, "operation": operation, "outcome": outcome}
        )
        if outcome != "ok":
            self.call_errors.add(1, {"system": system, "error_class": outcome})


_lock = threading.Lock()
_metrics: Metrics | None = None


def metrics() -> Metrics:
    """The process's instruments, created on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


@contextmanager
def external_call(
    system: System, operation: str, classify: Callable[[Exception], str]
) -> Iterator[None]:
    """Time the call in the block; an exception leaving it is classified (`classify` returns
    one of OUTCOMES) and re-raised unchanged. A cancellation is not a call outcome: not
    recorded."""
    start = time.perf_counter()
    try:
        yield
    except Exception as e:
        try:
            outcome = classify(e)
        except Exception:
            outcome = "transport"
        metrics().record_call(system, operation, outcome, time.perf_counter() - start)
        raise
    metrics().record_call(system, operation, "ok", time.perf_counter() - start)


def record_posting(mode: str, outcome: str, count: int = 1) -> None:
    """`outcome`: posted (booked now), duplicate (already booked: counted as absorbed too),
    refused (a business refusal)."""
    if count <= 0:
        return
    metrics().postings.add(count, {"mode": mode, "outcome": outcome})
    if outcome == "duplicate":
        record_duplicate("sale", count)


def record_sale_outcomes(mode: str, outcomes: Iterable[Any]) -> None:
    """Count a posting activity's outcomes (each with `posted` and `already_posted`)."""
    counts = {"posted": 0, "duplicate": 0, "refused": 0}
    for o in outcomes:
        counts["refused" if not o.posted else "duplicate" if o.already_posted else "posted"] += 1
    for outcome, count in counts.items():
        record_posting(mode, outcome, count)


def record_duplicate(kind: Literal["sale", "refund", "confirmation"], count: int = 1) -> None:
    metrics().duplicates.add(count, {"kind": kind})


def record_retry(activity_type: str, system: str) -> None:
    metrics().activity_retries.add(1, {"activity_type": activity_type, "system": system})


def record_ingress(route: str, status: int) -> None:
    metrics().ingress_requests.add(1, {"route": route, "status": str(status)})


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format, and its content type."""
    metrics()
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_metrics(host: str, port: int) -> Any:
    """Serve `/metrics` on host:port from a background thread; returns the server (its
    `shutdown()` stops it) — port 0 picks a free one (`server.server_port`)."""
    metrics()
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server
