"""What fails a run, as (file, line, message), most important first: the one list that the
console summary and the GitHub annotations both print; the deploy hazards, as lines the same way
(warnings, or failures with --fail-on-hazards); and the note both print when --since or --shard
left nothing to roll back.

Uses: results, verdict_table (which verdicts fail, their words, the next step)."""

from __future__ import annotations

from ..results import Hazard, MigrationResult, RunResult
from ..verdict_table import judge_migration, next_step, untested_reason


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
        if check.status == "failed":
            lines.append((None, None, f"{check.name} failed: {check.detail}"))
    for app in result.apps:
        if app.error:
            lines.append((None, None, f"{app.app}: {app.error}"))
        lines += [(m.file, m.line, migration_line(m)) for m in app.migrations if m.problems]
    if result.fail_on_hazards:
        lines += hazard_lines(result)
    return lines


def migration_line(m: MigrationResult) -> str:
    """`app.migration: apply failed, data lost: the error or first finding. Next: what to do`."""
    first = next((f.message for f in m.problem_details), None)
    text = m.error or first or ""
    blocked = f" (its rollback is also blocked by {m.blocked_by})" if m.blocked_by else ""
    steps = [step for step in (next_step(m, j) for j in judge_migration(m) if j.fails) if step]
    return (f"{m.label}: {', '.join(m.problems)}{blocked}" + (f": {text}" if text else "")
            + "".join(f". Next: {step}" for step in steps))


def rollback_cell(m: MigrationResult) -> str:
    """`rollback` in a summary table: a blocked migration's own verdict beside it."""
    return f"blocked by {m.blocked_by} (alone: {m.own_rollback})" if m.rollback == "blocked" else m.rollback


def untested_lines(result: RunResult) -> list[str]:
    """`app.migration (why: what was not checked)` for each migration without every verdict."""
    return [f"{m.label} ({reason})" for app in result.apps for m in app.migrations
            if (reason := untested_reason(m)) is not None]


def hazard_text(migration: MigrationResult | None, hazard: Hazard) -> str:
    where = migration.label if migration is not None else "run"
    return f"{where}: {hazard.rule} ({hazard.source}): {hazard.message}. Fix: {hazard.fix}"


def hazard_lines(result: RunResult) -> list[tuple[str | None, int | None, str]]:
    """(file, line, message) for every deploy hazard, the run-wide ones first."""
    return [(m.file if m else None, m.line if m else None, hazard_text(m, h)) for m, h in result.hazards()]
