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

# One entry: a handful of RPCs.
ODOO_WRITE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=20),
    "retry_policy": _ODOO_RETRY,
}


def odoo_batch_write(batch_size: int) -> dict[str, Any]:
    """A micro-batch: Odoo 17 books ~50 entries/s in bulk (facts §h), so allow 10 s plus
    0.2 s a sale; a tight timeout lets a crashed worker's batch be retried sooner."""
    return {
        "start_to_close_timeout": timedelta(seconds=10 + 0.2 * batch_size),
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
