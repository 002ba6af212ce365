"""What fails a run, as (file, line, message), most important first: the one list that the
console summary and the GitHub annotations both print; the deploy hazards, as lines the same way
(warnings, or failures with --fail-on-hazards); and the note both print when --since or --shard
left nothing to roll back."""

from __future__ import annotations

from .. import rules
from ..results import Hazard, MigrationResult, RunResult
from ..verdict_table import Judgement, judge_migration, next_step, untested_reason
from ..verdicts import CheckStatus, HazardSource, Rollback

# MigrationResult.problems -> the rule id of each (a docs page each, rules.py).
PROBLEM_RULES = {"apply failed": rules.APPLY_FAILED, "rollback failed": rules.ROLLBACK_FAILED,
                 "rollback not_run": rules.ROLLBACK_FAILED, "rollback irreversible": rules.IRREVERSIBLE,
                 "re-apply failed": rules.REAPPLY_FAILED, "schema differs": rules.SCHEMA_DIFFERS,
                 "data lost": rules.DATA_LOST, "breaks old code": rules.BREAKS_OLD_CODE,
                 "breaks the new code (post-deploy)": rules.BREAKS_NEW_CODE,
                 "retry after a cut-off apply fails": rules.RETRY_NOT_IDEMPOTENT,
                 "blocks writes longer than --max-blocking": rules.MAX_BLOCKING_EXCEEDED}
# The step whose failure is printed one line per lock over the limit, with the numbers.
BLOCKING = "blocking"


def window_note(result: RunResult) -> str | None:
    """Why no migration was rolled back, when --since or --shard chose none."""
    if any(app.migrations for app in result.apps):
        return None
    if result.selection.since is not None:
        return (f"The window is empty: no migration was added or modified since {result.selection.since}; "
                "only the project checks ran.")
    if result.selection.shard is not None:
        index, count = result.selection.shard
        return f"The window is empty: no app window falls in shard {index}/{count}."
    return None


def failure_lines(result: RunResult) -> list[tuple[str | None, int | None, str]]:
    """(file, line, message) for everything that fails the run, most important first."""
    lines: list[tuple[str | None, int | None, str]] = []
    for check in result.checks:
        if check.status == CheckStatus.FAILED:
            rule = rules.CHECK_RULES.get(check.name)
            lines.append((None, None, f"{check.name} failed: {check.detail}" + (f" {see(rule)}" if rule else "")))
    for app in result.apps:
        if app.error:
            lines.append((None, None, f"{app.app}: {app.error}"))
        for m in app.migrations:
            lines += migration_lines(m)
    if result.fail_on_hazards:
        lines += hazard_lines(result)
    return lines


def migration_lines(m: MigrationResult) -> list[tuple[str | None, int | None, str]]:
    """(file, line, message) for what fails in `m`, as the verdict table judged it: one line for
    the chain's failing verdicts, then, when `blocking` fails, one per lock over --max-blocking
    with its numbers (the rehearsal's problems)."""
    if not m.problems:
        return []
    failing = [j for j in judge_migration(m) if j.fails]
    chain = [j for j in failing if j.step != BLOCKING]
    lines = [(m.file, m.line, migration_line(m, chain))] if chain else []
    for judgement in failing:
        if judgement.step == BLOCKING:
            lines += [(m.file, m.line, f"{m.label}: {problem} {see(rules.MAX_BLOCKING_EXCEEDED)}")
                      for problem in m.rehearsal_problems or [judgement.words]]
    return lines


def see(*rule_ids: str, from_squawk: bool = False) -> str:
    """`[rule-id: docs page, ...]`: what a reader follows to learn what the finding means."""
    return "[" + ", ".join(f"{rule}: {rules.docs_page(rule, from_squawk)}" for rule in rule_ids) + "]"


def migration_rules(failing: list[Judgement]) -> list[str]:
    """The rule ids of failing verdicts, in their order, each once."""
    found = [PROBLEM_RULES.get(j.words, j.words.replace(" ", "-")) for j in failing]
    return list(dict.fromkeys(found))


def migration_line(m: MigrationResult, failing: list[Judgement]) -> str:
    """`app.migration: rollback failed, breaks old code: the error; the first finding. Next: what
    to do`: the step's error and the first finding behind the other failing verdicts, so that
    each `Next` has what it refers to on the line."""
    first = next((f.message for f in m.problem_details), None)
    text = "; ".join(sentence(part) for part in (m.error, first) if part)
    blocked = f" (its rollback is also blocked by {m.blocked_by})" if m.blocked_by else ""
    steps = [step for step in (next_step(m, j) for j in failing) if step]
    return (f"{m.label}: {', '.join(j.words for j in failing)}{blocked}" + (f": {text}" if text else "")
            + "".join(f". Next: {step}" for step in steps) + f" {see(*migration_rules(failing))}")


def sentence(text: str) -> str:
    """`text` without the full stop it may end with: the line adds its own (`... duplicated.. Next`)."""
    text = text.rstrip()
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


def rollback_cell(m: MigrationResult) -> str:
    """`rollback` in a summary table: a blocked migration's own verdict beside it."""
    return f"blocked by {m.blocked_by} (alone: {m.own_rollback})" if m.rollback == Rollback.BLOCKED else m.rollback


def untested_lines(result: RunResult) -> list[str]:
    """`app.migration (why: what was not checked)` for each migration without every verdict."""
    return [f"{m.label} ({reason})" for app in result.apps for m in app.migrations
            if (reason := untested_reason(m)) is not None]


def hazard_text(migration: MigrationResult | None, hazard: Hazard) -> str:
    where = migration.label if migration is not None else "run"
    return (f"{where}: {hazard.rule} ({hazard.source}): {hazard.message}. Fix: {hazard.fix} "
            f"{see(hazard.rule, from_squawk=hazard.source == HazardSource.SQUAWK)}")


def hazard_lines(result: RunResult) -> list[tuple[str | None, int | None, str]]:
    """(file, line, message) for every deploy hazard, the run-wide ones first."""
    return [(m.file if m else None, m.line if m else None, hazard_text(m, h)) for m, h in result.hazards()]
