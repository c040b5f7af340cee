"""Workflow ids and idempotency keys: business keys joined by a separator no part may contain.

Ids used to be joined with `-`, which store, txn and rollout ids may contain: store `A-1` txn `2`
and store `A` txn `1-2` were one workflow, and the second sale was lost as a "duplicate". Every
identifier retailflow accepts refuses `:` (and white space), so `:` joins them unambiguously.
"""

from __future__ import annotations

SEPARATOR = ":"


class BadIdPart(ValueError):
    """A part of an id that would make it ambiguous (it contains the separator) or empty."""


def business_id(kind: str, *parts: str) -> str:
    """`kind:part1:part2...`, e.g. `sale:S001:T-42`. Refuses parts that could collide."""
    for part in parts:
        if not part or SEPARATOR in part or part != part.strip():
            raise BadIdPart(
                f"{part!r} cannot be part of a {kind} id: it must be non-empty, without "
                f"'{SEPARATOR}' or surrounding spaces"
            )
    return SEPARATOR.join((kind, *parts))
