"""What fails a run, as (file, line, message), most important first: the one list that the
console summary and the GitHub annotations both print.

Uses: results."""

from __future__ import annotations

from ..results import RunResult


def failure_lines(result: RunResult) -> list[tuple[str | None, int | None, str]]:
    """(file, line, message) for everything that fails the run, most important first."""
    lines: list[tuple[str | None, int | None, str]] = []
    for check in result.checks:
        if check.status == "failed":
            lines.append((None, None, f"{check.name} failed: {check.detail}"))
    for app in result.apps:
        if app.error:
            lines.append((None, None, f"{app.app}: {app.error}"))
        for m in app.migrations:
            if m.problems:
                first = next((f.message for f in m.problem_details), None)
                text = m.error or first or ""
                lines.append((m.file, m.line, f"{m.label}: {', '.join(m.problems)}" + (f": {text}" if text else "")))
    return lines
