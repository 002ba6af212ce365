"""proofs/retry/cuts: where a migration's apply is cut, and the verdict (pure, no database)."""

from __future__ import annotations

from migration_check.proofs.data.fingerprints import TableFingerprint
from migration_check.proofs.retry.cuts import (
    MAX_CUTS,
    Attempt,
    Cut,
    build_noise,
    choose_cuts,
    data_differences,
    judge_retry,
    runs_in_one_transaction,
)


def statement(sql: str, in_transaction: bool = False, concurrently: bool = False,
              ends_transaction: bool = False) -> dict:
    return {"sql": sql, "in_transaction": in_transaction, "concurrently": concurrently,
            "ends_transaction": ends_transaction}


def test_an_atomic_migration_whose_statements_all_ran_in_its_transaction_needs_no_cut():
    statements = [statement("ALTER TABLE t ADD c int", True), statement("UPDATE t SET c = 1", True)]
    assert runs_in_one_transaction(True, statements)
    assert not runs_in_one_transaction(False, statements)
    assert not runs_in_one_transaction(True, [*statements, statement("CREATE INDEX CONCURRENTLY i ON t (c)")])


def test_an_atomic_migration_whose_statement_ended_its_transaction_is_cut_after_that_statement():
    """A COMMIT in an atomic migration's RunSQL: Django's atomic block goes on, but what ran before
    the COMMIT is committed, so the cut right after it is the one a rolled-back attempt cannot undo."""
    statements = [statement("CREATE TABLE tag (id int)", True), statement("COMMIT", True, ends_transaction=True),
                  statement("CREATE INDEX i ON t (c)", True), statement("UPDATE t SET c = 1", True)]
    assert not runs_in_one_transaction(True, statements)
    assert choose_cuts(statements) == [Cut(after=1), Cut(after=2), Cut(after=4)]
    # records from before the field existed read as not ending anything
    assert runs_in_one_transaction(True, [{"sql": "UPDATE t SET c = 1", "in_transaction": True, "concurrently": False}])


def test_cuts_during_each_concurrently_build_and_after_each_committed_write():
    statements = [statement("DROP INDEX CONCURRENTLY IF EXISTS i"),
                  statement("CREATE INDEX CONCURRENTLY i ON t (c)", concurrently=True)]
    assert choose_cuts(statements) == [Cut(during=2), Cut(after=1), Cut(after=2)]


def test_reads_are_not_cut_after_and_a_transaction_is_cut_at_its_first_and_last_write():
    statements = [statement("SELECT id FROM t"), statement("UPDATE t SET c = 1 WHERE id = 1"),
                  statement("SELECT 1", True), statement("UPDATE t SET c = 2", True),
                  statement("UPDATE t SET c = 3", True), statement("UPDATE t SET c = 4", True)]
    assert choose_cuts(statements) == [Cut(after=2), Cut(after=4), Cut(after=6)]


def test_a_thousand_batches_get_at_most_a_handful_of_cuts_first_and_last_among_them():
    statements = [statement(f"UPDATE t SET c = 1 WHERE id = {n}") for n in range(1, 1001)]
    cuts = choose_cuts(statements)
    assert len(cuts) == MAX_CUTS == 5
    assert cuts[0] == Cut(after=1) and cuts[-1] == Cut(after=1000)
    # positions 0, 249.75, 499.5, 749.25, 999 of the 1,000 cuts, rounded half to even: statements
    # 1, 251, 501, 750, 1000
    assert [c.after for c in cuts] == [1, 251, 501, 750, 1000]


def test_a_cut_names_its_statement():
    statements = [statement("CREATE INDEX CONCURRENTLY i ON t (c)", concurrently=True)]
    assert Cut(during=1).describe(statements) == (
        "cancelled during statement 1 of 1 (CREATE INDEX CONCURRENTLY i ON t (c))")
    assert Cut(after=1).request() == {"after": 1} and Cut(during=1).request() == {"during": 1}


def fingerprint(rows: dict[str, dict[str, str]]) -> dict[str, TableFingerprint]:
    return {"t": TableFingerprint(columns=["id", "hits"], key_columns=["id"], rows=rows)}


def test_data_differences_name_changed_values_and_rows_only_the_retry_has():
    clean = fingerprint({"1": {"id": "a", "hits": "x"}, "2": {"id": "b", "hits": "x"}})
    retried = fingerprint({"1": {"id": "a", "hits": "y"}, "2": {"id": "b", "hits": "x"}, "3": {"id": "c", "hits": "x"}})
    assert data_differences(clean, retried) == [
        "1 value(s) of t.hits differ from the clean apply (e.g. key 1)",
        "1 row(s) of t exist only after the retry (e.g. key 3)"]
    assert data_differences(clean, clean) == []


def test_values_two_fresh_builds_already_disagree_on_are_not_the_retrys():
    """Two databases built the same way hold different random values an older migration generated
    (wagtail's page translation_key, a uuid4): social_django.0020's retry "failed" over them with
    --no-clone (survey 4), where a clone of one template holds the same ones."""
    clean_start = fingerprint({"1": {"id": "a", "hits": "uuid-1"}})
    attempt_start = fingerprint({"1": {"id": "a", "hits": "uuid-2"}})
    noise = build_noise(clean_start, attempt_start)
    assert noise == {("t", "hits")}
    clean_end = fingerprint({"1": {"id": "a", "hits": "uuid-1"}})
    retried = fingerprint({"1": {"id": "a", "hits": "uuid-2"}, "2": {"id": "b", "hits": "x"}})
    assert data_differences(clean_end, retried, noise) == ["1 row(s) of t exist only after the retry (e.g. key 2)"]
    assert data_differences(clean_end, retried) == [
        "1 value(s) of t.hits differ from the clean apply (e.g. key 1)",
        "1 row(s) of t exist only after the retry (e.g. key 2)"]
    assert build_noise(clean_start, clean_start) == frozenset()


def test_judge_passes_converging_retries_and_fails_each_other_cut():
    good = Attempt("cut off after statement 1 of 2 (x)", None, [], [])
    failed = Attempt("cancelled during statement 2 of 2 (y)", 'ProgrammingError: relation "i" already exists',
                     [], [])
    assert judge_retry([good]) == ("passed", [])
    verdict, findings = judge_retry([good, failed])
    assert verdict == "failed" and len(findings) == 1
    assert findings[0].message == ("apply cancelled during statement 2 of 2 (y), then migrate again: the retry "
                                   'failed: ProgrammingError: relation "i" already exists')
    assert findings[0].rule == "retry-not-idempotent" and findings[0].kind == "retry"
