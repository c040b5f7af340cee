"""``PosPlatform``: a fleet of stores behind one HTTP API, with run-time behaviour knobs.

State lives in memory (a dict of stores, each with its prices and the commands it received);
every change is queued to SQLite as it happens (one writer thread, group commits). Request
threads only record a command; one scheduler thread applies whatever is due in batches, and
a small pool sends the signed confirmations.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from simulators.sales import CATALOGUE
from simulators.serving import BackgroundServer

from .catalog import (
    RECEIVED,
    CatalogCommand,
    CatalogCommandConflict,
    StoreCatalog,
    StoreCatalogCommand,
    interned,
    parse_catalog_command,
)
from .commands import PriceCommand, parse_price_command
from .confirmations import Confirmation, ConfirmationSender
from .database import PosDatabase
from .errors import InvalidField, PlatformBusy, StoreOffline, UnknownCommand, UnknownStore
from .inventory import StoreInventory
from .journal import (
    Journal,
    Transaction,
    TransactionConflict,
    UnknownTransaction,
    parse_transaction,
    transaction_from_row,
)
from .knobs import StoreKnobs
from .scheduler import DueScheduler
from .server import PosHTTPServer

logger = logging.getLogger(__name__)

REGIONS = ("north", "south", "east", "west")
ACCEPTED, APPLIED, REJECTED = "accepted", "applied", "rejected"
STAT_NAMES = (
    "commands_received",
    "commands_applied",
    "commands_rejected",
    "duplicates_absorbed",
    "confirmations_sent",
    "confirmations_failed",
    "confirmations_lost",
    "refused_offline",
    "refused_busy",
    "catalog_commands_received",
    "catalog_commands_applied",
    "catalog_commands_stale",
    "catalog_items_refused",
)

PRICE, CATALOG = "price", "catalog"
# (epoch, store_id, command_id, kind); command_id None wakes the store's parked commands.
DueKey = tuple[int, str, str | None, str]


def fleet_ids(count: int) -> list[str]:
    """``S001``..``S080``; four digits once the fleet has more than 999 stores."""
    width = max(3, len(str(count)))
    return [f"S{n:0{width}d}" for n in range(1, count + 1)]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _txn_view(txn: Transaction) -> dict[str, Any]:
    return {"store_id": txn.store_id, "txn_id": txn.txn_id, "kind": txn.kind, "day": txn.day}


def _iso_from_unix(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


@dataclass(slots=True, eq=False)
class StoreCommand:
    """A price command as one store holds it."""

    store_id: str
    command: PriceCommand
    received_at: str
    status: str = ACCEPTED
    reason: str | None = None
    apply_count: int = 0
    applied_at: str | None = None  # when the store processed it (applied or rejected)
    confirmation: str | None = None  # pending | sent | failed | lost; None without callback

    @property
    def command_id(self) -> str:
        return self.command.command_id

    def status_view(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "store_id": self.store_id,
            "status": self.status,
            "reason": self.reason,
            "applied_at": self.applied_at,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "status": self.status,
            "reason": self.reason,
            "apply_count": self.apply_count,
            "received_at": self.received_at,
            "applied_at": self.applied_at,
            "confirmation": self.confirmation,
            "effective_at": self.command.effective_at,
        }

    def state_row(self) -> dict[str, Any]:
        return {
            "b_store_id": self.store_id,
            "b_command_id": self.command_id,
            "status": self.status,
            "reason": self.reason,
            "apply_count": self.apply_count,
            "applied_at": self.applied_at,
            "confirmation": self.confirmation,
        }


@dataclass(slots=True, eq=False)
class Store:
    store_id: str
    position: int
    region: str
    knobs: StoreKnobs
    windows_set_at: float | None
    prices: dict[str, Decimal]
    commands: dict[str, StoreCommand] = field(default_factory=dict)
    # Commands that fell due while the store was offline, applied when it is back.
    parked: dict[tuple[str, str], None] = field(default_factory=dict)  # (kind, command_id)
    wake_at: float | None = None
    journal: Journal = field(default_factory=Journal)
    catalog: StoreCatalog = field(default_factory=StoreCatalog)

    def offline_until(self, now: float) -> float | None:
        """None if the store is online at ``now`` (unix time); else when it is back
        (``math.inf`` when switched off, the end of the offline window otherwise)."""
        if not self.knobs.online:
            return math.inf
        if self.windows_set_at is None or not self.knobs.offline_windows:
            return None
        until, inside, moved = now, False, True
        while moved:  # follow overlapping or touching windows
            moved = False
            for start, end in self.knobs.offline_windows:
                if self.windows_set_at + start <= until < self.windows_set_at + end:
                    until, inside, moved = self.windows_set_at + end, True, True
        return until if inside else None

    def knob_row(self) -> dict[str, Any]:
        return {
            "b_store_id": self.store_id,
            "knobs": json.dumps(self.knobs.to_dict()),
            "windows_set_at": self.windows_set_at,
        }

    def summary(self, now: float) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "region": self.region,
            "online": self.offline_until(now) is None,
        }


class PosPlatform(BackgroundServer):
    """A retailer's POS platform: ``stores`` stores behind one HTTP API.

    ``db_path`` None keeps everything in memory; an existing file keeps its fleet, prices and
    commands (stores are added if ``stores`` asks for more). ``seed`` makes random rejections
    reproducible: the draw depends on the seed, the store and the command id only, not on
    the order commands arrive in.
    """

    server_class = PosHTTPServer
    thread_name = "pos-platform"
    not_started = "the POS platform"

    def __init__(
        self,
        stores: int = 80,
        db_path: str | None = None,
        secret: str = "s3cret",
        platform_id: str = "pos-main",
        seed: int | None = None,
        confirmation_workers: int = 16,
        confirmation_timeout_s: float = 5.0,
    ) -> None:
        if stores < 1:
            raise ValueError("a fleet has at least one store")
        self.platform_id = platform_id
        self.secret = secret
        self.seed = seed
        self._salt = str(seed) if seed is not None else secrets.token_hex(8)
        self._busy = random.Random(self._salt)
        self._lock = threading.RLock()
        self._epoch = 0
        self._stores: dict[str, Store] = {}
        self._stats: Counter[str] = Counter()
        self._pending = 0
        self.database = PosDatabase(db_path)
        self._scheduler: DueScheduler[DueKey] = DueScheduler(self._apply_due)
        self._sender = ConfirmationSender(
            secret,
            platform_id,
            on_done=self._confirmation_done,
            workers=confirmation_workers,
            timeout_s=confirmation_timeout_s,
        )
        self._resend: list[Confirmation] = []
        self.inventory = StoreInventory()
        self._fleet_size = stores
        self._load(stores)
        self._running = False

    # -- lifecycle --------------------------------------------------------------------------

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8070) -> None:
        """Serve in the calling thread (the CLI); ``stop()`` afterwards."""
        super().serve_forever(host, port)

    def _close(self) -> None:
        """Stop applying and confirming, and close the database."""
        self._scheduler.stop()
        self._sender.stop()
        self._running = False
        self.database.close()

    def _on_serve(self) -> None:
        """Start applying and confirming (once), resending what was left unconfirmed."""
        if self._running:
            return
        self._running = True
        self._scheduler.start()
        self._sender.start()
        with self._lock:
            resend, self._resend = self._resend, []
        for confirmation in resend:
            self._sender.send(confirmation)

    # -- fleet and persistence --------------------------------------------------------------

    def _load(self, count: int) -> None:
        stores, prices, commands = self.database.load()
        if len(stores) < count:
            self._add_stores(len(stores), count)
            stores, prices, commands = self.database.load()
        by_store: dict[str, dict[str, Decimal]] = {}
        for row in prices:
            by_store.setdefault(row["store_id"], {})[row["sku"]] = Decimal(row["price"])
        for row in stores:
            self._stores[row["store_id"]] = Store(
                store_id=row["store_id"],
                position=row["position"],
                region=row["region"],
                knobs=StoreKnobs(**json.loads(row["knobs"])),
                windows_set_at=row["windows_set_at"],
                prices=by_store.get(row["store_id"], {}),
            )
        for row in commands:
            store = self._stores.get(row["store_id"])
            if store is None:
                continue
            command = StoreCommand(
                store_id=row["store_id"],
                command=PriceCommand.from_stored(row["command_id"], row["payload"]),
                received_at=row["received_at"],
                status=row["status"],
                reason=row["reason"],
                apply_count=row["apply_count"],
                applied_at=row["applied_at"],
                confirmation=row["confirmation"],
            )
            store.commands[command.command_id] = command
            if command.status == ACCEPTED:
                # Received before a restart and not applied yet: due now.
                self._pending += 1
                key = (self._epoch, store.store_id, command.command_id, PRICE)
                self._scheduler.schedule(0, key)
            elif command.confirmation == "pending":
                conf = self._confirmation_for(store, command)
                if conf is not None:
                    self._resend.append(conf)
        for row in self.database.load_transactions():
            store = self._stores.get(row["store_id"])
            if store is not None:
                store.journal.add(transaction_from_row(row))
        self._load_catalogs()
        if len(stores) != count:
            logger.info("the database holds %d stores (asked for %d)", len(stores), count)

    def _load_catalogs(self) -> None:
        items, versions, commands = self.database.load_catalogs()
        for row in items:
            store = self._stores.get(row["store_id"])
            if store is not None:
                store.catalog.put(interned(row["body"]))
        for row in versions:
            store = self._stores.get(row["store_id"])
            if store is not None:
                store.catalog.version = row["version"]
        for row in commands:
            store = self._stores.get(row["store_id"])
            if store is None:
                continue
            if row["payload"] is not None:
                command = CatalogCommand.from_stored(
                    row["command_id"], row["payload"], row["digest"]
                )
            else:  # processed: only what its status and a repeat need
                command = CatalogCommand(row["command_id"], row["version"], (), (), row["digest"])
            received = StoreCatalogCommand(
                command=command,
                received_at=row["received_at"],
                state=row["state"],
                applied=row["applied"],
                refused=json.loads(row["refused"]),
                applied_at=row["applied_at"],
            )
            store.catalog.commands[command.command_id] = received
            if received.state == RECEIVED:
                self._pending += 1
                key = (self._epoch, store.store_id, command.command_id, CATALOG)
                self._scheduler.schedule(0, key)

    def _add_stores(self, first: int, count: int) -> None:
        ids = fleet_ids(count)
        default_knobs = json.dumps(StoreKnobs().to_dict())
        store_rows = [
            {
                "store_id": ids[i],
                "position": i,
                "region": REGIONS[i % len(REGIONS)],
                "knobs": default_knobs,
                "windows_set_at": None,
            }
            for i in range(first, count)
        ]
        price_rows = [
            {"store_id": ids[i], "sku": sku, "price": price}
            for i in range(first, count)
            for sku, _name, price, _tax in CATALOGUE
        ]
        self.database.add_stores(store_rows, price_rows)

    def reset(self) -> None:
        """Back to a freshly seeded fleet: default knobs, catalogue prices, no commands,
        zeroed stats. Work still queued for the old state is dropped."""
        with self._lock:
            size = max(self._fleet_size, len(self._stores))
            self._epoch += 1
            self._scheduler.clear()
            self.database.wipe()
            self._stores.clear()
            self._stats.clear()
            self._pending = 0
            self._resend = []
            self.inventory.reset()
            self._load(size)

    def _get(self, store_id: str) -> Store:
        store = self._stores.get(store_id)
        if store is None:
            raise UnknownStore(store_id)
        return store

    def _reachable(self, store_id: str, now: float) -> Store:
        store = self._get(store_id)
        if store.offline_until(now) is not None:
            self._stats["refused_offline"] += 1
            raise StoreOffline(store_id)
        knobs = store.knobs
        if knobs.busy_next:
            store.knobs = knobs.updated(busy_next=knobs.busy_next - 1)
        if knobs.busy_next or (knobs.busy_rate and self._busy.random() < knobs.busy_rate):
            self._stats["refused_busy"] += 1
            raise PlatformBusy(store_id, store.knobs.busy_status, store.knobs.retry_after_s)
        return store

    # -- the platform API (what the HTTP routes call) ---------------------------------------

    def list_stores(self, region: str | None = None) -> list[dict[str, Any]]:
        if region is not None and region not in REGIONS:
            raise InvalidField("region", f"unknown region {region!r}; one of {list(REGIONS)}")
        now = time.time()
        with self._lock:
            return [
                store.summary(now)
                for store in self._stores.values()
                if region is None or store.region == region
            ]

    def receive_command(self, store_id: str, body: object) -> tuple[bool, dict[str, Any]]:
        """Record a price command for the store: ``(True, accepted)`` when new, ``(False,
        current status)`` for a command the store already has (never applied twice)."""
        with self._lock:
            self._get(store_id)
        command = parse_price_command(body)
        with self._lock:
            store = self._reachable(store_id, time.time())
            known = store.commands.get(command.command_id)
            if known is not None:
                self._stats["duplicates_absorbed"] += 1
                return False, known.status_view()
            received = StoreCommand(store_id=store_id, command=command, received_at=_now_iso())
            ticket = self.database.add_command(
                {
                    "store_id": store_id,
                    "command_id": command.command_id,
                    "payload": command.payload_json(),
                    "status": ACCEPTED,
                    "received_at": received.received_at,
                }
            )
            store.commands[command.command_id] = received
            self._stats["commands_received"] += 1
            self._pending += 1
            delay_s = store.knobs.apply_delay_ms / 1000.0
            key: DueKey = (self._epoch, store_id, command.command_id, PRICE)
        self._scheduler.schedule(delay_s, key)
        self.database.wait(ticket)  # on disk before the store says it has it
        return True, {"command_id": command.command_id, "store_id": store_id, "status": ACCEPTED}

    def command_status(self, store_id: str, command_id: str) -> dict[str, Any]:
        with self._lock:
            store = self._reachable(store_id, time.time())
            command = store.commands.get(command_id)
            if command is None:
                raise UnknownCommand(store_id, command_id)
            return command.status_view()

    def price_list(self, store_id: str) -> dict[str, Any]:
        with self._lock:
            store = self._reachable(store_id, time.time())
            return {
                "store_id": store_id,
                "prices": {sku: str(price) for sku, price in store.prices.items()},
            }

    # -- the store's catalog ----------------------------------------------------------------

    def receive_catalog_command(self, store_id: str, body: object) -> tuple[bool, dict[str, Any]]:
        """Record a catalog command: ``(True, answer)`` when new, ``(False, its current
        answer)`` for the same body again; CatalogCommandConflict for another body."""
        with self._lock:
            self._get(store_id)
        command = parse_catalog_command(body)
        with self._lock:
            store = self._reachable(store_id, time.time())
            known = store.catalog.commands.get(command.command_id)
            if known is not None:
                if known.command.digest != command.digest:
                    raise CatalogCommandConflict(store_id, command.command_id)
                self._stats["duplicates_absorbed"] += 1
                return False, known.answer()
            received = StoreCatalogCommand(command=command, received_at=_now_iso())
            ticket = self.database.add_catalog_command(
                {
                    "store_id": store_id,
                    "command_id": command.command_id,
                    "digest": command.digest,
                    "payload": command.payload_json(),
                    "version": command.version,
                    "state": RECEIVED,
                    "received_at": received.received_at,
                }
            )
            store.catalog.commands[command.command_id] = received
            self._stats["catalog_commands_received"] += 1
            self._pending += 1
            delay_s = store.knobs.apply_delay_ms / 1000.0
            key: DueKey = (self._epoch, store_id, command.command_id, CATALOG)
            answer = received.answer()
        self._scheduler.schedule(delay_s, key)
        self.database.wait(ticket)  # on disk before the store says it has it
        return True, answer

    def catalog_command_status(self, store_id: str, command_id: str) -> dict[str, Any]:
        with self._lock:
            store = self._reachable(store_id, time.time())
            received = store.catalog.commands.get(command_id)
            if received is None:
                raise UnknownCommand(store_id, command_id)
            return received.status_view()

    def catalog_version(self, store_id: str) -> dict[str, Any]:
        with self._lock:
            store = self._reachable(store_id, time.time())
            catalog = store.catalog
            return {"store_id": store_id, "version": catalog.version, "count": len(catalog.items)}

    def catalog_page(self, store_id: str, after_sku: str | None, limit: int) -> dict[str, Any]:
        with self._lock:
            store = self._reachable(store_id, time.time())
            catalog = store.catalog
            items, next_after = catalog.page(after_sku, limit)
            return {
                "store_id": store_id,
                "version": catalog.version,
                "count": len(catalog.items),
                "items": [item.to_dict() for item in items],
                "next_after_sku": next_after,
            }

    def catalog(self, store_id: str) -> dict[str, dict[str, Any]]:
        """The store's catalog by SKU, whether it is online or not."""
        with self._lock:
            items = list(self._get(store_id).catalog.items.values())
        return {item.sku: item.to_dict() for item in items}

    # -- the store's journal ----------------------------------------------------------------

    def ring_up(self, store_id: str, body: object) -> tuple[bool, dict[str, Any]]:
        """Record one transaction the store rang up: ``(True, view)`` when new, ``(False,
        view)`` for the same body again; TransactionConflict for another body, same id."""
        with self._lock:
            self._get(store_id)
        txn = parse_transaction(store_id, body)
        with self._lock:
            store = self._reachable(store_id, time.time())
            created = self._record(store, [txn])
        if created:
            self.database.wait(self.database.add_transactions([t.row() for t in created]))
        return bool(created), _txn_view(txn)

    def ring_up_many(self, store_id: str, bodies: object) -> dict[str, Any]:
        """Admin/bulk: many transactions at once (all checked first, whether online or not)."""
        if not isinstance(bodies, list):
            raise InvalidField(None, "the body must be a JSON list of transactions")
        with self._lock:
            self._get(store_id)
        txns: list[Transaction] = []
        for i, body in enumerate(bodies):
            try:
                txns.append(parse_transaction(store_id, body))
            except InvalidField as e:
                raise InvalidField(f"[{i}].{e.field}" if e.field else f"[{i}]", e.message) from e
        with self._lock:
            created = self._record(self._get(store_id), txns)
        if created:
            self.database.wait(self.database.add_transactions([t.row() for t in created]))
        return {
            "store_id": store_id,
            "recorded": len(created),
            "absorbed": len(txns) - len(created),
        }

    def _record(self, store: Store, txns: list[Transaction]) -> list[Transaction]:
        # Every id checked before any is added: a conflict records nothing of the request.
        seen: dict[str, Transaction] = {}
        for txn in txns:
            known = store.journal.by_id.get(txn.txn_id) or seen.get(txn.txn_id)
            if known is not None and known.digest != txn.digest:
                raise TransactionConflict(store.store_id, txn.txn_id)
            seen.setdefault(txn.txn_id, txn)
        created = [t for t in seen.values() if store.journal.add(t)]
        self.inventory.rung_up(created)
        return created

    def transaction(self, store_id: str, txn_id: str) -> dict[str, Any]:
        with self._lock:
            store = self._reachable(store_id, time.time())
            txn = store.journal.by_id.get(txn_id)
            if txn is None:
                raise UnknownTransaction(store_id, txn_id)
            return txn.body

    def z_report(self, store_id: str, day: str) -> dict[str, Any]:
        with self._lock:
            store = self._reachable(store_id, time.time())
            return store.journal.z_report(store_id, day)

    def transactions(
        self, store_id: str, day: str, limit: int, starting_after: str | None
    ) -> dict[str, Any]:
        with self._lock:
            store = self._reachable(store_id, time.time())
            return {"store_id": store_id, **store.journal.page(day, limit, starting_after)}

    # -- applying ---------------------------------------------------------------------------

    def _draw(self, store_id: str, command_id: str) -> float:
        digest = hashlib.blake2b(
            f"{self._salt}:{store_id}:{command_id}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2.0**64

    def _apply_due(self, keys: list[DueKey]) -> None:
        now = time.time()
        stamp = _now_iso()
        command_rows: list[dict[str, Any]] = []
        price_rows: list[dict[str, Any]] = []
        to_send: list[Confirmation] = []
        catalog_writes: list[Any] = []
        with self._lock:
            for epoch, store_id, command_id, kind in keys:
                store = self._stores.get(store_id)
                if epoch != self._epoch or store is None:
                    continue
                if command_id is None:
                    store.wake_at = None
                    due = list(store.parked)
                    store.parked.clear()
                else:
                    due = [(kind, command_id)]
                offline_until = store.offline_until(now)
                for due_kind, cid in due:
                    if due_kind == CATALOG:
                        received = store.catalog.commands.get(cid)
                        if received is None or received.state != RECEIVED:
                            continue
                        if offline_until is not None:
                            self._park(store, (CATALOG, cid), offline_until, now)
                            continue
                        catalog_writes.extend(self._apply_catalog(store, received, stamp))
                        continue
                    command = store.commands.get(cid)
                    if command is None or command.status != ACCEPTED:
                        continue
                    if offline_until is not None:
                        self._park(store, (PRICE, cid), offline_until, now)
                        continue
                    self._apply(store, command, stamp, price_rows)
                    command_rows.append(command.state_row())
                    confirmation = self._confirmation_for(store, command)
                    if confirmation is not None:
                        to_send.append(confirmation)
            if command_rows:
                self.database.save_applied(command_rows, price_rows)
            if catalog_writes:
                self.database.submit(*catalog_writes)
        for confirmation in to_send:
            self._sender.send(confirmation)

    def _park(self, store: Store, due: tuple[str, str], until: float, now: float) -> None:
        store.parked[due] = None
        if until != math.inf and store.wake_at != until:
            store.wake_at = until
            key: DueKey = (self._epoch, store.store_id, None, PRICE)
            self._scheduler.schedule(until - now + 0.001, key)

    def _apply_catalog(self, store: Store, received: StoreCatalogCommand, stamp: str) -> list[Any]:
        self._pending -= 1
        before = store.catalog.version
        written, removed = store.catalog.apply(received, stamp)
        self._stats[f"catalog_commands_{received.state}"] += 1
        self._stats["catalog_items_refused"] += len(received.refused)
        row = {
            "b_store_id": store.store_id,
            "b_command_id": received.command_id,
            "state": received.state,
            "applied": received.applied,
            "refused": json.dumps(received.refused),
            "applied_at": received.applied_at,
        }
        version = store.catalog.version if store.catalog.version != before else None
        return PosDatabase.catalog_writes(
            store.store_id,
            row,
            removed,
            [(item.sku, item.digest, item.body) for item in written],
            version,
        )

    def _apply(
        self, store: Store, command: StoreCommand, stamp: str, price_rows: list[dict[str, Any]]
    ) -> None:
        command.apply_count += 1
        command.applied_at = stamp
        self._pending -= 1
        unknown = next((c.sku for c in command.command.changes if c.sku not in store.prices), None)
        if unknown is not None:
            command.status, command.reason = REJECTED, f"unknown SKU {unknown}"
        elif self._draw(store.store_id, command.command_id) < store.knobs.reject_rate:
            command.status, command.reason = REJECTED, store.knobs.reject_reason
        else:
            command.status = APPLIED
            for change in command.command.changes:
                store.prices[change.sku] = change.price
                price_rows.append(
                    {"b_store_id": store.store_id, "b_sku": change.sku, "price": str(change.price)}
                )
        self._stats["commands_applied" if command.status == APPLIED else "commands_rejected"] += 1
        if command.command.callback_url is None:
            command.confirmation = None
        elif store.knobs.lose_confirmations:
            command.confirmation = "lost"
            self._stats["confirmations_lost"] += 1
        else:
            command.confirmation = "pending"

    def _confirmation_for(self, store: Store, command: StoreCommand) -> Confirmation | None:
        url = command.command.callback_url
        if url is None or command.confirmation != "pending":
            return None
        return Confirmation(
            url=url,
            store_id=store.store_id,
            command_id=command.command_id,
            body={
                "platform_id": self.platform_id,
                "store_id": store.store_id,
                "command_id": command.command_id,
                "status": command.status,
                "reason": command.reason,
                "applied_at": command.applied_at,
            },
            epoch=self._epoch,
        )

    def _confirmation_done(self, confirmation: Confirmation, delivered: bool | None) -> None:
        if delivered is None:
            return  # cut short by stop(): still pending, sent again after a restart
        with self._lock:
            if confirmation.epoch != self._epoch:
                return
            self._stats["confirmations_sent" if delivered else "confirmations_failed"] += 1
            store = self._stores.get(confirmation.store_id)
            command = store.commands.get(confirmation.command_id) if store else None
            if command is not None:
                command.confirmation = "sent" if delivered else "failed"
                self.database.save_confirmation(
                    confirmation.store_id, confirmation.command_id, command.confirmation
                )

    # -- knobs and inspection (embedding and /_sim) ------------------------------------------

    def set_knobs(self, store_id: str, **knobs: Any) -> StoreKnobs:
        """Change some knobs of one store; offline windows count from now."""
        now = time.time()
        with self._lock:
            store = self._get(store_id)
            self._set(store, store.knobs.updated(**knobs), "offline_windows" in knobs, now)
            self.database.save_knobs([store.knob_row()])
            return store.knobs

    def set_fleet(self, **knobs: Any) -> None:
        """The same knob changes on every store (validated once, before any store changes)."""
        StoreKnobs().updated(**knobs)
        now = time.time()
        with self._lock:
            for store in self._stores.values():
                self._set(store, store.knobs.updated(**knobs), "offline_windows" in knobs, now)
            self.database.save_knobs([store.knob_row() for store in self._stores.values()])

    def _set(self, store: Store, knobs: StoreKnobs, windows: bool, now: float) -> None:
        store.knobs = knobs
        if windows:
            store.windows_set_at = now if knobs.offline_windows else None
        if store.parked:
            # Its commands may be due now (back online) or later (a new window): re-check.
            store.wake_at = None
            self._scheduler.schedule(0, (self._epoch, store.store_id, None, PRICE))

    def knobs(self, store_id: str) -> StoreKnobs:
        with self._lock:
            return self._get(store_id).knobs

    def is_online(self, store_id: str) -> bool:
        with self._lock:
            return self._get(store_id).offline_until(time.time()) is None

    def store_ids(self) -> list[str]:
        with self._lock:
            return list(self._stores)

    def prices(self, store_id: str) -> dict[str, Decimal]:
        """The store's current prices, whether it is online or not."""
        with self._lock:
            return dict(self._get(store_id).prices)

    def commands(self, store_id: str) -> list[dict[str, Any]]:
        """Every command the store received, in arrival order, with its ``apply_count``."""
        with self._lock:
            return [command.to_dict() for command in self._get(store_id).commands.values()]

    def reachable(self, store_id: str) -> None:
        """Raise unless the store answers now (unknown, offline or busy)."""
        with self._lock:
            self._reachable(store_id, time.time())

    def store(self, store_id: str) -> dict[str, Any]:
        """Knobs, state, prices and commands of one store (``GET /_sim/stores/{id}``)."""
        now = time.time()
        with self._lock:
            store = self._get(store_id)
            until = store.offline_until(now)
            return {
                **store.summary(now),
                "offline_until": None if until in (None, math.inf) else _iso_from_unix(until),
                "knobs": store.knobs.to_dict(),
                "offline_windows_set_at": _iso_from_unix(store.windows_set_at),
                "prices": {sku: str(price) for sku, price in store.prices.items()},
                "waiting_to_apply": len(store.parked),
                "catalog_version": store.catalog.version,
                "catalog_count": len(store.catalog.items),
                "commands": [command.to_dict() for command in store.commands.values()],
            }

    def stats(self) -> dict[str, Any]:
        """Counters since start (or the last reset), plus the work still outstanding."""
        with self._lock:
            out: dict[str, Any] = {"stores": len(self._stores)}
            out.update({name: self._stats[name] for name in STAT_NAMES})
            out["commands_pending"] = self._pending
        out["confirmations_in_flight"] = self._sender.in_flight
        return out
