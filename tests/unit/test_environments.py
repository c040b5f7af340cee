"""Environments: a profile per environment, and a namespace each that no other may use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from workers.settings import (
    PROFILE_DIR,
    Settings,
    TemporalSettings,
    UnsafeCredentials,
    apply_profile,
    environment_problems,
    profile_file,
    refuse_unsafe_credentials,
)

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def on(environment: str, namespace: str, **kw: object) -> Settings:
    return Settings(
        environment=environment,  # type: ignore[arg-type]
        temporal=TemporalSettings(namespace=namespace),
        **kw,  # type: ignore[arg-type]
    )


def test_each_environment_but_dev_has_a_profile_naming_its_own_namespace() -> None:
    for name in ("demo", "test", "sandbox", "prod"):
        profile = profile_file({"RETAILFLOW_ENVIRONMENT": name})
        assert profile == PROFILE_DIR / f"{name}.env"
        environ: dict[str, str] = {"RETAILFLOW_ENVIRONMENT": name}
        apply_profile(environ)
        assert environ["TEMPORAL_NAMESPACE"] == f"retailflow-{name}"
        # What the profile sets runs there: its namespace is its own.
        assert environment_problems(on(name, environ["TEMPORAL_NAMESPACE"])) == []
        text = profile.read_text()
        assert "PASSWORD=" not in text and "API_KEY=" not in text and "SECRET=" not in text
    assert profile_file({}) is None  # dev: the defaults


def test_the_process_and_dot_env_win_over_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RETAILFLOW_TASK_QUEUE=from-dot-env\n")
    environ = {"RETAILFLOW_ENVIRONMENT": "prod", "TEMPORAL_NAMESPACE": "retailflow-prod-eu"}
    assert apply_profile(environ) == PROFILE_DIR / "prod.env"
    assert environ["TEMPORAL_NAMESPACE"] == "retailflow-prod-eu"  # the process's own
    assert "RETAILFLOW_TASK_QUEUE" not in environ  # .env's, read by the settings themselves
    assert environ["RETAILFLOW_ODOO_DB"] == "retail"  # the profile's


def test_an_unknown_environment_or_profile_is_one_error_naming_the_variable(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="RETAILFLOW_ENVIRONMENT: must be one of dev, demo"):
        profile_file({"RETAILFLOW_ENVIRONMENT": "production"})
    with pytest.raises(ValueError, match="RETAILFLOW_PROFILE: no file"):
        profile_file({"RETAILFLOW_PROFILE": str(tmp_path / "nope.env")})
    own = tmp_path / "eu-prod.env"
    own.write_text("TEMPORAL_NAMESPACE=retailflow-prod-eu\n")
    assert profile_file({"RETAILFLOW_PROFILE": str(own)}) == own


def test_no_environment_runs_in_another_ones_namespace() -> None:
    (problem,) = environment_problems(on("test", "retailflow-prod"))
    assert problem.startswith("environment 'test' on namespace 'retailflow-prod', which is 'prod'")
    assert environment_problems(on("dev", "retailflow-prod"))  # a laptop never reaches prod
    assert environment_problems(on("prod", "default"))  # prod has its own namespace
    assert environment_problems(on("sandbox", "retailflow"))
    assert environment_problems(on("dev", "default")) == []
    assert environment_problems(on("prod", "retailflow-prod-eu")) == []
    assert environment_problems(on("dev", "product-team")) == []  # words, not substrings


def test_prod_never_takes_default_credentials_even_when_allowed() -> None:
    remote = {"odoo_url": "https://odoo.example.com", "gateway_api_base": None}
    lenient = on("sandbox", "retailflow-sandbox", allow_default_credentials=True, **remote)
    refuse_unsafe_credentials(lenient)  # allowed, knowingly, outside prod
    strict = on("prod", "retailflow-prod", allow_default_credentials=True, **remote)
    with pytest.raises(UnsafeCredentials) as refused:
        refuse_unsafe_credentials(strict)
    message = str(refused.value)
    assert "never honoured in prod" in message and "admin/admin" in message
    assert "default API key" in message
    fine = on(
        "prod",
        "retailflow-prod",
        odoo_url="https://odoo.example.com",
        odoo_login="integration",
        odoo_password=SecretStr("a-long-password"),
        gateway_api_base=None,
        gateway_api_key=SecretStr("sk_live_abc"),
        gateway_webhook_secret=SecretStr("whsec_real"),
    )
    refuse_unsafe_credentials(fine)


def test_the_worker_refuses_another_environments_namespace_in_one_line_exit_2() -> None:
    env = {
        **os.environ,
        "RETAILFLOW_ENVIRONMENT": "test",
        "TEMPORAL_NAMESPACE": "retailflow-prod",
        "RETAILFLOW_ODOO_URL": "http://127.0.0.1:8069",
        "TEMPORAL_ADDRESS": "127.0.0.1:9",  # the refusal comes before any connection
    }
    done = subprocess.run(
        [str(BIN / "retailflow"), "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(
        "retailflow: refusing to start: environment 'test' on namespace 'retailflow-prod'"
    )


def test_a_secret_given_one_way_is_not_set_the_other_way_by_the_profile() -> None:
    environ = {"RETAILFLOW_ENVIRONMENT": "test", "RETAILFLOW_ENCRYPTION_KEYS": "k1:..."}
    apply_profile(environ)
    assert "RETAILFLOW_ENCRYPTION_KEYS_FILE" not in environ
    assert environ["RETAILFLOW_CALLERS_FILE"] == "/etc/retailflow/test/callers.toml"
