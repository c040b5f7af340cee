"""Stripe's error envelope: ``{"error": {"type", "code", "message", "param"}}`` with its
HTTP status, raised by the ledger and written as is by the server."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error answered the way Stripe answers it.

    ``saved`` says whether an idempotent request stores it for replay: Stripe stores the
    result of any request whose endpoint began executing (a declined or too-large refund),
    not a request that failed validation (a missing parameter, an unknown payment intent).
    """

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        code: str | None = None,
        param: str | None = None,
        saved: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.saved = saved
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(
    message: str, code: str | None = None, param: str | None = None, saved: bool = False
) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code, param, saved=saved)


def missing(kind: str, object_id: str, param: str | None = None) -> StripeError:
    return StripeError(
        404, "invalid_request_error", f"No such {kind}: '{object_id}'", "resource_missing", param
    )
