"""The dashboard, alert rules and scrape config in deploy/, and the compose `observability`
profile, held against the metric names the code exports (workers/metrics_names.py) and the
runbooks in docs/observability.md. Structural checks: no Prometheus or Grafana needed."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.unit.test_compose import bind_mounts, compose, host_path, published, service
from workers.metrics_names import ALL_METRICS, PROJECT_METRICS, series_names
from workflows.gateway_settlement import NEEDS_ATTENTION
from workflows.refund import RefundStatus
from workflows.sale_posting import SaleStatus

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/retailflow.json"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
PROMETHEUS = ROOT / "deploy/prometheus/prometheus.yml"
DOCS = ROOT / "docs/observability.md"
OBSERVABILITY_SERVICES = ("prometheus", "grafana", "otel-collector")

# Label values the queries may filter on, where the metric's definition fixes them.
LABEL_VALUES: dict[str, set[str]] = {
    "system": {"odoo", "pos", "gateway"},
    "outcome": {"ok", "transport", "server_error", "business_refusal"},
}
RETAIL_STATUSES = (
    {s.value for s in SaleStatus} | {s.value for s in RefundStatus} | {NEEDS_ATTENTION}
)
STATUS_METRICS = {"retailflow_workflows_by_status", "retailflow_oldest_age_seconds"}

_DURATION = re.compile(r"(?=\d)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[([^\]:]+)(?::[^\]]*)?\]")
_METRIC_TOKEN = re.compile(r"\b(?:retailflow|temporal)_\w+")


# --- PromQL, checked as far as names go -------------------------------------------------------


def expr_problems(expr: str) -> list[str]:
    """What is wrong with an expression's names: unknown metrics, labels, values, durations."""
    problems: list[str] = []
    known = series_names()
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    metrics = {known.get(token, "") for token in _METRIC_TOKEN.findall(without_strings)}
    if not metrics:
        problems.append("names no retailflow or Temporal metric")
    for token in _METRIC_TOKEN.findall(without_strings):
        if token not in known:
            problems.append(f"unknown metric {token}")
    labels = {"le", "job", "instance"}.union(*(ALL_METRICS.get(m, frozenset()) for m in metrics))
    for name, body in _SELECTOR.findall(expr):
        metric = known.get(name)
        for label, _, value in _MATCHER.findall(body):
            if metric is not None and label not in ALL_METRICS[metric] | {"job", "instance"}:
                problems.append(f"{name} has no label {label}")
            allowed = LABEL_VALUES.get(label)
            if label == "status" and metric in STATUS_METRICS:
                allowed = RETAIL_STATUSES
            if allowed is not None:
                for alternative in value.split("|"):
                    if alternative not in allowed:
                        problems.append(f"{label}={alternative!r} is not a value of {name}")
    for group in _GROUPING.findall(without_strings):
        for label in filter(None, (part.strip() for part in group.split(","))):
            if label not in labels:
                problems.append(f"grouping by {label}, a label of none of {sorted(metrics)}")
    for duration in _RANGE.findall(without_strings):
        if not valid_duration(duration.strip()):
            problems.append(f"range [{duration}] is not a duration")
    return problems


def valid_duration(text: str) -> bool:
    return bool(text) and _DURATION.fullmatch(text) is not None


def test_the_expression_check_catches_what_it_is_for() -> None:
    # Guards the tests below against a check that passes everything.
    assert expr_problems('sum(rate(retailflow_postings_total{mode="summary"}[5m]))') == []
    assert expr_problems("up") == ["names no retailflow or Temporal metric"]
    assert expr_problems("retailflow_posting_total") == ["unknown metric retailflow_posting_total"]
    assert expr_problems('retailflow_postings_total{store="1"}') == [
        "retailflow_postings_total has no label store"
    ]
    assert expr_problems('retailflow_external_call_seconds_count{system="erp"}') == [
        "system='erp' is not a value of retailflow_external_call_seconds_count"
    ]
    assert expr_problems('retailflow_oldest_age_seconds{status="Postng"}') == [
        "status='Postng' is not a value of retailflow_oldest_age_seconds"
    ]
    assert expr_problems("sum by (store_id) (retailflow_postings_total)") == [
        "grouping by store_id, a label of none of ['retailflow_postings_total']"
    ]
    assert expr_problems("rate(retailflow_postings_total[5 min])") == [
        "range [5 min] is not a duration"
    ]
    assert valid_duration("1d") and valid_duration("1h30m") and valid_duration("500ms")
    assert not valid_duration("") and not valid_duration("15") and not valid_duration("m")


# --- the dashboard ----------------------------------------------------------------------------


@cache
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p.get("type") != "row"]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p.get("targets", [])]


def test_the_dashboard_is_json_with_a_technical_and_a_business_row() -> None:
    data = dashboard()
    assert data["uid"] and data["title"]
    rows = [p["title"] for p in data["panels"] if p.get("type") == "row"]
    assert rows == ["Technical", "Business"]
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels():
        assert panel["title"] and panel.get("targets"), panel.get("title")
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("expr", dashboard_exprs())
def test_every_dashboard_query_names_only_known_metrics(expr: str) -> None:
    assert expr_problems(expr) == []


def test_the_dashboard_shows_every_project_metric_and_schedule_to_start() -> None:
    text = " ".join(dashboard_exprs())
    missing = [name for name in PROJECT_METRICS if name not in text]
    assert not missing, f"not on the dashboard: {missing}"
    assert "temporal_activity_schedule_to_start_latency" in text
    assert "temporal_workflow_task_schedule_to_start_latency" in text


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    provisioning = ROOT / "deploy/grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    uids = {s["uid"] for s in sources["datasources"]}
    for panel in panels():
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] in uids, panel["title"]


# --- the alert rules --------------------------------------------------------------------------


@cache
def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    assert isinstance(data, dict) and set(data) == {"groups"}, "a rule file holds only groups"
    found = []
    names = set()
    for group in data["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"}, group.keys()
        assert group["name"] not in names, f"group {group['name']} twice"
        names.add(group["name"])
        assert group["rules"], group["name"]
        found.extend(group["rules"])
    return found


def rule_ids() -> list[str]:
    return [r.get("alert", "?") for r in rules()]


def test_the_alert_rules_cover_what_the_issue_asks() -> None:
    assert {
        "RetailflowPostingsDelayed",
        "RetailflowNeedsAttentionGrowing",
        "RetailflowPaidPostingPending",
        "RetailflowOdooErrorRate",
        "RetailflowActivityBacklog",
        "RetailflowWorkflowTaskBacklog",
        "RetailflowUnreconciledAmount",
        "RetailflowRolloutStoresUnconfirmed",
    } <= set(rule_ids())
    assert len(rule_ids()) == len(set(rule_ids()))


@pytest.mark.parametrize("rule", rules(), ids=rule_ids())
def test_each_alert_rule_is_well_formed(rule: dict[str, Any]) -> None:
    assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
    assert re.fullmatch(r"[A-Za-z_:][\w:]*", rule["alert"])
    assert isinstance(rule["expr"], str) and rule["expr"].strip()
    assert expr_problems(rule["expr"]) == []
    assert valid_duration(str(rule["for"])), rule["for"]
    assert rule["labels"]["severity"] in ("warning", "critical")
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)


@pytest.mark.parametrize("rule", rules(), ids=rule_ids())
def test_each_runbook_link_is_a_section_of_the_observability_doc(rule: dict[str, Any]) -> None:
    path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert (ROOT / path).resolve() == DOCS.resolve()
    assert anchor in doc_anchors(), f"docs/observability.md has no section #{anchor}"


def doc_anchors() -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in DOCS.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_the_specific_thresholds_of_the_issue() -> None:
    by_name = {r["alert"]: r for r in rules()}
    assert by_name["RetailflowPaidPostingPending"]["for"] == "15m"
    assert by_name["RetailflowOdooErrorRate"]["for"] == "10m"
    assert "0.01" in by_name["RetailflowOdooErrorRate"]["expr"]
    assert "[30m]" in by_name["RetailflowNeedsAttentionGrowing"]["expr"]
    assert by_name["RetailflowUnreconciledAmount"]["for"] == "1d"
    for name in ("RetailflowActivityBacklog", "RetailflowWorkflowTaskBacklog"):
        expr = by_name[name]["expr"]
        assert "histogram_quantile(0.95" in expr and "> 30" in expr  # SDK histograms are in seconds


# --- Prometheus and the compose profile -------------------------------------------------------


def test_observability_services_are_optional_and_pinned() -> None:
    for name in OBSERVABILITY_SERVICES:
        svc = service(name)
        assert svc.get("profiles") == ["observability"], name
        image = svc["image"]
        _, _, tag = image.rpartition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: pin {image!r}"
        assert bind_mounts(name), f"{name} mounts none of deploy/"
    host_ports = {host for name in OBSERVABILITY_SERVICES for host, _ in published(name)}
    assert host_ports == {9090, 3000}


def test_prometheus_loads_the_config_and_the_rules_of_this_repository() -> None:
    command = service("prometheus")["command"]
    config_path = next(a.split("=", 1)[1] for a in command if a.startswith("--config.file="))
    assert host_path("prometheus", config_path).resolve() == PROMETHEUS.resolve()
    config = yaml.safe_load(PROMETHEUS.read_text())
    rule_files = [host_path("prometheus", f).resolve() for f in config["rule_files"]]
    assert rule_files == [ALERTS.resolve()]


def test_prometheus_scrapes_worker_sdk_ingress_and_collector_on_their_ports() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets["retailflow-worker"] == ["retailflow-worker:9464"]
    assert targets["retailflow-worker-sdk"] == ["retailflow-worker:9465"]
    assert targets["retailflow-ingress"] == ["retailflow-ingress:8080"]
    services = compose()["services"]
    for job, hosts in targets.items():
        for target in hosts:
            assert target.partition(":")[0] in services, f"{job}: {target} is not a service"
    ingress_port = {container for _, container in published("retailflow-ingress")}
    assert int(targets["retailflow-ingress"][0].partition(":")[2]) in ingress_port


def test_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    assert provisioning.resolve() == (ROOT / "deploy/grafana/provisioning").resolve()
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    url = sources["datasources"][0]["url"]
    host, _, port = url.removeprefix("http://").partition(":")
    assert host == "prometheus" and (int(port), int(port)) in published("prometheus")
    providers = yaml.safe_load((provisioning / "dashboards/retailflow.yml").read_text())
    folder = PurePosixPath(providers["providers"][0]["options"]["path"])
    assert host_path("grafana", str(folder / DASHBOARD.name)).resolve() == DASHBOARD.resolve()


def test_the_collector_runs_the_config_of_this_repository() -> None:
    command = service("otel-collector")["command"]
    path = next(a.split("=", 1)[1] for a in command if a.startswith("--config="))
    config = yaml.safe_load(host_path("otel-collector", path).read_text())
    pipelines = config["service"]["pipelines"]
    for pipeline in pipelines.values():
        assert set(pipeline["receivers"]) <= set(config["receivers"])
        assert set(pipeline["exporters"]) <= set(config["exporters"])
    port = config["exporters"]["prometheus"]["endpoint"].rpartition(":")[2]
    scraped = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    assert any(
        f"otel-collector:{port}" in sc["targets"] for job in scraped for sc in job["static_configs"]
    )
