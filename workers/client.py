"""The one Temporal client factory: data converter (with payload encryption), tracing, TLS.
Worker, CLI and tests use it."""

from __future__ import annotations

from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, TLSConfig
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from workers.codec import KeyRing, data_converter, load_key_ring
from workers.settings import TemporalSettings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES


async def connect(
    settings: TemporalSettings | None = None,
    *,
    keys: KeyRing | None = None,
    runtime: Runtime | None = None,
) -> Client:
    """A client whose payloads are encrypted with `keys` (default: the configured ones,
    RETAILFLOW_ENCRYPTION_KEYS[_FILE]). No key configured: EncryptionKeyError, saying how to
    set one, before any connection is made. `runtime`: the SDK runtime (its telemetry: see
    sdk_metrics_runtime); None: the default one."""
    settings = settings or TemporalSettings()
    keys = keys or load_key_ring()
    tls: TLSConfig | bool = settings.tls or bool(settings.api_key)
    if settings.tls_cert and settings.tls_key:
        tls = TLSConfig(
            client_cert=Path(settings.tls_cert).read_bytes(),
            client_private_key=Path(settings.tls_key).read_bytes(),
        )
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        tls=tls,
        data_converter=data_converter(keys),
        interceptors=[TracingInterceptor()],
        runtime=runtime,
    )


def sdk_metrics_runtime(host: str, port: int) -> Runtime:
    """A Temporal runtime whose SDK metrics (workflow and activity task latencies, slots,
    polls, sticky cache...) Prometheus scrapes on host:port. Workers and clients built on it
    report there; create one per process."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{host}:{port}",
                counters_total_suffix=True,
                durations_as_seconds=True,
            )
        )
    )


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register StoreId, BusinessDay, RetailStatus if missing. Returns the names added.

    Works on the dev server and self-hosted clusters; on Temporal Cloud add them once in the
    namespace settings instead (this call is then refused, and the error says so).
    """
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
