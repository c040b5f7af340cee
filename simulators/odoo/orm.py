"""The emulated ORM: model registry, environment and the generic model methods.

``BaseModel`` implements what every Odoo model answers over RPC (``fields_get``, ``create``,
``read``, ``write``, ``unlink``, ``search``, ``search_read``, ``search_count``, ``name_search``,
``name_get``, ``default_get``, ``exists``) on top of SQLAlchemy Core statements against the
SQLModel tables, with Odoo's semantics: x2many commands, ``_inherits`` delegation, stored and
non-stored related fields, computed fields, ``active_test``, defaults (including
``default_*`` context keys), required and foreign-key checks with Odoo's error texts.

Log access columns, as Odoo 17 does them: ``create``/``write`` set ``create_date`` and
``write_date`` to ``cr.now()``, the transaction's ``now() AT TIME ZONE 'UTC'``, the same for
every record the call writes and with PostgreSQL's microseconds; every ``write`` sets them,
even one of only inherited (``_inherits``) or x2many fields, on the model written to (a
template-only write leaves its variants' ``write_date`` alone). ``read``/``search_read``
return datetimes as ``Datetime.to_string`` does over RPC, ``"YYYY-MM-DD HH:MM:SS"``, but a
domain leaf on ``write_date`` compares the stored value with the (whole-second) operand:
``('write_date', '=', '...:07')`` does not match a row written at ``:07.42``, ``>`` that
second includes it, and ``order="write_date, id"`` sorts on the microseconds (so within one
read second ids need not ascend). A date alone (10 characters) means ``00:00:00``, or
``23:59:59`` for ``>`` and ``<=``. ``action_archive``/``action_unarchive`` flip ``active`` on
the records that need it and return nothing.

Concrete models (``models/``) subclass it, declare fields as class attributes and mark the
methods callable over RPC with ``api_model`` (no ids) or ``api_records`` (ids first).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, insert, select, update
from sqlmodel import SQLModel

from . import fields as F
from .domain import LINK, Domain, compile_domain
from .exceptions import (
    FK_VIOLATION,
    NOT_NULL_VIOLATION,
    SQL_CONSTRAINT,
    MissingError,
    ValidationError,
)

MAGIC_FIELDS = frozenset({"id", "create_uid", "create_date", "write_uid", "write_date"})
# SQLite's default limit on bound parameters is 32766; stay well below it.
CHUNK = 5000

Fn = TypeVar("Fn", bound=Callable[..., Any])


def api_model(fn: Fn) -> Fn:
    """Callable over RPC without ids (Odoo's ``@api.model``)."""
    fn._rpc_kind = "model"  # type: ignore[attr-defined]
    return fn


def api_records(fn: Fn) -> Fn:
    """Callable over RPC on a recordset: the first RPC argument is the ids."""
    fn._rpc_kind = "records"  # type: ignore[attr-defined]
    return fn


def normalize_ids(ids: Any) -> list[int]:
    if ids is None or ids is False:
        return []
    if isinstance(ids, int):
        return [ids]
    return [int(i) for i in ids]


def ensure_one(model_name: str, ids: Any) -> int:
    """The single id of a recordset argument, or Odoo's ``Expected singleton`` error."""
    found = normalize_ids(ids)
    if len(found) != 1:
        raise ValueError(f"Expected singleton: {model_name}{tuple(found)!r}")
    return found[0]


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class Registry:
    """All model classes of one emulated database, with cross-model metadata."""

    def __init__(self, model_classes: Iterable[type[BaseModel]]) -> None:
        self.models: dict[str, type[BaseModel]] = {cls._name: cls for cls in model_classes}
        for cls in self.models.values():
            cls._setup_inherits(self)
        # comodel -> [(model, stored related field, its many2one, the comodel field)]
        self.stored_related: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
        # comodel -> [(model, many2one field)] pointing at it
        self.references: dict[str, list[tuple[str, F.Many2one]]] = defaultdict(list)
        for cls in self.models.values():
            for name, field in cls._fields.items():
                if field.related and field.store:
                    m2o, target = field.related.split(".", 1)
                    comodel = cls._fields[m2o]
                    assert isinstance(comodel, F.Many2one), field
                    self.stored_related[comodel.comodel_name].append((cls._name, name, m2o, target))
                if isinstance(field, F.Many2one) and field.column and name not in MAGIC_FIELDS:
                    self.references[field.comodel_name].append((cls._name, field))
                if field.column:
                    assert name in cls._table.__table__.c, f"no column for {field}"  # type: ignore[attr-defined]


class Env:
    """One RPC's view of the database: connection, user, context, registry."""

    def __init__(
        self,
        registry: Registry,
        conn: Connection,
        uid: int,
        context: dict[str, Any] | None = None,
        now: dt.datetime | None = None,
        known: dict[str, set[int]] | None = None,
    ) -> None:
        self.registry = registry
        self.conn = conn
        self.uid = uid
        self.context: dict[str, Any] = dict(context or {})
        # The transaction's timestamp, as PostgreSQL's now() gives it (microseconds): what the
        # ORM stamps create_date/write_date with. Business datetimes use whole seconds, like
        # fields.Datetime.now().
        self.cr_now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.now = self.cr_now.replace(microsecond=0)
        # Existence cache: ids known to exist as of the last commit (shared, read-only here),
        # ids seen to exist in this transaction, and models this transaction deleted from.
        self.known: dict[str, set[int]] = known if known is not None else {}
        self.verified: dict[str, set[int]] = defaultdict(set)
        self.unlinked: set[str] = set()
        self.memo: dict[Any, Any] = {}
        # What this call did, for the cost model: ("create", model) rows inserted, ("post",
        # "account.move"/"account.move.line") entries and items posted, ("done", "stock.move")
        # stock moves validated; and the (model, domain) of every search it ran.
        self.work: Counter[tuple[str, str]] = Counter()
        self.searched: list[tuple[str, Any]] = []

    def __getitem__(self, model_name: str) -> Any:
        return self.registry.models[model_name](self)

    def __contains__(self, model_name: str) -> bool:
        return model_name in self.registry.models

    def with_context(self, **values: Any) -> Env:
        env = Env(
            self.registry, self.conn, self.uid, {**self.context, **values}, self.cr_now, self.known
        )
        # Same transaction: share its caches.
        env.verified, env.unlinked, env.memo = self.verified, self.unlinked, self.memo
        env.work, env.searched = self.work, self.searched
        return env

    def committed(self) -> None:
        """Publish this transaction's existence facts once it has committed."""
        for model in self.unlinked:
            self.known.pop(model, None)
        for model, ids in self.verified.items():
            self.known.setdefault(model, set()).update(ids)

    @property
    def today(self) -> dt.date:
        return self.now.date()


class BaseModel:
    """Generic behaviour of every model; subclasses set ``_name``, ``_table`` and fields."""

    _name: ClassVar[str] = ""
    _description: ClassVar[str] = ""
    _table: ClassVar[type[SQLModel]]
    _order: ClassVar[str] = "id"
    _rec_name: ClassVar[str | None] = "name"
    _parent_name: ClassVar[str] = "parent_id"
    _inherits: ClassVar[dict[str, str]] = {}
    _fields: ClassVar[dict[str, F.Field]] = {}

    id = F.Integer("ID", readonly=True)
    display_name = F.Char("Display Name", compute="_compute_display_name")
    create_uid = F.Many2one("res.users", "Created by", readonly=True)
    create_date = F.Datetime("Created on", readonly=True)
    write_uid = F.Many2one("res.users", "Last Updated by", readonly=True)
    write_date = F.Datetime("Last Updated on", readonly=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        collected: dict[str, F.Field] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, F.Field):
                    collected[name] = value
        own: dict[str, F.Field] = {}
        for name, field in collected.items():
            clone = copy.copy(field)
            clone.name = name
            clone.model_name = cls._name
            own[name] = clone
        cls._fields = own

    @classmethod
    def _setup_inherits(cls, registry: Registry) -> None:
        """Delegate the parent's fields through the many2one, as ``_inherits`` does."""
        for parent_name, m2o in cls._inherits.items():
            parent = registry.models[parent_name]
            for name, pfield in parent._fields.items():
                if name in cls._fields or name in MAGIC_FIELDS or name == "display_name":
                    continue
                clone = copy.copy(pfield)
                clone.model_name = cls._name
                clone.related = f"{m2o}.{name}"
                clone._store = False
                clone.compute = clone.inverse = clone.search = None
                clone.inherited = True
                cls._fields[name] = clone

    def __init__(self, env: Env) -> None:
        self.env = env

    # -- helpers ----------------------------------------------------------------------------

    @property
    def _t(self) -> Table:
        return self._table.__table__  # type: ignore[attr-defined, no-any-return]

    @property
    def _conn(self) -> Connection:
        return self.env.conn

    def with_context(self, **values: Any) -> Any:
        return type(self)(self.env.with_context(**values))

    def _check_field_names(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._fields:
                raise ValueError(f"Invalid field {name!r} on model {self._name!r}")

    def _existing(self, ids: Sequence[int]) -> list[int]:
        env = self.env
        verified = env.verified[self._name]
        known = env.known.get(self._name, set()) if self._name not in env.unlinked else set()
        unknown = [i for i in dict.fromkeys(ids) if i not in verified and i not in known]
        for part in chunks(unknown):
            verified.update(
                self._conn.execute(select(self._t.c.id).where(self._t.c.id.in_(part))).scalars()
            )
        return [i for i in ids if i in verified or i in known]

    def _ensure_exist(self, ids: Sequence[int]) -> None:
        existing = set(self._existing(ids))
        missing = [i for i in dict.fromkeys(ids) if i not in existing]
        if missing:
            raise MissingError(
                "Record does not exist or has been deleted.\n"
                f"(Record: {self._name}{tuple(missing)!r}, User: {self.env.uid})"
            )

    def _column_values(self, ids: Sequence[int], name: str) -> dict[int, Any]:
        column = self._t.c[name]
        out: dict[int, Any] = {}
        for part in chunks(list(ids)):
            for rid, value in self._conn.execute(
                select(self._t.c.id, column).where(self._t.c.id.in_(part))
            ):
                out[rid] = value
        return out

    def _get(self, record_id: int, *names: str) -> Any:
        """One record's stored columns, as a Row (attribute access)."""
        columns = [self._t.c[n] for n in names]
        return self._conn.execute(select(*columns).where(self._t.c.id == record_id)).one()

    def _order_by(self, order: str | None) -> list[Any]:
        spec = order or self._order
        clauses: list[Any] = []
        seen_id = False
        for part in spec.split(","):
            tokens = part.strip().split()
            if not tokens:
                continue
            name = tokens[0].strip('"')
            direction = tokens[1].lower() if len(tokens) > 1 else "asc"
            field = self._fields.get(name)
            column = self._order_column(field) if field is not None else None
            if column is None or direction not in ("asc", "desc"):
                raise ValueError(
                    f'Invalid "order" specified ({spec}). A valid "order" specification is a '
                    "comma-separated list of valid field names (optionally followed by asc/desc "
                    "for the direction)"
                )
            # PostgreSQL puts NULLs last ascending and first descending; SQLite does the opposite.
            clauses.append(
                column.asc().nulls_last() if direction == "asc" else column.desc().nulls_first()
            )
            seen_id = seen_id or name == "id"
        if not seen_id:
            clauses.append(self._t.c.id.asc())
        return clauses

    def _order_column(self, field: F.Field) -> Any:
        """The SQL expression to sort on for ``field``, or None if it cannot be sorted."""
        if field.column:
            return self._t.c[field.name]
        if field.inherited and field.related:
            # Sort on the parent's column through a correlated subquery (``_inherits`` join).
            m2o, target = field.related.split(".", 1)
            parent = self.env[self._fields[m2o].comodel_name]  # type: ignore[attr-defined]
            parent_column = parent._order_column(parent._fields[target])
            if parent_column is None:
                return None
            return select(parent_column).where(parent._t.c.id == self._t.c[m2o]).scalar_subquery()
        return None

    def _where(self, domain: Domain) -> ColumnElement[bool]:
        self.env.searched.append((self._name, domain))
        clause = compile_domain(self, list(domain or []))
        if "active" in self._fields and self.env.context.get("active_test", True):
            mentions_active = any(
                isinstance(leaf, list | tuple)
                and len(leaf) == 3
                and isinstance(leaf[0], str)
                and leaf[0].split(".")[0] == "active"
                for leaf in domain or []
            )
            if not mentions_active:
                active = self._fields["active"]
                column = self._t.c.active if active.store else None
                if column is not None:
                    clause = and_(clause, column == True)  # noqa: E712
                else:
                    clause = and_(clause, compile_domain(self, [("active", "=", True)]))
        return clause

    def _search(
        self,
        domain: Domain,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[int]:
        stmt = select(self._t.c.id).where(self._where(domain)).order_by(*self._order_by(order))
        if offset:
            stmt = stmt.offset(int(offset))
        if limit:
            stmt = stmt.limit(int(limit))
        return list(self._conn.execute(stmt).scalars())

    def _hierarchy(self, ids: list[int], children: bool = True) -> list[int]:
        """``child_of``/``parent_of`` closure through ``_parent_name``."""
        parent = self._t.c[self._parent_name]
        found = list(dict.fromkeys(ids))
        frontier = list(found)
        while frontier:
            if children:
                stmt = select(self._t.c.id).where(parent.in_(frontier))
            else:
                stmt = select(parent).where(self._t.c.id.in_(frontier), parent.is_not(None))
            new = [i for i in self._conn.execute(stmt).scalars() if i not in found]
            found.extend(new)
            frontier = new
        return found

    def _name_search_domain(self, name: str, operator: str) -> list[Any]:
        """The domain ``name_search`` uses (``_rec_names_search`` in Odoo)."""
        return [(self._rec_name or "id", operator, name)]

    def _display_names(self, ids: Sequence[int]) -> dict[int, str]:
        if not ids:
            return {}
        if self._rec_name and self._rec_name in self._fields:
            field = self._fields[self._rec_name]
            if field.column:
                values = self._column_values(ids, self._rec_name)
                return {i: (v if v not in (None, False) else "") for i, v in values.items()}
            raw = self._read_raw(ids, [self._rec_name])
            return {i: str(v[self._rec_name] or "") for i, v in raw.items()}
        return {i: f"{self._name},{i}" for i in ids}

    def _compute_display_name(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        return {i: {"display_name": name} for i, name in self._display_names(ids).items()}

    # -- reading ----------------------------------------------------------------------------

    def _read_raw(self, ids: Sequence[int], names: Sequence[str]) -> dict[int, dict[str, Any]]:
        """Raw values (python, ids for relations) of existing records, keyed by id."""
        t = self._t
        columns = [n for n in names if self._fields[n].column and n != "id"]
        rows: dict[int, dict[str, Any]] = {}
        for part in chunks(list(dict.fromkeys(ids))):
            stmt = select(t.c.id, *[t.c[n] for n in columns]).where(t.c.id.in_(part))
            for row in self._conn.execute(stmt):
                values = dict(zip(columns, row[1:], strict=True))
                values["id"] = row[0]
                rows[row[0]] = values
        found = list(rows)
        if not found:
            return rows
        computed: dict[str, dict[int, dict[str, Any]]] = {}
        for name in names:
            field = self._fields[name]
            if field.column or name == "id":
                continue
            if isinstance(field, F.One2many | F.Many2many) and field.store:
                values_by_id = self._read_x2many(field, found)
                for rid in found:
                    rows[rid][name] = values_by_id.get(rid, [])
            elif field.related:
                m2o, target = field.related.split(".", 1)
                parents = self._read_raw(found, [m2o])
                parent_ids = [p[m2o] for p in parents.values() if p[m2o]]
                comodel = self.env[self._fields[m2o].comodel_name]  # type: ignore[attr-defined]
                values = comodel._read_raw(parent_ids, [target]) if parent_ids else {}
                for rid in found:
                    pid = parents[rid][m2o]
                    rows[rid][name] = values[pid][target] if pid in values else None
            elif field.compute:
                if field.compute not in computed:
                    computed[field.compute] = getattr(self, field.compute)(found)
                result = computed[field.compute]
                for rid in found:
                    rows[rid][name] = result.get(rid, {}).get(name)
        return rows

    def _read_x2many(self, field: F.One2many | F.Many2many, ids: list[int]) -> dict[int, list[int]]:
        comodel = self.env[field.comodel_name]
        out: dict[int, list[int]] = defaultdict(list)
        if isinstance(field, F.One2many):
            inverse = comodel._t.c[field.inverse_name]
            clause = inverse.in_(ids)
            if field.domain:
                clause = and_(clause, compile_domain(comodel, field.domain))
            if "active" in comodel._fields and self.env.context.get("active_test", True):
                clause = and_(clause, comodel._t.c.active == True)  # noqa: E712
            stmt = select(comodel._t.c.id, inverse).where(clause).order_by(*comodel._order_by(None))
            for cid, owner in self._conn.execute(stmt):
                out[owner].append(cid)
        else:
            stmt = (
                select(LINK.c.left_id, LINK.c.right_id)
                .where(LINK.c.relation == field.relation, LINK.c.left_id.in_(ids))
                .order_by(LINK.c.id)
            )
            for owner, cid in self._conn.execute(stmt):
                out[owner].append(cid)
        return out

    def _format(
        self, raw: dict[int, dict[str, Any]], ids: Sequence[int], names: Sequence[str], load: str
    ) -> list[dict[str, Any]]:
        names_by_comodel: dict[str, set[int]] = defaultdict(set)
        m2o_fields = [n for n in names if isinstance(self._fields[n], F.Many2one)]
        if load != "_classic_write":
            for name in m2o_fields:
                comodel_name = self._fields[name].comodel_name  # type: ignore[attr-defined]
                for row in raw.values():
                    if row[name]:
                        names_by_comodel[comodel_name].add(row[name])
        display = {
            comodel: self.env[comodel]._display_names(sorted(rids))
            for comodel, rids in names_by_comodel.items()
        }
        result = []
        for rid in ids:
            found = raw.get(rid)
            if found is None:
                continue
            values: dict[str, Any] = found
            record: dict[str, Any] = {"id": rid}
            for name in names:
                field = self._fields[name]
                value = values.get(name)
                if isinstance(field, F.Many2one):
                    if not value:
                        record[name] = False
                    elif load == "_classic_write":
                        record[name] = value
                    else:
                        label = display[field.comodel_name].get(value, "")
                        record[name] = [value, label]
                else:
                    record[name] = field.to_read(value)
            result.append(record)
        return result

    # -- writing ----------------------------------------------------------------------------

    def _split_vals(
        self, vals: dict[str, Any]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, Any], dict[str, Any]]:
        """vals -> (vals for _inherits parents, column values, x2many commands, other writes)."""
        parents: dict[str, dict[str, Any]] = defaultdict(dict)
        columns: dict[str, Any] = {}
        x2many: dict[str, Any] = {}
        others: dict[str, Any] = {}
        for name, value in vals.items():
            field = self._fields[name]
            if name in MAGIC_FIELDS or name == "display_name":
                continue
            if field.inherited:
                parents[field.related.split(".", 1)[0]][name] = value  # type: ignore[union-attr]
            elif isinstance(field, F.One2many | F.Many2many) and field.store:
                x2many[name] = value
            elif field.column:
                columns[name] = field.to_column(value)
            elif field.inverse or field.related:
                others[name] = value
            # a computed field without inverse: Odoo ignores the value
        return parents, columns, x2many, others

    def _add_defaults(self, vals: dict[str, Any]) -> dict[str, Any]:
        out = dict(vals)
        for key, value in self.env.context.items():
            if key.startswith("default_"):
                name = key[len("default_") :]
                if name in self._fields and name not in out and not self._fields[name].inherited:
                    out[name] = value
        for name, field in self._fields.items():
            if name in out or field.inherited or field.default is F.NOTHING:
                continue
            out[name] = field.default_value(self.env)
        return out

    def _check_required(self, rows: Sequence[dict[str, Any]], partial: bool = False) -> None:
        """NOT NULL columns; ``partial`` rows (a write) only check the columns they set."""
        for name, field in self._fields.items():
            if not (field.required and field.column) or name in MAGIC_FIELDS:
                continue
            for row in rows:
                if (row.get(name) is None) if (name in row or not partial) else False:
                    raise ValidationError(
                        NOT_NULL_VIOLATION.format(
                            model_description=self._description,
                            model_name=self._name,
                            field_string=field.string,
                            field_name=name,
                        )
                    )

    def _check_foreign_keys(self, rows: Sequence[dict[str, Any]]) -> None:
        for name, field in self._fields.items():
            if not isinstance(field, F.Many2one) or not field.column or name in MAGIC_FIELDS:
                continue
            wanted = {row[name] for row in rows if row.get(name) is not None}
            if not wanted:
                continue
            comodel = self.env[field.comodel_name]
            if set(comodel._existing(sorted(wanted))) != wanted:
                raise ValidationError(
                    FK_VIOLATION.format(
                        model_description=self._description,
                        model_name=self._name,
                        constraint=f"{self._t.name}_{name}_fkey",
                    )
                )

    def _fill_stored_related(self, rows: Sequence[dict[str, Any]]) -> None:
        by_m2o: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for name, field in self._fields.items():
            if field.related and field.store:
                m2o, target = field.related.split(".", 1)
                by_m2o[m2o].append((name, target))
        for m2o, pairs in by_m2o.items():
            comodel = self.env[self._fields[m2o].comodel_name]  # type: ignore[attr-defined]
            parent_ids = sorted({row[m2o] for row in rows if row.get(m2o)})
            targets = [target for _name, target in pairs]
            values = comodel._read_raw(parent_ids, targets) if parent_ids else {}
            for row in rows:
                parent = values.get(row.get(m2o))
                for name, target in pairs:
                    row[name] = parent[target] if parent else None

    def _propagate_stored_related(self, ids: Sequence[int], columns: dict[str, Any]) -> None:
        """Push changed values to the stored related fields of other models that mirror them."""
        for model_name, name, m2o, target in self.env.registry.stored_related.get(self._name, []):
            if target not in columns:
                continue
            child = self.env[model_name]
            self._conn.execute(
                update(child._t)
                .where(child._t.c[m2o].in_(list(ids)))
                .values({name: columns[target]})
            )

    def _refresh_own_related(self, ids: Sequence[int], changed: Iterable[str]) -> None:
        changed = set(changed)
        for name, field in self._fields.items():
            if field.related and field.store and field.related.split(".", 1)[0] in changed:
                rows = [
                    {"id": rid, **v}
                    for rid, v in self._read_raw(ids, [field.related.split(".", 1)[0]]).items()
                ]
                self._fill_stored_related(rows)
                for row in rows:
                    self._conn.execute(
                        update(self._t).where(self._t.c.id == row["id"]).values({name: row[name]})
                    )

    def _insert(self, rows: list[dict[str, Any]]) -> list[int]:
        keys: dict[str, None] = {}
        for row in rows:
            keys.update(dict.fromkeys(row))
        params = [{k: row.get(k) for k in keys} for row in rows]
        # One executemany; the rows get consecutive rowids (max + 1 onwards, and there is a
        # single writer), so the last one gives them all.
        self._conn.execute(insert(self._t), params)
        last = int(self._conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        ids = list(range(last - len(params) + 1, last + 1))
        self.env.verified[self._name].update(ids)
        self.env.work["create", self._name] += len(ids)
        return ids

    def _create(self, vals_list: Sequence[dict[str, Any]]) -> list[int]:
        """Create records; the building block of ``create`` and of x2many ``(0, 0, vals)``."""
        if not vals_list:
            return []
        env = self.env
        rows: list[dict[str, Any]] = []
        pending: list[tuple[dict[str, Any], dict[str, Any]]] = []
        all_names: set[str] = set()
        for raw_vals in vals_list:
            if not isinstance(raw_vals, dict):
                raise TypeError(f"create() values must be dicts, not {type(raw_vals).__name__}")
            self._check_field_names(raw_vals)
            vals = self._add_defaults(raw_vals)
            all_names.update(vals)
            parents, columns, x2many, others = self._split_vals(vals)
            for parent_model, m2o in self._inherits.items():
                parent = env[parent_model]
                if columns.get(m2o) is None:
                    columns[m2o] = parent._create([parents.get(m2o, {})])[0]
                elif parents.get(m2o):
                    parent._write([columns[m2o]], parents[m2o])
            columns.update(
                create_uid=env.uid,
                create_date=env.cr_now,
                write_uid=env.uid,
                write_date=env.cr_now,
            )
            rows.append(columns)
            pending.append((x2many, others))
        self._fill_stored_related(rows)
        self._check_required(rows)
        self._check_foreign_keys(rows)
        ids = self._insert(rows)
        for rid, (x2many, others) in zip(ids, pending, strict=True):
            for name, commands in x2many.items():
                self._apply_x2many(rid, self._fields[name], commands)  # type: ignore[arg-type]
            if others:
                self._write_others([rid], others)
        self._check_constraints(ids, all_names)
        return ids

    def _write_others(self, ids: list[int], others: dict[str, Any]) -> None:
        for name, value in others.items():
            field = self._fields[name]
            if field.inverse:
                getattr(self, field.inverse)(ids, value)
            elif field.related:
                m2o, target = field.related.split(".", 1)
                targets = sorted({v for v in self._column_values(ids, m2o).values() if v})
                if targets:
                    self.env[self._fields[m2o].comodel_name]._write(targets, {target: value})  # type: ignore[attr-defined]

    def _write(self, ids: Sequence[int], vals: dict[str, Any]) -> None:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return
        self._check_field_names(vals)
        self._ensure_exist(ids)
        parents, columns, x2many, others = self._split_vals(vals)
        for parent_model, m2o in self._inherits.items():
            if parents.get(m2o):
                parent_ids = sorted({v for v in self._column_values(ids, m2o).values() if v})
                self.env[parent_model]._write(parent_ids, parents[m2o])
        if columns:
            self._check_required([columns], partial=True)
            self._check_foreign_keys([columns])
        # Every write stamps the records written (Odoo adds write_uid/write_date to the values
        # of any write, even one of only inherited or x2many fields).
        values = {**columns, "write_uid": self.env.uid, "write_date": self.env.cr_now}
        for part in chunks(ids):
            self._conn.execute(update(self._t).where(self._t.c.id.in_(part)).values(values))
        if columns:
            self._propagate_stored_related(ids, columns)
            self._refresh_own_related(ids, columns)
        for name, commands in x2many.items():
            for rid in ids:
                self._apply_x2many(rid, self._fields[name], commands)  # type: ignore[arg-type]
        if others:
            self._write_others(ids, others)
        self._check_constraints(ids, set(vals))

    def _apply_x2many(self, rid: int, field: F.One2many | F.Many2many, commands: Any) -> None:
        if commands is False or commands is None:
            commands = [(5,)]
        if commands and all(isinstance(c, int) for c in commands):
            commands = [(6, 0, list(commands))]
        comodel = self.env[field.comodel_name]
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            if not batch:
                return
            if isinstance(field, F.One2many):
                comodel._create([{**v, field.inverse_name: rid} for v in batch])
            else:
                self._link(field, rid, comodel._create(batch))
            batch.clear()

        for command in commands:
            code = command[0]
            if code == 0:
                batch.append(dict(command[2] or {}))
                continue
            flush()
            if code == 1:
                comodel._write([int(command[1])], command[2] or {})
            elif code == 2:
                comodel._unlink([int(command[1])])
            elif code in (3, 5, 6):
                current = (
                    self._read_x2many(field, [rid]).get(rid, []) if code != 3 else [int(command[1])]
                )
                keep = [int(i) for i in command[2]] if code == 6 else []
                drop = [i for i in current if i not in keep]
                if isinstance(field, F.One2many):
                    self._release(comodel, field, drop)
                    if keep:
                        comodel._write(keep, {field.inverse_name: rid})
                else:
                    self._unlink_links(field, rid, drop)
                    self._link(field, rid, keep)
            elif code == 4:
                if isinstance(field, F.One2many):
                    comodel._write([int(command[1])], {field.inverse_name: rid})
                else:
                    self._link(field, rid, [int(command[1])])
            else:
                raise ValueError(f"Invalid x2many command {command!r} for {field}")
        flush()

    def _release(self, comodel: BaseModel, field: F.One2many, ids: list[int]) -> None:
        if not ids:
            return
        inverse = comodel._fields[field.inverse_name]
        if inverse.required:
            comodel._unlink(ids)
        else:
            comodel._write(ids, {field.inverse_name: False})

    def _link(self, field: F.Many2many, rid: int, ids: Sequence[int]) -> None:
        if not ids:
            return
        current = set(self._read_x2many(field, [rid]).get(rid, []))
        new = [i for i in dict.fromkeys(ids) if i not in current]
        if new:
            self._conn.execute(
                insert(LINK),
                [{"relation": field.relation, "left_id": rid, "right_id": i} for i in new],
            )

    def _unlink_links(self, field: F.Many2many, rid: int, ids: Sequence[int]) -> None:
        if ids:
            self._conn.execute(
                delete(LINK).where(
                    LINK.c.relation == field.relation,
                    LINK.c.left_id == rid,
                    LINK.c.right_id.in_(list(ids)),
                )
            )

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        """Python constraints (``@api.constrains``); models override."""

    def _check_unique(self, ids: list[int], columns: tuple[str, ...], message: str) -> None:
        """An ``_sql_constraints`` ``unique (columns)`` on the rows ``ids``: another row with the
        same values raises Odoo's ValidationError with ``message``. As in PostgreSQL, a row with
        a NULL in them clashes with nothing."""
        t = self._t
        other = t.alias()
        same = [other.c[c] == t.c[c] for c in columns]
        clash = self._conn.execute(
            select(t.c.id)
            .join(other, and_(*same, other.c.id != t.c.id))
            .where(t.c.id.in_(ids), *(t.c[c].is_not(None) for c in columns))
            .limit(1)
        ).first()
        if clash is not None:
            raise ValidationError(SQL_CONSTRAINT.format(message=message))

    def _unlink_check(self, ids: list[int]) -> None:
        """``@api.ondelete`` checks; models override."""

    def _unlink(self, ids: Sequence[int]) -> None:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return
        self._ensure_exist(ids)
        self._unlink_check(ids)
        registry = self.env.registry
        for model_name, field in registry.references.get(self._name, []):
            child = self.env[model_name]
            column = child._t.c[field.name]
            if field.ondelete == "cascade":
                child_ids = list(
                    self._conn.execute(select(child._t.c.id).where(column.in_(ids))).scalars()
                )
                if model_name == self._name:
                    child_ids = [i for i in child_ids if i not in ids]
                child._unlink(child_ids)
            elif field.ondelete == "restrict":
                hit = self._conn.execute(
                    select(child._t.c.id).where(column.in_(ids)).limit(1)
                ).first()
                if hit is not None:
                    raise ValidationError(
                        FK_VIOLATION.format(
                            model_description=child._description,
                            model_name=child._name,
                            constraint=f"{child._t.name}_{field.name}_fkey",
                        )
                    )
            else:
                self._conn.execute(
                    update(child._t).where(column.in_(ids)).values({field.name: None})
                )
        for model_cls in registry.models.values():
            for other in model_cls._fields.values():
                if isinstance(other, F.Many2many) and not other.inherited:
                    if model_cls._name == self._name:
                        self._conn.execute(
                            delete(LINK).where(
                                LINK.c.relation == other.relation, LINK.c.left_id.in_(ids)
                            )
                        )
                    if other.comodel_name == self._name:
                        self._conn.execute(
                            delete(LINK).where(
                                LINK.c.relation == other.relation, LINK.c.right_id.in_(ids)
                            )
                        )
        for part in chunks(ids):
            self._conn.execute(delete(self._t).where(self._t.c.id.in_(part)))
        if self._name != "ir.model.data":
            # Odoo's unlink removes the external ids of the records it deletes.
            data = self.env["ir.model.data"]._t
            for part in chunks(ids):
                self._conn.execute(
                    delete(data).where(data.c.model == self._name, data.c.res_id.in_(part))
                )
        self.env.verified[self._name].difference_update(ids)
        self.env.unlinked.add(self._name)

    # -- RPC API ----------------------------------------------------------------------------

    @api_model
    def fields_get(
        self, allfields: list[str] | None = None, attributes: list[str] | None = None
    ) -> dict[str, Any]:
        result = {}
        for name, field in self._fields.items():
            if allfields and name not in allfields:
                continue
            desc = field.describe()
            if attributes:
                desc = {k: desc[k] for k in attributes if k in desc}
            result[name] = desc
        return result

    @api_model
    def default_get(self, fields_list: list[str]) -> dict[str, Any]:
        self._check_field_names(fields_list)
        values = self._add_defaults({})
        out = {}
        for name in fields_list:
            if name in values:
                field = self._fields[name]
                value = values[name]
                out[name] = (
                    value
                    if isinstance(field, F.Many2one | F.One2many | F.Many2many)
                    else field.to_read(field.to_column(value))
                )
        return out

    @api_model
    def create(self, vals_list: dict[str, Any] | list[dict[str, Any]]) -> int | list[int]:
        if isinstance(vals_list, dict):
            return self._create([vals_list])[0]
        return self._create(list(vals_list))

    @api_records
    def read(
        self, ids: Any, fields: list[str] | None = None, load: str = "_classic_read"
    ) -> list[dict[str, Any]]:
        ids = normalize_ids(ids)
        names = [n for n in (fields or list(self._fields)) if n != "id"]
        self._check_field_names(names)
        return self._format(self._read_raw(ids, names), ids, names, load)

    @api_records
    def write(self, ids: Any, vals: dict[str, Any]) -> bool:
        self._write(normalize_ids(ids), vals)
        return True

    @api_records
    def unlink(self, ids: Any) -> bool:
        self._unlink(normalize_ids(ids))
        return True

    @api_records
    def action_archive(self, ids: Any) -> None:
        """Archive the active records among ``ids`` (Odoo returns nothing)."""
        self._toggle_active(self._with_active(normalize_ids(ids), True))

    @api_records
    def action_unarchive(self, ids: Any) -> None:
        self._toggle_active(self._with_active(normalize_ids(ids), False))

    def _with_active(self, ids: list[int], active: bool) -> list[int]:
        if "active" not in self._fields:
            raise AssertionError(f"No 'active' field on model {self._name}")
        self._ensure_exist(ids)
        values = self._column_values(ids, "active")
        return [i for i in ids if bool(values.get(i)) is active]

    def _toggle_active(self, ids: list[int]) -> None:
        """Flip ``active`` on ``ids`` (Odoo's ``toggle_active``)."""
        values = self._column_values(ids, "active")
        self._write([i for i in ids if values.get(i)], {"active": False})
        self._write([i for i in ids if not values.get(i)], {"active": True})

    @api_records
    def exists(self, ids: Any) -> list[int]:
        return self._existing(normalize_ids(ids))

    @api_model
    def search(
        self,
        domain: Domain,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
        count: bool = False,
    ) -> list[int] | int:
        if count:
            return self.search_count(domain, limit=limit)
        return self._search(domain, offset, limit, order)

    @api_model
    def search_count(self, domain: Domain, limit: int | None = None) -> int:
        stmt = select(self._t.c.id).where(self._where(domain))
        if limit:
            stmt = stmt.limit(int(limit))
        return int(
            self._conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
        )

    @api_model
    def search_read(
        self,
        domain: Domain | None = None,
        fields: list[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
        load: str = "_classic_read",
    ) -> list[dict[str, Any]]:
        ids = self._search(domain or [], offset, limit, order)
        if not ids:
            return []
        return self.read(ids, fields, load=load)

    @api_model
    def name_search(
        self,
        name: str = "",
        args: Domain | None = None,
        operator: str = "ilike",
        limit: int = 100,
    ) -> list[list[Any]]:
        domain = list(args or [])
        if name or operator not in ("ilike", "like", "=like", "=ilike"):
            domain = ["&", *self._name_search_domain(name, operator), *(domain or [(1, "=", 1)])]
        ids = self._search(domain, limit=limit)
        names = self._display_names(ids)
        return [[i, names.get(i, "")] for i in ids]

    @api_records
    def name_get(self, ids: Any) -> list[list[Any]]:
        ids = self._existing(normalize_ids(ids))
        names = self._display_names(ids)
        return [[i, names[i]] for i in ids]

    @api_model
    def check_access_rights(self, operation: str, raise_exception: bool = True) -> bool:
        return True

    @api_records
    def check_access_rule(self, ids: Any, operation: str) -> None:
        return None
