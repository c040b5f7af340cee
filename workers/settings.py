"""Settings from the environment (and a `.env` file): one place, read by every entry point."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from activities.gateway_client import GatewaySettings
from activities.odoo.client import OdooSettings
from activities.pos_client import PosSettings
from domain.validation import field_errors

PostingMode = Literal["per-sale", "batched", "summary"]


class TemporalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TEMPORAL_", env_file=".env", extra="ignore")

    address: str = "localhost:7233"
    namespace: str = "default"
    # Temporal Cloud / mTLS: an API key, or a client certificate and key (PEM file paths).
    api_key: str | None = None
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETAILFLOW_", env_file=".env", extra="ignore")

    task_queue: str = "retailflow"
    odoo_url: str = "http://127.0.0.1:8069"
    odoo_db: str = "retail"
    odoo_login: str = "admin"
    odoo_password: str = "admin"
    odoo_timeout_s: float = 60.0
    # TOML or JSON file overriding the posting profile (accounts, journal, currencies).
    posting_profile: str | None = None
    # Worker sizing: odoorpc blocks, so activities run on this many threads.
    max_concurrent_activities: int = Field(default=16, ge=1)
    workflow_pollers: int = Field(default=20, ge=1)
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
    # POS platform: its API, and the shared secret of each platform that calls us back
    # (JSON, e.g. {"pos-main": "..."}); confirmations signed otherwise are refused.
    pos_url: str = "http://127.0.0.1:8070"
    pos_timeout_s: float = 10.0
    pos_api_key: str | None = None
    pos_secrets: dict[str, str] = Field(default_factory=dict)
    # Where stores send confirmations: the ingress's /v1/pos/confirmations as stores reach it.
    confirmation_url: str | None = None
    # The Odoo pricelist that holds store prices, created on first use.
    store_pricelist: str = "Store prices"
    rollout_concurrency: int = Field(default=100, ge=1, le=2000)

    # Payment gateway (Stripe API): the key, and the API base (unset: Stripe itself).
    gateway_api_key: str = "sk_test_retailflow"
    gateway_api_base: str | None = "http://127.0.0.1:8090"
    # The signing secret of the gateway's webhook endpoint (`POST /v1/gateway/webhook`): events
    # signed otherwise are refused. The default is the gateway simulator's, for the embedded
    # setup like the key above; with Stripe, set the endpoint's own `whsec_...` secret.
    gateway_webhook_secret: str = "whsec_retailflow"
    # TOML/JSON file overriding the refund policy (limits, approver roles, reminder, expiry).
    refund_policy: str | None = None

    # The settlement schedule file (TOML): regions, when their store-days close, tolerance.
    settlement_schedule: str | None = None

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

    temporal: TemporalSettings = Field(default_factory=TemporalSettings)

    def gateway(self) -> GatewaySettings:
        return GatewaySettings(api_key=self.gateway_api_key, api_base=self.gateway_api_base or None)

    def pos(self) -> PosSettings:
        return PosSettings(url=self.pos_url, timeout_s=self.pos_timeout_s, api_key=self.pos_api_key)

    def posting_mode_for(self, store_id: str) -> PostingMode:
        """The store's configured posting mode, or the default."""
        return self.store_posting_modes.get(store_id, self.posting_mode)

    def odoo(self) -> OdooSettings:
        return OdooSettings(
            url=self.odoo_url,
            db=self.odoo_db,
            login=self.odoo_login,
            password=self.odoo_password,
            timeout_s=self.odoo_timeout_s,
        )


def load_settings() -> Settings:
    """Settings from the environment; a bad value is one ValueError naming its variable."""
    try:
        return Settings()
    except SettingsError as e:
        m = re.search(r'field "(\w+)"', str(e))
        var = f"RETAILFLOW_{m.group(1).upper()}" if m else "a RETAILFLOW_ variable"
        raise ValueError(f'settings: {var}: not valid JSON (e.g. {{"pos-main": "secret"}})') from e
    except ValidationError as e:
        problems = "; ".join(
            f"{_env_name(err.field)}: {err.message}" for err in field_errors(e, "settings")
        )
        raise ValueError(f"settings: {problems}") from e


def _env_name(field: str) -> str:
    head, _, rest = field.partition(".")
    if head == "temporal" and rest:
        return f"TEMPORAL_{rest.split('.')[0].upper()}"
    return f"RETAILFLOW_{head.upper()}" + (f" ({rest})" if rest else "")
