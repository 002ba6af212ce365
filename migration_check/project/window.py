"""One app's window: its newest migrations, their results, and the verdicts known before and
after anything runs.

Owns: `AppWindow`, which holds the window's `MigrationResult`s, names irreversible operations
before anything runs (`mark_irreversible`), splits what can be tested into segments for chains
side by side, and marks older migrations `blocked` behind one that cannot be rolled back
(`mark_blocked`). The migrations themselves are tested by `chain.WindowChain`.

Pure: no database, no process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import MARKER_ALLOW_IRREVERSIBLE, MigrationKey
from ..results import AppResult, Finding, MigrationResult
from ..verdicts import FindingKind, Rollback
from .discovery import MigrationInfo, split_window


def relative_file(path: Path | None, project_dir: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.resolve().relative_to(project_dir))
    except ValueError:
        return str(path)


def initial_result(migration: MigrationInfo, project_dir: Path) -> MigrationResult:
    first_line = next((op.line for op in migration.operations if op.line), 1 if migration.file else None)
    return MigrationResult(migration.app, migration.name, file=relative_file(migration.file, project_dir),
                           line=first_line)


def found_before_blocked(result: MigrationResult) -> list[Finding]:
    """The findings of a migration's own test, kept when it turns out to be blocked, headed by
    the verdicts it had (tested before the newer migration's rollback failed)."""
    if result.rollback in (Rollback.NOT_RUN, Rollback.BLOCKED):
        return list(result.details)
    verdicts = (f"apply {result.apply}, rollback {result.rollback}, re-apply {result.reapply}, "
                f"schema {result.schema}, data {result.data}")
    note = Finding(FindingKind.INFO, f"tested before it was known to be blocked: {verdicts}"
                   + (f" ({result.error})" if result.error else ""))
    return [note, *result.details]


class AppWindow:
    """One app's window and its results (newest last in `window`, as in the plan)."""

    def __init__(self, app: str, window: list[MigrationInfo], project_dir: Path) -> None:
        self.app = app
        self.window = window
        self.project_dir = project_dir
        self.results = {m.name: initial_result(m, project_dir) for m in window}
        # squash name -> the migrations it replaces, tested on the path of a database older
        # than the squash (squash_path); reported just below the squash.
        self.replaced: dict[str, list[MigrationInfo]] = {}

    def add_replaced(self, squash: MigrationInfo, replaced: list[MigrationInfo]) -> None:
        self.replaced[squash.name] = list(replaced)
        self.results.update({m.name: initial_result(m, self.project_dir) for m in replaced})

    def ordered(self) -> list[MigrationInfo]:
        """The window oldest first, each squash's replaced migrations just before it."""
        return [each for m in self.window for each in (*self.replaced.get(m.name, []), m)]

    def mark_irreversible(self, allow_irreversible: frozenset[MigrationKey],
                          migrations: list[MigrationInfo] | None = None) -> list[MigrationInfo]:
        """Name the newest migration (of the window, or of `migrations`) with an operation that
        has no reverse; return the newer ones, which are all that can be tested (the rest are
        blocked behind it)."""
        window = self.window if migrations is None else migrations
        for index in range(len(window) - 1, -1, -1):
            migration = window[index]
            blockers = [op for op in migration.operations if not op.reversible]
            if blockers:
                result = self.results[migration.name]
                result.rollback = Rollback.IRREVERSIBLE
                where = f"{result.file}:{blockers[0].line}" if result.file and blockers[0].line else result.file
                result.line = blockers[0].line or result.line
                names = "; ".join(f"{op.type} ({op.description})" for op in blockers)
                result.error = f"{names} has no reverse operation, at {where}"
                result.acknowledged = (migration.key in allow_irreversible
                                       or migration.marker_present(MARKER_ALLOW_IRREVERSIBLE))
                return window[index + 1 :]
        return list(window)

    def irreversible(self) -> list[MigrationResult]:
        return [r for r in self.results.values() if r.rollback == Rollback.IRREVERSIBLE]

    @staticmethod
    def split(tested: list[MigrationInfo], parts: int) -> list[list[MigrationInfo]]:
        return split_window(tested, parts)

    def mark_blocked(self) -> None:
        """Older migrations behind one that cannot be rolled back are not reached in production.
        What their own test found before that was known stays in their details."""
        blocker: str | None = None
        for migration in reversed(self.ordered()):
            result = self.results[migration.name]
            if blocker is not None and blocker in self.replaced and migration in self.replaced[blocker]:
                continue  # a squash's rollback does not stand in the way of the path through the replaced ones
            if blocker is not None:
                self.results[migration.name] = MigrationResult(
                    self.app, migration.name, file=result.file, line=result.line, rollback=Rollback.BLOCKED,
                    error=f"not reached: {blocker} cannot be rolled back", details=found_before_blocked(result))
            elif result.rollback in (Rollback.IRREVERSIBLE, Rollback.FAILED):
                blocker = migration.name

    def result(self, errors: Sequence[str | None]) -> AppResult:
        self.mark_blocked()
        error = "; ".join(e for e in errors if e) or None
        return AppResult(self.app, [self.results[m.name] for m in reversed(self.ordered())], error)
