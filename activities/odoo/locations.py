"""Stores as stock locations: each store's shelf in Odoo, found by its complete name or xml id,
and created under the warehouse stock when it is missing.

A store location is an ordinary internal `stock.location` (Odoo 17: `name` required, `usage`
defaults to `internal`, `complete_name` is computed as `parent/name`; names are not unique, so
creating one is claimed by its complete name, like every other write retailflow makes once).
"""

from __future__ import annotations

import threading

from temporalio.exceptions import ApplicationError

from activities.odoo.claim import Claimed, ClaimKind, Refusal, claim
from activities.odoo.client import OdooClient

# A location carries its key in its complete name; the lowest id of a name wins, extra copies
# made by racing attempts are removed (they hold no stock yet).
LOCATION = ClaimKind(
    "stock.location", "complete_name", frozenset(), draft_is_goal=True, has_state=False
)


def is_xml_id(ref: str) -> bool:
    """`module.name` (no slash): an xml id rather than a location's complete name."""
    return "/" not in ref and ref.count(".") == 1


class LocationResolver:
    """Location references (complete names or xml ids) to ids, cached for the worker's life."""

    def __init__(self, odoo: OdooClient) -> None:
        self.odoo = odoo
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def find(self, ref: str) -> int | None:
        with self._lock:
            if ref in self._ids:
                return self._ids[ref]
        if is_xml_id(ref):
            module, name = ref.split(".")
            rows = self.odoo.call(
                "ir.model.data",
                "search_read",
                [("module", "=", module), ("name", "=", name), ("model", "=", "stock.location")],
                fields=["res_id"],
                limit=1,
            )
            found = rows[0]["res_id"] if rows else None
        else:
            ids = self.odoo.call(
                "stock.location", "search", [("complete_name", "=", ref)], order="id", limit=1
            )
            found = ids[0] if ids else None
        if found is not None:
            with self._lock:
                self._ids[ref] = found
        return found

    def resolve(self, ref: str, store_id: str) -> int:
        found = self.find(ref)
        if found is None:
            raise ApplicationError(
                f"store {store_id}: Odoo has no stock location {ref!r} (posting profile "
                f"store_locations; `retailflow stock locations ensure` creates it)",
                type="UnknownLocation",
                non_retryable=True,
            )
        return found

    def ensure(self, refs: list[str]) -> dict[str, tuple[int, bool]]:
        """Each complete name's location id, and whether this call created it. Parents must
        exist; an xml id is never created (it names a record someone else owns)."""
        out: dict[str, tuple[int, bool]] = {}
        missing: list[str] = []
        for ref in dict.fromkeys(refs):
            found = self.find(ref)
            if found is not None:
                out[ref] = (found, False)
            elif is_xml_id(ref) or "/" not in ref:
                raise ApplicationError(
                    f"stock location {ref!r} does not exist and cannot be created: give a "
                    f"complete name under an existing parent, e.g. 'WH/Stock/S001'",
                    type="UnknownLocation",
                    non_retryable=True,
                )
            else:
                missing.append(ref)
        parents = {ref: self.find(ref.rsplit("/", 1)[0]) for ref in missing}
        orphans = [ref for ref, parent in parents.items() if parent is None]
        if orphans:
            raise ApplicationError(
                f"stock location {orphans[0]!r}: its parent {orphans[0].rsplit('/', 1)[0]!r} "
                f"does not exist in Odoo",
                type="UnknownLocation",
                non_retryable=True,
            )

        def create(keys: list[str]) -> dict[str, Refusal]:
            self.odoo.call(
                "stock.location",
                "create",
                [
                    {"name": k.rsplit("/", 1)[1], "location_id": parents[k], "usage": "internal"}
                    for k in keys
                ],
            )
            return {}

        claimed = claim(self.odoo, LOCATION, missing, create=create)
        for ref, result in claimed.items():
            if not isinstance(result, Claimed):  # the creator refuses nothing: Odoo raised
                raise ApplicationError(result.reason, type=result.error_type, non_retryable=True)
            out[ref] = (result.id, not result.already)
            with self._lock:
                self._ids[ref] = result.id
        return out
