"""Settings from the environment (and a `.env` file): one place, read by every entry point."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from activities.gateway_client import GatewaySettings
from activities.odoo.client import OdooSettings
from activities.odoo.limiter import LimiterSettings
from activities.pos_client import PosSettings
from domain.validation import field_errors

PostingMode = Literal["per-sale", "batched", "summary"]
Environment = Literal["dev", "demo", "test", "sandbox", "prod"]
ENVIRONMENTS: tuple[str, ...] = ("dev", "demo", "test", "sandbox", "prod")
# Each environment's profile: a dotenv file of its non-secret settings (namespace, task queue,
# where its systems are), read under the process's own environment and `.env`
# (docs/security.md, "Environments").
PROFILE_DIR = Path(__file__).resolve().parent.parent / "deploy" / "environments"

# The credentials that work out of the box against the embedded simulators, and nowhere else.
DEFAULT_ODOO_LOGIN = DEFAULT_ODOO_PASSWORD = "admin"
DEFAULT_GATEWAY_API_KEY = "sk_test_retailflow"
DEFAULT_GATEWAY_WEBHOOK_SECRET = "whsec_retailflow"
# Secrets that may instead be read from a file: `RETAILFLOW_<NAME>_FILE` (trailing newline
# dropped; pos_secrets: a JSON object).
SECRET_FIELDS = (
    "odoo_password",
    "gateway_api_key",
    "gateway_webhook_secret",
    "pos_api_key",
    "pos_secrets",
)


class TemporalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TEMPORAL_", env_file=".env", extra="ignore")

    address: str = "localhost:7233"
    namespace: str = "default"
    # Temporal Cloud / mTLS: an API key, or a client certificate and key (PEM file paths).
    api_key: SecretStr | None = None
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETAILFLOW_", env_file=".env", extra="ignore")

    task_queue: str = "retailflow"
    odoo_url: str = "http://127.0.0.1:8069"
    odoo_db: str = "retail"
    odoo_login: str = "admin"
    odoo_password: SecretStr = SecretStr(DEFAULT_ODOO_PASSWORD)
    odoo_password_file: Path | None = None
    odoo_timeout_s: float = 60.0
    # TOML or JSON file overriding the posting profile (accounts, journal, currencies).
    posting_profile: str | None = None
    # Worker sizing: odoorpc blocks, so activities run on threads: this many for everything
    # but Odoo RPCs, plus odoo_concurrency_max + odoo_max_waiting (workers/worker.py).
    max_concurrent_activities: int = Field(default=16, ge=1)
    workflow_pollers: int = Field(default=20, ge=1)
    # The adaptive limit on concurrent Odoo RPCs (docs/observability.md, "Back-pressure"):
    # between min and max, cut when a call fails with strain or takes over the latency target;
    # a call waits at most odoo_slot_wait_s for a slot, and at most odoo_max_waiting wait.
    odoo_concurrency_min: int = Field(default=2, ge=1)
    odoo_concurrency_max: int = Field(default=16, ge=1)
    odoo_latency_target_s: float = Field(default=5.0, gt=0)
    odoo_slot_wait_s: float = Field(default=20.0, gt=0)
    odoo_max_waiting: int = Field(default=8, ge=0)
    # Micro-batching (StoreLedger) knobs used when a ledger starts.
    batch_size: int = Field(default=100, ge=1, le=1000)
    batch_max_age_s: float = Field(default=2.0, gt=0)
    ledger_idle_close_s: float = Field(default=1800.0, gt=0)
    # Summary mode books a whole batch in one entry: the bigger the batch, the fewer records
    # Odoo writes (docs/architecture.md, "Summary posting").
    summary_batch_size: int = Field(default=500, ge=1, le=2000)
    # How a sale is booked when its submission names no mode: per store (JSON, e.g.
    # {"S001": "summary"}), else the default.
    posting_mode: PostingMode = "per-sale"
    store_posting_modes: dict[str, PostingMode] = Field(default_factory=dict)
    # Ingress HTTP API.
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    # Who may call it: the callers file (TOML, docs/security.md "Callers and scopes").
    callers_file: Path | None = None
    # A request whose body has not arrived in full after this long is answered 408; one not
    # answered after this long is answered 503 (send it again: sales are idempotent).
    ingress_body_timeout_s: float = Field(default=10.0, gt=0)
    ingress_request_timeout_s: float = Field(default=30.0, gt=0)
    # An idle keep-alive connection is closed after this long; request line and headers
    # together are at most this many bytes.
    ingress_keep_alive_s: int = Field(default=5, ge=1)
    ingress_max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1 << 20)
    # Load shedding: a sale is answered 429 (nothing started) while more than this many sales
    # are Posting, overall or for its store (0: no limit); the counts are read at most once
    # per ingress_backlog_cache_s.
    ingress_max_backlog: int = Field(default=0, ge=0)
    ingress_max_store_backlog: int = Field(default=0, ge=0)
    ingress_backlog_cache_s: float = Field(default=5.0, gt=0, le=300)
    # POS platform: its API, and the shared secret of each platform that calls us back
    # (JSON, e.g. {"pos-main": "..."}); confirmations signed otherwise are refused.
    pos_url: str = "http://127.0.0.1:8070"
    pos_timeout_s: float = 10.0
    pos_api_key: SecretStr | None = None
    pos_api_key_file: Path | None = None
    pos_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    pos_secrets_file: Path | None = None
    # Where stores send confirmations: the ingress's /v1/pos/confirmations as stores reach it.
    confirmation_url: str | None = None
    # The Odoo pricelist that holds store prices, created on first use.
    store_pricelist: str = "Store prices"
    rollout_concurrency: int = Field(default=100, ge=1, le=2000)

    # Payment gateway (Stripe API): the key, and the API base (unset: Stripe itself).
    gateway_api_key: SecretStr = SecretStr(DEFAULT_GATEWAY_API_KEY)
    gateway_api_key_file: Path | None = None
    gateway_api_base: str | None = "http://127.0.0.1:8090"
    # The signing secret of the gateway's webhook endpoint (`POST /v1/gateway/webhook`): events
    # signed otherwise are refused. The default is the gateway simulator's, for the embedded
    # setup like the key above; with Stripe, set the endpoint's own `whsec_...` secret.
    gateway_webhook_secret: SecretStr = SecretStr(DEFAULT_GATEWAY_WEBHOOK_SECRET)
    gateway_webhook_secret_file: Path | None = None
    # TOML/JSON file overriding the refund policy (limits, approver roles, reminder, expiry).
    refund_policy: str | None = None
    # TOML/JSON loyalty policy (points per currency unit, per-SKU-prefix rules): docs/customers.md.
    loyalty_policy: str | None = None

    # The settlement schedule file (TOML): regions, when their store-days close, tolerance.
    settlement_schedule: str | None = None

    # Which environment this is: its profile (deploy/environments/{environment}.env, or
    # RETAILFLOW_PROFILE) sets its namespace; the namespace must be its own, and a live gateway
    # key (`sk_live_...`) is refused outside `prod`.
    environment: Environment = "dev"
    # The worker and the ingress refuse the simulators' default credentials against a
    # non-loopback Odoo or gateway, unless this is set.
    allow_default_credentials: bool = False

    # The audit log (append-only SQLite): the worker's AuditTrail collector writes it and
    # `retailflow audit export` reads it, so both need the same file.
    audit_db: str = "var/audit.db"
    # The key of `--mask` exports' pseudonyms (at least 16 bytes), or a file holding it; unset:
    # a random key per export (pseudonyms then do not match across exports).
    masking_key: SecretStr | None = None
    masking_key_file: str | None = None
    # Approvals (workers/identity.py). Public keys that sign requester and approver assertions
    # (`kid=key` entries, by comma or line; the file may also be an identity provider's JWKS),
    # and the longest an assertion may be valid.
    approval_public_keys: str | None = None
    approval_public_keys_file: str | None = None
    approval_max_lifetime_s: float = Field(default=900.0, gt=0, le=86400)
    approval_clock_skew_s: float = Field(default=30.0, ge=0, le=600)
    # This process as an issuer: its private key file, the name it signs as, the users file
    # (subjects, display names, roles, password hashes), and, for the CLI, who it acts for.
    identity_key_file: str | None = None
    identity_issuer: str = "retailflow"
    identity_subject: str | None = None
    users_file: str | None = None
    assertion_lifetime_s: float = Field(default=300.0, gt=0, le=86400)
    # How long a login to the approvals inbox lasts.
    inbox_session_s: float = Field(default=3600.0, gt=0, le=86400)

    # Metrics (docs/observability.md, "Metrics"): the worker serves the project's metrics on
    # this port and the Temporal SDK's on the other (0: not served), on this address. Keep it
    # on loopback or a private network: the endpoints are not authenticated.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    sdk_metrics_port: int = Field(default=0, ge=0, le=65535)
    # How often the worker reads business gauges (counts by RetailStatus) from visibility.
    business_metrics_interval_s: float = Field(default=30.0, ge=1)

    temporal: TemporalSettings = Field(default_factory=TemporalSettings)

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name in SECRET_FIELDS:
            path = data.get(f"{name}_file")
            if path in (None, ""):
                continue
            var = f"RETAILFLOW_{name.upper()}"
            if data.get(name) not in (None, "", {}):
                raise ValueError(f"{var} and {var}_FILE are both set: keep one")
            try:
                text = Path(path).read_text().strip()
            except OSError as e:
                raise ValueError(f"{var}_FILE {path}: cannot read: {e.strerror}") from e
            if name == "pos_secrets":
                try:
                    value: Any = json.loads(text)
                except json.JSONDecodeError:
                    value = None
                if not isinstance(value, dict):
                    raise ValueError(
                        f'{var}_FILE {path}: not a JSON object (e.g. {{"pos-main": "secret"}})'
                    )
                data[name] = value
            else:
                if not text:
                    raise ValueError(f"{var}_FILE {path}: empty")
                data[name] = text
        return data

    @model_validator(mode="after")
    def _odoo_concurrency_range(self) -> Settings:
        if self.odoo_concurrency_min > self.odoo_concurrency_max:
            raise ValueError(
                "RETAILFLOW_ODOO_CONCURRENCY_MIN must not exceed RETAILFLOW_ODOO_CONCURRENCY_MAX "
                f"(got {self.odoo_concurrency_min} > {self.odoo_concurrency_max})"
            )
        return self

    def gateway(self) -> GatewaySettings:
        return GatewaySettings(
            api_key=self.gateway_api_key.get_secret_value(), api_base=self.gateway_api_base or None
        )

    def pos(self) -> PosSettings:
        return PosSettings(
            url=self.pos_url,
            timeout_s=self.pos_timeout_s,
            api_key=self.pos_api_key.get_secret_value() if self.pos_api_key else None,
        )

    def posting_mode_for(self, store_id: str) -> PostingMode:
        """The store's configured posting mode, or the default."""
        return self.store_posting_modes.get(store_id, self.posting_mode)

    def odoo(self) -> OdooSettings:
        return OdooSettings(
            url=self.odoo_url,
            db=self.odoo_db,
            login=self.odoo_login,
            password=self.odoo_password.get_secret_value(),
            timeout_s=self.odoo_timeout_s,
            limiter=LimiterSettings(
                min_limit=self.odoo_concurrency_min,
                max_limit=self.odoo_concurrency_max,
                latency_target_s=self.odoo_latency_target_s,
                wait_timeout_s=self.odoo_slot_wait_s,
                max_waiting=self.odoo_max_waiting,
            ),
        )


def profile_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """The profile of the environment named by RETAILFLOW_ENVIRONMENT (or RETAILFLOW_PROFILE,
    a file of one's own); None for `dev` without a profile file. Raises ValueError for an
    unknown environment or a profile that does not exist."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("RETAILFLOW_PROFILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ValueError(f"settings: RETAILFLOW_PROFILE: no file {explicit}")
        return path
    name = environ.get("RETAILFLOW_ENVIRONMENT", "dev").strip().lower()
    if name not in ENVIRONMENTS:
        raise ValueError(
            f"settings: RETAILFLOW_ENVIRONMENT: must be one of {', '.join(ENVIRONMENTS)}, "
            f"got {name[:40]!r}"
        )
    path = PROFILE_DIR / f"{name}.env"
    return path if path.is_file() else None


def apply_profile(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """Put the environment's profile under the process's settings: each of its values that
    neither the process environment nor `.env` sets becomes an environment variable, so every
    settings model and every process started from here sees it. Returns the profile used."""
    environ = os.environ if environ is None else environ
    profile = profile_file(environ)
    if profile is None:
        return None
    local = dotenv_values(".env") if Path(".env").is_file() else {}
    for key, value in dotenv_values(profile).items():
        # A setting given either way (`X` or `X_FILE`) here is not the profile's to set.
        base = key.removesuffix("_FILE")
        given = {base, f"{base}_FILE"} & (set(environ) | set(local))
        if value is not None and not given:
            environ[key] = value
    return profile


def load_settings() -> Settings:
    """Settings from the environment; a bad value is one ValueError naming its variable.

    Read in this order, later winning: the environment's profile (apply_profile), `.env`,
    the process's environment variables."""
    apply_profile()
    try:
        return Settings()
    except SettingsError as e:
        m = re.search(r'field "(\w+)"', str(e))
        var = f"RETAILFLOW_{m.group(1).upper()}" if m else "a RETAILFLOW_ variable"
        raise ValueError(f'settings: {var}: not valid JSON (e.g. {{"pos-main": "secret"}})') from e
    except ValidationError as e:
        # An error of the whole model (a secret's file) names its variable itself.
        problems = "; ".join(
            err.message if err.field == "settings" else f"{_env_name(err.field)}: {err.message}"
            for err in field_errors(e, "settings")
        )
        raise ValueError(f"settings: {problems}") from e


class UnsafeCredentials(ValueError):
    """Default or live credentials where they must not be used: the worker and the ingress
    do not start."""


def is_loopback(url: str | None) -> bool:
    """True when the URL's host is this machine (`localhost` or a loopback address). No name
    is resolved: any other host name counts as remote."""
    if not url:
        return False
    host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credential_problems(settings: Settings) -> list[str]:
    """Why these settings must not run (empty: they may). Never quotes a secret."""
    if settings.allow_default_credentials and settings.environment != "prod":
        return []
    problems = []
    odoo_default = (
        settings.odoo_login == DEFAULT_ODOO_LOGIN
        and settings.odoo_password.get_secret_value() == DEFAULT_ODOO_PASSWORD
    )
    if odoo_default and not is_loopback(settings.odoo_url):
        problems.append(
            f"Odoo at {settings.odoo_url} with the default login admin/admin "
            "(set RETAILFLOW_ODOO_LOGIN and RETAILFLOW_ODOO_PASSWORD[_FILE])"
        )
    # No API base: Stripe itself.
    if not is_loopback(settings.gateway_api_base):
        where = settings.gateway_api_base or "Stripe"
        if settings.gateway_api_key.get_secret_value() == DEFAULT_GATEWAY_API_KEY:
            problems.append(
                f"the gateway at {where} with the default API key "
                "(set RETAILFLOW_GATEWAY_API_KEY[_FILE])"
            )
        if settings.gateway_webhook_secret.get_secret_value() == DEFAULT_GATEWAY_WEBHOOK_SECRET:
            problems.append(
                f"the gateway at {where} with the default webhook secret "
                "(set RETAILFLOW_GATEWAY_WEBHOOK_SECRET[_FILE])"
            )
    if (
        settings.gateway_api_key.get_secret_value().startswith("sk_live_")
        and settings.environment != "prod"
    ):
        problems.append(
            f"a live gateway key (sk_live_...) in environment {settings.environment!r} "
            "(only RETAILFLOW_ENVIRONMENT=prod uses one)"
        )
    return problems


def environment_problems(settings: Settings) -> list[str]:
    """Why these settings would cross environments (empty: they do not). The namespace is the
    wall between environments: it must not name another one (`retailflow-prod` from a `test`
    worker), and outside `dev` it must name its own; `prod` never runs on the simulators'
    default credentials, whatever RETAILFLOW_ALLOW_DEFAULT_CREDENTIALS says."""
    env, namespace = settings.environment, settings.temporal.namespace
    words = set(re.split(r"[^a-z0-9]+", namespace.lower()))
    problems = []
    others = sorted(words & (set(ENVIRONMENTS) - {env}))
    if others:
        problems.append(
            f"environment {env!r} on namespace {namespace!r}, which is {others[0]!r}'s "
            "(set TEMPORAL_NAMESPACE, or RETAILFLOW_ENVIRONMENT)"
        )
    elif env != "dev" and env not in words:
        problems.append(
            f"environment {env!r} on namespace {namespace!r}: each environment has its own "
            f"namespace, e.g. retailflow-{env} (its profile sets it)"
        )
    if env == "prod" and settings.allow_default_credentials:
        problems.append("RETAILFLOW_ALLOW_DEFAULT_CREDENTIALS is never honoured in prod")
    return problems


def refuse_unsafe_credentials(settings: Settings) -> None:
    """Raises UnsafeCredentials, one line, when the settings hold credentials that must not be
    used here (`RETAILFLOW_ALLOW_DEFAULT_CREDENTIALS=true` lifts it, outside prod), or would
    run in another environment's namespace."""
    crossing = environment_problems(settings)
    problems = crossing + credential_problems(settings)
    if problems:
        hint = "" if crossing else " (RETAILFLOW_ALLOW_DEFAULT_CREDENTIALS=true to run anyway)"
        raise UnsafeCredentials("refusing to start: " + "; ".join(problems) + hint)


def _env_name(field: str) -> str:
    head, _, rest = field.partition(".")
    if head == "temporal" and rest:
        return f"TEMPORAL_{rest.split('.')[0].upper()}"
    return f"RETAILFLOW_{head.upper()}" + (f" ({rest})" if rest else "")
