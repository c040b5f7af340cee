"""A retailer's POS platform simulator: a fleet of stores behind one HTTP API.

It stands in for the platform a price & promotion rollout commands: each store accepts price
commands, applies them after a delay, and confirms to a callback URL with a signed POST.
State is kept in SQLite through SQLModel (a file, or memory).

Embedding::

    from simulators.pos import PosPlatform, StoreKnobs
    pos = PosPlatform(stores=80, db_path=None, secret="s3cret", platform_id="pos-main", seed=1)
    url = pos.start(host="127.0.0.1", port=0)      # background thread; pos.port
    pos.set_knobs("S003", online=False)
    pos.set_knobs("S004", offline_windows=[(0, 5)])   # offline for 5 s from now
    pos.set_fleet(apply_delay_ms=0)
    pos.prices("S001"); pos.commands("S001"); pos.stats()
    pos.stop()

Command line::

    python -m simulators.pos --stores 80 --port 8070 --db var/pos.sqlite --secret s3cret

Stores ``S001``..``S080`` (four digits past 999 stores), regions ``north, south, east, west``
round-robin, every price list seeded with ``simulators.sales.CATALOGUE``.

API (JSON):

* ``GET /v1/stores[?region=north]`` → ``{"stores": [{"store_id", "region", "online"}]}``;
* ``POST /v1/stores/{id}/price-commands`` with ``{"command_id", "changes": [{"sku", "price":
  "9.99", "currency": "USD", "start", "end"}], "effective_at", "callback_url"}`` → 202
  ``{"command_id", "store_id", "status": "accepted"}``; a command the store already has → 200
  with its current status (it is never applied twice); bad body → 422 ``{"error", "field"}``;
  unknown store → 404; store offline → 504 and nothing recorded;
* ``GET /v1/stores/{id}/price-commands/{command_id}`` → ``{"command_id", "store_id", "status",
  "reason", "applied_at"}``; ``GET /v1/stores/{id}/prices`` → ``{"store_id", "prices"}``.

The store applies a command ``apply_delay_ms`` after accepting it (later if it is offline
then: as soon as it is back); ``effective_at`` is recorded, it does not delay the apply. A
resent ``command_id`` keeps the first body. A SKU it does not sell rejects the command
(``unknown SKU X``); ``reject_rate`` rejects at random with ``reject_reason``. It then
POSTs ``{"platform_id", "store_id", "command_id", "status", "reason", "applied_at"}`` to
``callback_url`` with
``X-POS-Platform``, ``X-POS-Timestamp`` and ``X-POS-Signature: sha256=<HMAC-SHA256 of
"<timestamp>.<body>">`` (see ``signing.py``), unless ``lose_confirmations`` is on.

The store's journal (``journal.py``): ``POST /v1/stores/{id}/transactions`` rings up one sale
(sale JSON, ``kind`` sale|refund|void; 201 new, 200 the same body again, 409 another body under
the same ``txn_id``); ``GET /v1/stores/{id}/z-report?day=YYYY-MM-DD`` (counts and amounts per
tender for sales, refunds and voids, totals); ``GET /v1/stores/{id}/transactions?day=D&limit=N
&starting_after=TXN`` (full sales, by id, ``has_more``); ``POST /_sim/stores/{id}/transactions``
with a list (bulk, for tests and benchmarks). The day is the ``occurred_at`` date in the offset
the POS reported.

The store's catalog (``catalog.py``): ``POST /v1/stores/{id}/catalog-commands`` with
``{"command_id", "version", "upserts": [item], "withdrawals": [{"sku", "odoo_id"}]}`` → 202
``{"command_id", "state": "received", "version"}`` (200 with the current state for the same
body again, 409 for another body under the same id, 400 ``{"error": "<field>: <why>"}`` on a
malformed body, 504 offline, 429/503 busy), applied after ``apply_delay_ms``: items with a bad
barcode or an SKU another product holds are refused one by one, a command older than the
store's catalog version is ``stale`` and ignored;
``GET /v1/stores/{id}/catalog-commands/{command_id}`` → ``{"command_id", "state", "version",
"applied", "refused": [{"sku", "odoo_id", "reason"}]}``; ``GET /v1/stores/{id}/catalog?
after_sku=&limit=`` (by SKU, ``next_after_sku``); ``GET /v1/stores/{id}/catalog/version``.

Run-time control: ``PUT /_sim/stores/{id}`` and ``PUT /_sim/fleet`` with any knobs
(``online``, ``apply_delay_ms``, ``reject_rate``, ``reject_reason``, ``lose_confirmations``,
``offline_windows``); ``GET /_sim/stores/{id}`` (knobs, state, prices, commands with
``apply_count`` and ``received_at``); ``GET /_sim/stats``; ``POST /_sim/reset``.

Throughput: ``python -m simulators.pos.loadtest --stores 2000 --commands 10000 --concurrency 100``.
"""

from __future__ import annotations

from .errors import InvalidField, StoreOffline, UnknownCommand, UnknownStore
from .knobs import StoreKnobs
from .platform import REGIONS, PosPlatform, fleet_ids
from .signing import sign, verify

__all__ = [
    "REGIONS",
    "InvalidField",
    "PosPlatform",
    "StoreKnobs",
    "StoreOffline",
    "UnknownCommand",
    "UnknownStore",
    "fleet_ids",
    "sign",
    "verify",
]
