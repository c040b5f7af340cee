"""An Odoo 17 JSON-RPC emulator that the real ``odoorpc`` client talks to unchanged.

It answers like the Odoo 17 Community server of ``docs/odoo17-behaviour.md``
(``retail`` database, generic chart, USD, admin uid 2): same endpoints, fields, method
semantics and error names and texts, for the models the project uses (res.*, product.*
with pricelists, account.* with journal entries and their reversal, stock.*), stored in
SQLite through SQLModel tables.

Embedding::

    from simulators.odoo import OdooEmulator, Faults
    emu = OdooEmulator(db_path=None, dbname="retail", users={"admin": "admin"})
    url = emu.start(host="127.0.0.1", port=0)      # background thread
    emu.faults = Faults(error_rate=0.1, kinds=("lost_response",), seed=1)
    emu.stats()
    emu.stop()

Command line::

    python -m simulators.odoo --port 8069 --db var/odoo.sqlite \\
        --latency-ms 5 --error-rate 0.1 --faults transport,http_500,lost_response
    python -m simulators.odoo --concurrency postgres --commit-jitter-ms 20 --seed 1

Concurrency (``concurrency=`` of ``OdooEmulator``, ``--concurrency``): ``serial`` (default)
runs one call at a time; ``postgres`` lets calls interleave as on PostgreSQL: ids are taken at
insert but a call's inserted rows become visible only at its commit, a random short while
after its work (``--commit-jitter-ms``, seeded by ``--seed``), so a search can see id 11
before id 10; two calls writing the same row, or the quants of the same product, while both
are open: the later one fails with ``psycopg2.errors.SerializationFailure`` ("could not
serialize access due to concurrent update"), after ``--conflict-retries`` new attempts
(Odoo makes 5; default 0); drafts created at once in a journal's new period share a name.
``stats()`` counts ``serialization_failures`` (answered) and ``write_conflicts`` (lost).

Cost model (``cost_model="odoo17"`` of ``OdooEmulator``, ``--cost-model odoo17``; off by
default): each call uses the server time a real Odoo 17 (``workers=0``) spends on what it does
(per RPC, per record created, per journal item, per entry posted, per stock move validated,
per row of a table searched on an unindexed field), as CPU under the GIL: two heavy calls at
once each take about twice as long. ``stats()`` then reports ``server_time_s`` (charged),
``server_cpu_s`` (used) and ``server_time_by_method``. Parameters: ``cost.CostModel``.

Run-time control over HTTP (JSON bodies):

* ``GET /_emulator/faults``: the current fault settings;
* ``PUT /_emulator/faults``: change them, e.g. ``{"error_rate": 0.2, "kinds": ["lost_response"],
  "methods": ["create", "action_post"], "latency_ms": 5, "seed": 1}``; keys left out keep their
  value; ``fault_mix`` (``{"transport": 1, "lost_response": 3}``) weighs the kinds;
* ``GET /_emulator/stats``: ``calls``, ``object_calls``, ``errors`` (Odoo errors answered),
  ``by_method`` (``model.method`` or ``service.method``), ``faults`` by kind, ``faults_total``;
  ``server_time_s``/``server_cpu_s``/``server_time_by_method`` (cost model), ``cost_model``,
  ``work`` (what committed calls did: ``"create account.move"``, ``"post account.move"``,
  ``"done stock.move"``... counts);
  ``DELETE /_emulator/stats`` zeroes them;
* ``POST /_emulator/reset``: wipe the database back to the seeded chart.

Fault kinds (object-service calls only, optionally only some methods; never the
``res.users.context_get`` that ends odoorpc's login): ``transport`` closes the connection
before doing the work, ``http_500`` answers HTTP 500 before doing the work,
``lost_response`` does the work, commits, then closes the connection without an answer.
odoorpc surfaces a dropped connection as ``http.client.RemoteDisconnected`` and a 500 as
``urllib.error.HTTPError``, never as an ``RPCError``.
"""

from __future__ import annotations

from .concurrency import Concurrency
from .cost import CostModel
from .emulator import OdooEmulator
from .faults import FAULT_KINDS, Faults

__all__ = ["FAULT_KINDS", "Concurrency", "CostModel", "Faults", "OdooEmulator"]
