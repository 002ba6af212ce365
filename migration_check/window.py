"""One app's window: its newest migrations, their results, and the verdicts known before and
after anything runs.

Owns: `AppWindow`, which holds the window's `MigrationResult`s, names irreversible operations
before anything runs (`mark_irreversible`), splits what can be tested into runs for chains side
by side, and marks older migrations `blocked` behind one that cannot be rolled back
(`mark_blocked`). The migrations themselves are tested by `chain.WindowChain`.

Uses: config, discovery, results. Pure: no database, no process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .config import MARKER_ALLOW_IRREVERSIBLE, MigrationKey
from .discovery import MigrationInfo, split_window
from .results import AppResult, MigrationResult


def relative_file(path: Path | None, project_dir: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.resolve().relative_to(project_dir))
    except ValueError:
        return str(path)


def initial_result(migration: MigrationInfo, project_dir: Path) -> MigrationResult:
    first_line = next((op.line for op in migration.operations if op.line), 1 if migration.file else None)
    return MigrationResult(migration.app, migration.name, relative_file(migration.file, project_dir), first_line)


class AppWindow:
    """One app's window and its results (newest last in `window`, as in the plan)."""

    def __init__(self, app: str, window: list[MigrationInfo], project_dir: Path) -> None:
        self.app = app
        self.window = window
        self.results = {m.name: initial_result(m, project_dir) for m in window}

    def mark_irreversible(self, allow_irreversible: frozenset[MigrationKey]) -> list[MigrationInfo]:
        """Name the newest migration with an operation that has no reverse; return the newer
        ones, which are all that can be tested (the rest are blocked behind it)."""
        for index in range(len(self.window) - 1, -1, -1):
            migration = self.window[index]
            blockers = [op for op in migration.operations if not op.reversible]
            if blockers:
                result = self.results[migration.name]
                result.rollback = "irreversible"
                where = f"{result.file}:{blockers[0].line}" if result.file and blockers[0].line else result.file
                result.line = blockers[0].line or result.line
                names = "; ".join(f"{op.type} ({op.description})" for op in blockers)
                result.error = f"{names} has no reverse operation, at {where}"
                result.acknowledged = (migration.key in allow_irreversible
                                       or migration.marker_present(MARKER_ALLOW_IRREVERSIBLE))
                return self.window[index + 1 :]
        return list(self.window)

    def irreversible(self) -> list[MigrationResult]:
        return [r for r in self.results.values() if r.rollback == "irreversible"]

    @staticmethod
    def split(tested: list[MigrationInfo], parts: int) -> list[list[MigrationInfo]]:
        return split_window(tested, parts)

    def mark_blocked(self) -> None:
        """Older migrations behind one that cannot be rolled back are not reached in production."""
        blocker = None
        for migration in reversed(self.window):
            result = self.results[migration.name]
            if blocker is not None:
                self.results[migration.name] = MigrationResult(
                    self.app, migration.name, result.file, result.line, rollback="blocked",
                    error=f"not reached: {blocker} cannot be rolled back")
            elif result.rollback in ("irreversible", "failed"):
                blocker = migration.name

    def result(self, errors: Sequence[str | None]) -> AppResult:
        self.mark_blocked()
        error = "; ".join(e for e in errors if e) or None
        return AppResult(self.app, [self.results[m.name] for m in reversed(self.window)], error)
