"""Start-up concerns: search attributes registered automatically, tracing on every call."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import sales_for
from workers.client import connect, ensure_search_attributes
from workers.settings import TemporalSettings
from workers.submit import Mode, submit_sale
from workers.telemetry import setup_tracing
from workflows.sale_posting import SalePosting

BIN = Path(sys.executable).parent


async def test_search_attributes_are_registered_on_a_bare_dev_server() -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=str(BIN / "temporal"))
    try:
        client = await connect(
            TemporalSettings(address=env.client.service_client.config.target_host)
        )
        assert await ensure_search_attributes(client) == ["BusinessDay", "RetailStatus", "StoreId"]
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert {"StoreId", "BusinessDay", "RetailStatus"} <= set(listed.custom_attributes)
        assert await ensure_search_attributes(client) == []  # idempotent
    finally:
        await env.shutdown()


def test_no_exporter_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert setup_tracing("retailflow-test") is None


async def test_workflow_and_activities_are_traced(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    settings = settings_for(odoo_emulator, temporal_address)
    traced = await connect(TemporalSettings(address=temporal_address))
    async with running_worker(traced, settings):
        sub = await submit_sale(traced, settings, sales_for(store_id, 1)[0], Mode.PER_SALE, "t")
        await traced.get_workflow_handle_for(SalePosting.run, sub.workflow_id).result()
    names = {span.name for span in exporter.get_finished_spans()}
    assert {"StartWorkflow:SalePosting", "RunWorkflow:SalePosting"} <= names
    assert {"RunActivity:post_sale", "RunActivity:decrement_stock"} <= names
    trace_ids = {
        s.context.trace_id for s in exporter.get_finished_spans() if "SalePosting" in s.name
    }
    assert len(trace_ids) == 1  # one trace from the submission down to the activities
