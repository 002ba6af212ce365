"""The verdict table: which verdicts fail the run, which mean "not tested", and the words, as a
table of cases (a migration's fields -> its problems, each step's outcome, why it is not fully
tested). Pure: no database."""

from __future__ import annotations

import pytest

from migration_check.results import Finding, Impact, MigrationResult
from migration_check.verdict_table import STEPS, judge_blocking, judge_migration, next_step, over_limit, untested_reason
from migration_check.verdicts import FindingKind

FULL = {"apply": "passed", "rollback": "passed", "reapply": "passed", "schema": "identical", "data": "preserved",
        "compat": "compatible", "retry": "passed"}
NOT_ROLLED_BACK = {"reapply": "not_run", "schema": "not_checked", "data": "not_checked"}


def result(**fields) -> MigrationResult:
    return MigrationResult("shop", "0002_m", file="shop/migrations/0002_m.py", line=1, **{**FULL, **fields})


# fields -> (problems, outcome of each step in STEPS order, untested reason)
CASES = [
    ({}, [], "passed passed passed passed passed passed passed", None),
    ({"apply": "failed", "data": "not_checked", "compat": "not_checked"}, ["apply failed"],
     "failed passed passed passed not_tested not_tested passed",
     "apply failed over pre-release rows: data, compat not checked"),
    ({"rollback": "failed", **NOT_ROLLED_BACK}, ["rollback failed"],
     "passed failed not_tested not_tested not_tested passed passed",
     "rollback failed: re-apply, schema, data not checked"),
    ({"rollback": "irreversible", **NOT_ROLLED_BACK}, ["rollback irreversible"],
     "passed failed not_tested not_tested not_tested passed passed",
     "irreversible: re-apply, schema, data not checked"),
    ({"rollback": "irreversible", "acknowledged": True, **NOT_ROLLED_BACK}, [],
     "passed acknowledged not_tested not_tested not_tested passed passed",
     "irreversible: re-apply, schema, data not checked"),
    # blocked: judged by its own rollback; being blocked is not a problem, its own findings are
    ({"rollback": "blocked", "blocked_by": "0003_m", "rollback_alone": "passed"}, [],
     "passed blocked passed passed passed passed passed", None),
    ({"rollback": "blocked", "blocked_by": "0003_m", "rollback_alone": "failed", **NOT_ROLLED_BACK},
     ["rollback failed"], "passed failed not_tested not_tested not_tested passed passed",
     "rollback failed: re-apply, schema, data not checked"),
    ({"rollback": "blocked", "blocked_by": "0003_m", "rollback_alone": "passed", "compat": "breaks_old_code"},
     ["breaks old code"], "passed blocked passed passed passed failed passed", None),
    ({"rollback": "blocked", "blocked_by": "0003_m"}, ["rollback not_run"],  # no own verdict: never green
     "passed failed passed passed passed passed passed", None),
    ({"data": "lost"}, ["data lost"], "passed passed passed passed failed passed passed", None),
    ({"data": "lost", "acknowledged": True}, [], "passed passed passed passed acknowledged passed passed", None),
    ({"compat": "breaks_old_code", "compat_direction": "new_code_on_old_schema"},
     ["breaks the new code (post-deploy)"], "passed passed passed passed passed failed passed", None),
    ({"compat": "breaks_old_code", "compat_acknowledged": True}, [],
     "passed passed passed passed passed acknowledged passed", None),
    ({"schema": "differs", "reapply": "failed"}, ["re-apply failed", "schema differs"],
     "passed passed failed failed passed passed passed", None),
    ({"apply": "not_run", "rollback": "not_run", **NOT_ROLLED_BACK, "compat": "not_checked"}, ["rollback not_run"],
     "not_tested failed not_tested not_tested not_tested not_tested passed",
     "not applied: apply, re-apply, schema, data, compat not checked"),
    ({"compat": "not_checked"}, [], "passed passed passed passed passed not_tested passed",
     "turned off or not applicable: compat not checked"),
    ({"data": "unheard_of"}, ["data unheard_of"], "passed passed passed passed failed passed passed", None),
    # the retry proof: a failed retry is a problem unless acknowledged; not checked is not tested
    ({"retry": "failed"}, ["retry after a cut-off apply fails"], "passed passed passed passed passed passed failed",
     None),
    ({"retry": "failed", "retry_acknowledged": True}, [],
     "passed passed passed passed passed passed acknowledged", None),
    ({"retry": "not_checked"}, [], "passed passed passed passed passed passed not_tested",
     "turned off or not applicable: retry not checked"),
]


@pytest.mark.parametrize(("fields", "problems", "outcomes", "reason"), CASES)
def test_verdict_table(fields, problems, outcomes, reason):
    migration = result(**fields)
    assert migration.problems == problems
    assert [j.outcome for j in judge_migration(migration)] == outcomes.split()
    assert [j.step for j in judge_migration(migration)] == list(STEPS)
    assert untested_reason(migration) == reason


def test_a_blocked_migration_is_named_by_its_blocker():
    migration = result(rollback="blocked", blocked_by="0003_m", rollback_alone="passed")
    assert judge_migration(migration)[1].words == "rollback blocked by 0003_m"
    assert migration.own_rollback == "passed"


@pytest.mark.parametrize(("fields", "step", "words"), [
    ({"rollback": "irreversible"}, 1, ["reverse_code=", "RunPython.noop", "data lost",
                                       "--allow-irreversible shop.0002_m", "# test_migrations: allow-irreversible"]),
    ({"data": "lost"}, 4, ["--allow-data-loss shop.0002_m", "# test_migrations: allow-data-loss"]),
    ({"compat": "breaks_old_code"}, 5, ["safe pattern", "--allow-breaking shop.0002_m"]),
    ({"schema": "differs"}, 3, []),
])
def test_each_failing_finding_names_the_next_step(fields, step, words):
    migration = result(**fields)
    text = next_step(migration, judge_migration(migration)[step])
    if not words:
        assert text is None
    for word in words:
        assert word in (text or ""), text


# --max-blocking: `blocking` is judged after STEPS, only when the run asked for it (not `off`).
@pytest.mark.parametrize(("blocking", "problems", "outcome", "reason"), [
    ("within", [], "passed", None),
    ("exceeds", ["blocks writes longer than --max-blocking"], "failed", None),
    ("not_checked", [], "not_tested", "the rehearsal gave no figures: blocking not checked"),
    ("off", [], None, None),
])
def test_blocking_verdict(blocking, problems, outcome, reason):
    migration = result(blocking=blocking)
    assert migration.problems == problems
    judged = {j.step: j.outcome for j in judge_migration(migration)}
    assert judged.get("blocking") == outcome and list(judged)[:len(STEPS)] == list(STEPS)
    assert untested_reason(migration) == reason


def impact(estimated: float | None, *measured: float) -> Impact:
    return Impact("shop_tag", "AccessExclusiveLock", tuple((100 * (i + 1), held) for i, held in enumerate(measured)),
                  1_000_000 if estimated is not None else None, estimated, "fitted")


@pytest.mark.parametrize(("impacts", "limit", "verdict", "over"), [
    ([impact(390.0, 0.4, 3.9)], 1.0, "exceeds", [0]),
    ([impact(0.5, 0.2, 0.4), impact(2.0, 0.1, 0.2)], 1.0, "exceeds", [1]),  # the estimate, not the measured holds
    ([impact(None, 0.2, 1.5)], 1.0, "exceeds", [0]),  # no production size: the longest hold measured
    ([impact(1.0, 0.2, 1.0)], 1.0, "within", []),  # at the limit is within it
    ([], 1.0, "within", []),
    ([impact(390.0, 0.4, 3.9)], None, "off", []),
])
def test_judge_blocking(impacts, limit, verdict, over):
    assert judge_blocking(impacts, limit) == verdict
    assert over_limit(impacts, limit) == [impacts[i] for i in over]


def test_a_loss_that_is_only_values_cut_short_names_the_fix_for_a_narrowing():
    """A rollback that casts a column back to a shorter type cuts post-release values (rule
    post-release-data-lost with `cut_to`): restoring values is not the fix, keeping them whole is."""
    cut = Finding(FindingKind.DATA_LOST, "column t.body: ... cut to 50 characters ...",
                  {"table": "t", "column": "body", "cut_to": 50}, "post-release-data-lost")
    gone = Finding(FindingKind.DATA_LOST, "column t.name: ... changed ...", {"table": "t", "column": "name"},
                   "data-lost")
    only_cut = result(data="lost", details=[cut])
    text = next_step(only_cut, judge_migration(only_cut)[4])
    assert text.startswith("keep the column wide enough on rollback, or give the migration reverse code that "
                           "shortens or moves the longer values"), text
    assert "--allow-data-loss shop.0002_m" in text and "a removed field or model" not in text
    both = result(data="lost", details=[cut, gone])
    assert next_step(both, judge_migration(both)[4]).startswith("make the reverse restore the values")
