"""What the platform refuses, each mapped to one HTTP answer by the server."""

from __future__ import annotations


class InvalidField(ValueError):
    """A request body (or knob update) that cannot be accepted: HTTP 422 naming the field."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class UnknownStore(LookupError):
    """No such store in the fleet: HTTP 404."""

    def __init__(self, store_id: str) -> None:
        super().__init__(f"unknown store {store_id}")
        self.store_id = store_id


class UnknownCommand(LookupError):
    """The store never received this command: HTTP 404."""

    def __init__(self, store_id: str, command_id: str) -> None:
        super().__init__(f"store {store_id} has no command {command_id}")


class StoreOffline(ConnectionError):
    """The platform cannot reach the store right now: HTTP 504, nothing recorded."""

    def __init__(self, store_id: str) -> None:
        super().__init__(f"store {store_id} is offline")
        self.store_id = store_id


class PlatformBusy(Exception):
    """The platform refuses this request for now (rate limit or overload): HTTP 429 or 503
    with a Retry-After, nothing recorded."""

    def __init__(self, store_id: str, status: int, retry_after_s: float) -> None:
        super().__init__(f"too many requests for store {store_id}: retry later")
        self.status = status
        self.retry_after_s = retry_after_s
