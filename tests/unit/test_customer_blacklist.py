"""The blacklist rules of domain/customer.py: when a till consent lists or lifts the customer's
address on Odoo's mail.blacklist."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.customer import (
    BlacklistEntry,
    BlacklistMark,
    BlacklistStep,
    ConsentRecord,
    CustomerBlock,
    blacklist_note,
    blacklist_note_key,
    blacklist_step,
    next_blacklist_mark,
    read_block,
    write_block,
)

ADD, LIFT, KEEP = BlacklistStep.ADD, BlacklistStep.LIFT, BlacklistStep.KEEP


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, second, tzinfo=UTC)


def given(marketing: bool, when: datetime) -> ConsentRecord:
    return ConsentRecord(marketing=marketing, at=when, source="till", recorded_by="S001")


def entry(active: bool, written: str, id: int = 7) -> BlacklistEntry:
    return BlacklistEntry(id=id, active=active, write_date=written)


def test_an_opt_out_lists_the_address_unless_someone_listed_it_already() -> None:
    out = given(False, at(9))
    assert blacklist_step(out, None, None, noted=False) is ADD
    assert blacklist_step(out, None, entry(False, "2026-01-01 00:00:00"), noted=False) is ADD
    assert blacklist_step(out, None, entry(True, "2026-01-01 00:00:00"), noted=False) is KEEP
    # Listed, and carrying retailflow's note for this consent: an earlier attempt did it.
    assert blacklist_step(out, None, entry(True, "2026-11-30 12:00:00"), noted=True) is ADD


def test_a_consent_already_acted_on_does_nothing() -> None:
    out = given(False, at(9))
    mark = BlacklistMark(consent_at=at(9), listed=True, ours=True, entry_id=7)
    assert blacklist_step(out, mark, entry(True, "2026-11-30 12:00:00"), noted=True) is None
    assert blacklist_step(None, mark, None, noted=False) is None


def test_an_opt_in_lifts_only_an_entry_older_than_it() -> None:
    opt_in = given(True, at(10))
    assert blacklist_step(opt_in, None, None, noted=False) is KEEP
    assert blacklist_step(opt_in, None, entry(False, "2026-11-20 08:00:00"), noted=False) is KEEP
    assert blacklist_step(opt_in, None, entry(True, "2026-11-20 09:59:58"), noted=False) is LIFT
    # Read to the second: `09:59:59` was written before 10:00; `10:00:00` may be after it.
    assert blacklist_step(opt_in, None, entry(True, "2026-11-20 09:59:59"), noted=False) is LIFT
    assert blacklist_step(opt_in, None, entry(True, "2026-11-20 10:00:00"), noted=False) is KEEP
    # Made after the opt-in (an unsubscribe from a mailing): stays.
    assert blacklist_step(opt_in, None, entry(True, "2026-11-20 11:00:00"), noted=False) is KEEP


def test_retailflows_own_untouched_entry_is_as_old_as_the_opt_out_it_records() -> None:
    # Both consents were given offline and processed later: the entry's write time is when the
    # opt-out was processed (12:00), after the opt-in was given (10:00); it is still lifted.
    mark = BlacklistMark(
        consent_at=at(9), listed=True, ours=True, entry_id=7, entry_write_date="2026-11-20 12:00:00"
    )
    opt_in = given(True, at(10))
    assert blacklist_step(opt_in, mark, entry(True, "2026-11-20 12:00:00"), noted=False) is LIFT
    # Touched since (someone listed it again, or another entry): its own time decides.
    assert blacklist_step(opt_in, mark, entry(True, "2026-11-20 12:00:05"), noted=False) is KEEP
    other = entry(True, "2026-11-20 12:00:00", id=8)
    assert blacklist_step(opt_in, mark, other, noted=False) is KEEP
    assert (
        blacklist_step(
            opt_in,
            mark.model_copy(update={"ours": False}),
            entry(True, "2026-11-20 12:00:00"),
            noted=False,
        )
        is KEEP
    )


def test_the_mark_records_whose_entry_it_is() -> None:
    out = given(False, at(9))
    after = entry(True, "2026-11-20 12:00:00")
    mark = next_blacklist_mark(out, None, ADD, None, after)
    assert mark == BlacklistMark(
        consent_at=at(9), listed=True, ours=True, entry_id=7, entry_write_date="2026-11-20 12:00:00"
    )
    # A newer opt-out on the untouched entry keeps it retailflow's.
    again = next_blacklist_mark(given(False, at(11)), mark, KEEP, after, after)
    assert again.ours and again.consent_at == at(11)
    # Someone else's entry stays someone else's.
    theirs = next_blacklist_mark(out, None, KEEP, after, after)
    assert not theirs.ours and theirs.listed
    lifted = next_blacklist_mark(given(True, at(10)), mark, LIFT, after, entry(False, "x"))
    assert not lifted.listed and not lifted.ours


def test_the_note_says_why_without_naming_the_customer() -> None:
    out = given(False, at(9))
    note = blacklist_note(out)
    assert note.startswith(blacklist_note_key(out))
    assert "opt-out given 2026-11-20T09:00:00+00:00" in note and "store S001" in note
    assert blacklist_note_key(given(True, at(9))) != blacklist_note_key(out)


def test_the_block_keeps_the_mark() -> None:
    mark = BlacklistMark(consent_at=at(9), listed=True, ours=True, entry_id=7)
    block = CustomerBlock(consent=given(False, at(9)), blacklist=mark)
    assert read_block(write_block("<p>Odoo's note</p>", block)) == block
    assert read_block('<p>retailflow customer: {"loyalty_points": 3}</p>').blacklist is None
