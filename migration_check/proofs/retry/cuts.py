"""The retry proof: a deploy cut off part-way can be run again and ends where a clean one does.

Deploys get interrupted: a `lock_timeout` cancels a statement, a CI job times out, a pod is
killed. An atomic migration is then rolled back whole by PostgreSQL, and the retry starts clean.
A migration with `atomic = False` (the only way to build an index CONCURRENTLY, or to backfill in
batches) keeps whatever its statements did before the cut, Django does not record it as
applied, and the retry runs it again from the top. A cancelled CREATE INDEX CONCURRENTLY leaves
an INVALID index: Django's AddIndexConcurrently then fails with "already exists", and
`IF NOT EXISTS` "succeeds" and keeps the index INVALID, never used by queries.

For each such migration the proof applies it once whole on a database of its own (the clean
apply, which also lists its statements), then, on one fresh database per cut, cuts an attempt
off at a statement boundary (after a statement that committed on its own, the first and last of
the rest, and during each CONCURRENTLY build), runs `migrate` again with nothing in the way, and
compares the result with the clean apply: the retry must succeed, and the schema (index validity
included) and the data must be the clean apply's.

Owns: which statements are cut (`choose_cuts`, at most MAX_CUTS per migration: a backfill of a
thousand batches must not cost a thousand databases), `Cut`, what differs (`data_differences`)
and the verdict (`judge_retry`). Pure: `proof.RetryProof` does the database work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ... import rules
from ...inside_django.protocol import CutRequest, StatementRecord
from ...results import Finding
from ...verdicts import FindingKind, Retry
from ..data.fingerprints import Fingerprint, compare_fingerprints

MAX_CUTS = 5
FIX = ("Make every step safe to run twice: before a CONCURRENTLY build, drop what a cut-off build "
       "left (RunSQL('DROP INDEX CONCURRENTLY IF EXISTS <index>', reverse_sql=migrations.RunSQL.noop) "
       "in the same atomic = False migration; IF NOT EXISTS is not enough, it keeps an INVALID index); "
       "write backfills that set values computed from the row rather than adding to them, or that skip "
       "rows already done. Acknowledge with --allow-unsafe-retry APP.MIGRATION or the file marker "
       "'# test_migrations: allow-unsafe-retry' when the deploy is never retried unattended.")
READ_ONLY = ("SELECT", "SHOW", "SET ", "RESET ")


@dataclass(frozen=True)
class Cut:
    """Where an attempt is cut: after statement `after` ran, or while statement `during` ran."""

    after: int | None = None
    during: int | None = None

    def request(self) -> CutRequest:
        return {"during": self.during} if self.during is not None else {"after": self.after or 0}

    def describe(self, statements: Sequence[StatementRecord]) -> str:
        number = self.during if self.during is not None else self.after or 0
        sql = statements[number - 1]["sql"] if 0 < number <= len(statements) else "?"
        shown = sql if len(sql) <= 90 else sql[:87] + "..."
        where = "cancelled during" if self.during is not None else "cut off after"
        return f"{where} statement {number} of {len(statements)} ({shown})"


def runs_in_one_transaction(atomic: bool, statements: Sequence[StatementRecord]) -> bool:
    """A cut of such a migration is rolled back whole: its retry starts from a clean state. Not
    so when a statement ended the transaction part-way (a COMMIT in an atomic migration's RunSQL)."""
    return atomic and all(statement["in_transaction"] and not statement.get("ends_transaction", False)
                          for statement in statements)


def commits(statement: StatementRecord) -> bool:
    """What ran up to and including this statement stays done if the attempt stops right after
    it: it ran outside a transaction, or it ended the one it ran in."""
    return not statement["in_transaction"] or statement.get("ends_transaction", False)


def choose_cuts(statements: Sequence[StatementRecord], limit: int = MAX_CUTS) -> list[Cut]:
    """The cuts worth a database: during each CONCURRENTLY build, after each write that committed
    on its own (or ended its transaction: a COMMIT), after the first and the last write inside a
    transaction; spread evenly when there are more than `limit`, the CONCURRENTLY builds first."""
    writes = [number for number, statement in enumerate(statements, 1)
              if not statement["sql"].lstrip().upper().startswith(READ_ONLY)]
    during = [Cut(during=number) for number, statement in enumerate(statements, 1) if statement["concurrently"]]
    committed = [n for n in writes if commits(statements[n - 1])]
    in_transaction = [n for n in writes if not commits(statements[n - 1])]
    edges = sorted({*in_transaction[:1], *in_transaction[-1:]})
    after = [Cut(after=number) for number in sorted({*committed, *edges})]
    return (during + spread(after, limit - len(during)))[:limit]


def spread(cuts: list[Cut], room: int) -> list[Cut]:
    """At most `room` of `cuts`, the first and the last among them, evenly spaced."""
    if room <= 0:
        return []
    if len(cuts) <= room:
        return cuts
    if room == 1:
        return cuts[:1]
    step = (len(cuts) - 1) / (room - 1)
    return [cuts[round(index * step)] for index in range(room)]


Place = tuple[str, str | None]  # a table and a column of it, or (table, None) for its rows


def build_noise(clean_start: Fingerprint, attempt_start: Fingerprint) -> frozenset[Place]:
    """Where two databases built the same way to the state before the migration already differ,
    before any apply: values an older migration generates at random or from the clock (wagtail's
    page `translation_key`, a uuid4). What they hold after the apply says nothing of the retry."""
    found = {(table, column) for table, column, _, _ in compare_fingerprints(clean_start, attempt_start)}
    found |= {(table, column) for table, column, _, _ in compare_fingerprints(attempt_start, clean_start)}
    return frozenset(found)


def data_differences(clean: Fingerprint, retried: Fingerprint, noise: frozenset[Place] = frozenset()) -> list[str]:
    """How the retried data differs from the clean apply's, one line per table and column (none
    where the two databases differed before the apply: `build_noise`)."""
    def noisy(table: str, column: str | None) -> bool:
        return (table, column) in noise or (table, None) in noise

    lines = []
    for table, column, count, example in compare_fingerprints(clean, retried):
        if noisy(table, column):
            continue
        what = f"{table}.{column}" if column else f"rows of {table}"
        lines.append(f"{count} value(s) of {what} differ from the clean apply (e.g. key {example})")
    for table, column, count, example in compare_fingerprints(retried, clean):
        if column is None and not noisy(table, column):
            lines.append(f"{count} row(s) of {table} exist only after the retry (e.g. key {example})")
    return lines


@dataclass
class Attempt:
    """One cut attempt and its retry, as the runner saw them."""

    cut: str  # Cut.describe()
    retry_error: str | None  # the retry's `migrate` failed with this
    schema_findings: list[Finding]  # schema after the retry vs the clean apply's
    data_lines: list[str]  # data_differences(clean, retried)


def judge_retry(attempts: Sequence[Attempt]) -> tuple[Retry, list[Finding]]:
    """`passed` when every retry succeeded and ended where the clean apply did, else `failed`
    with one finding per cut that did not converge."""
    findings = []
    for attempt in attempts:
        if attempt.retry_error is not None:
            problem = f"the retry failed: {attempt.retry_error}"
        elif attempt.schema_findings:
            problem = "the schema differs from a clean apply: " + "; ".join(f.message for f in attempt.schema_findings)
        elif attempt.data_lines:
            problem = "the data differs from a clean apply: " + "; ".join(attempt.data_lines)
        else:
            continue
        findings.append(Finding(FindingKind.RETRY, f"apply {attempt.cut}, then migrate again: {problem}",
                                {"cut": attempt.cut, "fix": FIX}, rules.RETRY_NOT_IDEMPOTENT))
    return (Retry.FAILED if findings else Retry.PASSED), findings
