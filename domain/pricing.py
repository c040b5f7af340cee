"""Price changes and rollouts: what a merchandiser asks for, validated before anything changes.

A rollout changes prices (or runs a promotion window) for a set of stores at an effective time.
Odoo is the system of record, so it is written first; stores are then commanded and must
confirm. Everything checkable without I/O is checked here: a price ≤ 0, an end not after its
start, the same SKU twice, an empty store list. SKUs and regions are checked against Odoo and
the POS platform by the workflow, still before any write.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.ids import SEPARATOR
from domain.limits import MAX_AMOUNT, LimitExceeded, MalformedJson, load_json
from domain.money import KNOWN_CURRENCIES, has_cent_precision
from domain.validation import FieldError, InvalidInput, field_errors

RolloutId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    ),
]


# A store id is part of command ids (`price-rollout:{rollout}:{store}`, domain/ids.py): it may
# not contain the separator or white space, which would make two commands one.
_STORE_ID = re.compile(r"^[^\s" + re.escape(SEPARATOR) + r"]{1,64}$")


def store_id_problem(store_id: object) -> str | None:
    """Why this cannot be a store id, or None when it can."""
    if not isinstance(store_id, str) or not _STORE_ID.match(store_id):
        return (
            f"store id {str(store_id)[:70]!r} must be 1 to 64 characters, without "
            f"'{SEPARATOR}' or white space"
        )
    return None


class RolloutRejected(InvalidInput):
    """A rollout refused before anything was changed anywhere."""


class PriceChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    price: Decimal = Field(gt=0, lt=MAX_AMOUNT)
    currency: str = "USD"
    # A promotion window; without it the price holds from the effective time on.
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @field_validator("price")
    @classmethod
    def _cents(cls, v: Decimal) -> Decimal:
        if not has_cent_precision(v):
            raise ValueError("must have at most 2 decimal places")
        return v

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, v: str) -> str:
        if v not in KNOWN_CURRENCIES:
            raise ValueError(f"unknown currency {v!r}")
        return v

    @model_validator(mode="after")
    def _window(self) -> PriceChange:
        if self.start and self.end and self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} must be after start {self.start.isoformat()}"
            )
        return self


class TargetKind(StrEnum):
    ALL = "all"
    LIST = "list"
    REGION = "region"


class StoreTarget(BaseModel):
    """Which stores: all of them, a list, or a region tag of the POS platform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TargetKind
    stores: tuple[str, ...] = ()
    region: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StoreTarget:
        if self.kind is TargetKind.LIST and not self.stores:
            raise ValueError("the store list is empty")
        if self.kind is TargetKind.LIST and len(set(self.stores)) != len(self.stores):
            raise ValueError("a store is listed twice")
        for store in self.stores:
            problem = store_id_problem(store)
            if problem:
                raise ValueError(problem)
        if self.kind is TargetKind.REGION and not self.region:
            raise ValueError("a region target needs a region")
        return self

    @classmethod
    def parse(cls, text: str) -> StoreTarget:
        """`all`, `S001,S002`, or `region:north`."""
        text = text.strip()
        if text == "all":
            return cls(kind=TargetKind.ALL)
        if text.startswith("region:"):
            return cls(kind=TargetKind.REGION, region=text.removeprefix("region:").strip())
        stores = tuple(s.strip() for s in text.split(",") if s.strip())
        return cls(kind=TargetKind.LIST, stores=stores)

    def __str__(self) -> str:
        if self.kind is TargetKind.ALL:
            return "all stores"
        if self.kind is TargetKind.REGION:
            return f"region {self.region}"
        return ", ".join(self.stores)


class Rollout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: RolloutId
    changes: list[PriceChange] = Field(min_length=1, max_length=5000)
    target: StoreTarget
    effective_at: AwareDatetime
    confirm_within: timedelta = timedelta(minutes=15)
    max_failure_ratio: float = Field(default=0.1, ge=0, le=1)
    requested_by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

    @field_validator("confirm_within")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("must be a positive duration")
        return v

    @model_validator(mode="after")
    def _unique_skus(self) -> Rollout:
        counts = Counter(c.sku for c in self.changes)
        dups = sorted(sku for sku, n in counts.items() if n > 1)
        if dups:
            raise ValueError(f"SKU {', '.join(dups)} appears more than once")
        return self

    def window_of(self, change: PriceChange) -> tuple[datetime, datetime | None]:
        """When the change holds in Odoo: from its start (or the effective time) to its end."""
        return change.start or self.effective_at, change.end


def parse_rollout(raw: dict[str, Any]) -> Rollout:
    try:
        return Rollout.model_validate(raw)
    except ValidationError as e:
        raise RolloutRejected(field_errors(e, "rollout")) from e


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `1d`."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 2h or 1d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
    return timedelta(**{unit: float(m.group(1))})


def read_changes(text: str, filename: str) -> list[dict[str, Any]]:
    """Price changes from a CSV (header: sku,price[,currency,start,end]) or a JSON list."""
    if filename.endswith(".json"):
        try:
            # Exact decimals, within the size and depth limits of every input (domain/limits.py).
            data = load_json(text)
        except (LimitExceeded, MalformedJson) as e:
            what = "malformed JSON" if isinstance(e, MalformedJson) else "too large"
            raise RolloutRejected([FieldError(field="changes", message=f"{what}: {e}")]) from e
        if isinstance(data, dict):
            data = data.get("changes", data)
        if not isinstance(data, list):
            raise RolloutRejected([FieldError(field="changes", message="must be a JSON list")])
        return data
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "sku" not in rows[0] or "price" not in rows[0]:
        raise RolloutRejected(
            [FieldError(field="changes", message="CSV needs a header with at least sku,price")]
        )
    return [{k: v for k, v in row.items() if v not in (None, "")} for row in rows]
