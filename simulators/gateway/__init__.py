"""A Stripe-compatible payment gateway subset that the official ``stripe`` SDK talks to
unchanged: point the SDK's API base at it, and the same code runs against Stripe's test mode
by configuration alone.

Wire format as Stripe's: form-encoded bodies and queries (``metadata[k]=v``, ``expand[0]=x``,
``created[gte]=t``), JSON objects and list objects (``{"object": "list", "data", "has_more",
"url"}``), errors as ``{"error": {"type", "code", "message", "param"}}``, Bearer auth (any
``sk_test_...`` key; anything else is 401 ``authentication_error``), ``Request-Id`` headers.
State is kept in SQLite through SQLModel (a file, or memory).

Embedding::

    from simulators.gateway import Gateway, GatewayFaults
    gw = Gateway(db_path=None, seed=1)
    url = gw.start(host="127.0.0.1", port=0)          # gw.port, gw.url
    gw.create_payment_intent("pi_S001_T00042", amount_cents=1591, currency="usd")
    gw.faults = GatewayFaults(error_rate=0.1, kinds=("lost_response",), seed=3,
                              paths=("/v1/refunds",))
    gw.decline("pi_...")                               # refunds on it are declined
    gw.refunds(payment_intent="pi_..."); gw.stats(); gw.stop()

    client = stripe.StripeClient("sk_test_x", base_addresses={"api": url},
                                 max_network_retries=2)

Command line: ``python -m simulators.gateway --port 8090 --db var/gateway.sqlite``.

Stripe routes:

* ``GET /v1/payment_intents/search`` (``query`` in Stripe's search language:
  ``metadata['k']:'v'``, ``created>=N`` (``>``, ``<``, ``<=``), ``status:'succeeded'``,
  ``currency:'usd'``, ``amount>N``, joined by `` AND ``; ``limit`` 1..100, ``page`` the
  previous result's ``next_page``, ``expand[]=data.latest_charge``): a ``search_result``;
* ``GET /v1/payment_intents/{id}`` (``expand[]=latest_charge``), ``GET /v1/charges/{id}``
  (``amount``, ``amount_refunded``, ``refunded``, ``payment_intent``);
* ``POST /v1/refunds`` (``payment_intent`` or ``charge``, ``amount`` defaulting to what is
  left, ``reason``, ``metadata[...]``); errors: ``amount_too_large``,
  ``charge_already_refunded``, ``resource_missing`` (404), ``parameter_unknown``,
  ``parameter_missing``; ``GET /v1/refunds[?payment_intent=|charge=]``, ``GET /v1/refunds/{id}``;
* ``GET /v1/balance_transactions`` (``created[gte|gt|lt|lte]``, ``type``, ``source``,
  ``payout``, ``limit``, ``starting_after``, ``ending_before``): ``charge`` (fee 2.9 % + 30)
  and ``refund`` (fee 0) transactions, newest first;
* ``GET /v1/payouts[/{id}]``: one automatic payout per UTC day and currency of that day's net,
  ``pending`` until the day ends, ``paid`` two days later.

``Idempotency-Key`` on ``POST`` as Stripe documents it: the first result is stored with the
work in one transaction (including a declined or too-large refund; not a request that fails
validation or names an unknown object), the same key and parameters replay it with
``Idempotent-Replayed: true``, other parameters are a 400 ``idempotency_error``, a request
while another with the key is in progress is a 409 ``idempotency_key_in_use``; keys are
kept 24 hours (``idempotency_ttl_s``), after which the same key makes a new refund, as at
Stripe: find an earlier refund by its metadata (``GET /v1/refunds?payment_intent=``) first.

A succeeded refund can fail later, as Stripe reports days after the fact
(``gw.fail_refund(re_id, "lost_or_stolen_card")``, or ``POST /_sim/refunds/{id}/fail``): it
turns ``failed`` with its ``failure_reason`` and ``failure_balance_transaction`` (type
``refund_failure``), the charge can be refunded again, and the events
``charge.refund.updated`` and ``refund.failed`` are listed by ``GET /v1/events[/{id}]``
(``type``, ``created``, paging) and POSTed to ``webhook_url`` with a ``Stripe-Signature``
header that ``stripe.Webhook.construct_event`` verifies with ``webhook_secret``.

Differs from Stripe on purpose: a declined refund is answered synchronously as HTTP 402
``card_error``, code ``refund_declined`` (the failed refund object is in the error's
``refund`` member and is listed with ``status: "failed"``, ``failure_reason: "declined"``),
where Stripe answers 200 and fails the refund later, asynchronously. Payment intents are
made only through the admin route, always succeeded card payments; payouts have no balance
transaction of their own.

Admin (JSON, no auth): ``POST /_sim/payment_intents`` ``{"id", "amount", "currency",
"metadata", "created"}`` (idempotent by id); ``GET``/``PUT /_sim/faults`` ``{"latency_ms",
"error_rate", "kinds": [transport|http_500|lost_response], "methods": ["POST"], "paths":
["/v1/refunds"], "seed", "max_faults"}`` (keys left out keep their value);
``GET``/``PUT /_sim/declines`` ``{"payment_intents": [...], "rate": 0.0}``;
``GET``/``PUT /_sim/idempotency`` ``{"ttl_s", "expire_now"}``; ``GET``/``PUT /_sim/webhook``
``{"url", "secret"}``; ``POST /_sim/refunds/{id}/fail`` ``{"failure_reason"}``;
``GET``/``DELETE /_sim/stats`` (``requests``,
``refunds_created``, ``idempotent_replays``, ``declines``, ``faults`` by kind, ``errors`` by
code); ``POST /_sim/reset``. Faults (see ``faults.py``) never touch ``/_sim`` routes.
"""

from __future__ import annotations

from .errors import StripeError
from .faults import FAULT_KINDS, GatewayFaults
from .gateway import Gateway

__all__ = ["FAULT_KINDS", "Gateway", "GatewayFaults", "StripeError"]
