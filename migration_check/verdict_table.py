"""The verdict table: for each verdict of a migration, which values fail the run, which mean it
was not tested, and the words for each.

The exit status, JSON `ok`, the console summary, the JUnit file, the GitHub summary and the
annotations all read `judge_migration` (through `MigrationResult.problems` and the reporters);
none of them decides on its own whether a verdict fails.

Outcomes of one step's verdict:

| outcome | fails the run | JUnit | meaning |
| --- | --- | --- | --- |
| `passed` | no | passed | the step ran and found nothing |
| `failed` | yes | failure | a problem (see `TABLE` for which values) |
| `acknowledged` | no | passed (text in system-out) | a problem accepted on purpose (flag or marker) |
| `blocked` | no | skipped ("blocked by …") | the rollback passed alone, but production cannot reach it |
| `not_tested` | no | skipped (why) | no verdict: an earlier step of the same migration did not let it run |

`blocking` (the deploy rehearsal against --max-blocking) is judged only when the run asked for
it: without --max-blocking its value is `off` and it has no judgement at all (no JUnit case, not
"not tested"). `judge_blocking` is the pure function that gives its value, from the rehearsal's
estimates and the limit; `over_limit` says which estimates fail.

A `rollback: blocked` migration is judged by `rollback_alone`, its own rollback tested on a
database that never applied `blocked_by`: when that failed or is irreversible, it is a problem
like any other. Every other field of a blocked migration is the verdict of its own test.

Owns: `TABLE`, `Judgement`, `judge_migration`, `problem_words`, `untested_reason`, `next_step`
(what to do about a failing verdict), `over_limit` and `judge_blocking`.

Reads `MigrationResult` fields only, through a protocol (results.py imports this module).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .config import (
    MARKER_ALLOW_BREAKING,
    MARKER_ALLOW_DATA_LOSS,
    MARKER_ALLOW_IRREVERSIBLE,
    MARKER_ALLOW_UNSAFE_RETRY,
)
from .verdicts import Blocking, Compat, CompatDirection, Data, FindingKind, Retry, Rollback, Schema, StepOutcome


class Detail(Protocol):
    """The fields of a results.Finding the table reads."""

    @property
    def kind(self) -> FindingKind: ...
    @property
    def extra(self) -> Mapping[str, object]: ...


class MigrationResult(Protocol):
    """The fields of results.MigrationResult the table reads (a protocol: results.py imports
    this module, so it cannot import results.py)."""

    @property
    def label(self) -> str: ...
    apply: StepOutcome
    rollback: Rollback
    reapply: StepOutcome
    schema: Schema
    data: Data
    compat: Compat
    compat_direction: CompatDirection | None
    acknowledged: bool
    compat_acknowledged: bool
    blocked_by: str | None
    rollback_alone: Rollback | None
    retry: Retry
    retry_acknowledged: bool
    blocking: Blocking

    @property
    def details(self) -> Sequence[Detail]: ...


PASSED = "passed"
FAILED = "failed"
ACKNOWLEDGED = "acknowledged"
BLOCKED = "blocked"
NOT_TESTED = "not_tested"

# The steps of a migration's test, in the order they run: JUnit's test case names.
STEPS = ("apply", "rollback", "reapply", "schema", "data", "compat", "retry")
# Steps judged only when the run asked for them, after STEPS: step -> the value that means "not asked".
OPTIONAL_STEPS = {"blocking": Blocking.OFF}

# field -> value -> (outcome, words). A value not in the table fails (a report of a newer
# version merged by this one: better red than falsely green).
TABLE: dict[str, dict[str, tuple[str, str]]] = {
    "apply": {StepOutcome.PASSED: (PASSED, "applied"), StepOutcome.FAILED: (FAILED, "apply failed"),
              StepOutcome.NOT_RUN: (NOT_TESTED, "not applied")},
    "rollback": {Rollback.PASSED: (PASSED, "rolled back"), Rollback.FAILED: (FAILED, "rollback failed"),
                 Rollback.IRREVERSIBLE: (FAILED, "rollback irreversible"),
                 # not reached at all (the chain stopped before it): no verdict is a problem here
                 Rollback.NOT_RUN: (FAILED, "rollback not_run")},
    "reapply": {StepOutcome.PASSED: (PASSED, "re-applied"), StepOutcome.FAILED: (FAILED, "re-apply failed"),
                StepOutcome.NOT_RUN: (NOT_TESTED, "re-apply not run")},
    "schema": {Schema.IDENTICAL: (PASSED, "schema identical"), Schema.DIFFERS: (FAILED, "schema differs"),
               Schema.NOT_CHECKED: (NOT_TESTED, "schema not checked")},
    "data": {Data.PRESERVED: (PASSED, "data preserved"), Data.LOST: (FAILED, "data lost"),
             Data.NOT_CHECKED: (NOT_TESTED, "data not checked")},
    "compat": {Compat.COMPATIBLE: (PASSED, "compatible"), Compat.BREAKS_OLD_CODE: (FAILED, "breaks old code"),
               Compat.NOT_CHECKED: (NOT_TESTED, "compat not checked")},
    "retry": {Retry.PASSED: (PASSED, "retry converges"), Retry.FAILED: (FAILED, "retry after a cut-off apply fails"),
              Retry.NOT_CHECKED: (NOT_TESTED, "retry not checked")},
    # with --max-blocking: the locks over it are in `rehearsal_problems`, one line each, with the numbers
    "blocking": {Blocking.WITHIN: (PASSED, "blocks writes within --max-blocking"),
                 Blocking.EXCEEDS: (FAILED, "blocks writes longer than --max-blocking"),
                 Blocking.NOT_CHECKED: (NOT_TESTED, "blocking not checked")},
}
POST_DEPLOY_WORDS = "breaks the new code (post-deploy)"  # compat in the direction new_code_on_old_schema
# Finding kinds (details) behind a failing field.
FINDING_KINDS = {"schema": FindingKind.SCHEMA, "data": FindingKind.DATA_LOST, "compat": FindingKind.COMPAT,
                 "retry": FindingKind.RETRY}


@dataclass(frozen=True)
class Judgement:
    """One step's verdict read through the table: `outcome` (see the module docstring), the
    `words` a summary uses ("apply failed"), and `value`, the field's value judged."""

    step: str
    value: str
    outcome: str
    words: str

    @property
    def fails(self) -> bool:
        return self.outcome == FAILED


def own_rollback(m: MigrationResult) -> Rollback:
    """The migration's own rollback verdict: `rollback_alone` when it is blocked."""
    return (m.rollback_alone or Rollback.NOT_RUN) if m.rollback == Rollback.BLOCKED else m.rollback


def acknowledged(m: MigrationResult, step: str, value: str) -> bool:
    """Whether a failing value was accepted on purpose (--allow-* or a marker)."""
    if (step, value) in (("rollback", Rollback.IRREVERSIBLE), ("data", Data.LOST)):
        return m.acknowledged
    if step == "retry":
        return value == Retry.FAILED and m.retry_acknowledged
    return step == "compat" and value == Compat.BREAKS_OLD_CODE and m.compat_acknowledged


def judge_step(m: MigrationResult, step: str) -> Judgement:
    value = own_rollback(m) if step == "rollback" else str(getattr(m, step))
    outcome, words = TABLE[step].get(value, (FAILED, f"{step} {value}"))
    if (step == "compat" and value == Compat.BREAKS_OLD_CODE
            and m.compat_direction == CompatDirection.NEW_CODE_ON_OLD_SCHEMA):
        words = POST_DEPLOY_WORDS
    if outcome == FAILED and acknowledged(m, step, value):
        outcome = ACKNOWLEDGED
    if step == "rollback" and m.rollback == Rollback.BLOCKED and outcome == PASSED:
        outcome, words = BLOCKED, f"rollback blocked by {m.blocked_by}"
    return Judgement(step, value, outcome, words)


def judge_migration(m: MigrationResult) -> list[Judgement]:
    """Every step's verdict of `m`, in the order of STEPS, then the optional steps the run asked for."""
    optional = [step for step, off in OPTIONAL_STEPS.items() if getattr(m, step) != off]
    return [judge_step(m, step) for step in (*STEPS, *optional)]


def problem_words(m: MigrationResult) -> list[str]:
    """The words of what fails the run ("apply failed", "data lost"), in step order."""
    return [j.words for j in judge_migration(m) if j.fails]


def untested_reason(m: MigrationResult) -> str | None:
    """Why `m` did not get every verdict, or None when it did: the step that stopped the rest,
    then what was not checked ("apply failed over pre-release rows: data, compat not checked")."""
    missing = [j.step for j in judge_migration(m) if j.outcome == NOT_TESTED]
    if not missing:
        return None
    rollback = own_rollback(m)
    causes = {Rollback.FAILED: "rollback failed", Rollback.IRREVERSIBLE: "irreversible",
              Rollback.NOT_RUN: "not rolled back"}
    if m.apply == StepOutcome.NOT_RUN:
        cause = "not applied"
    elif rollback in causes:
        cause = causes[rollback]
    elif m.apply == StepOutcome.FAILED:
        cause = "apply failed over pre-release rows"
    elif missing == ["blocking"]:
        cause = "the rehearsal gave no figures"
    else:
        cause = "turned off or not applicable"
    return f"{cause}: {', '.join(missing).replace('reapply', 're-apply')} not checked"


def marker_line(marker: str) -> str:
    return f"`# {marker}`"


def next_step(m: MigrationResult, judgement: Judgement) -> str | None:
    """What to do about a failing verdict (None when there is nothing generic to say: the
    findings of schema and compat carry their own fix)."""
    label = m.label
    if judgement.step == "rollback" and judgement.value == Rollback.IRREVERSIBLE:
        return ("give the operation a reverse (RunPython(..., reverse_code=...), RunSQL(..., reverse_sql=...)); "
                "RunPython.noop is a reverse that does nothing: the rollback then passes, and the data proof "
                "reports as data lost whatever the forward changed that the reverse does not restore. Or accept "
                f"it on purpose: --allow-irreversible {label}, or the comment "
                f"{marker_line(MARKER_ALLOW_IRREVERSIBLE)} in the migration file")
    if judgement.step == "data" and judgement.value == Data.LOST and cut_only(m):
        return ("keep the column wide enough on rollback, or give the migration reverse code that shortens or moves "
                "the longer values on purpose before the column narrows (a RunPython whose reverse runs first); "
                f"when cutting them is intended, accept it: --allow-data-loss {label}, or the comment "
                f"{marker_line(MARKER_ALLOW_DATA_LOSS)} in the migration file")
    if judgement.step == "data" and judgement.value == Data.LOST:
        return ("make the reverse restore the values, or, when losing them on rollback is intended (a removed "
                f"field or model), accept it: --allow-data-loss {label}, or the comment "
                f"{marker_line(MARKER_ALLOW_DATA_LOSS)} in the migration file")
    if judgement.step == "compat" and judgement.value == Compat.BREAKS_OLD_CODE:
        return ("use the safe pattern the finding names, or accept it on purpose: "
                f"--allow-breaking {label}, or the comment {marker_line(MARKER_ALLOW_BREAKING)}")
    if judgement.step == "retry" and judgement.value == Retry.FAILED:
        return ("make every step safe to run twice (the finding names the fix), or, when the deploy is never "
                f"retried unattended, accept it: --allow-unsafe-retry {label}, or the comment "
                f"{marker_line(MARKER_ALLOW_UNSAFE_RETRY)} in the migration file")
    if judgement.step == "blocking" and judgement.value == Blocking.EXCEEDS:
        return ("hold no write-blocking lock while rows are written or scanned: split a backfill into a "
                "migration of its own with atomic = False, in batches; build indexes CONCURRENTLY; avoid "
                "rewrites (docs/rules/max-blocking-exceeded.md). Or raise --max-blocking")
    return None


def cut_only(m: MigrationResult) -> bool:
    """Every loss the data proof found is a value the rollback cut to a shorter type (`cut_to`)."""
    losses = [finding for finding in m.details if finding.kind == FindingKind.DATA_LOST]
    return bool(losses) and all("cut_to" in finding.extra for finding in losses)


class Estimate(Protocol):
    """What `over_limit` reads of a rehearsal's estimate (results.Impact)."""

    @property
    def blocking_s(self) -> float: ...


EstimateT = TypeVar("EstimateT", bound=Estimate)


def over_limit(estimates: Iterable[EstimateT], limit_s: float | None) -> list[EstimateT]:
    """The estimates measured or estimated to block writes longer than --max-blocking (none without it)."""
    if limit_s is None:
        return []
    return [estimate for estimate in estimates if estimate.blocking_s > limit_s]


def judge_blocking(estimates: Iterable[Estimate], limit_s: float | None) -> Blocking:
    """`blocking` of a rehearsed migration: `off` without --max-blocking, else whether a lock is over it."""
    if limit_s is None:
        return Blocking.OFF
    return Blocking.EXCEEDS if over_limit(estimates, limit_s) else Blocking.WITHIN
