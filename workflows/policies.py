"""Named timeouts and retry policies for every activity call, in one place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

# Unlimited attempts with capped backoff: an Odoo outage delays postings, never drops them.
# The attempt count and last failure show on the pending activity in the Web UI.
_ODOO_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
)

# Odoo activities heartbeat before every RPC, and each RPC gives up after 30 s
# (activities/odoo/client.py): a worker that died mid-attempt is noticed after this long, and an
# attempt that outlived its timeout stops at its next RPC instead of running beside its retry.
ODOO_HEARTBEAT = timedelta(seconds=45)

# One entry or picking: a handful of RPCs, each up to 30 s when Odoo is struggling.
ODOO_WRITE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": ODOO_HEARTBEAT,
    "retry_policy": _ODOO_RETRY,
}


def odoo_batch_write(batch_size: int) -> dict[str, Any]:
    """A micro-batch: a real Odoo 17 books 17-50 entries/s in bulk on a small machine, so
    allow a minute plus half a second a sale; the heartbeat catches a dead worker sooner."""
    return {
        "start_to_close_timeout": timedelta(seconds=60 + 0.5 * batch_size),
        "heartbeat_timeout": ODOO_HEARTBEAT,
        "retry_policy": _ODOO_RETRY,
    }


# A POS platform read: short, a few quick tries (the caller decides what "no answer" means).
POS_READ: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
}

# The payment gateway: idempotency keys make every retry safe, so retry without limit.
GATEWAY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": _ODOO_RETRY,
}

# Reading what a payout settles: a page of 100 transactions a request, heartbeating each page.
# 100,000 transactions are 1,000 requests: minutes, not seconds; a dead worker is noticed by
# the heartbeat. Reads change nothing: retry without limit, like the gateway's writes.
GATEWAY_SCAN: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": timedelta(seconds=60),
    "retry_policy": _ODOO_RETRY,
}

# Waiting for a sale's refund lock (workflows/sale_refunds.py): the decision itself is an Odoo
# write, retried there; the waiting activity heartbeats, and a retry joins the same decision.
SALE_REFUNDS_LOCK: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": _ODOO_RETRY,
}
# How long a refund waits for its sale's answer before asking again (the sale answers a
# repeated request once, so asking again is always safe).
SALE_REFUNDS_ASK_AGAIN = timedelta(minutes=15)


def odoo_chunk_write(items: int) -> dict[str, Any]:
    """One chunk of a rollout's pricelist work (a few hundred items or prices): a handful of
    RPCs for the writes, one per SKU for reading prices (Odoo computes one price per call).
    Allow a minute plus a quarter second an item; the heartbeat catches a dead worker sooner."""
    return {
        "start_to_close_timeout": timedelta(seconds=60 + 0.25 * items),
        "heartbeat_timeout": ODOO_HEARTBEAT,
        "retry_policy": _ODOO_RETRY,
    }


# Temporal's own API from an activity (signals, visibility counts): quick, retried without limit.
TEMPORAL_READ: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": _ODOO_RETRY,
}

# A night's list of stores: the POS may be down at night; wait for it rather than skip a night.
POS_LISTING: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": _ODOO_RETRY,
}

# Availability to a store (idempotent by command id): an offline store gets it when it is back;
# the publisher gathers newer changes meanwhile and sends them next.
POS_COMMAND_PUBLISH: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        maximum_attempts=0,
    ),
}
