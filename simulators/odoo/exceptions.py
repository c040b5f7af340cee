"""Odoo's exception vocabulary and its JSON-RPC error envelope.

Odoo serialises any server-side exception as HTTP 200 with
``{"error": {"code": 200, "message": "Odoo Server Error", "data": {...}}}`` where
``data.name`` is the dotted class name clients dispatch on (``odoo.exceptions.UserError``,
``builtins.ValueError``, ``psycopg2.OperationalError``...). This module owns those classes and
that envelope, so models raise what Odoo raises and the transport only has to serialise.
"""

from __future__ import annotations

import traceback
from typing import Any


class OdooException(Exception):
    """Base of the ``odoo.exceptions`` family; ``odoo_name`` is what ``data.name`` carries."""

    odoo_name = "odoo.exceptions.UserError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(OdooException):
    odoo_name = "odoo.exceptions.UserError"


class ValidationError(UserError):
    odoo_name = "odoo.exceptions.ValidationError"


class AccessError(UserError):
    odoo_name = "odoo.exceptions.AccessError"


class MissingError(UserError):
    odoo_name = "odoo.exceptions.MissingError"


class AccessDenied(OdooException):
    odoo_name = "odoo.exceptions.AccessDenied"

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)


class DatabaseNotFound(Exception):
    """What a real server raises (from psycopg2) when the db name does not exist."""

    odoo_name = "psycopg2.OperationalError"

    def __init__(self, dbname: str) -> None:
        # The host/port of the PostgreSQL Odoo was observed with (docs/odoo17-behaviour.md §a).
        super().__init__(
            f'connection to server at "127.0.0.1", port 5433 failed: '
            f'FATAL:  database "{dbname}" does not exist'
        )


# Texts of the two IntegrityError translations Odoo's service layer applies
# (odoo/service/model.py, ``_as_validation_error``); both end with a newline in the source.
FK_VIOLATION = (
    "The operation cannot be completed: another model requires the record being deleted. "
    "If possible, archive it instead.\n\n"
    "Model: {model_description} ({model_name})\n"
    "Constraint: {constraint}\n"
)
NOT_NULL_VIOLATION = (
    "The operation cannot be completed:\n"
    "- Create/update: a mandatory field is not set.\n"
    "- Delete: another model requires the record being deleted."
    " If possible, archive it instead.\n\n"
    "Model: {model_description} ({model_name})\n"
    "Field: {field_string} ({field_name})\n"
)
SQL_CONSTRAINT = "The operation cannot be completed: {message}"


def error_name(exc: BaseException) -> str:
    """The ``data.name`` Odoo would report: ``module.ClassName`` of the exception."""
    name = getattr(exc, "odoo_name", None)
    if isinstance(name, str):
        return name
    cls = type(exc)
    return f"{cls.__module__}.{cls.__name__}"


def error_message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        # str(KeyError('x')) is "'x'", which is also what Odoo shows.
        return str(exc)
    return str(exc.args[0]) if len(exc.args) == 1 else str(exc)


def serialize_exception(exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC ``error`` member, shaped like ``odoo.http.serialize_exception``."""
    message = error_message(exc)
    debug = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    arguments = [a if isinstance(a, str | int | float | bool) else repr(a) for a in exc.args]
    return {
        "code": 200,
        "message": "Odoo Server Error",
        "data": {
            "name": error_name(exc),
            "debug": debug,
            "message": message,
            "arguments": arguments,
            "context": {},
        },
    }
