"""unique_keys: which unique keys a migration relaxes or tightens (pure), and the probe's hazard."""

from __future__ import annotations

import pytest

from migration_check.proofs.data.unique_keys import (
    failed_over_duplicates,
    relaxed_keys,
    tightened_keys,
    unique_over_duplicates_hazard,
)
from migration_check.proofs.data.unique_probe import keys_in_error

FOLLOW_KEY = ("content_type", "object_id", "user")
COLUMNS = {"follow": {"id", "user", "content_type", "object_id", "flag"}}


@pytest.mark.parametrize(("after", "relaxed"), [
    ({("id",), ("content_type", "flag", "object_id", "user")}, [("follow", FOLLOW_KEY)]),  # unique_together widened
    ({("id",)}, [("follow", FOLLOW_KEY)]),  # removed
    ({("id",), FOLLOW_KEY}, []),  # unchanged
    ({("id",), ("object_id", "user")}, []),  # narrowed: stricter, the old key still holds
])
def test_a_key_is_relaxed_when_no_key_after_implies_it(after, relaxed):
    before = {"follow": {("id",), FOLLOW_KEY}}
    assert relaxed_keys(before, {"follow": after}, COLUMNS) == relaxed


def test_a_key_whose_column_is_gone_cannot_be_repeated():
    before = {"follow": {("id",), FOLLOW_KEY}}
    assert relaxed_keys(before, {"follow": {("id",)}}, {"follow": {"id", "content_type", "object_id"}}) == []


def test_a_dropped_table_relaxes_nothing():
    assert relaxed_keys({"gone": {("code",)}}, {}, {}) == []


@pytest.mark.parametrize(("before", "tightened"), [
    ({("id",)}, [("member", ("email",))]),  # unique=True on an existing column
    ({("id",), ("email",)}, []),  # already unique
    ({("id",), ("email", "name")}, [("member", ("email",))]),  # (email, name) allowed repeated emails
])
def test_a_key_is_tightened_when_no_key_before_implies_it(before, tightened):
    after = {"member": {("id",), ("email",)}}
    assert tightened_keys({"member": before}, after, {"member": {"id", "email", "name"}}) == tightened


def test_keys_on_new_tables_or_new_columns_are_not_tightened():
    after = {"member": {("id",), ("slug",)}, "fresh": {("id",), ("code",)}}
    assert tightened_keys({"member": {("id",)}}, after, {"member": {"id", "email"}}) == []


ERROR = ('IntegrityError: could not create unique index "member_email_uniq" | DETAIL:  Key (email)=(x) '
         'is duplicated.')


def test_the_probe_recognises_postgresql_s_words_and_names_the_key():
    assert failed_over_duplicates(ERROR)
    assert not failed_over_duplicates("ProgrammingError: column \"email\" does not exist")
    keys = [("member", ("email",)), ("member", ("name", "team"))]
    assert keys_in_error(keys, ERROR) == [("member", ("email",))]
    assert keys_in_error(keys, "IntegrityError: could not create unique index") == keys


def test_the_hazard_names_the_table_the_columns_and_both_fixes():
    hazard = unique_over_duplicates_hazard("member", ("email",), ERROR, "0002_alter_member_email")
    assert hazard.rule == "unique-over-duplicates" and hazard.table == "member"
    assert "0002_alter_member_email makes (email) of member unique" in hazard.message and ERROR in hazard.message
    assert "RunPython" in hazard.fix and "SELECT email, count(*) FROM member GROUP BY email" in hazard.fix
