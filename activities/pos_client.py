"""The POS platform adapter: an async HTTP client for a fleet's price-command API.

Failures are classified like the Odoo adapter's: a store the platform cannot reach (504),
transport faults and 5xx are retryable (`PosUnavailable`); a refused request (4xx) is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError


class PosUnavailable(Exception):
    """The platform or the store did not answer: try again later."""


@dataclass(frozen=True)
class PosSettings:
    url: str = "http://127.0.0.1:8070"
    timeout_s: float = 10.0
    api_key: str | None = None


class PosClient:
    def __init__(self, settings: PosSettings) -> None:
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._http = httpx.AsyncClient(
            base_url=settings.url,
            timeout=settings.timeout_s,
            headers=headers,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise PosUnavailable(f"POS platform unreachable: {e!r}") from e
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
