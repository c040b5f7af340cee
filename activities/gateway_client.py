"""The payment gateway adapter: the official `stripe` SDK, pointed at Stripe (test or live) or at
the project's simulator by its API base. Failures are classified like the other adapters':
declines and over-refunds are business refusals; transport, 5xx and rate limits retry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

import stripe
from temporalio.exceptions import ApplicationError

from domain.money import cents
from domain.settlement import PayoutTotals, add_transaction
from workers.metrics import external_call


class GatewayUnavailable(Exception):
    """No answer, or a server-side fault: the call may or may not have been applied; retry
    with the same idempotency key and the gateway returns what it did."""


@dataclass(frozen=True)
class GatewaySettings:
    api_key: str = field(default="sk_test_retailflow", repr=False)  # never in a repr or a log
    api_base: str | None = "http://127.0.0.1:8090"  # None: Stripe itself
    timeout_s: float = 20.0


def to_minor(amount: Decimal) -> int:
    return int(cents(amount) * 100)


def from_minor(amount: int) -> Decimal:
    return cents(Decimal(amount) / 100)


def raise_classified(exc: stripe.StripeError, what: str) -> NoReturn:
    if isinstance(exc, stripe.CardError):
        raise ApplicationError(
            f"gateway declined {what}: {exc.user_message or exc}",
            type="RefundDeclined",
            non_retryable=True,
        ) from exc
    if isinstance(exc, stripe.IdempotencyError):
        raise ApplicationError(
            f"gateway refused {what}: {exc.user_message or exc}",
            type="IdempotencyConflict",
            non_retryable=True,
        ) from exc
    if isinstance(exc, stripe.InvalidRequestError):
        raise ApplicationError(
            f"gateway refused {what}: {exc.user_message or exc}",
            {"code": exc.code},
            type="GatewayRefused",
            non_retryable=True,
        ) from exc
    # APIConnectionError, APIError (5xx), RateLimitError, AuthenticationError (a rotated key:
    # fix the setting and it resumes): retry, visibly, in the Web UI.
    raise GatewayUnavailable(f"gateway failed {what}: {type(exc).__name__}: {exc}") from exc


def call_outcome(exc: Exception) -> str:
    """How a failed call is counted (workers/metrics.py), as raise_classified sees it."""
    if isinstance(exc, stripe.CardError | stripe.IdempotencyError | stripe.InvalidRequestError):
        return "business_refusal"
    if isinstance(exc, stripe.APIConnectionError):
        return "transport"
    return "server_error"


class GatewayClient:
    def __init__(self, settings: GatewaySettings) -> None:
        base = {"api": settings.api_base} if settings.api_base else None
        # No SDK retries: Temporal retries the activity, with the same idempotency key.
        self._http = stripe.new_default_http_client(timeout=settings.timeout_s)
        self._stripe = stripe.StripeClient(
            settings.api_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=0,
            http_client=self._http,
        )

    def close(self) -> None:
        self._http.close()  # type: ignore[no-untyped-call]

    @property
    def stripe(self) -> stripe.StripeClient:
        """The SDK client (its connections close with this client), for reads of its own."""
        return self._stripe

    def payment(self, payment_intent: str) -> dict[str, Any]:
        """amount and amount_refunded (minor units) of a card payment."""
        try:
            with external_call("gateway", "payment_intents.retrieve", call_outcome):
                pi = self._stripe.v1.payment_intents.retrieve(payment_intent)
                charge_id = pi.latest_charge if isinstance(pi.latest_charge, str) else None
                refunded = 0
                if charge_id:
                    refunded = self._stripe.v1.charges.retrieve(charge_id).amount_refunded
        except stripe.StripeError as e:
            raise_classified(e, f"payment {payment_intent}")
        return {"amount": pi.amount, "amount_refunded": refunded, "currency": pi.currency}

    def find_refund(self, payment_intent: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        """A refund of this payment made earlier with this metadata that is not failed or
        canceled, if any. Stripe keeps idempotency keys 24 hours only (and the keys changed
        form once): a retry after that must find what it already did before doing it again.
        Stripe cannot filter refunds by metadata: list the payment's refunds and compare."""
        try:
            with external_call("gateway", "refunds.list", call_outcome):
                page = self._stripe.v1.refunds.list(
                    params={"payment_intent": payment_intent, "limit": 100}
                )
                for r in page.auto_paging_iter():
                    meta = r.metadata.to_dict() if r.metadata else {}
                    if r.status not in ("failed", "canceled") and all(
                        meta.get(k) == v for k, v in metadata.items()
                    ):
                        return {"id": r.id, "status": r.status, "amount": r.amount}
        except stripe.StripeError as e:
            raise_classified(e, f"refunds of {payment_intent}")
        return None

    def refund_state(self, refund_id: str) -> dict[str, Any]:
        """status (pending, succeeded, failed, canceled...), failure_reason and amount."""
        try:
            with external_call("gateway", "refunds.retrieve", call_outcome):
                r = self._stripe.v1.refunds.retrieve(refund_id)
        except stripe.StripeError as e:
            raise_classified(e, f"refund {refund_id}")
        return {
            "id": r.id,
            "status": r.status,
            "failure_reason": getattr(r, "failure_reason", None),
            "amount": r.amount,
            "payment_intent": r.payment_intent
            if isinstance(r.payment_intent, str)
            else getattr(r.payment_intent, "id", None),
        }

    def refund(
        self, payment_intent: str, amount: Decimal, idempotency_key: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        try:
            with external_call("gateway", "refunds.create", call_outcome):
                refund = self._stripe.v1.refunds.create(
                    params={
                        "payment_intent": payment_intent,
                        "amount": to_minor(amount),
                        "reason": "requested_by_customer",
                        "metadata": metadata,
                    },
                    options={"idempotency_key": idempotency_key},
                )
        except stripe.StripeError as e:
            raise_classified(e, f"refund of {amount} on {payment_intent}")
        return {"id": refund.id, "status": refund.status, "amount": refund.amount}

    # -- settlement -----------------------------------------------------------------------------

    def payouts(self, created_gte: int, created_lt: int) -> list[dict[str, Any]]:
        """The payouts created in [created_gte, created_lt), newest first (auto-paginated;
        a day makes one per currency, so a window holds few)."""
        try:
            with external_call("gateway", "payouts.list", call_outcome):
                page = self._stripe.v1.payouts.list(
                    params={"created": {"gte": created_gte, "lt": created_lt}, "limit": 100}
                )
                return [_payout_fields(p) for p in page.auto_paging_iter()]
        except stripe.StripeError as e:
            raise_classified(e, f"payouts created in [{created_gte}, {created_lt})")

    def payout(self, payout_id: str) -> dict[str, Any]:
        try:
            with external_call("gateway", "payouts.retrieve", call_outcome):
                return _payout_fields(self._stripe.v1.payouts.retrieve(payout_id))
        except stripe.StripeError as e:
            raise_classified(e, f"payout {payout_id}")

    def payout_totals(
        self, payout: dict[str, Any], on_page: Callable[[int], None] | None = None
    ) -> PayoutTotals:
        """The sums of the balance transactions a payout settles, read page by page (100 a
        page, auto-paginated by the SDK) and never kept: a payout of 100,000 transactions costs
        1,000 requests and constant memory. `on_page(count so far)` every page (a heartbeat).

        A failed payout's money comes back as one `payout_failure` transaction and is paid out
        again with a later payout. Its entry was reversed in Odoo (its charges are uncleared
        again, its fees unbooked), so the later payout books it as what it was made of: the
        failed payout's own transactions are summed in its place."""
        sums: dict[str, int] = {}
        self._sum_payout(payout["payout_id"], sums, on_page, depth=0)
        return PayoutTotals(**payout, **sums)

    def _sum_payout(
        self,
        payout_id: str,
        sums: dict[str, int],
        on_page: Callable[[int], None] | None,
        depth: int,
    ) -> None:
        try:
            with external_call("gateway", "balance_transactions.list", call_outcome):
                page = self._stripe.v1.balance_transactions.list(
                    params={"payout": payout_id, "limit": 100}
                )
                for n, t in enumerate(page.auto_paging_iter(), start=1):
                    if t.type == "payout_failure" and isinstance(t.source, str) and depth < 3:
                        self._sum_payout(t.source, sums, on_page, depth + 1)
                    else:
                        add_transaction(sums, t.type, t.amount, t.fee, t.net)
                    if on_page is not None and n % 100 == 0:
                        on_page(sums.get("transactions", 0))
        except stripe.StripeError as e:
            raise_classified(e, f"balance transactions of payout {payout_id}")


def _payout_fields(p: Any) -> dict[str, Any]:
    return {
        "payout_id": p.id,
        "currency": p.currency,
        "status": p.status,
        "amount": p.amount,
        "created": p.created,
        "arrival_date": p.arrival_date or 0,
        "failure_code": getattr(p, "failure_code", None),
    }
