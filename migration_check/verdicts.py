"""The vocabulary of every verdict (CONTRACT.md): one `StrEnum` per field, so a verdict is a value
the type checker knows, never a bare string. A member is a `str` whose value is the contract's
word: `json.dumps`, f-strings and `str()` write exactly that word, so the reports do not change.

Owns: `StepOutcome` (apply, reapply), `Rollback`, `Schema`, `Data`, `Compat`, `Retry`, `Blocking`,
`CompatDirection`,
`CheckStatus` (checks[].status, and the status of a progress line), `Observation` (whether locks
were observed), `HazardSource`, `FindingKind` (details[].kind), `TrafficKind` (traffic[].kind)
and `NOT_CHECKED` (what the observed fields, rewrites, locks, statements and hazards, say when
nothing was observed).
Which values fail the run is `results.MigrationResult.problems`.
"""

from __future__ import annotations

from enum import StrEnum


class StepOutcome(StrEnum):
    """`apply` and `reapply`: the migration applied (over pre-release data; again after its rollback)."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not_run"


class Rollback(StrEnum):
    """`rollback`: `irreversible` when an operation has no reverse; `blocked` when a newer
    migration of the window could not be rolled back, so this one is not reached."""

    PASSED = "passed"
    FAILED = "failed"
    IRREVERSIBLE = "irreversible"
    BLOCKED = "blocked"
    NOT_RUN = "not_run"


class Schema(StrEnum):
    """`schema`: the schema after the rollback (and after the re-apply) equals the one before."""

    IDENTICAL = "identical"
    DIFFERS = "differs"
    NOT_CHECKED = "not_checked"


class Data(StrEnum):
    """`data`: every pre-release row and value is intact after the rollback."""

    PRESERVED = "preserved"
    LOST = "lost"
    NOT_CHECKED = "not_checked"


class Compat(StrEnum):
    """`compat`: the code beside the schema during the deploy still works on it."""

    COMPATIBLE = "compatible"
    BREAKS_OLD_CODE = "breaks_old_code"
    NOT_CHECKED = "not_checked"


class Retry(StrEnum):
    """`retry`: a non-atomic migration cut off part-way and migrated again ends where a clean
    apply does (an atomic one passes: PostgreSQL rolls a cut-off attempt back whole)."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"


class Blocking(StrEnum):
    """`blocking`: the deploy rehearsal's write-blocking locks against --max-blocking (the
    figures are in `impact`, the locks over the limit, with their numbers, in `rehearsal_problems`)."""

    WITHIN = "within"  # no lock measured or estimated to block writes longer than the limit
    EXCEEDS = "exceeds"  # at least one lock longer than the limit
    NOT_CHECKED = "not_checked"  # --max-blocking was given, but the rehearsal gave this migration no figures
    OFF = "off"  # no --max-blocking: the figures are information, there is nothing to judge


class CompatDirection(StrEnum):
    """`compat_direction`: which code ran on which schema (null when not checked)."""

    OLD_CODE_ON_NEW_SCHEMA = "old_code_on_new_schema"  # the default: the previous release, after the apply
    NEW_CODE_ON_OLD_SCHEMA = "new_code_on_old_schema"  # a post-deploy migration: the new release, before it


class CheckStatus(StrEnum):
    """`checks[].status`, and the status a progress line shows."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"

    @classmethod
    def of(cls, ok: bool) -> CheckStatus:
        return cls.PASSED if ok else cls.FAILED


class Observation(StrEnum):
    """`observation.status`: whether the locks and rewrites of each apply were observed."""

    OBSERVED = "observed"
    NOT_CHECKED = "not_checked"
    OFF = "off"


class HazardSource(StrEnum):
    """`hazards[].source`: seen on the server while the migration applied, or found by squawk."""

    OBSERVED = "observed"
    SQUAWK = "squawk"


class FindingKind(StrEnum):
    """`details[].kind`: what a finding is about (`info`, `coverage` and `rehearsal` never fail the run)."""

    SCHEMA = "schema"
    DATA_LOST = "data_lost"
    COMPAT = "compat"
    RETRY = "retry"
    REHEARSAL = "rehearsal"  # what the deploy rehearsal saw (a lock queue, a lock_timeout); never fails the run
    COVERAGE = "coverage"
    INFO = "info"


class TrafficKind(StrEnum):
    """`traffic[].kind`: the previous release's query the rehearsal ran while the migration applied."""

    SELECT_BY_KEY = "select_by_key"
    SELECT_BY_FILTER = "select_by_filter"
    INSERT = "insert"
    UPDATE = "update"
    DELETE_INSERTED = "delete_inserted"  # an INSERT ... RETURNING the key, then the DELETE of that row


# rewrites, locks, statements and hazards of a migration whose apply was not observed.
NOT_CHECKED = "not_checked"
