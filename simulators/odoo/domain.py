"""Odoo search domains compiled to SQLAlchemy WHERE clauses.

Covers the syntax a client sends over RPC: Polish-notation ``&``, ``|``, ``!`` with implicit
``&`` between leaves, the comparison operators, ``in``/``not in``, the ``like`` family,
``child_of``/``parent_of``, ``False`` meaning SQL NULL (with Odoo's NULL handling for ``!=``
and ``not in``), dotted paths through many2one/one2many/many2many fields (compiled to
``IN (SELECT ...)`` subqueries, as Odoo does), related and searchable computed fields, and the
error texts Odoo raises for an unknown field or operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select, true

from . import fields as F
from .tables import Many2manyLink

if TYPE_CHECKING:
    from .orm import BaseModel

Domain = Sequence[Any]

TERM_OPERATORS = frozenset(
    {
        "=",
        "!=",
        "<=",
        "<",
        ">",
        ">=",
        "=?",
        "=like",
        "=ilike",
        "like",
        "not like",
        "ilike",
        "not ilike",
        "in",
        "not in",
        "child_of",
        "parent_of",
    }
)
NEGATIVE_OPERATORS = {"!=": "=", "not in": "in", "not like": "like", "not ilike": "ilike"}
LINK = Many2manyLink.__table__  # type: ignore[attr-defined]


def is_leaf(element: Any) -> bool:
    return isinstance(element, list | tuple) and len(element) == 3


def leaf_repr(leaf: Any) -> str:
    return repr(tuple(leaf))


def normalize(domain: Domain) -> list[Any]:
    """Insert the implicit ``&`` operators, as ``odoo.osv.expression.normalize_domain``."""
    if not isinstance(domain, list | tuple):
        raise ValueError(
            "Domains to normalize must have a 'domain' form: a list or tuple of domain "
            f"components (got {domain!r})"
        )
    if not domain:
        return [(1, "=", 1)]
    result: list[Any] = []
    expected = 1
    arity = {"!": 1, "&": 2, "|": 2}
    for token in domain:
        if expected == 0:
            result[0:0] = ["&"]
            expected = 1
        if isinstance(token, list | tuple):
            if not is_leaf(token):
                raise ValueError(f"Invalid leaf {token!r}")
            expected -= 1
            result.append(tuple(token))
        elif token in arity:
            expected += arity[token] - 1
            result.append(token)
        else:
            raise ValueError(f"Invalid leaf {token!r}")
    if expected != 0:
        raise ValueError(f"Domain {domain!r} is syntactically not correct.")
    return result


def compile_domain(model: BaseModel, domain: Domain) -> ColumnElement[bool]:
    stack: list[ColumnElement[bool]] = []
    for token in reversed(normalize(domain)):
        if token == "!":
            stack.append(not_(stack.pop()))
        elif token == "&":
            stack.append(and_(stack.pop(), stack.pop()))
        elif token == "|":
            stack.append(or_(stack.pop(), stack.pop()))
        else:
            stack.append(compile_leaf(model, token))
    if len(stack) != 1:
        raise ValueError(f"Domain {domain!r} is syntactically not correct.")
    return stack[0]


def compile_leaf(model: BaseModel, leaf: tuple[Any, Any, Any]) -> ColumnElement[bool]:
    left, operator, right = leaf
    if leaf in ((1, "=", 1), (True, "=", True)):
        return true()
    if leaf in ((0, "=", 1), (False, "=", True)):
        return false()
    if not isinstance(left, str) or not isinstance(operator, str):
        raise ValueError(f"Invalid leaf {leaf_repr(leaf)}")
    operator = operator.lower()
    if operator == "<>":
        operator = "!="
    if operator not in TERM_OPERATORS:
        raise ValueError(f"Invalid leaf {leaf_repr(leaf)}")
    if operator == "=?":
        if right is False or right is None:
            return true()
        operator = "="
    path = left.split(".")
    field = model._fields.get(path[0])
    if field is None:
        raise ValueError(f"Invalid field {model._name}.{path[0]} in leaf {leaf_repr(leaf)}")
    table = model._t

    if field.related and not field.store:
        # A related field searches like the path it stands for.
        return compile_leaf(model, (".".join([field.related, *path[1:]]), operator, right))
    if field.search:
        subdomain = getattr(model, field.search)(operator, right)
        return compile_domain(model, subdomain)
    if not field.store:
        raise ValueError(f"Non-stored field {field} cannot be searched.")

    if len(path) > 1:
        rest = ".".join(path[1:])
        if isinstance(field, F.Many2one):
            comodel = model.env[field.comodel_name]
            sub = select(comodel._t.c.id).where(compile_leaf(comodel, (rest, operator, right)))
            return table.c[field.name].in_(sub)
        if isinstance(field, F.One2many):
            comodel = model.env[field.comodel_name]
            inverse = comodel._t.c[field.inverse_name]
            sub = select(inverse).where(compile_leaf(comodel, (rest, operator, right)))
            return table.c.id.in_(sub)
        if isinstance(field, F.Many2many):
            comodel = model.env[field.comodel_name]
            inner = select(comodel._t.c.id).where(compile_leaf(comodel, (rest, operator, right)))
            sub = select(LINK.c.left_id).where(
                LINK.c.relation == field.relation, LINK.c.right_id.in_(inner)
            )
            return table.c.id.in_(sub)
        raise ValueError(f"Invalid field {model._name}.{left} in leaf {leaf_repr(leaf)}")

    if operator in ("child_of", "parent_of") and field.name == "id":
        ids = [int(i) for i in _ids_of(right) if i]
        found = model._hierarchy(ids, children=operator == "child_of")
        return table.c.id.in_(found) if found else false()
    if isinstance(field, F.One2many | F.Many2many):
        return _compile_x2many(model, field, operator, right)
    if isinstance(field, F.Many2one):
        return _compile_many2one(model, field, operator, right)
    return compile_column(table.c[field.name], field, operator, right)


def _ids_of(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _compile_many2one(
    model: BaseModel, field: F.Many2one, operator: str, right: Any
) -> ColumnElement[bool]:
    column = model._t.c[field.name]
    comodel = model.env[field.comodel_name]
    if operator in ("child_of", "parent_of"):
        ids = [int(i) for i in _ids_of(right) if i]
        found = comodel._hierarchy(ids, children=operator == "child_of")
        return column.in_(found) if found else false()
    names = (
        [right]
        if isinstance(right, str)
        else [v for v in right if isinstance(v, str)]
        if isinstance(right, list | tuple)
        else []
    )
    if names and operator not in ("=like", "=ilike"):
        # A name instead of an id: Odoo resolves it with a name search on the comodel.
        positive = NEGATIVE_OPERATORS.get(operator, operator)
        if positive in ("in", "="):
            positive = "="
        subs = [
            select(comodel._t.c.id).where(
                compile_domain(comodel, comodel._name_search_domain(name, positive))
            )
            for name in names
        ]
        match = or_(*[column.in_(sub) for sub in subs])
        if operator in NEGATIVE_OPERATORS:
            return or_(not_(match), column.is_(None))
        return match
    return compile_column(column, field, operator, right)


def _compile_x2many(
    model: BaseModel, field: F.One2many | F.Many2many, operator: str, right: Any
) -> ColumnElement[bool]:
    comodel = model.env[field.comodel_name]
    if isinstance(field, F.One2many):
        inverse = comodel._t.c[field.inverse_name]

        def holders(ids_clause: ColumnElement[bool] | None) -> Any:
            stmt = select(inverse).where(inverse.is_not(None))
            return stmt.where(ids_clause) if ids_clause is not None else stmt

        target = comodel._t.c.id
    else:

        def holders(ids_clause: ColumnElement[bool] | None) -> Any:
            stmt = select(LINK.c.left_id).where(LINK.c.relation == field.relation)
            return stmt.where(ids_clause) if ids_clause is not None else stmt

        target = LINK.c.right_id
    table_id = model._t.c.id
    if right is False or right is None or right == []:
        if operator in ("=", "in"):
            return table_id.not_in(holders(None))
        if operator in ("!=", "not in"):
            return table_id.in_(holders(None))
    if isinstance(right, str) or (
        isinstance(right, list | tuple) and any(isinstance(v, str) for v in right)
    ):
        names = [right] if isinstance(right, str) else [v for v in right if isinstance(v, str)]
        positive = NEGATIVE_OPERATORS.get(operator, operator)
        positive = "=" if positive == "in" else positive
        domain: list[Any] = ["|"] * (len(names) - 1)
        for name in names:
            domain += comodel._name_search_domain(name, positive)
        ids_clause = target.in_(select(comodel._t.c.id).where(compile_domain(comodel, domain)))
        if operator in NEGATIVE_OPERATORS:
            return table_id.not_in(holders(ids_clause))
        return table_id.in_(holders(ids_clause))
    ids = [int(v) for v in _ids_of(right) if v is not False and v is not None]
    if operator in ("=", "in", "child_of"):
        return table_id.in_(holders(target.in_(ids))) if ids else false()
    if operator in ("!=", "not in"):
        return table_id.not_in(holders(target.in_(ids))) if ids else true()
    raise ValueError(f"Invalid operator {operator!r} for a {field.type} field {field}")


def _convert(field: F.Field, value: Any) -> Any:
    if value is None or value is False:
        return None
    if isinstance(field, F.Date | F.Datetime):
        return field.to_column(value)
    if isinstance(field, F.Boolean):
        return bool(value)
    return value


def compile_column(
    column: ColumnElement[Any], field: F.Field, operator: str, right: Any
) -> ColumnElement[bool]:
    """A leaf on a stored column, with Odoo's rules for NULL."""
    if isinstance(field, F.Datetime) and isinstance(right, str) and len(right) == 10:
        # A date alone: Odoo completes it to the end of the day for > and <=.
        right += " 23:59:59" if operator in (">", "<=") else " 00:00:00"
    is_bool = isinstance(field, F.Boolean)
    if operator in ("in", "not in"):
        values = _ids_of(right)
        with_null = any(v is False or v is None for v in values)
        if is_bool:
            # For booleans False also means NULL, and True/False are both real values.
            with_null = with_null or False in values
        rest = [_convert(field, v) for v in values if v is not False and v is not None]
        if is_bool and False in values:
            rest.append(False)
        if operator == "in":
            matched: ColumnElement[bool] = column.in_(rest) if rest else false()
            return or_(matched, column.is_(None)) if with_null else matched
        others: ColumnElement[bool] = column.not_in(rest) if rest else true()
        return and_(others, column.is_not(None)) if with_null else or_(others, column.is_(None))

    if operator in ("child_of", "parent_of"):
        return column.in_([_convert(field, v) for v in _ids_of(right)])

    if operator in ("=", "!="):
        if right is False or right is None:
            if is_bool:
                empty = or_(column.is_(None), column == False)  # noqa: E712
            elif isinstance(field, F.Char):
                empty = or_(column.is_(None), column == "")
            else:
                empty = column.is_(None)
            return empty if operator == "=" else not_(empty)
        value = _convert(field, right)
        if is_bool and value is False:
            return or_(column.is_(None), column == False)  # noqa: E712
        equal: ColumnElement[bool] = column == value
        if operator == "=":
            return equal
        return or_(not_(equal), column.is_(None))

    if operator in ("<", "<=", ">", ">="):
        value = _convert(field, right)
        if value is None:
            return false()
        compared: ColumnElement[bool] = {
            "<": column < value,
            "<=": column <= value,
            ">": column > value,
            ">=": column >= value,
        }[operator]
        return compared

    # like family: Odoo wraps the value in % for like/ilike, not for =like/=ilike.
    if right is False or right is None:
        right = ""
    text = str(right)
    pattern = text if operator.startswith("=") else f"%{text}%"
    if operator in ("ilike", "not ilike", "=ilike"):
        match = func.lower(column).like(func.lower(pattern))
    else:
        match = column.like(pattern)
    if operator.startswith("not"):
        return or_(not_(match), column.is_(None))
    return match
