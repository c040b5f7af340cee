"""Fixtures for the Odoo emulator conformance tests.

Every test talks to the emulator through the real ``odoorpc`` client, as the project's Odoo
adapter does. One emulator serves the session; tests that depend on a journal's numbering
or on the database being pristine ask for ``fresh`` (an emulator of their own).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import odoorpc
import pytest

from simulators.odoo import Faults, OdooEmulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[OdooEmulator]:
    emu = OdooEmulator(db_path=None, dbname="retail", users={"admin": "admin"})
    emu.start(host="127.0.0.1", port=0)
    yield emu
    emu.stop()


def login(emu: OdooEmulator) -> odoorpc.ODOO:
    client = odoorpc.ODOO("127.0.0.1", port=emu.port)
    client.login("retail", "admin", "admin")
    return client


@pytest.fixture(scope="session")
def odoo(emulator: OdooEmulator) -> odoorpc.ODOO:
    """A logged-in odoorpc client of the session emulator."""
    return login(emulator)


@pytest.fixture(autouse=True)
def _no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that injects faults cannot leak them into the next one (tests of the session
    emulator only: other simulators' tests in this directory do not start it)."""
    if not {"emulator", "odoo"} & set(request.fixturenames):
        yield
        return
    emulator: OdooEmulator = request.getfixturevalue("emulator")
    emulator.faults = Faults()
    yield
    emulator.faults = Faults()


class Fresh:
    """An emulator of the test's own, with a logged-in client."""

    def __init__(self, emu: OdooEmulator) -> None:
        self.emu = emu
        self.odoo = login(emu)


@pytest.fixture
def fresh() -> Iterator[Fresh]:
    emu = OdooEmulator()
    emu.start()
    try:
        yield Fresh(emu)
    finally:
        emu.stop()


_counter = itertools.count(1)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Distinct references/SKUs per call, so tests sharing the session db stay independent."""
    run = uuid.uuid4().hex[:6]

    def make(prefix: str = "T") -> str:
        return f"{prefix}-{run}-{next(_counter)}"

    return make


@pytest.fixture
def barcode() -> Callable[[], str]:
    def make() -> str:
        return str(uuid.uuid4().int)[:13]

    return make


def entry_vals(
    ref: str, date: str = "2025-01-15", journal_id: int = 3, amount: float = 100.0
) -> dict[str, Any]:
    """A balanced 3-line entry like docs/odoo17-behaviour.md §e: cash 115 / sales 100 /
    tax 15 (scaled)."""
    tax = round(amount * 0.15, 2)
    return {
        "move_type": "entry",
        "journal_id": journal_id,
        "date": date,
        "ref": ref,
        "line_ids": [
            (0, 0, {"account_id": 42, "debit": amount + tax, "credit": 0, "name": f"{ref} cash"}),
            (0, 0, {"account_id": 24, "debit": 0, "credit": amount, "name": f"{ref} sales"}),
            (0, 0, {"account_id": 19, "debit": 0, "credit": tax, "name": f"{ref} tax"}),
        ],
    }


@pytest.fixture
def make_entry() -> Callable[..., dict[str, Any]]:
    return entry_vals
