"""The metric names retailflow exports, with their labels: one list for the code that defines the
metrics, the dashboards and alert rules in deploy/, and the tests that hold them together.

Histograms are exported with Prometheus' `_bucket`, `_count` and `_sum` series; Temporal SDK
histograms are in seconds and its counters end in `_total` (the worker's PrometheusConfig:
`durations_as_seconds`, `counters_total_suffix`; workers/client.py sdk_metrics_runtime).
"""

from __future__ import annotations

from typing import Final

HISTOGRAM_SUFFIXES: Final = ("_bucket", "_count", "_sum")

# name -> label names (besides Prometheus' own `job`, `instance` and a histogram's `le`).
PROJECT_METRICS: Final[dict[str, frozenset[str]]] = {
    "retailflow_external_call_seconds": frozenset({"system", "operation", "outcome"}),
    "retailflow_external_call_errors_total": frozenset({"system", "error_class"}),
    "retailflow_ingress_requests_total": frozenset({"route", "status"}),
    "retailflow_postings_total": frozenset({"mode", "outcome"}),
    # Sales are counted by the posting activities (the worker's /metrics); refunds and
    # confirmations by the workflows that absorb them, through the Temporal SDK's workflow
    # metric meter (the SDK metrics endpoint, with the meter's own labels).
    "retailflow_duplicates_absorbed_total": frozenset(
        {"kind", "namespace", "task_queue", "workflow_type", "service_name"}
    ),
    # Activity attempts after the first, by activity type and the system it talks to.
    "retailflow_activity_retries_total": frozenset({"activity_type", "system"}),
    "retailflow_workflows_by_status": frozenset({"workflow_type", "status"}),
    "retailflow_oldest_age_seconds": frozenset({"status"}),
    "retailflow_unreconciled_amount": frozenset({"store_id", "day"}),
    "retailflow_rollout_unconfirmed_stores": frozenset(),
    # Products left in drift per store by its latest inventory audit.
    "retailflow_inventory_drift": frozenset({"store_id"}),
    "retailflow_odoo_concurrency_limit": frozenset(),
    # When the worker's business-metrics collector last read visibility (stale gauges).
    "retailflow_business_metrics_last_success_timestamp_seconds": frozenset(),
}

# The workflow-side counter of duplicates, as created on `workflow.metric_meter()`: the SDK's
# Prometheus exporter appends `_total` (counters_total_suffix).
SDK_DUPLICATES_COUNTER: Final = "retailflow_duplicates_absorbed"

PROJECT_HISTOGRAMS: Final = frozenset({"retailflow_external_call_seconds"})

# Temporal's Python SDK (sdk-core) names, those the dashboards and alerts use.
SDK_METRICS: Final[dict[str, frozenset[str]]] = {
    "temporal_request_total": frozenset({"namespace", "operation", "task_queue"}),
    "temporal_request_failure_total": frozenset(
        {"namespace", "operation", "task_queue", "status_code"}
    ),
    "temporal_workflow_task_schedule_to_start_latency": frozenset(
        {"namespace", "task_queue", "workflow_type"}
    ),
    "temporal_activity_schedule_to_start_latency": frozenset(
        {"namespace", "task_queue", "activity_type", "workflow_type"}
    ),
    "temporal_activity_execution_failed_total": frozenset(
        {"namespace", "task_queue", "activity_type", "workflow_type"}
    ),
    "temporal_num_pollers": frozenset({"namespace", "task_queue", "poller_type"}),
    "temporal_worker_task_slots_available": frozenset({"namespace", "task_queue", "worker_type"}),
}

SDK_HISTOGRAMS: Final = frozenset(
    {
        "temporal_workflow_task_schedule_to_start_latency",
        "temporal_activity_schedule_to_start_latency",
    }
)

ALL_METRICS: Final[dict[str, frozenset[str]]] = {**PROJECT_METRICS, **SDK_METRICS}
HISTOGRAMS: Final = PROJECT_HISTOGRAMS | SDK_HISTOGRAMS


def series_names() -> dict[str, str]:
    """Every series name a query may use -> the metric it belongs to."""
    names = {name: name for name in ALL_METRICS}
    for name in HISTOGRAMS:
        names.update({name + suffix: name for suffix in HISTOGRAM_SUFFIXES})
    return names
