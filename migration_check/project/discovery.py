"""Discovery: what the project has (apps, migrations, operations) and what to test.

Owns: the project model built from the probe's answer (`Project`, `MigrationInfo`), parsing of
`showmigrations --plan`, the choice of apps and of each app's window, the graph arithmetic that
decides which migrations a database is built with (`dependency_closure`, `dependents_closure`,
`forward_targets`), the splitting of a window into segments tested side by side, and how recorded
migrations read once squashes are taken into account.

Pure: no database, no process.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from ..config import MigrationKey
from ..errors import UsageError
from ..inside_django.protocol import DatabaseDescription, MigrationDescription, ProbeResponse

Dependencies = dict[MigrationKey, tuple[MigrationKey, ...]]


@dataclass(frozen=True)
class OperationInfo:
    type: str
    reversible: bool
    description: str
    line: int | None = None
    reverse_code: bool = False  # its rollback runs the migration's own code (a RunPython or RunSQL reverse)
    forward_code: bool = False  # its apply runs the migration's own code (RunPython or RunSQL, not a noop)


@dataclass(frozen=True)
class MigrationInfo:
    """One migration as found on disk (probe) and placed in the plan."""

    app: str
    name: str
    file: Path | None
    dependencies: tuple[MigrationKey, ...]
    replaces: tuple[MigrationKey, ...]
    operations: tuple[OperationInfo, ...]
    atomic: bool = True  # False: each operation commits on its own (`atomic = False` in the file)
    # RunSQL statements that end the transaction they run in (a COMMIT in an atomic migration)
    ends_transaction: tuple[str, ...] = ()
    reverse_ends_transaction: tuple[str, ...] = ()  # the same in its reverse SQL (a rollback)

    @property
    def key(self) -> MigrationKey:
        return (self.app, self.name)

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"

    def adapts_on_rollback(self) -> bool:
        """Its rollback runs code of its own (RunPython or RunSQL reverses): what that code does to
        rows, it does on purpose."""
        return any(operation.reverse_code for operation in self.operations)

    def changes_rows(self) -> bool:
        """It runs code of its own forward (RunPython or RunSQL): a data migration, which may
        fix rows a later migration of its release relies on."""
        return any(operation.forward_code for operation in self.operations)

    def rollback_in_parts(self) -> str | None:
        """Why a failed rollback of this migration may keep what it reversed before failing (each
        part committed), or None when its rollback runs in one transaction."""
        if not self.atomic:
            return "atomic = False"
        if self.reverse_ends_transaction:
            return f"its reverse SQL ends the transaction part-way (`{self.reverse_ends_transaction[0]}`)"
        return None

    def marker_present(self, marker: str) -> bool:
        """True when a comment line of the migration file contains `marker`."""
        if self.file is None or not self.file.is_file():
            return False
        return any(marker in line for line in self.file.read_text(encoding="utf-8", errors="replace").splitlines()
                   if line.lstrip().startswith("#"))


@dataclass(frozen=True)
class AppInfo:
    label: str
    name: str
    path: Path
    has_migrations: bool


@dataclass
class Project:
    """The project as the probe saw it: apps, every migration in plan order, leaf conflicts."""

    vendor: str
    apps: dict[str, AppInfo]
    plan: list[MigrationInfo]
    database_name: str | None = None
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    # What Django passes the driver besides where and as whom (search_path in `options`...).
    connection_options: dict[str, str | int | float | bool] = field(default_factory=dict)
    databases: dict[str, DatabaseDescription] = field(default_factory=dict)  # every alias of the settings
    # The migrations squashes of the plan replace (not in the plan: a database older than the
    # squash migrates through them).
    replaced: dict[MigrationKey, MigrationInfo] = field(default_factory=dict)

    def migrations_of(self, app: str) -> list[MigrationInfo]:
        return [m for m in self.plan if m.app == app]

    def dependencies(self) -> Dependencies:
        return {m.key: m.dependencies for m in self.plan}

    def position(self, key: MigrationKey) -> int:
        """A number for each migration, stable for a project (its place in the plan; replaced
        migrations after the plan)."""
        for index, migration in enumerate([*self.plan, *self.replaced.values()]):
            if migration.key == key:
                return index
        return len(self.plan) + len(self.replaced)

    def replaced_by(self, squash: MigrationInfo) -> list[MigrationInfo]:
        """The migrations `squash` replaces, in its order (those found on disk)."""
        return [self.replaced[key] for key in squash.replaces if key in self.replaced]

    def squashes(self) -> dict[MigrationKey, tuple[MigrationKey, ...]]:
        """Squashed migrations in the plan and what each replaces."""
        return {m.key: m.replaces for m in self.plan if m.replaces}


def operation_lines(path: Path | None) -> list[int]:
    """Line numbers of the items of `operations = [...]` in a migration file (for annotations)."""
    if path is None or not path.is_file():
        return []
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "operations" for t in node.targets):
            if isinstance(node.value, (ast.List, ast.Tuple)):
                return [item.lineno for item in node.value.elts]
    return []


def migration_from_probe(m: MigrationDescription) -> MigrationInfo:
    file = Path(m["file"]) if m["file"] else None
    lines = operation_lines(file)
    operations = tuple(
        OperationInfo(op["type"], op["reversible"], op["description"], lines[i] if i < len(lines) else None,
                      op.get("reverse_code", False), op.get("forward_code", False))
        for i, op in enumerate(m["operations"])
    )
    return MigrationInfo(
        app=m["app"], name=m["name"], file=file,
        dependencies=tuple((d[0], d[1]) for d in m["dependencies"]),
        replaces=tuple((r[0], r[1]) for r in m["replaces"]),
        operations=operations,
        atomic=m.get("atomic", True),
        ends_transaction=tuple(m.get("ends_transaction") or ()),
        reverse_ends_transaction=tuple(m.get("reverse_ends_transaction") or ()),
    )


def project_from_probe(data: ProbeResponse) -> Project:
    apps = {a["label"]: AppInfo(a["label"], a["name"], Path(a["path"]), a["has_migrations"]) for a in data["apps"]}
    plan = [migration_from_probe(m) for m in data["migrations"]]
    replaced = {(m["app"], m["name"]): migration_from_probe(m) for m in data.get("replaced_migrations") or []}
    return Project(vendor=data["vendor"], apps=apps, plan=plan, database_name=data.get("database_name"),
                   conflicts=data.get("conflicts") or {}, connection_options=data.get("connection_options") or {},
                   databases=data.get("databases") or {}, replaced=replaced)


PLAN_LINE = re.compile(r"^\[(?P<mark>[ X-])\]\s+(?P<app>[^.\s]+)\.(?P<name>\S+?)(?:\s+\.\.\.\s+\((?P<deps>.*)\))?\s*$")


@dataclass(frozen=True)
class PlanEntry:
    """A line of `showmigrations --plan` (with -v 2: its dependencies)."""

    app: str
    name: str
    applied: bool
    dependencies: tuple[MigrationKey, ...] = ()

    @property
    def key(self) -> MigrationKey:
        return (self.app, self.name)


def parse_showmigrations_plan(output: str) -> list[PlanEntry]:
    """Parse `manage.py showmigrations --plan [-v 2] --no-color` output.

    `[X]` applied, `[ ]` not, `[-]` partially applied squash (not applied); other lines (warnings,
    "(no migrations)") are ignored.
    """
    entries = []
    for line in output.splitlines():
        match = PLAN_LINE.match(line.strip())
        if not match:
            continue
        deps: tuple[MigrationKey, ...] = ()
        if match.group("deps"):
            pairs = (d.strip().split(".", 1) for d in match.group("deps").split(",") if "." in d)
            deps = tuple((app, name) for app, name in pairs)
        entries.append(PlanEntry(match.group("app"), match.group("name"), match.group("mark") == "X", deps))
    return entries


def is_project_app(app: AppInfo, project_dir: Path) -> bool:
    """An app whose code lives inside the project folder, not in site-packages or Django itself."""
    path = app.path.resolve()
    inside = path == project_dir or project_dir in path.parents
    third_party = any(part in ("site-packages", "dist-packages") for part in path.parts)
    return inside and not third_party and not app.name.startswith("django.")


@dataclass(frozen=True)
class SkippedApp:
    """An app with migrations the default selection leaves out, and why. `nothing_to_test`: none
    of its migrations is in the plan (another app's squash replaces them all), which the run says
    at the default verbosity; the others are a choice `--app` can undo."""

    label: str
    reason: str
    nothing_to_test: bool = False

    @property
    def note(self) -> str:
        """The report's line (`skipped_apps`): the label, then the reason in parentheses."""
        return f"{self.label} ({self.reason})"


def select_apps(project: Project, requested: Sequence[str], project_dir: Path) -> tuple[list[str], list[SkippedApp]]:
    """Return (apps to test, apps skipped with the reason) for the default or explicit selection."""
    labels_with_migrations = [label for label, app in project.apps.items() if app.has_migrations]
    if requested:
        unknown = [label for label in requested if label not in project.apps]
        if unknown:
            raise UsageError(
                f"unknown app label{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"apps with migrations: {', '.join(sorted(labels_with_migrations)) or 'none'}"
            )
        without = [label for label in requested if not project.apps[label].has_migrations]
        if without:
            raise UsageError(f"app {', '.join(without)} has no migrations to test")
        for label in requested:
            if not project.migrations_of(label):
                why = replaced_elsewhere(project, label)
                raise UsageError(f"app {label} has no migration of its own to test: {why}")
        return list(requested), []
    selected: list[str] = []
    skipped: list[SkippedApp] = []
    for label in labels_with_migrations:
        app = project.apps[label]
        if is_project_app(app, project_dir) and not project.migrations_of(label):
            skipped.append(SkippedApp(label, replaced_elsewhere(project, label), nothing_to_test=True))
        elif is_project_app(app, project_dir):
            selected.append(label)
        else:
            where = "Django contrib" if app.name.startswith("django.") else "outside the project"
            skipped.append(SkippedApp(label, f"{where}: {app.path}", nothing_to_test=not project.migrations_of(label)))
    return selected, skipped


def replaced_elsewhere(project: Project, label: str) -> str:
    """Why an app with migration files has none in the plan: another app's squashed migration
    replaces them all (django-two-factor-auth's `two_factor` under its `phonenumber` plugin)."""
    squashes = [m.label for m in project.plan if m.app != label and any(app == label for app, _ in m.replaces)]
    if not squashes:
        return "none of its migrations is in the migration plan"
    return f"every one is replaced by {', '.join(squashes)}; test {squashes[0].split('.')[0]} instead"


def window_of(migrations: Sequence[MigrationInfo], depth: int | None) -> list[MigrationInfo]:
    """The newest `depth` migrations of one app in plan order (all when depth is None)."""
    return list(migrations) if depth is None else list(migrations)[-depth:]


def split_window(tested: list[MigrationInfo], parts: int) -> list[list[MigrationInfo]]:
    """Consecutive segments of at least two migrations, for chains that run side by side.

    Each extra chain costs one process (building its database), so a segment is never shorter
    than two migrations.
    """
    parts = max(1, min(parts, len(tested) // 2))
    size, extra = divmod(len(tested), parts)
    segments, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        segments.append(tested[start:end])
        start = end
    return [segment for segment in segments if segment]


def reachable(keys: Iterable[MigrationKey], edges: Mapping[MigrationKey, Sequence[MigrationKey]]) -> set[MigrationKey]:
    """`keys` and everything reachable from them along `edges`."""
    found: set[MigrationKey] = set()
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key not in found:
            found.add(key)
            stack.extend(edges.get(key, ()))
    return found


def dependency_closure(keys: Iterable[MigrationKey], deps: Dependencies) -> set[MigrationKey]:
    """Every migration `keys` need, themselves included."""
    return reachable(keys, deps)


def dependents_closure(keys: Iterable[MigrationKey], deps: Dependencies) -> set[MigrationKey]:
    """`keys` and every migration that needs one of them, transitively (what a rollback unapplies)."""
    children: dict[MigrationKey, list[MigrationKey]] = {}
    for key, parents in deps.items():
        for parent in parents:
            children.setdefault(parent, []).append(key)
    return reachable(keys, children)


def forward_targets(plan: Sequence[MigrationInfo], wanted: AbstractSet[MigrationKey]) -> list[MigrationKey]:
    """`migrate APP NAME` targets that apply `wanted` (when every dependency outside it is applied).

    They are the leaves of `wanted`: members no other member depends on. One per branch, so an
    app whose history forks and merges is covered; in plan order.
    """
    needed_by_others = {dep for m in plan if m.key in wanted for dep in m.dependencies}
    return [m.key for m in plan if m.key in wanted and m.key not in needed_by_others]


def effective_applied(recorded: set[MigrationKey],
                      squashes: dict[MigrationKey, tuple[MigrationKey, ...]]) -> set[MigrationKey]:
    """What is applied in the terms of the plan: Django records a squashed migration as the
    migrations it replaces, so a squash counts as applied when all of them are recorded, and
    those replaced ones (not in the plan) are then left out."""
    applied = set(recorded)
    for squash, replaced in squashes.items():
        if replaced and set(replaced) <= recorded:
            applied.add(squash)
            applied -= set(replaced)
    return applied


def previous_in_app(migration: MigrationInfo) -> str:
    """The rollback target: the migration's parent in its own app, or `zero`."""
    parents = [name for app, name in migration.dependencies if app == migration.app]
    return parents[-1] if parents else "zero"
