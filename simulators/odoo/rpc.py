"""Odoo's RPC services: ``common``, ``db`` and ``object`` (``execute``/``execute_kw``).

Same checks in the same order as ``odoo.service``: database name, then credentials, then the
private-method guard, the model, the method; ``context`` is taken out of the keyword
arguments; recordset methods receive the ids as their first argument. Anything raised
reaches the transport, which serialises it like Odoo.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from typing import Any

from sqlalchemy import select

from . import cost
from .concurrency import SerializationFailure
from .database import Database
from .exceptions import AccessDenied, AccessError, DatabaseNotFound, UserError

VERSION_INFO: dict[str, Any] = {
    "server_version": "17.0",
    "server_version_info": [17, 0, 0, "final", 0, ""],
    "server_serie": "17.0",
    "protocol_version": 1,
}


class Services:
    """The RPC services of one emulated server (one database)."""

    def __init__(
        self,
        database: Database,
        dbname: str,
        users: dict[str, str],
        dbs: list[str],
        cost_model: cost.CostModel | None = None,
    ) -> None:
        self.database = database
        self.cost_model = cost_model
        # What committed calls did: ("create", model) rows, ("post", ...) entries and items,
        # ("done", "stock.move") moves validated (see Env.work).
        self.work: Counter[tuple[str, str]] = Counter()
        self._work_lock = threading.Lock()
        self.dbname = dbname
        self.users = dict(users)
        self.dbs = list(dbs)

    # -- helpers ----------------------------------------------------------------------------

    def _check_db(self, db: Any) -> None:
        if db != self.dbname:
            raise DatabaseNotFound(str(db))

    def _uid_for(self, login: Any, password: Any) -> int | bool:
        if self.users.get(login) is None or self.users[login] != password:
            return False
        with self.database.transaction(uid=1) as env:
            users = env["res.users"]._t
            uid = env.conn.execute(
                select(users.c.id).where(users.c.login == login, users.c.active == True)  # noqa: E712
            ).scalar()
        return int(uid) if uid else False

    def _check_credentials(self, uid: Any, password: Any, env: Any) -> None:
        users = env["res.users"]._t
        login = env.conn.execute(
            select(users.c.login).where(users.c.id == uid, users.c.active == True)  # noqa: E712
        ).scalar()
        if login is None or self.users.get(login) != password:
            raise AccessDenied()

    # -- services ---------------------------------------------------------------------------

    def dispatch(self, service: str, method: str, args: list[Any]) -> Any:
        if service == "common":
            return self.common(method, args)
        if service == "db":
            return self.db(method, args)
        if service == "object":
            return self.object(method, args)
        raise KeyError(service)

    def common(self, method: str, args: list[Any]) -> Any:
        if method == "version":
            return dict(VERSION_INFO)
        if method in ("login", "authenticate"):
            db, login, password = args[0], args[1], args[2]
            self._check_db(db)
            return self._uid_for(login, password)
        if method == "about":
            return "See http://openerp.com"
        raise KeyError(f"exp_{method}")

    def db(self, method: str, args: list[Any]) -> Any:
        if method == "list":
            return list(self.dbs)
        if method == "server_version":
            return VERSION_INFO["server_version"]
        if method == "exist":
            return args[0] in self.dbs
        raise AccessDenied()

    def object(self, method: str, args: list[Any]) -> Any:
        if method not in ("execute", "execute_kw"):
            raise NameError(f"Method not available {method}")
        db, uid, password = args[0], args[1], args[2]
        self._check_db(db)
        model, name = args[3], args[4]
        if method == "execute_kw":
            call_args = list(args[5]) if len(args) > 5 and args[5] is not None else []
            call_kwargs = dict(args[6]) if len(args) > 6 and args[6] else {}
        else:
            call_args, call_kwargs = list(args[5:]), {}
        context = call_kwargs.pop("context", None) or {}
        retries = self.database.concurrency.retries
        # A call run again gets its arguments as they came, whatever the first run did.
        original = copy.deepcopy((call_args, call_kwargs)) if retries else ([], {})
        for attempt in range(retries + 1):
            args_, kwargs_ = (call_args, call_kwargs) if not attempt else copy.deepcopy(original)
            try:
                return self._call(uid, password, model, name, args_, kwargs_, context)
            except SerializationFailure:
                # Odoo runs the whole call again after a serialization failure.
                if attempt == retries:
                    self.database.ledger.answered_failure()
                    raise
        raise AssertionError("unreachable")

    def _call(
        self,
        uid: Any,
        password: Any,
        model: str,
        name: str,
        call_args: list[Any],
        call_kwargs: dict[str, Any],
        context: dict[str, Any],
    ) -> Any:
        with self.database.transaction(uid=int(uid), context=context) as env:
            charge = cost.current() if self.cost_model is not None else None
            try:
                result = self._run(env, uid, password, model, name, call_args, call_kwargs)
            except BaseException:
                if charge is not None:
                    # A failed call cost what it did before failing (the floor at least).
                    charge.add(self._charge(env, model, name, call_args, None))
                raise
            if charge is not None:
                # Charged inside the transaction: in the postgres mode it is consumed before
                # the commit, with the transaction open.
                charge.add(self._charge(env, model, name, call_args, result))
        with self._work_lock:  # committed
            self.work.update(env.work)
        return result

    def _charge(self, env: Any, model: str, name: str, args: list[Any], result: Any) -> float:
        assert self.cost_model is not None
        try:
            return self.cost_model.object_call(env, model, name, args, result)
        except Exception:  # a connection left unusable by the failure: the floor
            return self.cost_model.rpc_floor_s

    def _run(
        self,
        env: Any,
        uid: Any,
        password: Any,
        model: str,
        name: str,
        call_args: list[Any],
        call_kwargs: dict[str, Any],
    ) -> Any:
        self._check_credentials(uid, password, env)
        if name.startswith("_"):
            raise AccessError(f"Private methods (such as {name}) cannot be called remotely.")
        if model not in env:
            raise UserError(f"Object {model} doesn't exist")
        records = env[model]
        function = getattr(type(records), name, None)
        if getattr(function, "_rpc_kind", None) is None:
            raise AttributeError(f"The method '{name}' does not exist on the model '{model}'")
        return getattr(records, name)(*call_args, **call_kwargs)
