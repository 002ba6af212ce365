"""The path a database older than a squash takes: forward through the migrations it replaces.

A production database migrated before a squash existed has some of the replaced migrations
recorded; Django then migrates it through the replaced migrations, never the squash. So for each
squash in a tested window, the migrations it replaces are tested too, each with the same checks
as any other migration (applied over pre-release rows, rolled back with post-release rows, schema
and data compared, re-applied), on a database built forward to the state just before the squash.
Their results are reported just below the squash. Where `manage.py migrate APP REPLACED` cannot
start that path (none of them is applied yet, so the squash stands in for them), the step runs
`inside_django.replaced` instead; every other step is `manage.py migrate` as usual.

Owns: `ReplacedPathDatabase` (a scratch database whose steps can reach replaced migrations and
which reads django_migrations without folding them into the squash), `ReplacedPathChain` (a
chain over one squash's replaced migrations) and `replaced_path_chains`. A squash that replaces
migrations of another app gets no such path (a window is one app's): a note says so.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

from ..config import MigrationKey
from ..inside_django.protocol import PrepareRequest
from ..postgres.catalog import recorded_migrations
from ..postgres.server import Server
from ..processes.steps import StepResult, StepRunner
from ..project.discovery import MigrationInfo, Project, effective_applied
from ..project.window import AppWindow
from ..proofs.protocol import MigrationTest, ReleaseStart
from ..results import Finding
from ..verdicts import FindingKind
from .scratch import ScratchDatabase
from .templates import Builds
from .window_chain import ChainContext, ChainDatabase, WindowChain

OpenReplacedPath = Callable[[str, MigrationInfo], ChainDatabase]


class ReplacedPathDatabase(ScratchDatabase):
    """A chain's database on the path through `squash`'s replaced migrations."""

    def __init__(self, server: Server, runner: StepRunner, project: Project, purpose: str,
                 squash: MigrationInfo, observe: bool = False, builds: Builds | None = None) -> None:
        super().__init__(server, runner, project, purpose, observe, builds)
        self.squash = squash

    def prepare_request(self, app: str, targets: Sequence[MigrationKey], window: Sequence[str],
                        stage_starts: Sequence[int] = ()) -> PrepareRequest:
        return {**super().prepare_request(app, targets, window, stage_starts), "replaced": True}

    def migrate(self, app: str | None = None, target: str | None = None) -> StepResult:
        """`manage.py migrate APP TARGET`; while none of the replaced migrations is recorded,
        Django cannot reach one by name, so the replaced child applies it."""
        replaced = set(self.squash.replaces)
        if app is not None and (app, target) in replaced and not replaced & recorded_migrations(self.connection):
            step, _ = self.runner.run_inside_django("replaced", {"migrations": [[app, target]]}, self.url)
            return step
        return super().migrate(app, target)

    def applied(self) -> set[MigrationKey]:
        """The replaced migrations as recorded, never folded into the squash (whose row Django
        writes once all are applied, and leaves behind when one is rolled back)."""
        others = {key: replaced for key, replaced in self.project.squashes().items() if key != self.squash.key}
        with self.times.measure("django_migrations reads"):
            return effective_applied(recorded_migrations(self.connection) - {self.squash.key}, others)


class ReplacedPathChain(WindowChain):
    """Tests `tested`, migrations `squash` replaces, from the state just before the squash."""

    def __init__(self, context: ChainContext, window: AppWindow, squash: MigrationInfo,
                 tested: list[MigrationInfo]) -> None:
        super().__init__(context, window, tested, restore=False)
        self.squash = squash

    def catch_up(self, migration: MigrationInfo, applied: set[MigrationKey]) -> tuple[str | None, bool]:
        """Nothing to catch up with: the path's database holds the state before the squash and
        the replaced migrations as they are tested (the plan, which has the squash and not them,
        does not say what such a database holds)."""
        return None, False

    def release_carried(self, test: MigrationTest | None, broken: str | None,
                        following: MigrationInfo | None) -> ReleaseStart | None:
        """None: the replaced migrations are history, not the release --since names; each is
        tested over rows seeded at its own state."""
        return None

    def base_targets(self, migrations: Sequence[MigrationInfo]) -> list[MigrationKey]:
        """The state before the squash, and the replaced migrations older than `migrations`."""
        replaced = self.context.project.replaced_by(self.squash)
        earlier = replaced[: replaced.index(migrations[0])] if migrations[0] in replaced else []
        return [*super().base_targets([self.squash]), *([earlier[-1].key] if earlier else [])]


def open_path(open_replaced: OpenReplacedPath, squash: MigrationInfo, purpose: str) -> ChainDatabase:
    """A scratch database on the path through the migrations `squash` replaces."""
    return open_replaced(purpose, squash)


def other_apps_replaced(squash: MigrationInfo) -> list[MigrationKey]:
    """The migrations `squash` replaces in apps other than its own (a hand-written squash that
    takes over another app's model, as django-two-factor-auth's `phonenumber` plugin does)."""
    return [key for key in squash.replaces if key[0] != squash.app]


def not_tested_note(squash: MigrationInfo, foreign: Sequence[MigrationKey]) -> str:
    labels = ", ".join(f"{app}.{name}" for app, name in foreign)
    return (f"the path of a database older than {squash.name} is not tested: the squash replaces migrations of "
            f"other apps ({labels}), and a window tests the migrations of one app")


def replaced_path_chains(window: AppWindow, tested: Sequence[MigrationInfo], context: ChainContext,
                         open_replaced: OpenReplacedPath) -> list[WindowChain]:
    """For each squash among `tested`: its replaced migrations added to the window's results,
    and the chain that tests them (all of them: an irreversible one is applied and stays applied)."""
    chains: list[WindowChain] = []
    for squash in tested:
        replaced = context.project.replaced_by(squash)
        if not replaced:
            continue
        if foreign := other_apps_replaced(squash):
            window.results[squash.name].details.append(Finding(FindingKind.INFO, not_tested_note(squash, foreign)))
            continue
        window.add_replaced(squash, replaced)
        note = (f"replaced by {squash.name}: tested on the path of a database older than the squash "
                f"(forward through {', '.join(m.name for m in replaced)})")
        for migration in replaced:
            window.results[migration.name].details.append(Finding(FindingKind.INFO, note))
        testable = window.mark_irreversible(context.config.allow_irreversible, replaced)
        if testable:
            path = dataclasses.replace(context, open_database=functools.partial(open_path, open_replaced, squash),
                                       proofs=tuple(proof for proof in context.proofs if proof.replaced_paths))
            chains.append(ReplacedPathChain(path, window, squash, testable))
    return chains
