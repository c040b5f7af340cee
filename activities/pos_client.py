"""The POS platform adapter: an async HTTP client for a fleet's price-command and catalog APIs
and the stores' own journals (transactions rung up, Z-reports).

Failures are classified like the Odoo adapter's: a store the platform cannot reach (504),
transport faults and 5xx are retryable (`PosUnavailable`); a refused request (4xx) is not,
except 429 (rate limited): it and a 503, are retried after the `Retry-After` the platform
advises (`PosBusy`); the caller's deadline still bounds the retries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
from temporalio.exceptions import ApplicationError

from workers.metrics import external_call


class PosUnavailable(Exception):
    """The platform or the store did not answer: try again later."""


# A Retry-After beyond this is not believed (the command's deadline bounds retries anyway).
MAX_RETRY_AFTER = timedelta(minutes=10)
BUSY_STATUSES = (429, 503)


def retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """The delay a `Retry-After` header asks for (seconds or an HTTP date), capped; None when
    absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    delay: timedelta | None = None
    if text.isdigit():
        delay = timedelta(seconds=min(int(text[:9]), MAX_RETRY_AFTER.total_seconds()))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = max(when - (now or datetime.now(UTC)), timedelta(0))
    return min(delay, MAX_RETRY_AFTER)


def busy(method: str, path: str, resp: httpx.Response) -> ApplicationError:
    """429/503: retryable, after the advised delay when there is one (Temporal's backoff
    otherwise). Never a store's rejection."""
    delay = retry_after(resp.headers.get("Retry-After"))
    advice = f", retry after {delay.total_seconds():g} s" if delay is not None else ""
    return ApplicationError(
        f"{method} {path}: HTTP {resp.status_code} (busy{advice}) {resp.text[:200]}",
        {"status_code": resp.status_code},
        type="PosBusy",
        non_retryable=False,
        next_retry_delay=delay,
    )


def checked(method: str, path: str, resp: httpx.Response) -> dict[str, Any]:
    """The JSON answer, or the failure classified (busy, unavailable, refused, not found)."""
    if resp.status_code in BUSY_STATUSES:
        raise busy(method, path, resp)
    if resp.status_code >= 500:
        raise PosUnavailable(f"{method} {path}: HTTP {resp.status_code} {resp.text[:200]}")
    if resp.status_code >= 400:
        raise ApplicationError(
            f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}",
            {"status_code": resp.status_code},
            type="PosRefused" if resp.status_code != 404 else "PosNotFound",
            non_retryable=True,
        )
    body: dict[str, Any] = resp.json()
    return body


# A path's ids become placeholders in the metrics' `operation` (a label per store would be
# thousands of series).
_PATH_IDS = (
    (re.compile(r"/stores/[^/]+"), "/stores/{store_id}"),
    (re.compile(r"/price-commands/[^/]+"), "/price-commands/{command_id}"),
    (re.compile(r"/catalog-commands/[^/]+"), "/catalog-commands/{command_id}"),
    (re.compile(r"/transactions/[^/]+"), "/transactions/{txn_id}"),
)


def operation(method: str, path: str) -> str:
    """The request as a metrics label: `GET /v1/stores/{store_id}/z-report`."""
    for pattern, placeholder in _PATH_IDS:
        path = pattern.sub(placeholder, path)
    return f"{method} {path}"


def call_outcome(exc: Exception) -> str:
    """How a failed request is counted (workers/metrics.py)."""
    if isinstance(exc, PosUnavailable):
        return "transport" if isinstance(exc.__cause__, httpx.TransportError) else "server_error"
    if isinstance(exc, ApplicationError):
        return "server_error" if exc.type == "PosBusy" else "business_refusal"
    return "transport"


@dataclass(frozen=True)
class PosSettings:
    url: str = "http://127.0.0.1:8070"
    timeout_s: float = 10.0
    api_key: str | None = field(default=None, repr=False)  # never in a repr or a log


class PosClient:
    def __init__(
        self, settings: PosSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._http = httpx.AsyncClient(
            base_url=settings.url,
            timeout=settings.timeout_s,
            headers=headers,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with external_call("pos", operation(method, path), call_outcome):
            try:
                resp = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                raise PosUnavailable(f"POS platform unreachable: {e!r}") from e
            return checked(method, path, resp)

    async def stores(self, region: str | None = None) -> list[dict[str, Any]]:
        params = {"region": region} if region else {}
        stores: list[dict[str, Any]] = (await self._request("GET", "/v1/stores", params=params))[
            "stores"
        ]
        return stores

    async def send_price_command(
        self,
        store_id: str,
        command_id: str,
        changes: list[dict[str, Any]],
        effective_at: datetime,
        callback_url: str | None,
    ) -> dict[str, Any]:
        return await self._request(
            "POST",
            f"/v1/stores/{store_id}/price-commands",
            json={
                "command_id": command_id,
                "changes": changes,
                "effective_at": effective_at.isoformat(),
                "callback_url": callback_url,
            },
        )

    async def command_status(self, store_id: str, command_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v1/stores/{store_id}/price-commands/{command_id}")

    # -- the store's catalog: versioned upserts and withdrawals, idempotent by command id ----

    async def send_catalog_command(self, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``{"command_id", "state", "version"}``; the same answer for a repeat. A different
        body under a used command id, or a malformed one, is a PosRefused (non-retryable)."""
        return await self._request(
            "POST", f"/v1/stores/{quote(store_id)}/catalog-commands", json=body
        )

    async def catalog_command_status(self, store_id: str, command_id: str) -> dict[str, Any]:
        """``{"command_id", "state": received|applied|stale, "version", "applied", "refused":
        [{"sku", "odoo_id", "reason"}]}``; PosNotFound when the store never received it."""
        return await self._request(
            "GET",
            f"/v1/stores/{quote(store_id)}/catalog-commands/{quote(command_id, safe='')}",
        )

    async def catalog_version(self, store_id: str) -> dict[str, Any]:
        """``{"store_id", "version" (None before any catalog command applied), "count"}``."""
        return await self._request("GET", f"/v1/stores/{quote(store_id)}/catalog/version")

    async def catalog_page(
        self, store_id: str, after_sku: str | None = None, limit: int = 500
    ) -> dict[str, Any]:
        """One page of the store's catalog by SKU: ``{"store_id", "version", "count", "items",
        "next_after_sku"}`` (None on the last page)."""
        params: dict[str, Any] = {"limit": limit}
        if after_sku is not None:
            params["after_sku"] = after_sku
        return await self._request("GET", f"/v1/stores/{quote(store_id)}/catalog", params=params)

    async def inventory(
        self, store_id: str, after_sku: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """One page of the store's counts by SKU: `{"items": [...], "has_more": bool}`."""
        params: dict[str, Any] = {"limit": limit}
        if after_sku:
            params["after_sku"] = after_sku
        return await self._request("GET", f"/v1/stores/{quote(store_id)}/inventory", params=params)

    async def put_availability(
        self, store_id: str, command_id: str, items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Odoo's on-hand for some SKUs, applied by the store once per command id."""
        return await self._request(
            "PUT",
            f"/v1/stores/{quote(store_id)}/availability",
            json={"command_id": command_id, "items": items},
        )


class PosJournalReader:
    """Reads of the stores' own journals (what they rang up), for threaded activities: the
    Z-report, the transactions of a day page by page, one transaction."""

    def __init__(self, settings: PosSettings, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        # No kept-alive connections: a worker builds one reader for its life and never closes
        # it, and a store-day's reads are a handful of requests.
        self._http = httpx.Client(
            base_url=settings.url,
            timeout=settings.timeout_s,
            headers=headers,
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        with external_call("pos", operation("GET", path), call_outcome):
            try:
                resp = self._http.get(path, params=params)
            except httpx.TransportError as e:
                raise PosUnavailable(f"POS platform unreachable: {e!r}") from e
            return checked("GET", path, resp)

    def z_report(self, store_id: str, day: date) -> dict[str, Any]:
        """The store's end-of-day totals: counts and amounts per tender, refunds, voids."""
        return self._get(f"/v1/stores/{quote(store_id)}/z-report", {"day": day.isoformat()})

    def journal(self, store_id: str, day: date, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every transaction of the store-day (full sale JSON with its `kind`), by id."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"day": day.isoformat(), "limit": page_size}
        while True:
            page = self._get(f"/v1/stores/{quote(store_id)}/transactions", params)
            txns: list[dict[str, Any]] = page["transactions"]
            out.extend(txns)
            if not page.get("has_more") or not txns:
                return out
            params["starting_after"] = txns[-1]["txn_id"]

    def transaction(self, store_id: str, txn_id: str) -> dict[str, Any]:
        """One transaction as the store rang it up (PosNotFound when it has none)."""
        return self._get(f"/v1/stores/{quote(store_id)}/transactions/{quote(txn_id, safe='')}")
