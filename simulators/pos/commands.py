"""Price commands as the platform receives them: parsing and validation of the JSON body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidField

CURRENCY = "USD"
MAX_ID_LENGTH = 200


@dataclass(frozen=True)
class PriceChange:
    sku: str
    price: Decimal
    currency: str = CURRENCY
    start: str | None = None
    end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "price": str(self.price),
            "currency": self.currency,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class PriceCommand:
    command_id: str
    changes: tuple[PriceChange, ...]
    effective_at: str
    callback_url: str | None = None

    def payload_json(self) -> str:
        """What the store keeps of the command besides its id (stored as one JSON column)."""
        return json.dumps(
            {
                "changes": [c.to_dict() for c in self.changes],
                "effective_at": self.effective_at,
                "callback_url": self.callback_url,
            }
        )

    @classmethod
    def from_stored(cls, command_id: str, payload: str) -> PriceCommand:
        return parse_price_command({"command_id": command_id, **json.loads(payload)})


def _iso(value: object, field: str, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidField(field, f"{field} is required")
        return None
    if not isinstance(value, str):
        raise InvalidField(field, f"{field} must be an ISO-8601 date-time string")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField(field, f"{field} is not an ISO-8601 date-time: {value!r}") from None
    return value


def _price(value: object, field: str) -> Decimal:
    if not isinstance(value, str):
        raise InvalidField(field, f'{field} must be a decimal string such as "9.99"')
    try:
        price = Decimal(value.strip())
    except InvalidOperation:
        raise InvalidField(field, f"{field} is not a decimal: {value!r}") from None
    if not price.is_finite() or price < 0:
        raise InvalidField(field, f"{field} must be a non-negative amount")
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise InvalidField(field, f"{field} has more than 2 decimal places")
    return price.quantize(Decimal("0.01"))


def _change(value: object, index: int) -> PriceChange:
    where = f"changes[{index}]"
    if not isinstance(value, dict):
        raise InvalidField(where, f"{where} must be an object")
    sku = value.get("sku")
    if not isinstance(sku, str) or not sku.strip():
        raise InvalidField(f"{where}.sku", f"{where}.sku must be a non-empty string")
    price = _price(value.get("price"), f"{where}.price")
    currency = value.get("currency", CURRENCY)
    if currency != CURRENCY:
        raise InvalidField(f"{where}.currency", f"{where}.currency must be {CURRENCY}")
    start = _iso(value.get("start"), f"{where}.start", required=False)
    end = _iso(value.get("end"), f"{where}.end", required=False)
    if start and end:
        try:
            ordered = datetime.fromisoformat(end) > datetime.fromisoformat(start)
        except TypeError:  # one with a UTC offset, one without
            raise InvalidField(
                f"{where}.end", f"{where}.start and {where}.end must both have a UTC offset or not"
            ) from None
        if not ordered:
            raise InvalidField(f"{where}.end", f"{where}.end must be after {where}.start")
    return PriceChange(sku=sku, price=price, currency=CURRENCY, start=start, end=end)


def parse_price_command(body: object) -> PriceCommand:
    """The command in ``body`` (decoded JSON), or ``InvalidField`` naming what is wrong."""
    if not isinstance(body, dict):
        raise InvalidField(None, "the body must be a JSON object")
    command_id = body.get("command_id")
    if not isinstance(command_id, str) or not command_id.strip():
        raise InvalidField("command_id", "command_id must be a non-empty string")
    if len(command_id) > MAX_ID_LENGTH:
        raise InvalidField("command_id", f"command_id is longer than {MAX_ID_LENGTH} characters")
    changes = body.get("changes")
    if not isinstance(changes, list) or not changes:
        raise InvalidField("changes", "changes must be a non-empty list")
    parsed = tuple(_change(change, i) for i, change in enumerate(changes))
    effective_at = _iso(body.get("effective_at"), "effective_at", required=True) or ""
    callback_url = body.get("callback_url")
    if callback_url is not None:
        parts = urlsplit(callback_url) if isinstance(callback_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidField("callback_url", "callback_url must be an http(s) URL or null")
    return PriceCommand(
        command_id=command_id,
        changes=parsed,
        effective_at=effective_at,
        callback_url=callback_url,
    )
