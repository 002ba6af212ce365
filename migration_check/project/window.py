"""One app's window: its newest migrations, their results, and the verdicts known before and
after anything runs.

Owns: `AppWindow`, which holds the window's `MigrationResult`s, names irreversible operations
before anything runs (`mark_irreversible`), splits the window into segments for chains side by
side, and marks older migrations `blocked` behind one that cannot be rolled back (`mark_blocked`),
keeping the verdicts of their own tests. The migrations themselves are tested by `chain.WindowChain`.

Pure: no database, no process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import MARKER_ALLOW_IRREVERSIBLE, MigrationKey
from ..results import AppResult, MigrationResult
from ..verdicts import Rollback
from .discovery import MigrationInfo, OperationInfo, split_window


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


def block(result: MigrationResult, blocker: str) -> None:
    """`result` cannot be reached by a rollback in production: `blocker` stands in the way."""
    result.rollback_alone, result.rollback, result.blocked_by = result.own_rollback, Rollback.BLOCKED, blocker


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
        """Name every migration (of the window, or of `migrations`) with an operation that has
        no reverse; return the migrations to test, which are all of them: an irreversible one
        is still applied (apply, compat, deploy safety), and the older ones behind it are still
        deployed, so each gets the verdicts of its own test (see `mark_blocked`)."""
        window = self.window if migrations is None else migrations
        for migration in window:
            blockers = [op for op in migration.operations if not op.reversible]
            if blockers:
                self.name_irreversible(migration, blockers, allow_irreversible)
        return list(window)

    def name_irreversible(self, migration: MigrationInfo, blockers: list[OperationInfo],
                          allow_irreversible: frozenset[MigrationKey]) -> None:
        result = self.results[migration.name]
        result.rollback = Rollback.IRREVERSIBLE
        where = f"{result.file}:{blockers[0].line}" if result.file and blockers[0].line else result.file
        result.line = blockers[0].line or result.line
        names = "; ".join(f"{op.type} ({op.description})" for op in blockers)
        result.error = f"{names} has no reverse operation, at {where}"
        # Acknowledging it accepts its own verdict only: never another migration's.
        result.acknowledged = (migration.key in allow_irreversible
                               or migration.marker_present(MARKER_ALLOW_IRREVERSIBLE))

    def irreversible(self) -> list[MigrationResult]:
        return [r for r in self.results.values() if r.rollback == Rollback.IRREVERSIBLE]

    @staticmethod
    def split(tested: list[MigrationInfo], parts: int) -> list[list[MigrationInfo]]:
        return split_window(tested, parts)

    def mark_blocked(self) -> None:
        """In production, an older migration cannot be rolled back past a newer one whose
        rollback fails or that is irreversible: it is `rollback: blocked`, `blocked_by` the
        nearest such newer one. Every verdict of its own test stays (it is still deployed);
        its own rollback verdict moves to `rollback_alone`."""
        blocker = None
        for migration in reversed(self.ordered()):
            result = self.results[migration.name]
            if blocker is not None and blocker in self.replaced and migration in self.replaced[blocker]:
                continue  # a squash's rollback does not stand in the way of the path through the replaced ones
            own = result.own_rollback
            if blocker is not None:
                block(result, blocker)
            if own in (Rollback.IRREVERSIBLE, Rollback.FAILED):
                blocker = migration.name

    def result(self, errors: Sequence[str | None]) -> AppResult:
        self.mark_blocked()
        error = "; ".join(e for e in errors if e) or None
        return AppResult(self.app, [self.results[m.name] for m in reversed(self.ordered())], error)
