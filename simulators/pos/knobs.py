"""Per-store behaviour knobs, switchable at run time, and their validation."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidField

DEFAULT_REJECT_REASON = "price below cost floor"

Window = tuple[float, float]


@dataclass(frozen=True)
class StoreKnobs:
    """How one store behaves.

    ``offline_windows`` are ``(start_s, end_s)`` offsets from the moment they were set; the
    store is offline inside each and back by itself afterwards. ``online=False`` is offline
    until switched back.
    """

    online: bool = True
    apply_delay_ms: float = 50
    reject_rate: float = 0.0
    reject_reason: str = DEFAULT_REJECT_REASON
    lose_confirmations: bool = False
    offline_windows: tuple[Window, ...] = ()
    # Rate limiting: the next `busy_next` requests to the store, then this share of the others,
    # are refused with `busy_status` (429 or 503) and a `Retry-After` of `retry_after_s`
    # seconds; nothing is recorded.
    busy_next: int = 0
    busy_rate: float = 0.0
    busy_status: int = 429
    retry_after_s: float = 1.0

    def __post_init__(self) -> None:
        _check_bool("online", self.online)
        _check_bool("lose_confirmations", self.lose_confirmations)
        _check_number("apply_delay_ms", self.apply_delay_ms, low=0.0)
        _check_number("reject_rate", self.reject_rate, low=0.0, high=1.0)
        _check_number("busy_rate", self.busy_rate, low=0.0, high=1.0)
        if not isinstance(self.busy_next, int) or isinstance(self.busy_next, bool):
            raise InvalidField("busy_next", "busy_next must be a whole number")
        _check_number("busy_next", self.busy_next, low=0.0)
        _check_number("retry_after_s", self.retry_after_s, low=0.0, high=3600.0)
        if self.busy_status not in (429, 503) or isinstance(self.busy_status, bool):
            raise InvalidField("busy_status", "busy_status must be 429 or 503")
        if not isinstance(self.reject_reason, str) or not self.reject_reason.strip():
            raise InvalidField("reject_reason", "reject_reason must be a non-empty string")
        object.__setattr__(self, "offline_windows", _windows(self.offline_windows))

    def updated(self, **changes: Any) -> StoreKnobs:
        """A copy with ``changes`` applied; unknown knobs are refused."""
        unknown = sorted(set(changes) - KNOB_NAMES)
        if unknown:
            raise InvalidField(unknown[0], f"unknown knob {unknown[0]!r}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["offline_windows"] = [list(w) for w in self.offline_windows]
        return data


KNOB_NAMES = frozenset(f.name for f in dataclasses.fields(StoreKnobs))


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidField(name, f"{name} must be a boolean")


def _check_number(name: str, value: object, low: float, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidField(name, f"{name} must be a number")
    if value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise InvalidField(name, f"{name} must be {bounds}")


def _windows(value: object) -> tuple[Window, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidField("offline_windows", "offline_windows must be a list of [start_s, end_s]")
    out: list[Window] = []
    for i, window in enumerate(value):
        field = f"offline_windows[{i}]"
        if not isinstance(window, list | tuple) or len(window) != 2:
            raise InvalidField(field, f"{field} must be [start_s, end_s]")
        start, end = window
        _check_number(field, start, low=0.0)
        _check_number(field, end, low=0.0)
        if end <= start:
            raise InvalidField(field, f"{field} must end after it starts")
        out.append((float(start), float(end)))
    return tuple(out)
