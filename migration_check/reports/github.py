"""GitHub Actions: `::error` annotations at the migration files (`::warning` for deploy hazards
unless --fail-on-hazards) and the job's step summary."""

from __future__ import annotations

import os
from pathlib import Path

from ..results import RunResult
from ..verdicts import FindingKind
from .problems import failure_lines, hazard_lines, rollback_cell, untested_lines, window_note
from .rehearsal import rehearsal_markdown


def github_annotations(result: RunResult, limit: int = 10, root: Path | None = None) -> list[str]:
    """`::error` workflow commands (GitHub shows at most 10 per step: the first ones matter).

    GitHub resolves `file=` from the repository root (`root`, $GITHUB_WORKSPACE), which is not
    the Django project's folder when manage.py lives in a subfolder.
    """
    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def annotation(kind: str, title: str, file: str | None, line: int | None, message: str) -> str:
        if file and root is not None and result.project_dir is not None:
            file = os.path.relpath(result.project_dir / file, root)
        location = f" file={file},line={line or 1}" if file else ""
        return f"::{kind}{location},title={title}::{escape(message)}".replace(f"::{kind},", f"::{kind} ")

    out = [annotation("error", "Migration test", *entry) for entry in failure_lines(result)[:limit]]
    if not result.fail_on_hazards:  # GitHub shows 10 warnings per step too
        out += [annotation("warning", "Migration hazard", *entry) for entry in hazard_lines(result)[:limit]]
    return out


def markdown_summary(result: RunResult) -> str:
    status = "passed" if result.ok else "FAILED"
    note = window_note(result)
    lines = [f"## Migration tests {status}", "",
             f"PostgreSQL {result.server_version.split()[0]}, {result.duration_s:.1f}s, "
             f"{result.processes} manage.py processes", "",
             *([note, ""] if note else []),
             "| check | status | detail |", "| --- | --- | --- |"]
    for check in result.checks:
        lines.append(f"| {check.name} | {check.status} | {(check.detail or '').replace('|', '/')[:300]} |")
    lines += ["", "| migration | apply | rollback | re-apply | schema | data | compat | retry | notes |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for app in result.apps:
        for m in app.migrations:
            notes = "; ".join([*([m.error] if m.error else []),
                               *(f.message for f in m.details if f.kind != FindingKind.INFO)])
            ack = " (acknowledged)" if m.acknowledged else ""
            compat = m.compat + (" (acknowledged)" if m.compat_acknowledged else "")
            lines.append(f"| `{m.label}` | {m.apply} | {rollback_cell(m)}{ack} | {m.reapply} | {m.schema} | "
                         f"{m.data} | {compat} | {m.retry} | {notes.replace('|', '/')[:500]} |")
    untested = untested_lines(result)
    if untested:
        lines += ["", f"{len(untested)} migration(s) not fully tested: {', '.join(untested)}"]
    hazards = hazard_lines(result)
    if hazards:
        lines += ["", f"### Deploy hazards: {len(hazards)}", ""] + [f"- {message}" for _, _, message in hazards]
    lines += rehearsal_markdown(result)
    return "\n".join(lines) + "\n"
