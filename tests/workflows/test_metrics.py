"""Metrics: a real `retailflow worker` serving /metrics and the Temporal SDK's metrics, the
ingress's own /metrics, scraped during a small run with an Odoo fault injected."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import stripe
from odoorpc.error import RPCError
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities import gateway_client, pos_client
from activities.odoo.client import OdooUnavailable, call_outcome
from domain.reconciliation import ReconStatus
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from simulators.odoo.faults import Faults
from simulators.pos import PosPlatform
from tests.conftest import AUTH, RETAILFLOW, rollout_settings, running_worker, settings_for
from tests.identities import ISSUER
from tests.workflows.helpers import eventually, sales_for
from tests.workflows.test_price_rollout import _commanded, a_rollout
from tests.workflows.test_reconciliation import until_report
from tests.workflows.test_refund import refund, request_refund
from workers.business_metrics import Labels, collect, unconfirmed_rollouts, unreconciled_amounts
from workers.client import connect, sdk_metrics_runtime
from workers.ingress import build_app
from workers.metrics import (
    OLDEST_AGE,
    ROLLOUT_UNCONFIRMED,
    UNRECONCILED_AMOUNT,
    WORKFLOWS_BY_STATUS,
)
from workers.metrics_names import PROJECT_METRICS, series_names
from workers.rollouts import start_rollout
from workers.settings import Settings
from workers.submit import Submission, Submitted, submit_sale, wait_until_settled
from workflows.price_rollout import CancelRequest, PriceRollout, StoreOutcome
from workflows.reconciliation import (
    Reconciliation,
    ReconciliationInput,
    ReconDecision,
    reconciliation_workflow_id,
    unreconciled_amount,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(found: list[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in found
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@contextmanager
def metrics_worker(settings: Settings, log: Path, port: int, sdk_port: int) -> Iterator[None]:
    """`retailflow worker` as a process, with both metrics endpoints on."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal.address,
        "RETAILFLOW_TASK_QUEUE": settings.task_queue,
        "RETAILFLOW_ODOO_URL": settings.odoo_url,
        "RETAILFLOW_ODOO_TIMEOUT_S": str(settings.odoo_timeout_s),
        "RETAILFLOW_METRICS_PORT": str(port),
        "RETAILFLOW_SDK_METRICS_PORT": str(sdk_port),
        "RETAILFLOW_BUSINESS_METRICS_INTERVAL_S": "1",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen([str(RETAILFLOW), "worker"], env=env, stdout=out, stderr=out)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def scrape_until(
    url: str, done: Callable[[list[Sample]], bool], timeout_s: float = 30
) -> list[Sample]:
    """Scrape until `done` holds (the worker starts, activities retry); the last scrape."""
    found: list[Sample] = []
    async with httpx.AsyncClient() as http:
        for _ in range(int(timeout_s / 0.2)):
            try:
                resp = await http.get(url)
                found = samples(resp.text) if resp.status_code == 200 else []
            except httpx.TransportError:
                found = []
            if found and done(found):
                return found
            await asyncio.sleep(0.2)
    return found


async def test_worker_and_ingress_metrics_move_during_a_run(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    port, sdk_port = free_port(), free_port()
    worker_url = f"http://127.0.0.1:{port}/metrics"
    first, second = sales_for(store_id, 2)
    app = build_app(settings, client=client)
    transport = httpx.ASGITransport(app=app)
    ingress = httpx.AsyncClient(transport=transport, base_url="http://ingress", headers=AUTH)
    # Every entry Odoo is asked to create fails with HTTP 500 until the error is counted.
    odoo_emulator.faults = Faults(
        error_rate=1.0, kinds=("http_500",), methods=("account.move.create",)
    )
    try:
        with metrics_worker(settings, tmp_path / "worker.log", port, sdk_port):
            async with ingress:
                accepted = [
                    await ingress.post("/v1/sales", content=json.dumps(sale))
                    for sale in (first, second)
                ]
                duplicate = await ingress.post("/v1/sales", content=json.dumps(first))
                failing = await scrape_until(
                    worker_url,
                    lambda s: (
                        total(
                            s,
                            "retailflow_external_call_errors_total",
                            system="odoo",
                            error_class="server_error",
                        )
                        > 0
                    ),
                )
                odoo_emulator.faults = Faults()
                await wait_until_settled(
                    client,
                    [
                        Submitted(
                            workflow_id=r.json()["workflow_id"], submission=Submission.ACCEPTED
                        )
                        for r in accepted
                    ],
                    timedelta(seconds=60),
                )
                worker = await scrape_until(
                    worker_url,
                    lambda s: (
                        total(s, "retailflow_postings_total", outcome="posted") >= 2
                        and any(x.name == "retailflow_workflows_by_status" for x in s)
                        and total(s, "retailflow_activity_retries_total", system="odoo") >= 1
                    ),
                )
                ingress_metrics = await ingress.get("/metrics")
            sdk = await scrape_until(f"http://127.0.0.1:{sdk_port}/metrics", lambda s: True)
    finally:
        odoo_emulator.faults = Faults()

    assert [r.status_code for r in accepted] == [202, 202] and duplicate.status_code == 200
    # The fault: counted as a server error, with its latency, before anything was posted.
    assert (
        total(
            failing,
            "retailflow_external_call_errors_total",
            system="odoo",
            error_class="server_error",
        )
        >= 1
    )
    assert (
        total(
            failing,
            "retailflow_external_call_seconds_count",
            system="odoo",
            operation="account.move.create",
            outcome="server_error",
        )
        >= 1
    )
    assert total(failing, "retailflow_postings_total", outcome="posted") == 0
    # Then both sales posted, and the Odoo call histogram holds the successful calls too.
    assert total(worker, "retailflow_postings_total", mode="per-sale", outcome="posted") >= 2
    assert total(
        worker, "retailflow_external_call_seconds_count", system="odoo", outcome="ok"
    ) > total(failing, "retailflow_external_call_seconds_count", system="odoo", outcome="ok")
    assert (
        total(
            worker,
            "retailflow_external_call_errors_total",
            system="odoo",
            error_class="server_error",
        )
        >= 1
    )
    # The posting attempts the 500s failed were retried: counted by activity type and system.
    assert total(failing, "retailflow_activity_retries_total") == total(
        failing, "retailflow_activity_retries_total", system="odoo"
    )
    assert total(worker, "retailflow_activity_retries_total", system="odoo") >= 1
    assert {
        s.labels["activity_type"]
        for s in worker
        if s.name == "retailflow_activity_retries_total" and s.labels["system"] == "odoo"
    } <= {"post_sale", "post_sales_batch"}
    # Business gauges are defined (read from visibility by the worker's collector).
    names = {s.name for s in worker}
    assert {
        "retailflow_workflows_by_status",
        "retailflow_oldest_age_seconds",
        "retailflow_unreconciled_amount",
        "retailflow_rollout_unconfirmed_stores",
        "retailflow_inventory_drift",
    } <= names
    # The adaptive limit toward Odoo, within its bounds (the 500s may have lowered it).
    assert 2 <= total(worker, "retailflow_odoo_concurrency_limit") <= 16
    # Every series is one the dashboards and alert rules know (workers/metrics_names.py), with
    # the labels they use (besides the exporter's own scope labels).
    known = series_names()
    for s in worker:
        if s.name.startswith("retailflow_"):
            metric = known.get(s.name)
            assert metric is not None, s.name
            labels = set(s.labels) - {"le"} - {k for k in s.labels if k.startswith("otel_")}
            assert labels <= PROJECT_METRICS[metric], (s.name, labels)
    # The Temporal SDK's own metrics, on their port, under the names the dashboards use.
    assert any(s.name.startswith("temporal_") for s in sdk)
    sdk_names = {s.name for s in sdk}
    assert {"temporal_request_total", "temporal_num_pollers"} <= sdk_names, sorted(sdk_names)
    # The ingress counted its answers by route template and status.
    assert ingress_metrics.status_code == 200
    found = samples(ingress_metrics.text)
    assert total(found, "retailflow_ingress_requests_total", route="/v1/sales", status="202") >= 2
    assert total(found, "retailflow_ingress_requests_total", route="/v1/sales", status="200") >= 1


# -- how each adapter's failures are counted -----------------------------------------------


def test_odoo_failures_are_counted_by_class() -> None:
    def rpc(name: str, message: str = "no") -> RPCError:
        return RPCError(message, {"data": {"name": name}})

    def wrapped(cause: Exception) -> OdooUnavailable:
        try:
            raise OdooUnavailable("retry") from cause
        except OdooUnavailable as e:
            return e

    server = urllib.error.HTTPError("http://odoo", 500, "Internal Server Error", {}, None)  # type: ignore[arg-type]
    assert call_outcome(rpc("odoo.exceptions.UserError")) == "business_refusal"
    assert call_outcome(ApplicationError("refused", non_retryable=True)) == "business_refusal"
    assert call_outcome(rpc("psycopg2.errors.SerializationFailure")) == "server_error"
    assert call_outcome(wrapped(server)) == "server_error"
    assert call_outcome(server) == "server_error"
    assert call_outcome(urllib.error.URLError("refused")) == "transport"
    assert call_outcome(wrapped(ConnectionResetError())) == "transport"
    server.close()


def test_each_activity_is_counted_under_the_system_it_calls() -> None:
    from activities.odoo.sales import OdooSalesActivities
    from activities.payments import PaymentActivities
    from activities.pos import PosActivities
    from activities.recon import ReconActivities
    from workers.worker import activity_system

    assert activity_system(OdooSalesActivities.post_sale) == "odoo"
    assert activity_system(PosActivities.send_price_command) == "pos"
    assert activity_system(PaymentActivities.refund_payment) == "gateway"
    assert activity_system(ReconActivities.reconcile_store_day) == "internal"
    assert activity_system(object()) == "internal"


def test_pos_and_gateway_failures_are_counted_by_class() -> None:
    def unavailable(cause: Exception | None) -> pos_client.PosUnavailable:
        try:
            raise pos_client.PosUnavailable("down") from cause
        except pos_client.PosUnavailable as e:
            return e

    assert pos_client.call_outcome(unavailable(httpx.ConnectError("no"))) == "transport"
    assert pos_client.call_outcome(unavailable(None)) == "server_error"  # an HTTP 5xx
    assert pos_client.call_outcome(ApplicationError("busy", type="PosBusy")) == "server_error"
    assert pos_client.call_outcome(ApplicationError("no", type="PosRefused")) == "business_refusal"
    assert (
        pos_client.operation("GET", "/v1/stores/S001/price-commands/C-9")
        == "GET /v1/stores/{store_id}/price-commands/{command_id}"
    )
    assert gateway_client.call_outcome(stripe.CardError("no", None, "card_declined")) == (
        "business_refusal"
    )
    assert gateway_client.call_outcome(stripe.APIConnectionError("no")) == "transport"
    assert gateway_client.call_outcome(stripe.APIError("500")) == "server_error"


async def test_ingress_counts_an_unknown_path_without_its_text(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str
) -> None:
    app = build_app(settings_for(odoo_emulator, temporal_address), client=client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
        before = samples((await http.get("/metrics")).text)
        missing = await http.get("/no/such/path-42")
        after = samples((await http.get("/metrics")).text)
    assert missing.status_code == 404
    assert not any("path-42" in str(s.labels) for s in after)
    key = {"route": "unmatched", "status": "404"}
    assert total(after, "retailflow_ingress_requests_total", **key) == (
        total(before, "retailflow_ingress_requests_total", **key) + 1
    )


async def test_the_business_collector_counts_a_rejected_sale(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    """The collector's visibility queries run as written on the dev server, and count."""
    rejected: Labels = (("workflow_type", "SalePosting"), ("status", "Rejected"))
    before = (await collect(client))[WORKFLOWS_BY_STATUS].get(rejected, 0.0)
    settings = settings_for(odoo_emulator, temporal_address)
    (sale,) = sales_for(store_id, 1)
    sale["lines"] = []  # refused: a sale needs lines; kept as Rejected with its reason
    async with running_worker(client, settings):
        submitted = await submit_sale(client, settings, sale, None, "test")
        assert submitted.submission is Submission.REJECTED
        await wait_until_settled(client, [submitted], timedelta(seconds=30))
    after = await eventually(
        lambda: collect(client),
        lambda got: got[WORKFLOWS_BY_STATUS].get(rejected, 0.0) >= before + 1,
    )
    assert set(after) >= {WORKFLOWS_BY_STATUS, OLDEST_AGE}


async def sdk_metrics_client(settings: Settings) -> tuple[Client, str]:
    """A client on a runtime of its own whose SDK metrics (the workflow metric meter's too)
    are served on a free port; its scrape URL."""
    port = free_port()
    runtime = sdk_metrics_runtime("127.0.0.1", port)
    return await connect(settings.temporal, runtime=runtime), f"http://127.0.0.1:{port}/metrics"


async def test_a_duplicated_confirmation_and_refund_request_are_counted_as_absorbed(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    pos.set_knobs("S078", apply_delay_ms=600_000)  # the store will not confirm by itself
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    sdk_client, url = await sdk_metrics_client(settings)
    refund_id = f"dup-{os.urandom(4).hex()}"
    async with running_worker(sdk_client, settings):
        rollout, handle = await start_rollout(
            client,
            settings,
            a_rollout(target={"kind": "list", "stores": ["S078"]}, confirm_within="PT20S"),
        )
        await _commanded(handle, "S078")
        confirmation = {
            "platform_id": "pos-main",
            "store_id": "S078",
            "command_id": f"price-rollout:{rollout.rollout_id}:S078",
            "status": "applied",
        }
        # The store's callback delivered twice (a retry after a lost answer): acted on once.
        await handle.signal("confirmations", [confirmation, confirmation])
        # A refund requested twice (a cashier's retry): the second is absorbed, and the
        # requester tells the workflow it answered with.
        raw = refund("S078", refund_id=refund_id, amount="5.00")
        refund_settings = settings.model_copy(update=ISSUER.trusted())
        answers = [await request_refund(client, refund_settings, raw) for _ in range(2)]
        assert [duplicate for _, _, duplicate in answers] == [False, True]
        found = await scrape_until(
            url,
            lambda s: (
                total(s, "retailflow_duplicates_absorbed_total", kind="confirmation") >= 1
                and total(s, "retailflow_duplicates_absorbed_total", kind="refund") >= 1
            ),
        )
        report = await handle.query(PriceRollout.report)
    assert report.stores["S078"].outcome is StoreOutcome.CONFIRMED
    assert report.ignored_signals == []
    dup = "retailflow_duplicates_absorbed_total"
    assert total(found, dup, kind="confirmation", workflow_type="PriceRollout") == 1
    assert total(found, dup, kind="refund", workflow_type="Refund") == 1
    # The series carries only labels the dashboards know.
    for sample in found:
        if sample.name == dup:
            assert set(sample.labels) <= PROJECT_METRICS[dup], sample.labels


async def test_an_unreconciled_store_day_shows_its_amount_until_accepted(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    gateway: Gateway,
) -> None:
    store, day = "S001", date(2031, 1, 1) + timedelta(days=random.randrange(3000))
    settings = settings_for(
        odoo_emulator, temporal_address, pos_url=pos.url, gateway_api_base=gateway.url
    )
    # A card charge of 9.90 no sale of the day has: the store-day is Unreconciled.
    at = int(datetime.fromisoformat(f"{day}T10:00:00-05:00").timestamp())
    stray = f"pi_{os.urandom(4).hex()}stray"
    gateway.create_payment_intent(stray, 990, metadata={"store_id": store}, created=at)
    key: Labels = (("store_id", store), ("day", day.isoformat()))
    async with running_worker(client, settings):
        handle = await client.start_workflow(
            Reconciliation.run,
            ReconciliationInput(store_id=store, business_day=day),
            id=reconciliation_workflow_id(store, day),
            task_queue=settings.task_queue,
        )
        report = await until_report(handle, lambda r: r.status is ReconStatus.UNRECONCILED)
        gauges = await eventually(
            lambda: collect(client), lambda got: key in got[UNRECONCILED_AMOUNT], timeout=30
        )
        await handle.execute_update(
            Reconciliation.accept, ReconDecision(diff_id="all", by="ops-ann", comment="test")
        )
        assert (await handle.result()).status is ReconStatus.RECONCILED
    assert f"charge_without_sale:{stray}" in {d.id for d in report.open_diffs}
    assert gauges[UNRECONCILED_AMOUNT][key] == float(unreconciled_amount(report)) >= 9.90
    # Accepted: the store-day is Reconciled and leaves the gauge.
    await eventually(
        lambda: unreconciled_amounts(client, datetime.now(UTC)), lambda got: key not in got
    )


async def test_a_store_unconfirmed_past_the_rollout_deadline_is_counted(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    pos: PosPlatform,
    ingress_url: str,
) -> None:
    pos.set_knobs("S078", apply_delay_ms=600_000)  # the store takes the command, never confirms
    settings = rollout_settings(odoo_emulator, temporal_address, pos, ingress_url)
    async with running_worker(client, settings):
        _, handle = await start_rollout(
            client,
            settings,
            a_rollout(target={"kind": "list", "stores": ["S078"]}, confirm_within="PT6S"),
        )
        await _commanded(handle, "S078")
        # Before the deadline the store is not late yet.
        early = await unconfirmed_rollouts(client, datetime.now(UTC))
        late = await eventually(
            lambda: unconfirmed_rollouts(client, datetime.now(UTC)),
            lambda got: handle.id in got,
            timeout=30,
        )
        gauges = await collect(client)
        await handle.signal(PriceRollout.cancel, CancelRequest(by="ops-sam", reason="test over"))
        report = await handle.result()
    assert handle.id not in early
    assert late[handle.id] == 1
    assert gauges[ROLLOUT_UNCONFIRMED][()] >= 1
    assert report.stores["S078"].outcome is not StoreOutcome.CONFIRMED
