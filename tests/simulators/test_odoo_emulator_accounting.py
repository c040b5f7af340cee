"""Conformance: chart of accounts and journal entries (docs/odoo17-behaviour.md §e, §h),
domains on journal items."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import odoorpc
import pytest

from .conftest import Fresh

EntryVals = Callable[..., dict[str, Any]]

POSTED_UNLINK = (
    "You can't delete a posted journal item. Don’t play games with your accounting records; "
    "reset the journal entry to draft before deleting it."
)


def rpc_error(call: Callable[[], Any]) -> odoorpc.error.RPCError:
    with pytest.raises(odoorpc.error.RPCError) as err:
        call()
    return err.value


# -- seeded chart ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account_id", "code", "name", "account_type"),
    [
        (24, "400000", "Product Sales", "income"),
        (6, "121000", "Account Receivable", "asset_receivable"),
        (40, "101300", "Account Receivable (PoS)", "asset_receivable"),
        (19, "251000", "Tax Received", "liability_current"),
        (20, "252000", "Tax Payable", "liability_current"),
        (8, "131000", "Tax Paid", "asset_current"),
        (9, "132000", "Tax Receivable", "asset_current"),
        (41, "101401", "Bank", "asset_cash"),
        (42, "101501", "Cash", "asset_cash"),
        (44, "101403", "Outstanding Receipts", "asset_current"),
        (45, "101404", "Outstanding Payments", "asset_current"),
        (14, "211000", "Account Payable", "liability_payable"),
        (29, "500000", "Cost of Goods Sold", "expense_direct_cost"),
        (47, "999999", "Undistributed Profits/Losses", "equity_unaffected"),
    ],
)
def test_seeded_accounts(
    odoo: odoorpc.ODOO, account_id: int, code: str, name: str, account_type: str
) -> None:
    [account] = odoo.env["account.account"].read([account_id], ["code", "name", "account_type"])
    assert (account["code"], account["name"], account["account_type"]) == (code, name, account_type)


def test_outstanding_receipts_reconcile_and_company_defaults(odoo: odoorpc.ODOO) -> None:
    [account] = odoo.env["account.account"].read([44], ["reconcile"])
    assert account["reconcile"] is True
    [company] = odoo.env["res.company"].read(
        [1], ["currency_id", "account_sale_tax_id", "account_journal_payment_debit_account_id"]
    )
    assert company["currency_id"][0] == 1
    assert company["account_sale_tax_id"][0] == 1
    assert company["account_journal_payment_debit_account_id"][0] == 44


def test_seeded_journals(odoo: odoorpc.ODOO) -> None:
    journals = odoo.env["account.journal"].read(
        list(range(1, 10)), ["code", "type", "default_account_id", "name"]
    )
    assert [(j["id"], j["code"], j["type"]) for j in journals] == [
        (1, "INV", "sale"),
        (2, "BILL", "purchase"),
        (3, "MISC", "general"),
        (4, "EXCH", "general"),
        (5, "CABA", "general"),
        (6, "BNK1", "bank"),
        (7, "CSH1", "cash"),
        (8, "STJ", "general"),
        (9, "POSS", "general"),
    ]
    defaults = {j["code"]: j["default_account_id"] and j["default_account_id"][0] for j in journals}
    assert (defaults["INV"], defaults["BNK1"], defaults["CSH1"], defaults["MISC"]) == (
        24,
        41,
        42,
        False,
    )
    assert journals[2]["name"] == "Miscellaneous Operations"


def test_sale_tax_account_is_tax_received_via_repartition(odoo: odoorpc.ODOO) -> None:
    [tax] = odoo.env["account.tax"].read(
        [1], ["invoice_repartition_line_ids", "refund_repartition_line_ids"]
    )
    lines = odoo.env["account.tax.repartition.line"].read(
        tax["invoice_repartition_line_ids"] + tax["refund_repartition_line_ids"],
        ["repartition_type", "account_id", "document_type"],
    )
    tax_lines = [line for line in lines if line["repartition_type"] == "tax"]
    assert {line["document_type"] for line in tax_lines} == {"invoice", "refund"}
    assert {line["account_id"][0] for line in tax_lines} == {19}


# -- journal entries ---------------------------------------------------------------------


def test_balanced_entry_is_created_draft_then_posted_with_sequence(
    fresh: Fresh, make_entry: EntryVals
) -> None:
    Move = fresh.odoo.env["account.move"]
    mid = Move.create(make_entry("EXT-TX-1"))
    [draft] = Move.read([mid], ["state", "name", "amount_total", "line_ids", "journal_id", "date"])
    assert draft["state"] == "draft"
    assert draft["name"] == "MISC/2025/01/0001"  # first draft of the journal and month
    assert draft["amount_total"] == 115.0
    assert len(draft["line_ids"]) == 3
    assert draft["journal_id"] == [3, "Miscellaneous Operations"]
    assert draft["date"] == "2025-01-15"
    assert Move.action_post([mid]) is False
    [posted] = Move.read([mid], ["state", "name", "amount_total", "display_name"])
    assert (posted["state"], posted["name"], posted["amount_total"]) == (
        "posted",
        "MISC/2025/01/0001",
        115.0,
    )
    assert posted["display_name"] == "MISC/2025/01/0001 (EXT-TX-1)"


def test_later_drafts_are_slash_until_posted(fresh: Fresh, make_entry: EntryVals) -> None:
    Move = fresh.odoo.env["account.move"]
    first = Move.create(make_entry("A"))
    second = Move.create(make_entry("B"))
    third = Move.create(make_entry("C"))
    names = {r["id"]: r["name"] for r in Move.read([first, second, third], ["name"])}
    assert names == {first: "MISC/2025/01/0001", second: "/", third: "/"}
    [row] = Move.read([second], ["display_name"])
    assert row["display_name"] == f"Draft Entry (* {second}) (B)"
    Move.action_post([third])
    Move.action_post([first])
    [t, f] = Move.read([third, first], ["name"])
    assert (t["name"], f["name"]) == ("MISC/2025/01/0002", "MISC/2025/01/0001")
    # A new month starts a new sequence, named at create since it is the first of its period.
    feb = Move.create(make_entry("D", date="2025-02-03"))
    assert Move.read([feb], ["name"])[0]["name"] == "MISC/2025/02/0001"


def test_sale_and_bank_journals_number_per_year(fresh: Fresh, make_entry: EntryVals) -> None:
    Move = fresh.odoo.env["account.move"]
    inv = Move.create(make_entry("S", journal_id=1))
    bank = Move.create(make_entry("K", journal_id=6, date="2025-03-02"))
    Move.action_post([inv, bank])
    names = [r["name"] for r in Move.read([inv, bank], ["name"])]
    assert names == ["INV/2025/00001", "BNK1/2025/00001"]


def test_posting_twice_is_refused(fresh: Fresh, make_entry: EntryVals) -> None:
    Move = fresh.odoo.env["account.move"]
    mid = Move.create(make_entry("TWICE"))
    Move.action_post([mid])
    err = rpc_error(lambda: Move.action_post([mid]))
    assert err.info["data"]["name"] == "odoo.exceptions.UserError"
    assert str(err) == f"The entry MISC/2025/01/0001 (id {mid}) must be in draft."


def test_posting_without_lines_is_refused(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> None:
    Move = odoo.env["account.move"]
    mid = Move.create(
        {"move_type": "entry", "journal_id": 3, "date": "2024-06-01", "ref": unique("EMPTY")}
    )
    err = rpc_error(lambda: Move.action_post([mid]))
    assert err.info["data"]["name"] == "odoo.exceptions.UserError"
    assert str(err) == "You need to add a line before posting."
    assert Move.read([mid], ["state"])[0]["state"] == "draft"


def unbalanced_text(display: str, debit: str, credit: str) -> str:
    return (
        "An error has occurred.\n\n"
        f"The move ({display}) is not balanced.\n"
        f"The total of debits equals {debit} and the total of credits equals {credit}.\n"
        'You might want to specify a default account on journal "Miscellaneous Operations" '
        "to automatically balance each move."
    )


def test_unbalanced_create_is_refused_at_create(fresh: Fresh, make_entry: EntryVals) -> None:
    Move = fresh.odoo.env["account.move"]
    Move.action_post([Move.create(make_entry("FIRST"))])
    vals = {
        "move_type": "entry",
        "journal_id": 3,
        "date": "2025-01-15",
        "ref": "UNB-1",
        "line_ids": [
            (0, 0, {"account_id": 42, "debit": 100, "credit": 0}),
            (0, 0, {"account_id": 24, "debit": 0, "credit": 90}),
        ],
    }
    err = rpc_error(lambda: Move.create(vals))
    assert err.info["data"]["name"] == "odoo.exceptions.UserError"
    assert str(err) == unbalanced_text("Draft Entry (* 2) (UNB-1)", "$ 100.00", "$ 90.00")
    # All or nothing: neither the entry nor its lines exist.
    assert Move.search([("ref", "=", "UNB-1")]) == []
    assert fresh.odoo.env["account.move.line"].search_count([("ref", "=", "UNB-1")]) == 0


def test_write_that_unbalances_is_refused(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], make_entry: EntryVals
) -> None:
    Move, Line = odoo.env["account.move"], odoo.env["account.move.line"]
    ref = unique("UNBW")
    mid = Move.create(make_entry(ref, date="2024-07-01", amount=1000.0))
    [label] = Move.read([mid], ["display_name"])
    cash_line = Line.search([("move_id", "=", mid), ("account_id", "=", 42)])[0]
    expected = unbalanced_text(label["display_name"], "$ 1,200.00", "$ 1,150.00")
    err = rpc_error(lambda: Move.write([mid], {"line_ids": [(1, cash_line, {"debit": 1200})]}))
    assert str(err) == expected
    err = rpc_error(lambda: Line.write([cash_line], {"debit": 1200}))
    assert str(err) == expected
    assert Line.read([cash_line], ["debit", "balance"])[0] == {
        "id": cash_line,
        "debit": 1150.0,
        "balance": 1150.0,
    }


def test_unknown_account_is_the_misleading_fk_validation_error(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    vals = {
        "journal_id": 3,
        "date": "2024-07-01",
        "ref": unique("FK"),
        "line_ids": [
            (0, 0, {"account_id": 999999, "debit": 10, "credit": 0}),
            (0, 0, {"account_id": 24, "debit": 0, "credit": 10}),
        ],
    }
    err = rpc_error(lambda: odoo.env["account.move"].create(vals))
    assert err.info["data"]["name"] == "odoo.exceptions.ValidationError"
    # docs/odoo17-behaviour.md quotes it without the source's trailing newline.
    assert str(err) == (
        "The operation cannot be completed: another model requires the record being deleted. "
        "If possible, archive it instead.\n\n"
        "Model: Journal Item (account.move.line)\n"
        "Constraint: account_move_line_account_id_fkey\n"
    )


def test_unlink_posted_refused_draft_allowed(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], make_entry: EntryVals
) -> None:
    Move, Line = odoo.env["account.move"], odoo.env["account.move.line"]
    posted = Move.create(make_entry(unique("DEL"), date="2024-08-01"))
    Move.action_post([posted])
    err = rpc_error(lambda: Move.unlink([posted]))
    assert err.info["data"]["name"] == "odoo.exceptions.UserError"
    assert str(err) == POSTED_UNLINK
    assert Move.search([("id", "=", posted)]) == [posted]
    draft = Move.create(make_entry(unique("DEL"), date="2024-08-01"))
    assert Move.unlink([draft]) is True
    assert Move.search([("id", "=", draft)]) == []
    assert Line.search_count([("move_id", "=", draft)]) == 0


def test_button_draft_reopens_a_posted_entry(fresh: Fresh, make_entry: EntryVals) -> None:
    Move, Line = fresh.odoo.env["account.move"], fresh.odoo.env["account.move.line"]
    mid = Move.create(make_entry("REOPEN"))
    Move.action_post([mid])
    Move.button_draft([mid])
    assert Move.read([mid], ["state", "name"])[0] == {
        "id": mid,
        "state": "draft",
        "name": "MISC/2025/01/0001",
    }
    assert {
        line["parent_state"] for line in Line.search_read([("move_id", "=", mid)], ["parent_state"])
    } == {"draft"}
    Move.write([mid], {"ref": "REOPENED"})
    Move.action_post([mid])
    assert Move.read([mid], ["state", "name", "ref"])[0] == {
        "id": mid,
        "state": "posted",
        "name": "MISC/2025/01/0001",
        "ref": "REOPENED",
    }


def test_duplicate_draft_names_collide_at_post_and_slash_repairs(
    fresh: Fresh, make_entry: EntryVals
) -> None:
    """Facts §h: two drafts got the same name; the second post fails until its name is reset."""
    Move = fresh.odoo.env["account.move"]
    first = Move.create(make_entry("RACE-1", date="2025-03-10"))
    second = Move.create({**make_entry("RACE-2", date="2025-03-11"), "name": "MISC/2025/03/0001"})
    assert [r["name"] for r in Move.read([first, second], ["name"])] == ["MISC/2025/03/0001"] * 2
    Move.action_post([first])
    for _attempt in range(2):  # retrying the post fails again
        err = rpc_error(lambda: Move.action_post([second]))
        assert err.info["data"]["name"] == "odoo.exceptions.ValidationError"
        assert (
            str(err)
            == "The operation cannot be completed: Another entry with the same name already exists."
        )
        assert Move.read([second], ["state"])[0]["state"] == "draft"
    Move.write([second], {"name": "/"})
    assert Move.action_post([second]) is False
    assert Move.read([second], ["state", "name"])[0] == {
        "id": second,
        "state": "posted",
        "name": "MISC/2025/03/0002",
    }


def test_ref_is_searchable_and_not_unique(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], make_entry: EntryVals
) -> None:
    Move = odoo.env["account.move"]
    ref = unique("REF")
    a = Move.create(make_entry(ref, date="2024-09-01"))
    b = Move.create(make_entry(ref, date="2024-09-02"))
    found = Move.search_read([("ref", "=", ref)], ["id", "ref", "state"], order="id asc")
    assert found == [
        {"id": a, "ref": ref, "state": "draft"},
        {"id": b, "ref": ref, "state": "draft"},
    ]
    assert Move.search([("ref", "=", ref)], order="id desc", limit=1) == [b]


def test_journal_items_are_searchable_like_odoo(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], make_entry: EntryVals
) -> None:
    Move, Line = odoo.env["account.move"], odoo.env["account.move.line"]
    ref = unique("AML")
    mid = Move.create(make_entry(ref, date="2024-10-05"))
    Move.action_post([mid])
    [move] = Move.read([mid], ["name"])
    lines = Line.search_read(
        [("move_id.ref", "=", ref)],
        [
            "move_id",
            "account_id",
            "name",
            "debit",
            "credit",
            "balance",
            "parent_state",
            "date",
            "journal_id",
            "ref",
            "quantity",
            "partner_id",
            "product_id",
        ],
        order="id asc",
    )
    assert [(r["account_id"][0], r["debit"], r["credit"], r["balance"]) for r in lines] == [
        (42, 115.0, 0.0, 115.0),
        (24, 0.0, 100.0, -100.0),
        (19, 0.0, 15.0, -15.0),
    ]
    first = lines[0]
    assert first["move_id"] == [mid, f"{move['name']} ({ref})"]
    assert first["account_id"] == [42, "101501 Cash"]
    assert (first["parent_state"], first["date"], first["ref"]) == ("posted", "2024-10-05", ref)
    assert first["journal_id"] == [3, "Miscellaneous Operations"]
    assert (first["quantity"], first["partner_id"], first["product_id"]) == (1.0, False, False)
    sales = Line.search(
        [
            ("move_id.ref", "=", ref),
            ("account_id.code", "=", "400000"),
            ("parent_state", "=", "posted"),
        ]
    )
    assert sales == [lines[1]["id"]]
    assert Line.search_count([("move_id", "=", mid), ("account_id", "in", [19, 24])]) == 2


def test_domain_operators(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], make_entry: EntryVals
) -> None:
    Move, Line, Account = (
        odoo.env["account.move"],
        odoo.env["account.move.line"],
        odoo.env["account.account"],
    )
    tag = unique("DOM")
    a = Move.create(make_entry(f"{tag}-a", date="2024-11-01"))
    b = Move.create(make_entry(f"{tag}-b", date="2024-11-20"))
    c = Move.create({**make_entry(f"{tag}-c", date="2024-11-25"), "narration": "<p>c</p>"})
    Move.action_post([a])
    mine = [("ref", "=like", f"{tag}-%")]

    def ids(domain: list[Any]) -> list[int]:
        return sorted(Move.search(mine + domain))

    assert ids([]) == [a, b, c]
    assert ids(["|", ("ref", "=", f"{tag}-a"), ("ref", "=", f"{tag}-c")]) == [a, c]
    assert ids(["!", ("ref", "=", f"{tag}-a")]) == [b, c]
    assert ids([("state", "in", ["posted", "cancel"])]) == [a]
    assert ids([("state", "not in", ["posted"])]) == [b, c]
    assert ids([("ref", "ilike", f"{tag.lower()}-B")]) == [b]
    assert ids([("ref", "like", f"{tag.lower()}-b")]) == []  # like is case-sensitive
    assert ids([("ref", "not ilike", f"{tag.lower()}-A")]) == [b, c]
    assert ids([("ref", "=ilike", f"{tag.lower()}-_")]) == [a, b, c]
    assert ids([("date", ">=", "2024-11-20"), ("date", "<", "2024-11-25")]) == [b]
    assert ids([("narration", "=", False)]) == [a, b]
    assert ids([("narration", "!=", False)]) == [c]
    assert ids([("partner_id", "=", False), ("journal_id.code", "=", "MISC")]) == [a, b, c]
    assert ids(
        ["&", ("state", "=", "draft"), "|", ("ref", "=", f"{tag}-a"), ("ref", "=", f"{tag}-b")]
    ) == [b]
    # '!=' and 'not in' keep the NULLs, as in Odoo; '=' False finds them.
    unnamed = Line.create({"move_id": b, "account_id": 24, "debit": 0, "credit": 0})
    lines_b = Line.search([("move_id", "=", b)])
    assert unnamed in Line.search([("move_id", "=", b), ("name", "!=", f"{tag}-b cash")])
    assert unnamed in Line.search([("move_id", "=", b), ("name", "not in", [f"{tag}-b cash"])])
    assert Line.search([("move_id", "=", b), ("name", "=", False)]) == [unnamed]
    assert (
        len(Line.search([("move_id", "=", b), ("name", "!=", f"{tag}-b cash")])) == len(lines_b) - 1
    )
    assert Account.search([("code", "=like", "1014%")], order="code") == [41, 43, 44, 45]
    assert Account.search(
        [("account_type", "=", "asset_cash"), ("code", "in", ["101401", "101501", "nope"])],
        order="id",
    ) == [41, 42]
    assert Move.search_count([*mine, ("line_ids.account_id", "=", 19)]) == 3


def test_reversal_wizard_posts_the_reversal(fresh: Fresh, make_entry: EntryVals) -> None:
    odoo = fresh.odoo
    Move = odoo.env["account.move"]
    mid = Move.create(make_entry("EXT"))
    Move.action_post([mid])
    wizard = odoo.env["account.move.reversal"].create(
        {
            "move_ids": [(6, 0, [mid])],
            "date": "2025-01-20",
            "reason": "refund EXT",
            "journal_id": 3,
        },
        context={"active_model": "account.move", "active_ids": [mid]},
    )
    action = odoo.env["account.move.reversal"].refund_moves([wizard])
    assert action["type"] == "ir.actions.act_window"
    assert action["res_model"] == "account.move"
    reversal = action["res_id"]
    [rev] = Move.read(
        [reversal], ["name", "state", "ref", "reversed_entry_id", "amount_total", "date"]
    )
    assert rev["state"] == "posted"
    assert rev["name"] == "MISC/2025/01/0002"
    assert rev["ref"] == "Reversal of: MISC/2025/01/0001, refund EXT"
    assert rev["reversed_entry_id"][0] == mid
    assert rev["date"] == "2025-01-20"
    [original] = Move.read([mid], ["state", "reversal_move_id"])
    assert original == {"id": mid, "state": "posted", "reversal_move_id": [reversal]}
    assert odoo.env["account.move.reversal"].read([wizard], ["new_move_ids"])[0][
        "new_move_ids"
    ] == [reversal]
    lines = odoo.env["account.move.line"].search_read(
        [("move_id", "=", reversal), ("account_id", "=", 24)], ["debit", "credit"]
    )
    assert [(r["debit"], r["credit"]) for r in lines] == [(100.0, 0.0)]


def test_reversal_journal_must_have_the_same_type(fresh: Fresh, make_entry: EntryVals) -> None:
    Move = fresh.odoo.env["account.move"]
    mid = Move.create(make_entry("EXT"))
    Move.action_post([mid])
    err = rpc_error(
        lambda: fresh.odoo.env["account.move.reversal"].create(
            {"move_ids": [(6, 0, [mid])], "journal_id": 1}
        )
    )
    assert str(err) == "Journal should be the same type as the reversed entry."
