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

A `rollback: blocked` migration is judged by `rollback_alone`, its own rollback tested on a
database that never applied `blocked_by`: when that failed or is irreversible, it is a problem
like any other. Every other field of a blocked migration is the verdict of its own test.

Owns: `TABLE`, `Judgement`, `judge_migration`, `problem_words`, `untested_reason` and
`next_step` (what to do about a failing verdict).

Uses: config (marker comments). Reads `MigrationResult` fields only (no import at runtime, so
results.py can use this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import MARKER_ALLOW_BREAKING, MARKER_ALLOW_DATA_LOSS, MARKER_ALLOW_IRREVERSIBLE

if TYPE_CHECKING:
    from .results import MigrationResult

PASSED = "passed"
FAILED = "failed"
ACKNOWLEDGED = "acknowledged"
BLOCKED = "blocked"
NOT_TESTED = "not_tested"

# The steps of a migration's test, in the order they run: JUnit's test case names.
STEPS = ("apply", "rollback", "reapply", "schema", "data", "compat")

# field -> value -> (outcome, words). A value not in the table fails (a report of a newer
# version merged by this one: better red than falsely green).
TABLE: dict[str, dict[str, tuple[str, str]]] = {
    "apply": {"passed": (PASSED, "applied"), "failed": (FAILED, "apply failed"),
              "not_run": (NOT_TESTED, "not applied")},
    "rollback": {"passed": (PASSED, "rolled back"), "failed": (FAILED, "rollback failed"),
                 "irreversible": (FAILED, "rollback irreversible"),
                 # not reached at all (the chain stopped before it): no verdict is a problem here
                 "not_run": (FAILED, "rollback not_run")},
    "reapply": {"passed": (PASSED, "re-applied"), "failed": (FAILED, "re-apply failed"),
                "not_run": (NOT_TESTED, "re-apply not run")},
    "schema": {"identical": (PASSED, "schema identical"), "differs": (FAILED, "schema differs"),
               "not_checked": (NOT_TESTED, "schema not checked")},
    "data": {"preserved": (PASSED, "data preserved"), "lost": (FAILED, "data lost"),
             "not_checked": (NOT_TESTED, "data not checked")},
    "compat": {"compatible": (PASSED, "compatible"), "breaks_old_code": (FAILED, "breaks old code"),
               "not_checked": (NOT_TESTED, "compat not checked")},
}
POST_DEPLOY_WORDS = "breaks the new code (post-deploy)"  # compat in the direction new_code_on_old_schema
# Finding kinds (details) behind a failing field.
FINDING_KINDS = {"schema": "schema", "data": "data_lost", "compat": "compat"}


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


def own_rollback(m: MigrationResult) -> str:
    """The migration's own rollback verdict: `rollback_alone` when it is blocked."""
    return (m.rollback_alone or "not_run") if m.rollback == "blocked" else m.rollback


def acknowledged(m: MigrationResult, step: str, value: str) -> bool:
    """Whether a failing value was accepted on purpose (--allow-* or a marker)."""
    if (step, value) in (("rollback", "irreversible"), ("data", "lost")):
        return m.acknowledged
    return step == "compat" and value == "breaks_old_code" and m.compat_acknowledged


def judge_step(m: MigrationResult, step: str) -> Judgement:
    value = own_rollback(m) if step == "rollback" else str(getattr(m, step))
    outcome, words = TABLE[step].get(value, (FAILED, f"{step} {value}"))
    if step == "compat" and value == "breaks_old_code" and m.compat_direction == "new_code_on_old_schema":
        words = POST_DEPLOY_WORDS
    if outcome == FAILED and acknowledged(m, step, value):
        outcome = ACKNOWLEDGED
    if step == "rollback" and m.rollback == "blocked" and outcome == PASSED:
        outcome, words = BLOCKED, f"rollback blocked by {m.blocked_by}"
    return Judgement(step, value, outcome, words)


def judge_migration(m: MigrationResult) -> list[Judgement]:
    """Every step's verdict of `m`, in the order of STEPS."""
    return [judge_step(m, step) for step in STEPS]


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
    if m.apply == "not_run":
        cause = "not applied"
    elif rollback in ("failed", "irreversible", "not_run"):
        cause = {"failed": "rollback failed", "irreversible": "irreversible", "not_run": "not rolled back"}[rollback]
    elif m.apply == "failed":
        cause = "apply failed over pre-release rows"
    else:
        cause = "turned off or not applicable"
    return f"{cause}: {', '.join(missing).replace('reapply', 're-apply')} not checked"


def marker_line(marker: str) -> str:
    return f"`# {marker}`"


def next_step(m: MigrationResult, judgement: Judgement) -> str | None:
    """What to do about a failing verdict (None when there is nothing generic to say: the
    findings of schema and compat carry their own fix)."""
    label = m.label
    if judgement.step == "rollback" and judgement.value == "irreversible":
        return ("give the operation a reverse (RunPython(..., reverse_code=...), RunSQL(..., reverse_sql=...)); "
                "RunPython.noop is a reverse that does nothing: the rollback then passes, and the data proof "
                "reports as data lost whatever the forward changed that the reverse does not restore. Or accept "
                f"it on purpose: --allow-irreversible {label}, or the comment "
                f"{marker_line(MARKER_ALLOW_IRREVERSIBLE)} in the migration file")
    if judgement.step == "data" and judgement.value == "lost":
        return ("make the reverse restore the values, or, when losing them on rollback is intended (a removed "
                f"field or model), accept it: --allow-data-loss {label}, or the comment "
                f"{marker_line(MARKER_ALLOW_DATA_LOSS)} in the migration file")
    if judgement.step == "compat" and judgement.value == "breaks_old_code":
        return ("use the safe pattern the finding names, or accept it on purpose: "
                f"--allow-breaking {label}, or the comment {marker_line(MARKER_ALLOW_BREAKING)}")
    return None
