"""The settlement schedule: when each region's store-day closes, and how finance's tolerance
is set. Read from a TOML (or JSON) file by `retailflow schedules apply`; pure, no I/O but the
file read.

```toml
[gateway]                     # payouts booked in Odoo once a day
at = "06:00"
time_zone = "UTC"
lookback_days = 7             # payouts created in the last 7 days (booked ones are skipped)

[tolerance]                   # what passes with a note instead of waiting for ops
max_per_tender = "0.05"       # total difference per tender and store-day
kinds = ["amount_differs"]    # the kinds of difference that may pass within it

[[region]]
name = "north"
time_zone = "Europe/Berlin"
close_at = "02:00"            # local time on the next day: the grace period for late sales
stores = ["S001", "S002"]     # omit to take the POS platform's stores of this region
```

A store-day `D` of a region closes at `close_at` local time on `D + 1`; everything rung up
on `D` that arrives before then is on time, anything after is a late sale (docs/architecture.md,
"Settlement").
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from domain.reconciliation import TolerancePolicy
from domain.validation import load_settings_file

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.-]+$")
]
StoreName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^:\s]+$")
]


def _zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {v!r} (an IANA name such as 'Europe/Berlin')"
        ) from None
    return v


def _clock(v: str) -> str:
    try:
        time.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a time of day such as '02:00'") from None
    return v


Zone = Annotated[str, AfterValidator(_zone)]
Clock = Annotated[str, AfterValidator(_clock)]


class RegionSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    time_zone: Zone = "UTC"
    # Local time on the day after the business day when that day closes (grace for late sales).
    close_at: Clock = "02:00"
    # Empty: every store the POS platform lists for this region.
    stores: list[StoreName] = []

    @property
    def close_time(self) -> time:
        return time.fromisoformat(self.close_at)

    @property
    def schedule_id(self) -> str:
        return f"settlement-daily-{self.name}"

    def business_day_closing_at(self, fired_at: datetime) -> date:
        """The store-day a run scheduled at `fired_at` (aware) closes: the local day before the
        one on which `close_at` last passed."""
        local = fired_at.astimezone(ZoneInfo(self.time_zone))
        close = self.close_time
        since_close = timedelta(hours=close.hour, minutes=close.minute, seconds=close.second)
        # A fire a few seconds early (clock skew) still closes the same day.
        return (local - since_close + timedelta(minutes=1)).date() - timedelta(days=1)

    def closes_at(self, day: date) -> datetime:
        """When store-day `day` closes (aware, in the region's zone)."""
        return datetime.combine(day + timedelta(days=1), self.close_time, ZoneInfo(self.time_zone))


class GatewaySchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Clock = "06:00"
    time_zone: Zone = "UTC"
    lookback_days: int = Field(default=7, ge=1, le=90)

    @property
    def at_time(self) -> time:
        return time.fromisoformat(self.at)


class SettlementSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: list[RegionSchedule] = Field(min_length=1)
    gateway: GatewaySchedule = GatewaySchedule()
    tolerance: TolerancePolicy = TolerancePolicy()
    # How long a catch-up after Temporal was down may reach back (missed fires older are
    # skipped; `retailflow schedules backfill` runs them by hand).
    catchup_days: int = Field(default=3, ge=1, le=30)

    @field_validator("region")
    @classmethod
    def _unique_names(cls, v: list[RegionSchedule]) -> list[RegionSchedule]:
        names = [r.name for r in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"region names must be unique: {', '.join(twice)} appear twice")
        return v

    def region_named(self, name: str) -> RegionSchedule | None:
        return next((r for r in self.region if r.name == name), None)


DEFAULT_SCHEDULE = SettlementSchedule(region=[RegionSchedule(name="all")])


def load_schedule(path: str | Path | None) -> SettlementSchedule:
    """The schedule file, or one region `all` closing at 02:00 UTC for every store."""
    if path is None:
        return DEFAULT_SCHEDULE
    return load_settings_file(SettlementSchedule, path, "settlement schedule")
