"""docker-compose.temporal.yml, the Dockerfile and .dockerignore, checked without a Docker engine.

The files are parsed (YAML, Dockerfile instructions) and held against what the code declares: the
settings in workers/settings.py, the search attributes in workflows/search_attributes.py and the
console script in pyproject.toml. Compose `${VAR:-default}` references are resolved to their
defaults, as on a host that sets none of them.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from fnmatch import fnmatch
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from opentelemetry import environment_variables as otel_api_env
from opentelemetry.sdk import environment_variables as otel_sdk_env
from pydantic_settings import BaseSettings
from temporalio.api.enums.v1 import IndexedValueType

from domain.posting import load_profile
from workers.settings import Settings, TemporalSettings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.temporal.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

RETAILFLOW_SERVICES = ("retailflow-worker", "retailflow-ingress")


# --- reading the files ----------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(text: str) -> str:
    """Compose interpolation on a host that sets no variable: `${X:-d}` is d, `${X:?e}` fails."""

    def substitute(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        op = m.group("op")
        if op in (":-", "-"):
            return m.group("arg")
        if op in (":?", "?"):
            raise AssertionError(f"${{{m.group('name')}}} must be set: {m.group('arg')}")
        return ""

    return _VARIABLE.sub(substitute, text)


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), COMPOSE
    return data


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"{COMPOSE.name} has no service {name!r}"
    svc = services[name]
    assert isinstance(svc, dict)
    return svc


def env(name: str) -> dict[str, str]:
    raw = service(name).get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {k: interpolate("" if v is None else str(v)) for k, v in raw.items()}


def published(name: str) -> set[tuple[int, int]]:
    """(host port, container port) pairs a service publishes."""
    pairs = set()
    for port in service(name).get("ports") or []:
        if isinstance(port, dict):
            if "published" in port:
                pairs.add((int(interpolate(str(port["published"]))), int(port["target"])))
            continue
        parts = interpolate(str(port)).split("/")[0].split(":")
        if len(parts) >= 2:  # a lone container port publishes nothing fixed
            pairs.add((int(parts[-2]), int(parts[-1])))
    return pairs


def depends_on(name: str) -> dict[str, str]:
    raw = service(name).get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {k: (v or {}).get("condition", "service_started") for k, v in raw.items()}


def bind_mounts(name: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (named volumes left out)."""
    mounts = {}
    for volume in service(name).get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume["target"]
        else:
            source, target = [*interpolate(str(volume)).split(":"), ""][:2]
        if source.startswith((".", "/")):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def host_path(name: str, container_path: str) -> Path:
    """The host file behind a path inside a service's container, through its bind mounts."""
    path = PurePosixPath(container_path)
    for target, source in bind_mounts(name).items():
        if path.is_relative_to(target):
            return source / path.relative_to(target)
    raise AssertionError(f"{container_path} is not under a bind mount of {name}")


def as_argv(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, ARGs expanded."""
    joined, instructions = "", []
    for line in DOCKERFILE.read_text().splitlines():
        if not joined and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        joined += line
        keyword, _, rest = joined.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        joined = ""
    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args.setdefault(k, v)

    def expand(text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)

    return [(k, expand(rest) if k == "FROM" else rest) for k, rest in instructions]


def exec_form(name: str) -> list[str]:
    values = [rest for keyword, rest in dockerfile() if keyword == name]
    assert values, f"the Dockerfile has no {name}"
    parsed = json.loads(values[-1])  # the last one wins, and only the exec (JSON) form is kept
    assert isinstance(parsed, list)
    return parsed


def argv(name: str) -> list[str]:
    """A service's argv: its compose entrypoint and command, else the image's."""
    svc = service(name)
    entrypoint = as_argv(svc["entrypoint"]) if "entrypoint" in svc else exec_form("ENTRYPOINT")
    command = as_argv(svc["command"]) if "command" in svc else exec_form("CMD")
    return entrypoint + command


def copied_sources() -> set[str]:
    sources = set()
    for keyword, rest in dockerfile():
        if keyword == "COPY" and "--from" not in rest:
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources.update(p.strip("/").removeprefix("./") for p in parts[:-1])
    return sources


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def setting_names() -> set[str]:
    """The environment variables the code reads as settings, from the models themselves."""
    names = set()
    for model in (Settings, TemporalSettings):
        prefix = model.model_config.get("env_prefix", "")
        for field_name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
                continue  # a nested settings model reads its own prefix (TemporalSettings)
            names.add(f"{prefix}{field_name}".upper())
    return names


OTEL_NAMES = {
    name
    for module in (otel_api_env, otel_sdk_env)
    for name in dir(module)
    if name.startswith("OTEL_")
}


def cli_type(indexed_value_type: int) -> str:
    """INDEXED_VALUE_TYPE_KEYWORD_LIST -> KeywordList, as `temporal operator` spells types."""
    name = IndexedValueType.Name(indexed_value_type).removeprefix("INDEXED_VALUE_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def flag_values(args: list[str], flag: str) -> list[str]:
    values = []
    for i, arg in enumerate(args):
        if arg == flag:
            values.append(args[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
    return values


def settings_from(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Settings as the container of `name` would load them: its environment and nothing else."""
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for var in setting_names():
        monkeypatch.delenv(var, raising=False)
    for var, value in env(name).items():
        monkeypatch.setenv(var, value)
    return Settings()


# --- compose: the services and how they connect ---------------------------------------------


def test_the_services_exist_and_every_dependency_is_a_service() -> None:
    services = compose()["services"]
    for name in (
        "postgresql",
        "temporal",
        "temporal-admin-tools",
        "temporal-ui",
        "temporal-create-search-attributes",
        "retailflow-worker",
    ):
        assert name in services, name
    for name in services:
        for dependency in depends_on(name):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_temporal_images_are_official_and_pinned_together() -> None:
    server = service("temporal")["image"]
    repo, _, tag = server.partition(":")
    assert repo == "temporalio/server", "auto-setup is deprecated: the server image, set up by jobs"
    assert re.fullmatch(r"1\.\d+\.\d+", tag), f"pin an exact server version, not {tag!r}"
    assert service("temporal-admin-tools")["image"] == f"temporalio/admin-tools:{tag}"
    for name, svc in compose()["services"].items():
        image = svc.get("image", "")
        if image.startswith("temporalio/admin-tools"):
            assert image == f"temporalio/admin-tools:{tag}", (
                f"{name}: admin-tools follows the server"
            )
        if "build" not in svc:
            assert re.search(r":v?\d", image), f"{name}: {image!r} has no version tag"
    assert re.fullmatch(r"temporalio/ui:2\.\d+\.\d+", service("temporal-ui")["image"])
    assert service("postgresql")["image"].startswith("postgres:16")


def test_temporal_publishes_7233_and_the_ui_8233() -> None:
    assert (7233, 7233) in published("temporal")
    ui_port = int(env("temporal-ui").get("TEMPORAL_UI_PORT", "8080"))
    assert (8233, ui_port) in published("temporal-ui")
    host_ports = [host for name in compose()["services"] for host, _ in published(name)]
    assert len(host_ports) == len(set(host_ports)), f"host ports clash: {sorted(host_ports)}"


def test_the_server_persists_in_postgresql() -> None:
    server, db = env("temporal"), env("postgresql")
    assert server["DB"] in ("postgres12", "postgres12_pgx")
    assert server["POSTGRES_SEEDS"] == "postgresql"
    assert service("postgresql")["image"].startswith("postgres:")
    assert server["DB_PORT"] == "5432"
    assert server["POSTGRES_USER"] == db["POSTGRES_USER"]
    assert server["POSTGRES_PWD"] == db["POSTGRES_PASSWORD"]
    assert server["BIND_ON_IP"] == "0.0.0.0", "bound to 127.0.0.1 no other container reaches it"
    volumes = [str(v) for v in service("postgresql").get("volumes") or []]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in volumes), "data must outlive it"
    assert "healthcheck" in service("postgresql")
    assert "healthcheck" in service("temporal")


def test_the_schema_is_set_up_before_the_server_starts() -> None:
    assert depends_on("temporal-admin-tools") == {"postgresql": "service_healthy"}
    assert depends_on("temporal")["temporal-admin-tools"] == "service_completed_successfully"
    setup, server = env("temporal-admin-tools"), env("temporal")
    for key in ("DB", "DB_PORT", "POSTGRES_SEEDS", "POSTGRES_USER", "POSTGRES_PWD", "DBNAME"):
        assert setup.get(key) == server.get(key), f"schema job and server disagree on {key}"
    script = host_path("temporal-admin-tools", argv("temporal-admin-tools")[-1])
    text = script.read_text()
    assert "temporal-sql-tool" in text and "update-schema" in text
    assert "visibility" in text


def test_every_bind_mount_exists_and_the_dynamic_config_parses() -> None:
    for name in compose()["services"]:
        for target, source in bind_mounts(name).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"
    path = host_path("temporal", env("temporal")["DYNAMIC_CONFIG_FILE_PATH"])
    config = yaml.safe_load(path.read_text())
    assert isinstance(config, dict) and config, path
    for key, values in config.items():
        assert isinstance(values, list) and values, key
        assert all(isinstance(v, dict) and "value" in v for v in values), key


def test_the_ui_points_at_the_temporal_service() -> None:
    ui = env("temporal-ui")
    host, _, port = ui["TEMPORAL_ADDRESS"].partition(":")
    assert host == "temporal"
    assert (7233, int(port)) in published("temporal")
    assert ui.get("TEMPORAL_CORS_ORIGINS")
    assert depends_on("temporal-ui") == {"temporal": "service_healthy"}


def test_one_shot_jobs_do_not_restart_forever() -> None:
    for name in (
        "temporal-admin-tools",
        "temporal-create-namespace",
        "temporal-create-search-attributes",
    ):
        assert service(name).get("restart", "no") not in ("always", "unless-stopped"), name


# --- compose: the search attributes -----------------------------------------------------------


def test_the_search_attributes_created_are_those_of_the_code() -> None:
    args = argv("temporal-create-search-attributes")
    assert args[:4] == ["temporal", "operator", "search-attribute", "create"], args
    names, types = flag_values(args, "--name"), flag_values(args, "--type")
    assert len(names) == len(types), "every --name needs its --type"
    expected = {key.name: cli_type(int(key.indexed_value_type)) for key in SEARCH_ATTRIBUTES}
    assert dict(zip(names, types, strict=True)) == expected
    assert flag_values(args, "--address") == ["temporal:7233"]
    assert (
        depends_on("temporal-create-search-attributes")["temporal-create-namespace"]
        == "service_completed_successfully"
    )


def test_every_client_uses_the_namespace_that_is_created() -> None:
    namespace = env("temporal-create-namespace")["DEFAULT_NAMESPACE"]
    args = argv("temporal-create-search-attributes")
    assert flag_values(args, "--namespace") == [namespace]
    assert env("temporal-ui").get("TEMPORAL_DEFAULT_NAMESPACE", namespace) == namespace
    for name in RETAILFLOW_SERVICES:
        assert env(name)["TEMPORAL_NAMESPACE"] == namespace, name


# --- compose: the retailflow services ---------------------------------------------------------


def test_the_worker_builds_from_the_dockerfile_and_runs_retailflow_worker() -> None:
    build = service("retailflow-worker")["build"]
    if isinstance(build, str):
        build = {"context": build}
    context, dockerfile_name = build["context"], build.get("dockerfile", "Dockerfile")
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / context / dockerfile_name).resolve() == DOCKERFILE
    assert argv("retailflow-worker") == ["retailflow", "worker"]
    assert argv("retailflow-ingress") == ["retailflow", "ingress"]
    for name in RETAILFLOW_SERVICES:
        assert (
            depends_on(name)["temporal-create-search-attributes"]
            == "service_completed_successfully"
        ), name


def test_the_setting_names_are_derived_from_the_code() -> None:
    # Guards the test below against passing on an empty or wrong set of names.
    names = setting_names()
    assert {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "RETAILFLOW_ODOO_URL"} <= names
    assert "RETAILFLOW_TEMPORAL" not in names
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in OTEL_NAMES


@pytest.mark.parametrize("name", RETAILFLOW_SERVICES)
def test_every_variable_set_on_retailflow_is_a_real_setting(name: str) -> None:
    unknown = set(env(name)) - setting_names() - OTEL_NAMES
    assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"
    assert {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "RETAILFLOW_TASK_QUEUE"} <= set(env(name))


def test_the_worker_settings_load_and_reach_temporal_and_odoo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    worker_env = env("retailflow-worker")
    for var in ("RETAILFLOW_ODOO_URL", "RETAILFLOW_ODOO_DB", "RETAILFLOW_ODOO_LOGIN"):
        assert var in worker_env, var
    assert "RETAILFLOW_ODOO_PASSWORD" in worker_env
    settings = settings_from("retailflow-worker", monkeypatch, tmp_path)
    assert settings.temporal.address == "temporal:7233"
    assert settings.odoo_url == "http://host.docker.internal:8069"
    load_profile(settings.posting_profile)  # an empty RETAILFLOW_POSTING_PROFILE would fail here
    extra_hosts = [str(h) for h in service("retailflow-worker").get("extra_hosts") or []]
    assert any(h.startswith("host.docker.internal") for h in extra_hosts), "needed on Linux"


def test_the_ingress_listens_where_it_is_published(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    worker = settings_from("retailflow-worker", monkeypatch, tmp_path)
    settings = settings_from("retailflow-ingress", monkeypatch, tmp_path)
    assert settings.ingress_host == "0.0.0.0"
    assert settings.ingress_port in {container for _, container in published("retailflow-ingress")}
    assert settings.temporal.address == worker.temporal.address
    assert settings.task_queue == worker.task_queue, "the ingress starts work on the worker's queue"


# --- Dockerfile and .dockerignore -------------------------------------------------------------


def test_the_entrypoint_is_the_console_script_and_worker_the_default() -> None:
    scripts = pyproject()["project"]["scripts"]
    entrypoint = exec_form("ENTRYPOINT")
    assert len(entrypoint) == 1 and entrypoint[0] in scripts, (entrypoint, scripts)
    assert exec_form("CMD") == ["worker"]
    package = scripts[entrypoint[0]].split(":")[0].split(".")[0]
    assert package in copied_sources(), f"the script's package {package} is not copied in"


def test_the_image_is_python_311_slim_and_runs_as_non_root() -> None:
    froms = [rest.split()[0] for keyword, rest in dockerfile() if keyword == "FROM"]
    assert froms and froms[-1] == "python:3.11-slim", froms
    users = [rest for keyword, rest in dockerfile() if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_dockerfile_copies_what_pip_install_needs() -> None:
    project = pyproject()
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages, "no packages declared"
    sources = copied_sources()
    assert packages <= sources, f"not copied: {sorted(packages - sources)}"
    assert {"pyproject.toml", project["project"]["readme"]} <= sources
    assert any(
        keyword == "RUN" and re.search(r"pip install[^&]* \.(\s|$)", rest)
        for keyword, rest in dockerfile()
    ), "no `pip install .`"


def test_the_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = [
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for required in (".venv", "var", ".demo", ".pytest_cache", ".env"):
        assert required in patterns, f".dockerignore should exclude {required}"
    for source in copied_sources():
        for pattern in patterns:
            if pattern.startswith("!"):
                continue
            assert not fnmatch(source, pattern), f"{pattern!r} drops {source} from the context"
            assert not fnmatch(source, pattern.removeprefix("**/")), (pattern, source)
