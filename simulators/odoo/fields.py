"""Field descriptors of the emulated ORM: type, label, flags and value conversions.

A field knows how to turn an RPC value into a column value (``to_column``, raising the
``ValueError`` texts Odoo raises) and a column value into what ``read`` returns
(``to_read``), and how ``fields_get`` describes it. Storage itself is the SQLModel tables in
``tables.py``; a stored field maps to the column of the same name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

NOTHING: Any = object()

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def default_string(name: str) -> str:
    """Odoo's label for a field declared without ``string``."""
    base = name
    if base.endswith("_ids"):
        base = base[:-4]
    elif base.endswith("_id"):
        base = base[:-3]
    return base.replace("_", " ").title()


class Field:
    """A field of a model. Subclasses set ``type`` and the conversions."""

    type: ClassVar[str] = ""
    relational: ClassVar[bool] = False

    def __init__(
        self,
        string: str | None = None,
        *,
        required: bool = False,
        readonly: bool = False,
        default: Any = NOTHING,
        compute: str | None = None,
        inverse: str | None = None,
        search: str | None = None,
        related: str | None = None,
        store: bool | None = None,
        index: bool = False,
        help: str | None = None,
    ) -> None:
        self.string = string
        self.required = required
        self.readonly = readonly or (bool(compute) and not inverse)
        self.default = default
        self.compute = compute
        self.inverse = inverse
        self.search = search
        self.related = related
        self._store = store
        self.index = index
        self.help = help
        self.name = ""
        self.model_name = ""
        # Set by the registry for fields delegated through ``_inherits``.
        self.inherited = False

    def __set_name__(self, owner: object, name: str) -> None:
        self.name = name
        if self.string is None:
            self.string = default_string(name)

    @property
    def store(self) -> bool:
        if self._store is not None:
            return self._store
        return not (self.compute or self.related)

    @property
    def column(self) -> bool:
        """Whether the field is a column of the model's table."""
        return self.store

    def default_value(self, env: Any) -> Any:
        if self.default is NOTHING:
            return NOTHING
        if callable(self.default):
            fn: Callable[[Any], Any] = self.default
            return fn(env)
        return self.default

    def __str__(self) -> str:
        return f"{self.model_name}.{self.name}"

    def to_column(self, value: Any) -> Any:
        """RPC value -> value stored in the column (None for SQL NULL)."""
        return None if value is None or value is False else value

    def to_read(self, value: Any) -> Any:
        """Column (or computed) value -> JSON value ``read`` returns."""
        return False if value is None else value

    def is_empty(self, value: Any) -> bool:
        return value is None or value is False or value == ""

    def describe(self) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "type": self.type,
            "string": self.string,
            "name": self.name,
            "readonly": self.readonly,
            "required": self.required,
            "store": self.store,
            "searchable": self.store or bool(self.search or self.related),
            "sortable": self.store,
            "groupable": self.store,
            "exportable": True,
            "manual": False,
            "company_dependent": False,
            "change_default": False,
            "depends": [self.related] if self.related else [],
        }
        if self.help:
            desc["help"] = self.help
        if self.related:
            desc["related"] = self.related
        return desc


class Char(Field):
    type = "char"

    def to_column(self, value: Any) -> Any:
        if value is None or value is False:
            return None
        return str(value)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "translate": False, "trim": True}


class Text(Char):
    type = "text"


class Html(Char):
    type = "html"


class Integer(Field):
    type = "integer"

    def to_column(self, value: Any) -> Any:
        if value is None or value is False:
            return None
        return int(value)

    def to_read(self, value: Any) -> Any:
        return 0 if value is None else value

    def is_empty(self, value: Any) -> bool:
        return value is None


class Float(Field):
    type = "float"

    def __init__(self, string: str | None = None, *, digits: int | None = None, **kw: Any) -> None:
        super().__init__(string, **kw)
        self.digits = digits

    def to_column(self, value: Any) -> Any:
        if value is None or value is False:
            return None
        number = float(value)
        return round(number, self.digits) if self.digits is not None else number

    def to_read(self, value: Any) -> Any:
        return 0.0 if value is None else value

    def is_empty(self, value: Any) -> bool:
        return value is None

    def describe(self) -> dict[str, Any]:
        desc = super().describe()
        if self.digits is not None:
            desc["digits"] = [16, self.digits]
        return desc


class Monetary(Float):
    type = "monetary"

    def __init__(
        self, string: str | None = None, *, currency_field: str = "currency_id", **kw: Any
    ) -> None:
        super().__init__(string, digits=2, **kw)
        self.currency_field = currency_field

    def describe(self) -> dict[str, Any]:
        desc = super().describe()
        desc.pop("digits", None)
        desc["currency_field"] = self.currency_field
        return desc


class Boolean(Field):
    type = "boolean"

    def to_column(self, value: Any) -> Any:
        return bool(value)

    def to_read(self, value: Any) -> Any:
        return bool(value)

    def is_empty(self, value: Any) -> bool:
        return value is None


class Date(Field):
    type = "date"

    def to_column(self, value: Any) -> Any:
        if value is None or value is False or value == "":
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        return dt.datetime.strptime(str(value)[:10], DATE_FORMAT).date()

    def to_read(self, value: Any) -> Any:
        if value is None:
            return False
        return value.strftime(DATE_FORMAT)


class Datetime(Field):
    type = "datetime"

    def to_column(self, value: Any) -> Any:
        if value is None or value is False or value == "":
            return None
        if isinstance(value, dt.datetime):
            return value.replace(microsecond=0, tzinfo=None)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day)
        text = str(value).replace("T", " ")
        if len(text) == 10:
            text += " 00:00:00"
        return dt.datetime.strptime(text[:19], DATETIME_FORMAT)

    def to_read(self, value: Any) -> Any:
        if value is None:
            return False
        return value.strftime(DATETIME_FORMAT)


class Selection(Field):
    type = "selection"

    def __init__(
        self, selection: list[tuple[str, str]], string: str | None = None, **kw: Any
    ) -> None:
        super().__init__(string, **kw)
        self.selection = selection

    def to_column(self, value: Any) -> Any:
        if value is None or value is False:
            return None
        if value not in {key for key, _label in self.selection}:
            raise ValueError(f"Wrong value for {self}: {value!r}")
        return value

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "selection": [list(s) for s in self.selection]}


class Many2one(Field):
    type = "many2one"
    relational = True

    def __init__(
        self,
        comodel_name: str,
        string: str | None = None,
        *,
        ondelete: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(string, **kw)
        self.comodel_name = comodel_name
        # Odoo's default: a required many2one restricts deletion, an optional one is emptied.
        self.ondelete = ondelete or ("restrict" if self.required else "set null")

    def to_column(self, value: Any) -> Any:
        if value is None or value is False:
            return None
        if isinstance(value, list | tuple):
            value = value[0] if value else None
            if value is None:
                return None
        return int(value)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "relation": self.comodel_name, "context": {}, "domain": []}


class One2many(Field):
    type = "one2many"
    relational = True

    def __init__(
        self,
        comodel_name: str,
        inverse_name: str,
        string: str | None = None,
        *,
        domain: list[Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(string, **kw)
        self.comodel_name = comodel_name
        self.inverse_name = inverse_name
        # Extra condition on the comodel records listed (e.g. invoice vs refund repartition).
        self.domain = domain or []

    @property
    def store(self) -> bool:
        return not (self.compute or self.related) if self._store is None else self._store

    @property
    def column(self) -> bool:
        return False

    def to_read(self, value: Any) -> Any:
        return list(value or [])

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "relation": self.comodel_name,
            "relation_field": self.inverse_name,
            "context": {},
            "domain": [list(leaf) for leaf in self.domain],
        }


class Many2many(Field):
    type = "many2many"
    relational = True

    def __init__(
        self, comodel_name: str, relation: str, string: str | None = None, **kw: Any
    ) -> None:
        super().__init__(string, **kw)
        self.comodel_name = comodel_name
        # Name of the link table in Odoo; here the key of its rows in the shared link table.
        self.relation = relation

    @property
    def column(self) -> bool:
        return False

    def to_read(self, value: Any) -> Any:
        return list(value or [])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "relation": self.comodel_name, "context": {}, "domain": []}
