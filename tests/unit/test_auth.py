"""Callers, scopes and credentials (workers/auth.py); secrets in settings; the refusal of
default credentials; the edge limits the ingress applies before anything starts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from activities.pos_signing import sign
from domain.limits import oversized_lists, visibility_literal
from workers.auth import (
    Authenticated,
    CallerRegistry,
    Refusal,
    Refused,
    Scope,
    load_callers,
    token_sha256,
)
from workers.demo import write_callers
from workers.settings import (
    Settings,
    credential_problems,
    is_loopback,
    load_settings,
    refuse_unsafe_credentials,
)

BIN = Path(sys.executable).parent
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OLD, NEW = "old-token-7f3a", "new-token-91bc"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rotating(tmp_path: Path, old_not_after: datetime) -> Path:
    return write(
        tmp_path / "callers.toml",
        f"""
[[callers]]
id = "till-1"
scopes = ["sales:write"]
stores = ["S001"]
[[callers.credentials]]
token_sha256 = "{token_sha256(OLD)}"
not_after = {old_not_after.isoformat()}
[[callers.credentials]]
token_sha256 = "{token_sha256(NEW)}"
""",
    )


def test_a_token_is_known_by_its_hash_and_names_its_caller(tmp_path: Path) -> None:
    callers = load_callers(rotating(tmp_path, NOW + timedelta(days=1)), {})
    found = callers.bearer(NEW, now=NOW)
    assert isinstance(found, Authenticated)
    assert found.caller.id == "till-1"
    assert found.caller.scopes == {Scope.SALES_WRITE}
    assert found.caller.may_speak_for("S001") and not found.caller.may_speak_for("S002")
    assert not found.caller.may_speak_for(None)
    assert callers.bearer("guessed", now=NOW) == Refused(Refusal.UNKNOWN_TOKEN)
    # Only the hash is in the file.
    assert NEW not in (tmp_path / "callers.toml").read_text()


def test_rotation_old_and_new_both_work_in_the_window_then_the_old_is_refused(
    tmp_path: Path,
) -> None:
    callers = load_callers(rotating(tmp_path, NOW + timedelta(hours=1)), {})
    assert isinstance(callers.bearer(OLD, now=NOW), Authenticated)
    assert isinstance(callers.bearer(NEW, now=NOW), Authenticated)
    later = NOW + timedelta(hours=1)
    assert callers.bearer(OLD, now=later) == Refused(Refusal.EXPIRED, "till-1")
    assert isinstance(callers.bearer(NEW, now=later), Authenticated)


def test_hmac_credentials_from_file_and_env_rotate_and_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "pos.secret", "file-secret\n")
    monkeypatch.setenv("RF_TEST_POS_SECRET", "env-secret")
    path = write(
        tmp_path / "callers.toml",
        f"""
[[callers]]
id = "pos-2"
scopes = ["confirmations:write"]
[[callers.credentials]]
hmac_secret_file = "{tmp_path / "pos.secret"}"
not_after = {(NOW + timedelta(minutes=10)).isoformat()}
[[callers.credentials]]
hmac_secret_env = "RF_TEST_POS_SECRET"
""",
    )
    callers = load_callers(path, {})
    body, ts = b'{"a": 1}', str(int(NOW.timestamp()))

    def check(secret: str, at: datetime, caller: str = "pos-2") -> Authenticated | Refused:
        return callers.signed(caller, ts, body, sign(secret, ts, body), now=at)

    assert isinstance(check("file-secret", NOW), Authenticated)
    assert isinstance(check("env-secret", NOW), Authenticated)
    assert check("wrong", NOW) == Refused(Refusal.BAD_SIGNATURE, "pos-2")
    assert check("file-secret", NOW, "pos-evil") == Refused(Refusal.UNKNOWN_CALLER, "pos-evil")
    # Ten minutes on: the file secret has expired (the timestamp moves with the clock).
    at = NOW + timedelta(minutes=10)
    ts = str(int(at.timestamp()))
    assert check("file-secret", at) == Refused(Refusal.EXPIRED, "pos-2")
    assert isinstance(check("env-secret", at), Authenticated)


def test_pos_secrets_are_callers_for_confirmations_only() -> None:
    callers = load_callers(None, {"pos-main": SecretStr("s3")})
    body, ts = b"{}", str(int(NOW.timestamp()))
    found = callers.signed("pos-main", ts, body, sign("s3", ts, body), now=NOW)
    assert isinstance(found, Authenticated)
    assert found.caller.scopes == {Scope.CONFIRMATIONS_WRITE}


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[[callers]]\nid = "a"\nscopes = ["sales:write"]\n[[callers.credentials]]\n'
            'token_sha256 = "abc"\n',
            "callers[0].credentials[0].token_sha256: must be 64 hex digits",
        ),
        (
            '[[callers]]\nid = "a"\nscopes = ["sales:delete"]\n[[callers.credentials]]\n'
            f'token_sha256 = "{"0" * 64}"\n',
            "callers[0].scopes[0]: input should be 'sales:write'",
        ),
        (
            '[[callers]]\nid = "a"\nscopes = ["sales:write"]\n[[callers.credentials]]\n'
            f'token_sha256 = "{"0" * 64}"\nhmac_secret = "x"\n',
            "give exactly one of token_sha256, hmac_secret",
        ),
        (
            '[[callers]]\nid = "a"\nscopes = ["sales:write"]\n[[callers.credentials]]\n'
            'hmac_secret_env = "RF_TEST_UNSET_VARIABLE"\n',
            "$RF_TEST_UNSET_VARIABLE is not set",
        ),
        (
            '[[callers]]\nid = "a"\nscopes = ["sales:write"]\n[[callers.credentials]]\n'
            f'token_sha256 = "{"0" * 64}"\n'
            '[[callers]]\nid = "b"\nscopes = ["sales:read"]\n[[callers.credentials]]\n'
            f'token_sha256 = "{"0" * 64}"\n',
            "callers 'a' and 'b' share a token",
        ),
        (
            '[[callers]]\nid = "pos-main"\nscopes = ["sales:write"]\n[[callers.credentials]]\n'
            f'token_sha256 = "{"0" * 64}"\n',
            "caller 'pos-main' is in both RETAILFLOW_CALLERS_FILE and RETAILFLOW_POS_SECRETS",
        ),
        (
            '[[callers]]\nid = "a"\nscopes = ["sales:write"]\n[[callers.credentials]]\n'
            f'token_sha256 = "{"0" * 64}"\nnot_after = 2026-12-01T00:00:00\n',
            "not_after: input should have timezone info",
        ),
    ],
)
def test_a_bad_callers_file_is_one_error_naming_the_key(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = write(tmp_path / "callers.toml", toml)
    with pytest.raises(ValueError) as e:
        load_callers(path, {"pos-main": SecretStr("the-pos-secret")})
    assert expected in str(e.value)
    assert str(path) in str(e.value)
    assert "the-pos-secret" not in str(e.value)


def test_the_registry_rereads_a_changed_file_and_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = rotating(tmp_path, NOW + timedelta(days=1))
    registry = CallerRegistry(path, {})
    assert isinstance(registry.current().bearer(OLD, now=NOW), Authenticated)
    # The rotation ends: the old token is removed from the file, no restart.
    write(path, path.read_text().split("[[callers.credentials]]")[0])
    path.write_text(
        path.read_text() + f'[[callers.credentials]]\ntoken_sha256 = "{token_sha256(NEW)}"\n'
    )
    os.utime(path, ns=(1, 1))
    assert registry.current().bearer(OLD, now=NOW) == Refused(Refusal.UNKNOWN_TOKEN)
    assert isinstance(registry.current().bearer(NEW, now=NOW), Authenticated)
    # A broken edit: logged, the callers loaded before stay in force.
    write(path, "[[callers]]\nid = ")
    os.utime(path, ns=(2, 2))
    with caplog.at_level(logging.ERROR, logger="retailflow.auth"):
        assert isinstance(registry.current().bearer(NEW, now=NOW), Authenticated)
    assert "keeping the previous" in caplog.text


# -- settings: secrets ---------------------------------------------------------------------


def test_secrets_are_never_in_repr_and_come_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "odoo.pw", "odoo-pw-1234\n")
    write(tmp_path / "pos.json", '{"pos-main": "pos-secret-5678"}')
    monkeypatch.setenv("RETAILFLOW_ODOO_PASSWORD_FILE", str(tmp_path / "odoo.pw"))
    monkeypatch.setenv("RETAILFLOW_POS_SECRETS_FILE", str(tmp_path / "pos.json"))
    monkeypatch.setenv("RETAILFLOW_GATEWAY_API_KEY", "sk_test_key-9999")
    monkeypatch.setenv("RETAILFLOW_GATEWAY_WEBHOOK_SECRET", "whsec_abcd")
    monkeypatch.setenv("RETAILFLOW_POS_API_KEY", "pos-api-key-4242")
    monkeypatch.setenv("TEMPORAL_API_KEY", "temporal-key-7777")
    settings = load_settings()
    assert settings.odoo_password.get_secret_value() == "odoo-pw-1234"
    assert settings.pos_secrets["pos-main"].get_secret_value() == "pos-secret-5678"
    assert settings.odoo().password == "odoo-pw-1234"
    assert settings.gateway().api_key == "sk_test_key-9999"
    assert settings.pos().api_key == "pos-api-key-4242"
    # The adapters' own settings, too: an exception or a log may show them.
    adapters = repr(settings.odoo()) + repr(settings.gateway()) + repr(settings.pos())
    shown = repr(settings) + str(settings) + settings.model_dump_json() + adapters
    secrets = ("odoo-pw-1234", "pos-secret-5678", "sk_test_key-9999", "whsec_abcd", "4242", "7777")
    for secret in secrets:
        assert secret not in shown


def test_a_secret_file_problem_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAILFLOW_ODOO_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"RETAILFLOW_ODOO_PASSWORD_FILE .*missing: cannot read"):
        load_settings()
    write(tmp_path / "pw", "x")
    monkeypatch.setenv("RETAILFLOW_ODOO_PASSWORD_FILE", str(tmp_path / "pw"))
    monkeypatch.setenv("RETAILFLOW_ODOO_PASSWORD", "y")
    with pytest.raises(ValueError, match=r"RETAILFLOW_ODOO_PASSWORD and .*_FILE are both set"):
        load_settings()
    monkeypatch.delenv("RETAILFLOW_ODOO_PASSWORD")
    write(tmp_path / "pos.json", "[1]")
    monkeypatch.setenv("RETAILFLOW_POS_SECRETS_FILE", str(tmp_path / "pos.json"))
    with pytest.raises(ValueError, match=r"RETAILFLOW_POS_SECRETS_FILE .*not a JSON object"):
        load_settings()


# -- no default credentials outside the demo -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8069", True),
        ("http://localhost:8069", True),
        ("http://[::1]:8069", True),
        ("http://127.8.9.1", True),
        ("https://odoo.example.com", False),
        ("http://10.0.0.5:8069", False),
        ("http://localhost.example.com", False),
        (None, False),
    ],
)
def test_loopback(url: str | None, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_default_credentials_are_refused_off_loopback_only() -> None:
    assert credential_problems(Settings()) == []  # everything on this machine: the demo
    remote_odoo = Settings(odoo_url="https://odoo.example.com")
    (problem,) = credential_problems(remote_odoo)
    assert "Odoo at https://odoo.example.com with the default login admin/admin" in problem
    assert credential_problems(remote_odoo.model_copy(update={"odoo_login": "sync"})) == []
    stripe = Settings(gateway_api_base=None)
    assert [p.split(" with ")[1].split(" (")[0] for p in credential_problems(stripe)] == [
        "the default API key",
        "the default webhook secret",
    ]
    live = Settings(gateway_api_key=SecretStr("sk_live_abc123"))
    (problem,) = credential_problems(live)
    assert "a live gateway key (sk_live_...) in environment 'dev'" in problem
    assert "abc123" not in problem
    assert credential_problems(live.model_copy(update={"environment": "prod"})) == []
    allowed = remote_odoo.model_copy(update={"allow_default_credentials": True})
    assert credential_problems(allowed) == []
    with pytest.raises(ValueError, match=r"^refusing to start: Odoo at https://odoo.example"):
        refuse_unsafe_credentials(remote_odoo)


def test_the_worker_refuses_admin_admin_on_a_remote_odoo_in_one_line_exit_2() -> None:
    env = {
        **os.environ,
        "RETAILFLOW_ODOO_URL": "https://odoo.example.com",
        # Nothing listens there: the refusal comes before any connection.
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
    }
    env.pop("RETAILFLOW_ALLOW_DEFAULT_CREDENTIALS", None)
    done = subprocess.run(
        [str(BIN / "retailflow"), "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "retailflow: refusing to start: Odoo at https://odoo.example.com with the default "
        "login admin/admin (set RETAILFLOW_ODOO_LOGIN and RETAILFLOW_ODOO_PASSWORD[_FILE]) "
        "(RETAILFLOW_ALLOW_DEFAULT_CREDENTIALS=true to run anyway)"
    ]
    assert "Traceback" not in done.stderr + done.stdout


def test_the_ingress_refuses_a_bad_callers_file_in_one_line_exit_2(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RETAILFLOW_CALLERS_FILE": str(write(tmp_path / "callers.toml", "[[callers]]\n")),
        "RETAILFLOW_INGRESS_PORT": "9",
    }
    done = subprocess.run(
        [str(BIN / "retailflow"), "ingress"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"retailflow: callers file {tmp_path / 'callers.toml'}: ")
    assert "callers[0].id: is required" in line


def test_the_cli_refuses_a_store_that_would_change_a_visibility_query() -> None:
    env = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:9"}
    done = subprocess.run(
        [str(BIN / "retailflow"), "sale", "exceptions", "--store", 'S1" OR StoreId != "x'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "retailflow: --store: 'S1\" OR StoreId != \"x' holds a quote, backslash or control "
        "character"
    ]


# -- edge limits ---------------------------------------------------------------------------


def test_too_many_lines_or_payments_are_named() -> None:
    raw = {"lines": [{}] * 501, "payments": [{}] * 21}
    assert oversized_lists(raw) == [
        ("lines", "at most 500 lines, got 501"),
        ("payments", "at most 20 payments, got 21"),
    ]
    assert oversized_lists({"lines": [{}] * 500, "payments": "x"}) == []
    assert oversized_lists("text") == []


@pytest.mark.parametrize(
    "value", ['S1" OR WorkflowType = "Refund', "S1'", "S1\\", "S\n1", "", "S" * 65]
)
def test_a_value_that_could_change_a_visibility_query_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"^store_id: "):
        visibility_literal(value, "store_id")


def test_a_plain_id_is_quoted() -> None:
    assert visibility_literal("S001") == '"S001"'


def test_the_demo_writes_its_own_callers_with_fresh_credentials(tmp_path: Path) -> None:
    secret, path = write_callers(tmp_path)
    token = (tmp_path / "pos-main.token").read_text().strip()
    (tmp_path / "again").mkdir()
    again, _ = write_callers(tmp_path / "again")
    callers = load_callers(path, {})
    body, ts = b"{}", str(int(NOW.timestamp()))
    signed = callers.signed("pos-main", ts, body, sign(secret, ts, body), now=NOW)
    by_token = callers.bearer(token, now=NOW)
    assert isinstance(signed, Authenticated) and isinstance(by_token, Authenticated)
    assert by_token.caller.scopes == {
        Scope.SALES_WRITE,
        Scope.SALES_READ,
        Scope.CONFIRMATIONS_WRITE,
    }
    assert secret != again  # made for each run
    assert secret not in path.read_text() and token not in path.read_text()
    assert (tmp_path / "pos-main.secret").stat().st_mode & 0o077 == 0
