#!/usr/bin/env python3
"""Prove that a Django project's migrations deploy and roll back safely on PostgreSQL.

Work happens on scratch databases that this script creates and drops; the database named in
DATABASE_URL is never migrated, written or dropped. See README.md ("Migration tests") for the
options, the exit codes and the JSON report; ../shared/CONTRACT.md is the interface contract.

Sections, in reading order: constants, CLI, discovery, database lifecycle, steps, checks,
reports, main.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

EXIT_OK = 0
EXIT_MIGRATION_PROBLEM = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

REPORT_SCHEMA_VERSION = 1
DEFAULT_DEPTH = 5
DEFAULT_STEP_TIMEOUT_S = 600.0
DEFAULT_SETTINGS = "hello_world.settings"
PREFERRED_PG_MAJOR = 15
SCRATCH_PREFIX = "tm_scratch_"
# Steps inside an app's window skip Django's system checks: `check --deploy` runs them once for
# the project, and repeating them in every step is start-up time for nothing.
WINDOW_MIGRATE_OPTIONS = ("--noinput", "--no-color", "--skip-checks")

# Markers a migration file may carry to accept a finding on purpose (see README).
MARKER_ALLOW_DATA_LOSS = "test_migrations: allow-data-loss"
MARKER_ALLOW_IRREVERSIBLE = "test_migrations: allow-irreversible"

REPO_ROOT = Path(__file__).resolve().parent.parent

AppLabel = str
MigrationKey = tuple[str, str]  # (app_label, migration_name)


class UsageError(Exception):
    """A problem with the input or the environment: exit 2 with one line, no traceback."""


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

EXAMPLES = """\
examples:
  python scripts/test_migrations.py --verbose
      every project app, newest 5 migrations each, on a throwaway PostgreSQL cluster
      (or on the server in $DATABASE_URL / .env, in scratch databases only)
  python scripts/test_migrations.py --app upstream --depth all
      the whole history of one app
  python scripts/test_migrations.py --database-url postgres://postgres:pw@localhost:5432/postgres \\
      --junit-xml reports/junit.xml --report-json reports/migrations.json
      CI: reports for the build server
  python scripts/test_migrations.py --allow-data-loss upstream.0018_remove_invoice_paid_on
      accept a known destructive migration (or put the line
      "# test_migrations: allow-data-loss" in the migration file)

exit status: 0 all passed, 1 a migration problem was found, 2 usage or configuration error,
130 interrupted (scratch databases and servers are removed in every case)
"""


def parse_depth(value: str) -> int | None:
    """`--depth`: a positive whole number, or `all` (None: the whole history)."""
    if value.strip().lower() == "all":
        return None
    try:
        depth = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'all', got {value!r}") from None
    if depth < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'all', got {value!r}")
    return depth


def parse_positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def parse_migration_key(value: str) -> MigrationKey:
    """`APP.MIGRATION` as used by --allow-data-loss and --allow-irreversible."""
    app, dot, name = value.partition(".")
    if not dot or not app or not name:
        raise argparse.ArgumentTypeError(f"expected APP.MIGRATION (e.g. upstream.0018_remove_invoice_paid_on), "
                                         f"got {value!r}")
    return (app, name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="test_migrations.py",
        description=(
            "Apply every migration from scratch on a scratch PostgreSQL database, run the deploy "
            "checks, then roll back and re-apply each app's newest migrations one at a time, "
            "proving that the schema after a rollback is the schema before the migration and "
            "that data written before and after the release survives the rollback."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manage", type=Path, default=REPO_ROOT / "manage.py", metavar="PATH",
                        help="the manage.py to drive (default: manage.py in the repository root)")
    parser.add_argument("--settings", metavar="MODULE",
                        default=os.environ.get("DJANGO_SETTINGS_MODULE") or DEFAULT_SETTINGS,
                        help="Django settings module (default: $DJANGO_SETTINGS_MODULE, else %(default)s)")
    parser.add_argument("--app", dest="apps", action="append", default=[], metavar="LABEL",
                        help="app whose migrations are rolled back and re-applied (repeatable; "
                             "default: every app with migrations inside the project folder)")
    parser.add_argument("--depth", type=parse_depth, default=DEFAULT_DEPTH, metavar="N|all",
                        help="how many of each app's newest migrations to test (default: %(default)s)")
    parser.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL server to make scratch databases on (default: $DATABASE_URL, "
                             "then DATABASE_URL in .env; else a throwaway local cluster); the database "
                             "named in the URL is never migrated, written or dropped")
    parser.add_argument("--report-json", type=Path, metavar="PATH", help="write the JSON report here")
    parser.add_argument("--junit-xml", type=Path, metavar="PATH", help="write JUnit XML here")
    parser.add_argument("--allow-data-loss", action="append", default=[], type=parse_migration_key,
                        metavar="APP.MIGRATION", help="accept a known destructive migration (repeatable)")
    parser.add_argument("--allow-irreversible", action="append", default=[], type=parse_migration_key,
                        metavar="APP.MIGRATION", help="accept a known irreversible migration (repeatable)")
    parser.add_argument("--no-schema", dest="check_schema", action="store_false",
                        help="do not compare schema snapshots")
    parser.add_argument("--no-data", dest="check_data", action="store_false",
                        help="do not seed data and check that rollbacks preserve it")
    parser.add_argument("--step-timeout", type=parse_positive_seconds, default=DEFAULT_STEP_TIMEOUT_S,
                        metavar="SECONDS", help="kill a manage.py step that runs longer (default: %(default)g)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                        help="apps, or runs of one app's window, tested in parallel on databases of their own "
                             "(default: %(default)s)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=2,
                        help="show every command, its duration, and the output of failing steps")
    output.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=0,
                        help="print nothing but errors")
    output.add_argument("--verbosity", dest="verbosity", type=int, choices=range(4),
                        help="0 quiet, 1 default, 2 verbose, 3 also the output of passing steps")
    parser.set_defaults(verbosity=1)
    return parser


@dataclass(frozen=True)
class Config:
    """What the user asked for, validated. Field by field:

    manage: the manage.py to run; project_dir: its folder (apps inside it are "project apps");
    settings: DJANGO_SETTINGS_MODULE for every child; apps: explicit app labels (empty: project
    apps); depth: newest migrations per app, None for all; database_url: --database-url;
    check_schema / check_data: the two proofs; step_timeout: seconds per manage.py call;
    jobs: apps tested in parallel; allow_data_loss / allow_irreversible: accepted findings.
    """

    manage: Path
    project_dir: Path
    settings: str
    apps: tuple[str, ...]
    depth: int | None
    database_url: str | None
    report_json: Path | None
    junit_xml: Path | None
    allow_data_loss: frozenset[MigrationKey]
    allow_irreversible: frozenset[MigrationKey]
    check_schema: bool
    check_data: bool
    step_timeout: float
    jobs: int
    verbosity: int


def config_from_args(args: argparse.Namespace) -> Config:
    """Validate what argparse cannot (files that must exist)."""
    manage = args.manage.expanduser().resolve()
    if not manage.is_file():
        raise UsageError(f"manage.py not found at {manage} (pass --manage PATH/TO/manage.py)")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    return Config(
        manage=manage,
        project_dir=manage.parent,
        settings=args.settings,
        apps=tuple(dict.fromkeys(args.apps)),
        depth=args.depth,
        database_url=args.database_url,
        report_json=args.report_json,
        junit_xml=args.junit_xml,
        allow_data_loss=frozenset(args.allow_data_loss),
        allow_irreversible=frozenset(args.allow_irreversible),
        check_schema=args.check_schema,
        check_data=args.check_data,
        step_timeout=args.step_timeout,
        jobs=args.jobs,
        verbosity=args.verbosity,
    )


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class Log:
    """Console output: progress lines on stdout, flushed before slow work; errors on stderr.

    verbosity follows Django: 0 quiet, 1 default (one line per step), 2 verbose (commands and
    output of failing steps), 3 everything.
    """

    def __init__(self, verbosity: int = 1, stream=None, secret_url: str | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream or sys.stdout
        self.secret_urls: list[str] = [secret_url] if secret_url else []

    def mask(self, text: str) -> str:
        for url in self.secret_urls:
            text = mask_secrets(text, url)
        return text

    def write(self, text: str, level: int = 1, end: str = "\n") -> None:
        if self.verbosity >= level:
            self.stream.write(self.mask(text) + end)
            self.stream.flush()

    def info(self, text: str) -> None:
        self.write(text, 1)

    def detail(self, text: str) -> None:
        self.write(text, 2)

    def debug(self, text: str) -> None:
        self.write(text, 3)


# ---------------------------------------------------------------------------------------------
# Discovery: what the project has (apps, migrations, operations) and what to test
# ---------------------------------------------------------------------------------------------

PROBE_MARKER = "@@test_migrations@@"

# Runs inside `manage.py shell -c` (so manage.py's own set-up applies); reads the migration
# graph from disk without touching the database and prints it as JSON after PROBE_MARKER.
PROBE_CODE = r"""
import inspect, json, sys
from pathlib import Path
from django.apps import apps
from django.db import connection
from django.db.migrations.loader import MigrationLoader

loader = MigrationLoader(None, ignore_no_migrations=True)
graph = loader.graph
plan, seen = [], set()
for leaf in graph.leaf_nodes():
    for key in graph.forwards_plan(leaf):
        if key not in seen:
            seen.add(key)
            plan.append(key)

def operation_info(op):
    try:
        description = op.describe()
    except Exception:
        description = type(op).__name__
    return {"type": type(op).__name__, "reversible": bool(op.reversible), "description": description}

migrations = []
for key in plan:
    migration = graph.nodes[key]
    try:
        source = inspect.getsourcefile(sys.modules[type(migration).__module__])
    except (TypeError, KeyError):
        source = None
    migrations.append({
        "app": key[0], "name": key[1], "file": source,
        "dependencies": sorted(list(parent.key) for parent in graph.node_map[key].parents),
        "replaces": [list(r) for r in migration.replaces],
        "operations": [operation_info(op) for op in migration.operations],
    })
print(PROBE_MARKER + json.dumps({
    "vendor": connection.vendor,
    "database_name": connection.settings_dict.get("NAME"),
    "conflicts": {app: sorted(names) for app, names in loader.detect_conflicts().items()},
    "apps": [{"label": c.label, "name": c.name, "path": str(Path(c.path).resolve()),
              "has_migrations": c.label in loader.migrated_apps} for c in apps.get_app_configs()],
    "migrations": migrations,
}))
"""

# Runs inside `manage.py shell -c` on a fresh scratch database: migrates forward to the targets
# in TM_PREPARE (real `migrate` commands, signals included), then describes, for each migration
# of the window, the app's tables before and after it and what its operations touch.
PREPARE_CODE = r"""
import json, os
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader

request = json.loads(os.environ["TM_PREPARE"])
for app_label, name in request["targets"]:
    call_command("migrate", app_label, name, verbosity=0, interactive=False, skip_checks=True)

loader = MigrationLoader(None, ignore_no_migrations=True)

def app_tables(state, app_label):
    tables = {}
    try:
        config = state.apps.get_app_config(app_label)
    except LookupError:
        return tables
    for model in config.get_models(include_auto_created=True):
        meta = model._meta
        if not meta.managed or meta.proxy:
            continue
        tables[meta.db_table] = {
            "model": meta.label,
            "auto_now": sorted(f.column for f in meta.local_concrete_fields if getattr(f, "auto_now", False)),
        }
    return tables

def effect(op, state, app_label):
    kind = type(op).__name__
    if kind not in ("RemoveField", "AlterField", "DeleteModel"):
        return None
    try:
        model = state.apps.get_model(app_label, op.name if kind == "DeleteModel" else op.model_name)
        if kind == "DeleteModel":
            return {"table": model._meta.db_table, "column": None}
        field = model._meta.get_field(op.name)
        if field.many_to_many:
            return {"table": field.remote_field.through._meta.db_table, "column": None}
        return {"table": model._meta.db_table, "column": field.column}
    except Exception:
        return None

described = {}
for name in request["window"]:
    key = (request["app"], name)
    migration = loader.graph.nodes[key]
    before = loader.project_state(key, at_end=False)
    after = migration.mutate_state(before, preserve=True)
    effects = []
    for op in migration.operations:
        touched = effect(op, before, request["app"])
        if touched:
            effects.append(dict(touched, type=type(op).__name__, description=op.describe()))
    described[name] = {"tables_before": app_tables(before, request["app"]),
                       "tables_after": app_tables(after, request["app"]), "effects": effects}
print(PROBE_MARKER + json.dumps(described))
"""
# The child code prints the marker as a literal: it cannot import this script.
PROBE_CODE = PROBE_CODE.replace("PROBE_MARKER", repr(PROBE_MARKER))
PREPARE_CODE = PREPARE_CODE.replace("PROBE_MARKER", repr(PROBE_MARKER))


@dataclass(frozen=True)
class OperationInfo:
    type: str
    reversible: bool
    description: str
    line: int | None = None


@dataclass(frozen=True)
class MigrationInfo:
    """One migration as found on disk (probe) and placed in the plan."""

    app: str
    name: str
    file: Path | None
    dependencies: tuple[MigrationKey, ...]
    replaces: tuple[MigrationKey, ...]
    operations: tuple[OperationInfo, ...]

    @property
    def key(self) -> MigrationKey:
        return (self.app, self.name)

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"

    def marker_present(self, marker: str) -> bool:
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

    def migrations_of(self, app: str) -> list[MigrationInfo]:
        return [m for m in self.plan if m.app == app]

    def by_key(self) -> dict[MigrationKey, MigrationInfo]:
        return {m.key: m for m in self.plan}


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


def extract_marked_json(output: str) -> object:
    for line in reversed(output.splitlines()):
        if line.startswith(PROBE_MARKER):
            return json.loads(line[len(PROBE_MARKER) :])
    raise ValueError("no probe output found")


def project_from_probe(data: dict) -> Project:
    apps = {a["label"]: AppInfo(a["label"], a["name"], Path(a["path"]), a["has_migrations"]) for a in data["apps"]}
    plan = []
    for m in data["migrations"]:
        file = Path(m["file"]) if m["file"] else None
        lines = operation_lines(file)
        operations = tuple(
            OperationInfo(op["type"], op["reversible"], op["description"], lines[i] if i < len(lines) else None)
            for i, op in enumerate(m["operations"])
        )
        plan.append(MigrationInfo(
            app=m["app"], name=m["name"], file=file,
            dependencies=tuple(tuple(d) for d in m["dependencies"]),
            replaces=tuple(tuple(r) for r in m["replaces"]),
            operations=operations,
        ))
    return Project(vendor=data["vendor"], apps=apps, plan=plan, database_name=data.get("database_name"),
                   conflicts=data.get("conflicts") or {})


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
            deps = tuple(tuple(d.strip().split(".", 1)) for d in match.group("deps").split(",") if "." in d)
        entries.append(PlanEntry(match.group("app"), match.group("name"), match.group("mark") == "X", deps))
    return entries


def is_project_app(app: AppInfo, project_dir: Path) -> bool:
    """An app whose code lives inside the project folder, not in site-packages or Django itself."""
    path = app.path.resolve()
    inside = path == project_dir or project_dir in path.parents
    third_party = any(part in ("site-packages", "dist-packages") for part in path.parts)
    return inside and not third_party and not app.name.startswith("django.")


def select_apps(project: Project, requested: Sequence[str], project_dir: Path) -> tuple[list[str], list[str]]:
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
        return list(requested), []
    selected, skipped = [], []
    for label in labels_with_migrations:
        app = project.apps[label]
        if is_project_app(app, project_dir):
            selected.append(label)
        else:
            where = "Django contrib" if app.name.startswith("django.") else "outside the project"
            skipped.append(f"{label} ({where}: {app.path})")
    return selected, skipped


def window_of(migrations: Sequence[MigrationInfo], depth: int | None) -> list[MigrationInfo]:
    """The newest `depth` migrations of one app in plan order (all when depth is None)."""
    return list(migrations) if depth is None else list(migrations)[-depth:]


def reachable(keys: Sequence[MigrationKey], edges: dict[MigrationKey, Sequence[MigrationKey]]) -> set[MigrationKey]:
    """`keys` and everything reachable from them along `edges`."""
    found: set[MigrationKey] = set()
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key not in found:
            found.add(key)
            stack.extend(edges.get(key, ()))
    return found


Dependencies = dict[MigrationKey, tuple[MigrationKey, ...]]


def dependency_closure(keys: Sequence[MigrationKey], deps: Dependencies) -> set[MigrationKey]:
    """Every migration `keys` need, themselves included."""
    return reachable(keys, deps)


def dependents_closure(keys: Sequence[MigrationKey], deps: Dependencies) -> set[MigrationKey]:
    """`keys` and every migration that needs one of them, transitively (what a rollback unapplies)."""
    children: dict[MigrationKey, list[MigrationKey]] = {}
    for key, parents in deps.items():
        for parent in parents:
            children.setdefault(parent, []).append(key)
    return reachable(keys, children)


def forward_targets(plan: Sequence[MigrationInfo], wanted: set[MigrationKey]) -> list[MigrationKey]:
    """`migrate APP NAME` targets that apply `wanted` (when every dependency outside it is applied).

    They are the leaves of `wanted`: members no other member depends on. One per branch, so an
    app whose history forks and merges is covered; in plan order.
    """
    needed_by_others = {dep for m in plan if m.key in wanted for dep in m.dependencies}
    return [m.key for m in plan if m.key in wanted and m.key not in needed_by_others]


# ---------------------------------------------------------------------------------------------
# Database lifecycle: finding a server, throwaway clusters, scratch databases
# ---------------------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """Return `url` with its password replaced by ``***`` (safe to print)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def mask_secrets(text: str, url: str | None) -> str:
    """Remove the password of `url` from any text (command output, error messages)."""
    if not url:
        return text
    password = urllib.parse.urlsplit(url).password
    if password:
        for form in {password, urllib.parse.unquote(password), urllib.parse.quote(password, safe="")}:
            text = text.replace(form, "***")
    return text


@dataclass(frozen=True)
class ServerAddress:
    """Where a PostgreSQL server listens and how to log in; parsed from a database URL."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str
    options: dict[str, str]

    @classmethod
    def from_url(cls, url: str) -> ServerAddress:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql", "pgsql", "postgis"):
            shown = parts.scheme or url.split(":", 1)[0] or "empty"
            raise UsageError(
                f"the database URL {mask_url(url)!s} is not PostgreSQL (scheme {shown!r}); "
                "migrations are tested on PostgreSQL only, pass --database-url postgres://..."
            )
        query = dict(urllib.parse.parse_qsl(parts.query))
        host = urllib.parse.unquote(parts.hostname or "") or query.pop("host", "")
        try:
            port = parts.port or int(query.pop("port", 5432))
        except ValueError as error:
            raise UsageError(f"the database URL {mask_url(url)} has a bad port: {error}") from None
        return cls(
            host=host,
            port=port,
            user=urllib.parse.unquote(parts.username or "") or os.environ.get("USER", "postgres"),
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            dbname=urllib.parse.unquote(parts.path.lstrip("/")) or "postgres",
            options=query,
        )

    def url_for(self, dbname: str) -> str:
        """A URL for database `dbname` on this server (what the children get as DATABASE_URL)."""
        userinfo = urllib.parse.quote(self.user, safe="")
        if self.password is not None:
            userinfo += ":" + urllib.parse.quote(self.password, safe="")
        if self.host.startswith("/"):
            host = urllib.parse.quote(self.host, safe="")
        elif ":" in self.host:  # IPv6 literal
            host = f"[{self.host}]"
        else:
            host = self.host
        query = ("?" + urllib.parse.urlencode(self.options)) if self.options else ""
        return f"postgres://{userinfo}@{host}:{self.port}/{urllib.parse.quote(dbname)}{query}"

    def connect_kwargs(self, dbname: str | None = None) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "host": self.host or None,
            "port": self.port,
            "user": self.user,
            "dbname": dbname or self.dbname,
            "connect_timeout": 10,
            "application_name": "test_migrations",
        }
        if self.password is not None:
            kwargs["password"] = self.password
        for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
            if key in self.options:
                kwargs[key] = self.options[key]
        return kwargs


def read_dotenv_value(path: Path, key: str) -> str | None:
    """The value of `key` in a .env file (KEY=VALUE lines, optional quotes and `export`)."""
    if not path.is_file():
        return None
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            value = value.strip()
            closing = value.find(value[0], 1) if value[:1] in ("'", '"') else -1
            if closing > 0:  # quoted: up to the closing quote, as python-dotenv reads it
                value = value[1:closing]
            else:  # unquoted: an inline comment starts at " #"
                value = value.split(" #", 1)[0].rstrip()
            return value or None
    return None


def resolve_server_url(cli_url: str | None, environ: dict[str, str], project_dir: Path) -> str | None:
    """The server to work on: --database-url, then $DATABASE_URL, then DATABASE_URL in .env.

    Returns None when none is given, or none of the implicit ones is PostgreSQL (a project that
    uses SQLite for quick local work still gets tested on a throwaway PostgreSQL cluster). An
    explicit --database-url that is not PostgreSQL is an error.
    """
    if cli_url:
        ServerAddress.from_url(cli_url)  # raises UsageError when it is not PostgreSQL
        return cli_url
    for candidate in (environ.get("DATABASE_URL"), read_dotenv_value(project_dir / ".env", "DATABASE_URL")):
        if candidate and candidate.split(":", 1)[0] in ("postgres", "postgresql", "pgsql", "postgis"):
            return candidate
    return None


def find_postgres_bindir(preferred_major: int = PREFERRED_PG_MAJOR) -> Path | None:
    """A folder holding initdb and pg_ctl: PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin.

    Major version `preferred_major` wins when several are installed.
    """
    candidates: list[Path] = []
    for name in ("initdb", "pg_ctl"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin")))
    usable = [d for d in dict.fromkeys(candidates) if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]
    if not usable:
        return None

    def major(bindir: Path) -> int:
        match = re.search(r"(\d+)", (bindir / "PG_VERSION").read_text() if (bindir / "PG_VERSION").exists() else "")
        if match:
            return int(match.group(1))
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([str(bindir / "initdb"), "--version"], capture_output=True, text=True, timeout=10)
            match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
            if match:
                return int(match.group(1))
        return 0

    usable.sort(key=lambda d: (major(d) != preferred_major, -major(d)))
    return usable[0]


class EphemeralCluster:
    """A throwaway PostgreSQL cluster in a temporary folder, removed by `stop()`.

    It listens on a private Unix socket (and on 127.0.0.1:`tcp_port` when asked, with password
    authentication, which the tests use); durability is off because nothing here must survive.
    initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user.
    """

    def __init__(self, bindir: Path, tcp_port: int | None = None, password: str | None = None) -> None:
        self.bindir = bindir
        self.tcp_port = tcp_port
        self.password = password
        self.folder: Path | None = None
        self.started = False

    @property
    def address(self) -> ServerAddress:
        assert self.folder is not None
        if self.tcp_port:
            return ServerAddress("127.0.0.1", self.tcp_port, "postgres", self.password, "postgres", {})
        return ServerAddress(str(self.folder / "socket"), 5432, "postgres", None, "postgres", {})

    @property
    def url(self) -> str:
        return self.address.url_for("postgres")

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, argv: list[str], timeout: float = 120) -> None:
        result = subprocess.run(
            self._as_owner(argv), capture_output=True, text=True, timeout=timeout,
            start_new_session=True,  # a Ctrl-C meant for us must not reach the server first
        )
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UsageError(f"could not start a throwaway PostgreSQL ({Path(argv[0]).name}): {last[0]}")

    def start(self) -> EphemeralCluster:
        # Lower-case, short path: Unix socket paths are limited to ~107 bytes, and URL host names
        # are case-folded by urllib.
        self.folder = Path(tempfile.mkdtemp(prefix="tm-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
        data, socket_dir = self.folder / "data", self.folder / "socket"
        socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(socket_dir, "postgres")
        self.folder.chmod(0o755)
        initdb = [str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust"]
        if self.password is not None:
            pwfile = self.folder / "pwfile"
            pwfile.write_text(self.password + "\n")
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres")
            initdb += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            initdb += ["--auth-host=trust"]
        self._run(initdb)
        if self.tcp_port:
            listen = f"-c listen_addresses=127.0.0.1 -p {self.tcp_port}"
        else:
            listen = "-c listen_addresses='' -p 5432"
        options = (f"{listen} -k {socket_dir} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run([str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"),
                   "-o", options, "-w", "-t", "60", "start"])
        self.started = True
        return self

    def stop(self) -> None:
        if self.folder is None:
            return
        if self.started:
            with contextlib.suppress(Exception):
                subprocess.run(
                    self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                                    "-m", "immediate", "-w", "stop"]),
                    capture_output=True, timeout=60, start_new_session=True,
                )
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __enter__(self) -> EphemeralCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def import_psycopg2():  # noqa: ANN201 - the module, typed loosely to keep it optional at import
    try:
        import psycopg2
        import psycopg2.errors
    except ImportError:
        raise UsageError(
            "psycopg2 is not installed in this Python; install it (pip install psycopg2-binary) "
            "or run the script with the project's virtualenv Python"
        ) from None
    return psycopg2


def describe_connection_error(error: Exception, address: ServerAddress) -> str:
    """Turn a psycopg2 connection failure into one line saying what to do."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = address.host if address.host.startswith("/") else f"{address.host or 'localhost'}:{address.port}"
    if "password authentication failed" in message or "no password supplied" in message:
        hint = "check the user and password in the database URL"
    elif "does not exist" in message and "database" in message:
        hint = "the database named in the URL must exist (it is only used to connect)"
    else:
        hint = "is the server running and reachable? check host and port in the database URL"
    return f"cannot connect to PostgreSQL at {where} as {address.user}: {message} ({hint})"


def quote_ident(name: str) -> str:
    """An SQL identifier, quoted (database, table and column names built into statements)."""
    return '"' + name.replace('"', '""') + '"'


class Server:
    """A connection to the PostgreSQL server used for administration and for catalog reads.

    It creates and drops scratch databases, all named with SCRATCH_PREFIX and a random suffix,
    and refuses to drop any other database, so the one named in the user's URL is safe.
    """

    def __init__(self, address: ServerAddress, ephemeral: bool) -> None:
        self.address = address
        self.ephemeral = ephemeral
        self.psycopg2 = import_psycopg2()
        self.scratch: list[str] = []
        self.run_id = secrets.token_hex(4)
        self.admin = self.connect_admin(address)
        self.admin.autocommit = True
        self.server_version = self.scalar("SHOW server_version")

    def connect_admin(self, address: ServerAddress):  # noqa: ANN201 - a psycopg2 connection
        """Connect to the URL's database, or, when that one does not exist yet (a fresh .env),
        to the `postgres` maintenance database: the tool only needs the server."""
        try:
            return self.psycopg2.connect(**address.connect_kwargs())
        except self.psycopg2.OperationalError as error:
            if f'database "{address.dbname}" does not exist' not in str(error) or address.dbname == "postgres":
                raise UsageError(describe_connection_error(error, address)) from None
        try:
            return self.psycopg2.connect(**address.connect_kwargs("postgres"))
        except self.psycopg2.Error as error:
            raise UsageError(describe_connection_error(error, address)) from None

    def scalar(self, sql: str, params: Sequence[object] = ()) -> object:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return row[0] if row else None

    def check_can_create_databases(self) -> None:
        allowed = self.scalar("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user")
        if not allowed:
            raise UsageError(
                f"the role {self.address.user!r} may not create databases; the tool needs CREATEDB "
                "to make its scratch databases (ALTER ROLE ... CREATEDB, or use another role)"
            )

    def new_database_name(self, purpose: str) -> str:
        name = f"{SCRATCH_PREFIX}{self.run_id}_{len(self.scratch)}_{purpose}"[:63]
        return re.sub(r"[^a-z0-9_]", "_", name.lower())

    def create_database(self, purpose: str, template: str | None = None) -> str:
        """Create a scratch database (optionally a copy of another scratch one) and return its name."""
        name = self.new_database_name(purpose)
        self.scratch.append(name)
        quoted = quote_ident(name)
        sql = f"CREATE DATABASE {quoted} OWNER {quote_ident(self.address.user)}"
        if template is not None:
            self.assert_scratch(template)
            sql += f" TEMPLATE {quote_ident(template)}"
        with self.admin.cursor() as cursor:
            cursor.execute(sql)
        return name

    def assert_scratch(self, name: str) -> None:
        if name not in self.scratch or not name.startswith(SCRATCH_PREFIX):
            raise RuntimeError(f"refusing to touch {name!r}: not a scratch database of this run")

    def drop_database(self, name: str) -> None:
        self.assert_scratch(name)
        with self.admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        self.scratch.remove(name)

    def drop_all_scratch(self) -> None:
        for name in list(reversed(self.scratch)):
            with contextlib.suppress(Exception):
                self.drop_database(name)

    def connect(self, dbname: str):  # noqa: ANN201 - a psycopg2 connection
        self.assert_scratch(dbname)
        connection = self.psycopg2.connect(**self.address.connect_kwargs(dbname))
        connection.autocommit = True
        return connection

    def url_for(self, dbname: str) -> str:
        return self.address.url_for(dbname)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.admin.close()


@contextlib.contextmanager
def postgres_server(cli_url: str | None, environ: dict[str, str], project_dir: Path,
                    log: Log | None = None) -> Iterator[Server]:
    """Yield a Server on the user's PostgreSQL or on a throwaway cluster; clean up always."""
    url = resolve_server_url(cli_url, environ, project_dir)
    cluster: EphemeralCluster | None = None
    server: Server | None = None
    try:
        if url is None:
            bindir = find_postgres_bindir()
            if bindir is None:
                raise UsageError(
                    "no PostgreSQL server given and no PostgreSQL binaries found (initdb, pg_ctl); "
                    "pass --database-url postgres://user:pass@host:5432/postgres or install PostgreSQL 15"
                )
            if log:
                log.info(f"Starting a throwaway PostgreSQL cluster ({bindir})...")
            cluster = EphemeralCluster(bindir).start()
            url = cluster.url
        elif log:
            log.info(f"Using PostgreSQL server {mask_url(url)} (scratch databases only)")
        server = Server(ServerAddress.from_url(url), ephemeral=cluster is not None)
        server.check_can_create_databases()
        yield server
    finally:
        if server is not None:
            server.drop_all_scratch()
            server.close()
        if cluster is not None:
            cluster.stop()


# ---------------------------------------------------------------------------------------------
# Steps: every manage.py call goes through ManagePy.run
# ---------------------------------------------------------------------------------------------

ERROR_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?"  # module path of the exception, if printed
    r"(?P<type>[A-Z]\w*(?:Error|Exception|Exit|Violation|Warning)|CommandError|IrreversibleError)\b:?\s*"
    r"(?P<message>.*)$"
)


@dataclass
class StepResult:
    """One manage.py run: how it ended and what it printed."""

    command: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    timeout_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def error_summary(self) -> str:
        """The failure in one or two lines: the exception, with its database message."""
        if self.timed_out:
            return f"timed out after {self.timeout_s:g}s (raise --step-timeout if it is only slow)"
        lines = [line.rstrip() for line in (self.stderr or self.stdout).splitlines() if line.strip()]
        for index in range(len(lines) - 1, -1, -1):
            match = ERROR_LINE.match(lines[index].strip())
            if match and match.group("type") == "SystemCheckError":
                issues = [x.strip() for x in lines[index:] if re.search(r"\(\w+\.E\d+\)", x)]
                return "SystemCheckError: " + (" | ".join(issues) or match.group("message").strip())
            if match:
                message = match.group("message").strip() or match.group("type")
                follow = [x.strip() for x in lines[index + 1 : index + 3]
                          if x.strip().startswith(("LINE", "DETAIL", "HINT", "CONTEXT"))]
                return " | ".join([f"{match.group('type')}: {message}".rstrip(": "), *follow])
        return lines[-1].strip() if lines else f"exit status {self.returncode}"


class ManagePy:
    """Runs `manage.py` commands as child processes of the same Python.

    Each child gets the scratch database's URL as DATABASE_URL and its own process group, so a
    timeout or Ctrl-C kills the whole tree; `started` counts processes for the benchmarks.
    """

    def __init__(self, config: Config, log: Log) -> None:
        self.config = config
        self.log = log
        self.started = 0
        self.cancelled = False
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def environment(self, database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": self.config.settings,
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": env.get("PYTHONWARNINGS", "ignore"),
        })
        env.update(extra or {})
        return env

    def run(self, args: Sequence[str], database_url: str, extra_env: dict[str, str] | None = None,
            timeout: float | None = None) -> StepResult:
        if self.cancelled:
            raise Interrupted
        command = [sys.executable, str(self.config.manage), *args]
        timeout = timeout or self.config.step_timeout
        shown = " ".join(command[1:]) if len(" ".join(command[1:])) < 200 else " ".join(command[1:4]) + " ..."
        self.log.write(f"  $ DATABASE_URL={mask_url(database_url)} {Path(sys.executable).name} {shown}", 2)
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=self.config.project_dir, env=self.environment(database_url, extra_env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            errors="replace", start_new_session=True,
        )
        with self._lock:
            self.started += 1
            self._running.add(process)
        timed_out = False
        try:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._kill(process)
                stdout, stderr = process.communicate()
        finally:
            with self._lock:
                self._running.discard(process)
        if self.cancelled:  # killed by kill_all(): an interruption, not a result
            raise Interrupted
        result = StepResult(command, process.returncode, stdout, stderr, time.monotonic() - started,
                            timed_out, timeout)
        if not result.ok and self.log.verbosity >= 2 or self.log.verbosity >= 3:
            output = (stdout + stderr).strip()
            if output:
                self.log.write("    | " + output.replace("\n", "\n    | "), 2)
        return result

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def kill_all(self) -> None:
        self.cancelled = True
        with self._lock:
            running = list(self._running)
        for process in running:
            self._kill(process)


# ---------------------------------------------------------------------------------------------
# Checks, part 1: schema snapshots read from the PostgreSQL catalog
# ---------------------------------------------------------------------------------------------

USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
)
NOT_FROM_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.objid = {oid} AND dep.deptype = 'e')"
)
RELKINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "f": "foreign table"}

# Each query yields (object key, attribute, value) rows; keys name objects the way a reader
# looks for them ("index upstream_invoice_status_idx", "column upstream_invoice.total"), never
# by OID, so snapshots of two databases compare.
SCHEMA_QUERIES = {
    "relations": f"""
        SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                    WHEN 'f' THEN 'foreign table ' ELSE 'table ' END || {{qual}}(n.nspname, c.relname),
               'definition',
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE c.relkind::text END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMAS}
          AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    "columns": f"""
        SELECT 'column ' || {{qual}}(n.nspname, c.relname) || '.' || a.attname, attr.name, attr.value
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation col ON col.oid = a.attcollation AND a.attcollation <> t.typcollation
        CROSS JOIN LATERAL (VALUES
            ('type', format_type(a.atttypid, a.atttypmod)),
            ('null', CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END),
            ('default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END),
            ('generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END),
            ('identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END),
            ('collation', col.collname)
        ) AS attr(name, value)
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND {USER_SCHEMAS} AND attr.value IS NOT NULL
          AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    "indexes": f"""
        SELECT 'index ' || {{qual}}(n.nspname, ic.relname), 'definition',
               pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE {USER_SCHEMAS} AND {NOT_FROM_EXTENSION.format(oid="i.indrelid")}""",
    "constraints": f"""
        SELECT 'constraint ' || con.conname || ' on ' || {{qual}}(n.nspname, c.relname), 'definition',
               pg_get_constraintdef(con.oid)
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {USER_SCHEMAS} AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    "sequences": f"""
        SELECT 'sequence ' || {{qual}}(n.nspname, c.relname), attr.name, attr.value
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL (VALUES
            ('type', format_type(s.seqtypid, NULL)),
            ('increment', s.seqincrement::text),
            ('range', s.seqmin::text || '..' || s.seqmax::text || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END),
            ('owned by', (SELECT {{qual}}(tn.nspname, tc.relname) || '.' || ta.attname
                          FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
                          JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                          JOIN pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype IN ('a', 'i') LIMIT 1))
        ) AS attr(name, value)
        WHERE {USER_SCHEMAS} AND attr.value IS NOT NULL AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    "triggers": f"""
        SELECT 'trigger ' || t.tgname || ' on ' || {{qual}}(n.nspname, c.relname), 'definition',
               pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {USER_SCHEMAS}""",
    "functions": f"""
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END
               || {{qual}}(n.nspname, p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               'definition', pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prokind IN ('f', 'p') AND {USER_SCHEMAS} AND {NOT_FROM_EXTENSION.format(oid="p.oid")}""",
    "types": f"""
        SELECT CASE t.typtype WHEN 'e' THEN 'enum type ' ELSE 'domain ' END || {{qual}}(n.nspname, t.typname),
               'definition',
               CASE t.typtype
                 WHEN 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                FROM pg_enum e WHERE e.enumtypid = t.oid)
                 ELSE format_type(t.typbasetype, t.typtypmod)
                      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                      || COALESCE(' DEFAULT ' || t.typdefault, '')
                      || COALESCE((SELECT ' ' || string_agg(pg_get_constraintdef(dc.oid), ' ' ORDER BY dc.conname)
                                   FROM pg_constraint dc WHERE dc.contypid = t.oid), '')
               END
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd') AND {USER_SCHEMAS} AND {NOT_FROM_EXTENSION.format(oid="t.oid")}""",
    "extensions": """
        SELECT 'extension ' || e.extname, 'version', e.extversion FROM pg_extension e
        WHERE e.extname <> 'plpgsql'""",
}
QUALIFY_SQL = "(CASE WHEN {0} = 'public' THEN {1} ELSE {0} || '.' || {1} END)"

SchemaSnapshot = dict[str, dict[str, str]]
# Django's own record of applied migrations appears with the first `migrate`; it is not schema
# that any migration owns.
DJANGO_BOOKKEEPING = re.compile(r"\bdjango_migrations(?:\b|_)")


def qualify_placeholder(sql: str) -> str:
    """Replace `{qual}(schema, name)` with SQL that omits the default `public.` schema."""
    def replace(match: re.Match) -> str:
        schema, name = (part.strip() for part in match.group(1).split(",", 1))
        return QUALIFY_SQL.format(schema, name)
    return re.sub(r"\{qual\}\(([^()]*)\)", replace, sql)


def snapshot_schema(connection) -> SchemaSnapshot:  # noqa: ANN001 - a psycopg2 connection
    """Every schema object of the database as {object key: {attribute: value}}."""
    snapshot: SchemaSnapshot = {}
    with connection.cursor() as cursor:
        for sql in SCHEMA_QUERIES.values():
            cursor.execute(qualify_placeholder(sql))
            for key, attribute, value in cursor.fetchall():
                if not DJANGO_BOOKKEEPING.search(key):
                    snapshot.setdefault(key, {})[attribute] = value
    return snapshot


@dataclass(frozen=True)
class Finding:
    """One entry of a migration's `details`: kind is schema, data_lost, rollback or info."""

    kind: str
    message: str
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, **self.extra}


def describe_value(value: str | None) -> str:
    if value is None:
        return "(none)"
    flat = " ".join(value.split())
    return flat if len(flat) <= 120 else flat[:117] + "..."


def describe_change(was: str, now: str, width: int = 120) -> tuple[str, str]:
    """(now, was), each cut around where they first differ when they are long (the part that matters)."""
    was, now = " ".join(was.split()), " ".join(now.split())
    if len(was) <= width and len(now) <= width:
        return now, was
    start = next((i for i, (a, b) in enumerate(zip(was, now, strict=False)) if a != b), min(len(was), len(now)))
    begin = max(start - 30, 0)

    def cut(text: str) -> str:
        return ("..." if begin else "") + text[begin : begin + width] + ("..." if begin + width < len(text) else "")

    return cut(now), cut(was)


OBJECT_ORDER = ("table", "view", "materialized", "enum", "domain", "extension", "column", "constraint",
                "index", "trigger", "function", "procedure", "sequence")


def object_order(key: str) -> tuple[int, str]:
    """Whole tables first, then their parts: the first finding is the one a reader needs."""
    kind = key.split(" ", 1)[0]
    return (OBJECT_ORDER.index(kind) if kind in OBJECT_ORDER else len(OBJECT_ORDER), key)


def part_of_whole_table(key: str, attributes: dict[str, str], expected: SchemaSnapshot,
                        actual: SchemaSnapshot) -> bool:
    """True for a column, constraint, index, trigger or owned sequence of a table that is itself
    only in one snapshot: "table x still exists" says it all."""
    tables = {k.split(" ", 1)[1] for k in expected.keys() ^ actual.keys() if k.startswith("table ")}
    for table in tables:
        if key.startswith(f"column {table}.") or key.endswith(f" on {table}"):
            return True
        definition = attributes.get("definition", "") + " " + attributes.get("owned by", "")
        if key.startswith(("index ", "sequence ")) and (
                f" ON {table} " in definition or f" ON public.{table} " in definition
                or definition.strip().startswith(f"{table}.")):
            return True
    return False


def diff_schema(expected: SchemaSnapshot, actual: SchemaSnapshot, moment: str) -> list[Finding]:
    """Differences between two snapshots, one finding per object attribute, named for a reader.

    `moment` completes the sentence, e.g. "after rolling back 0019_invoice_status_index".
    """
    findings = []
    for key in sorted(expected.keys() | actual.keys(), key=object_order):
        before, after = expected.get(key), actual.get(key)
        if before == after or part_of_whole_table(key, before or after, expected, actual):
            continue
        if before is None:
            message = f"{key} still exists {moment}" if moment.startswith("after rolling back") \
                else f"{key} exists {moment} but did not before"
        elif after is None:
            message = f"{key} is missing {moment}"
        else:
            parts = []
            for attribute in sorted(before.keys() | after.keys()):
                was, now = before.get(attribute), after.get(attribute)
                if was == now:
                    continue
                if was is None:
                    parts.append(f"{attribute} {describe_value(now)} remains")
                elif now is None:
                    parts.append(f"{attribute} {describe_value(was)} is gone")
                else:
                    now_shown, was_shown = describe_change(was, now)
                    parts.append(f"{attribute} is {now_shown}, expected {was_shown}")
            message = f"{key}: {'; '.join(parts)} {moment}"
        findings.append(Finding("schema", message, {"object": key}))
    return findings


# ---------------------------------------------------------------------------------------------
# Checks, part 2: seeded data and fingerprints (the release scenario)
# ---------------------------------------------------------------------------------------------

# Rows seeded before a migration ("pre-release") and after it ("post-release"). "typical" is
# ordinary data; "max" reaches the upper edges (strings at their maximum length in non-ASCII
# text, the largest decimals of the column's precision, far dates); "min" the lower ones (NULL
# wherever allowed, empty strings, zero, old dates). scripts/verify_backup.py seeds with the
# same profiles.
PRE_RELEASE_PROFILES = ("typical", "max", "min")
POST_RELEASE_PROFILES = ("max", "min")
# Max-profile text: non-ASCII, with what stresses quoting and encoding in SQL, COPY and dumps
# (quotes, backslash, tab, newline, a character outside the BMP), each one character long.
NON_ASCII = "Ωé漢🦄'ß\"€\\ñ\nØ\tж"
INTEGER_EDGES = {"smallint": 32000, "integer": 2_000_000_000, "bigint": 9_000_000_000_000_000_000,
                 "oid": 4_000_000_000}
DEFAULT_VALUE = object()  # leave the column to its default (identity, serial)

# Domains are described by their base type (what values are made for; the INSERT still casts to
# the domain, so its checks apply), arrays also by their element type.
TABLE_COLUMNS_SQL = """
    SELECT c.oid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod), t.typname,
           t.typtype, t.typcategory, a.attnotnull, d.adbin IS NOT NULL, a.attidentity <> '',
           a.attgenerated <> '',
           (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e
             WHERE e.enumtypid IN (t.oid, t.typelem)),
           format_type(t.oid, CASE WHEN dom.oid IS NULL THEN a.atttypmod ELSE dom.typtypmod END),
           coalesce(elem.typname, ''), coalesce(elem.typcategory, '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_type dom ON dom.oid = a.atttypid AND dom.typtype = 'd'
    JOIN pg_type t ON t.oid = coalesce(dom.typbasetype, a.atttypid)
    LEFT JOIN pg_type elem ON elem.oid = t.typelem AND t.typcategory = 'A'
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.oid = ANY(%s::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum"""
PRIMARY_KEYS_SQL = """
    SELECT i.indrelid::regclass::text, a.attname FROM pg_index i
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
    WHERE i.indisprimary AND i.indrelid = ANY(%s::regclass[]) ORDER BY array_position(i.indkey, a.attnum)"""
FOREIGN_KEYS_SQL = """
    SELECT con.conrelid::regclass::text, a.attname, con.confrelid::regclass::text, fa.attname
    FROM pg_constraint con
    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
    JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = con.confkey[1]
    WHERE con.contype = 'f' AND array_length(con.conkey, 1) = 1
      AND con.conrelid = ANY(%s::regclass[])"""
USER_TABLES_SQL = f"""
    SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS} AND c.relname <> 'django_migrations'
      AND {NOT_FROM_EXTENSION.format(oid="c.oid")}"""


@dataclass(frozen=True)
class ColumnMeta:
    name: str
    type: str
    type_name: str
    type_kind: str
    category: str
    not_null: bool
    has_default: bool
    identity: bool
    generated: bool
    enum_labels: tuple[str, ...]
    base_type: str = ""  # format_type of a domain's base type ("" or `type` otherwise)
    element_name: str = ""  # typname of an array's element type
    element_category: str = ""

    @property
    def length(self) -> int | None:
        match = re.match(r"(?:character varying|character|bit varying|bit)\((\d+)\)", self.base_type or self.type)
        return int(match.group(1)) if match else None

    @property
    def precision(self) -> tuple[int, int] | None:
        match = re.match(r"numeric\((\d+),(\d+)\)", self.base_type or self.type)
        return (int(match.group(1)), int(match.group(2))) if match else None

    def element(self) -> ColumnMeta:
        """An array column's element, described as a column (its length, precision, labels)."""
        element_type = (self.base_type or self.type).removesuffix("[]")
        return dataclasses.replace(self, type=element_type, base_type=element_type, type_name=self.element_name,
                                   category=self.element_category, element_name="", element_category="")


@dataclass
class TableMeta:
    name: str
    columns: list[ColumnMeta]
    primary_key: list[str]
    foreign_keys: dict[str, tuple[str, str]]  # column -> (table, column)


def read_tables(connection, tables: Sequence[str]) -> dict[str, TableMeta]:  # noqa: ANN001
    """Columns, primary keys and single-column foreign keys of `tables` (that exist)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL", (list(tables),))
        existing = [row[0] for row in cursor.fetchall()]
        if not existing:
            return {}
        cursor.execute("SELECT to_regclass(t)::text FROM unnest(%s::text[]) AS t", (existing,))
        names = [row[0] for row in cursor.fetchall()]
        metas = {name: TableMeta(name, [], [], {}) for name in names}
        cursor.execute(TABLE_COLUMNS_SQL, (names,))
        for table, *values in cursor.fetchall():
            *head, labels, base_type, element_name, element_category = values
            metas[table].columns.append(ColumnMeta(*head, tuple(labels.split(",")) if labels else (),
                                                   base_type, element_name, element_category))
        cursor.execute(PRIMARY_KEYS_SQL, (names,))
        for table, column in cursor.fetchall():
            metas[table].primary_key.append(column)
        cursor.execute(FOREIGN_KEYS_SQL, (names,))
        for table, column, target, target_column in cursor.fetchall():
            metas[table].foreign_keys[column] = (target, target_column)
    return metas


def sized_text(length: int | None, profile: str, token: int) -> str:
    """Text for a column of `length` characters (None: unlimited) that stays unique per token."""
    if profile == "min":
        return ""
    if profile == "typical":
        text = f"{token} Sample café"
        return text[:length] if length else text
    size = length or 2000
    suffix = str(token)
    body = (NON_ASCII * (size // len(NON_ASCII) + 1))[: max(size - len(suffix), 0)]
    return (body + suffix)[:size] if size >= len(suffix) else suffix[-size:]


def column_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    """A text literal for `column` (cast to its type by the INSERT), or None for SQL NULL."""
    name, category = column.type_name, column.category
    if category == "A":  # min: empty; typical: one element; max: the max element and a typical one
        items = [] if profile == "min" else [column_literal(column.element(), profile, token)]
        if profile == "max":
            items.append(column_literal(column.element(), "typical", token))
        return array_literal(items) if None not in items else "{}"
    if column.enum_labels:
        return column.enum_labels[-1] if profile == "max" else column.enum_labels[0]
    if name in ("varchar", "bpchar", "text", "citext", "name"):
        return sized_text(column.length, profile, token)
    if name in ("int2", "int4", "int8", "oid"):
        edge = INTEGER_EDGES[{"int2": "smallint", "int4": "integer", "int8": "bigint", "oid": "oid"}[name]]
        return str({"typical": token, "max": edge - token % 1000, "min": 0}[profile])
    if name == "money":
        return {"typical": f"{token}.99", "max": "90000000000000000.00", "min": "0"}[profile]
    if name == "numeric":
        if column.precision:
            digits, scale = column.precision
            largest = "9" * (digits - scale) + ("." + "9" * scale if scale else "")
            typical = f"{min(token, 10 ** max(digits - scale, 0) - 1)}" + ("." + "5" * scale if scale else "")
            return {"typical": typical, "max": largest or "0", "min": "0"}[profile]
        return {"typical": f"{token}.25", "max": "12345678901234567890.123456789", "min": "0"}[profile]
    if name in ("float4", "float8"):
        return {"typical": f"{token}.5", "max": "3.0e38" if name == "float4" else "1.0e300", "min": "0"}[profile]
    if name == "bool":
        return "true" if profile != "min" else "false"
    if name == "date":
        typical = (datetime.date(2024, 1, 1) + datetime.timedelta(days=token % 3000)).isoformat()
        return {"typical": typical, "max": "2999-12-31", "min": "1900-01-01"}[profile]
    if name in ("timestamp", "timestamptz"):
        typical = (datetime.datetime(2024, 1, 1, 12, 34, 56, 123456) + datetime.timedelta(hours=token)).isoformat()
        return {"typical": typical + "+00", "max": "2999-12-31 23:59:59.999999+00",
                "min": "1900-01-01 00:00:00+00"}[profile]
    if name in ("time", "timetz"):
        zone = "+05:30" if name == "timetz" else ""  # an offset other than UTC must survive too
        return {"typical": "12:34:56" + zone, "max": "23:59:59.999999", "min": "00:00:00"}[profile]
    if name == "interval":
        return {"typical": "1 day 02:03:04", "max": "36500 days", "min": "0"}[profile]
    if name == "uuid":
        return str(uuid.UUID(int=(0x7E57 << 112) + token))
    if name in ("json", "jsonb"):
        return {"typical": json.dumps({"note": f"sample {token}"}),
                "max": json.dumps({"ключ": sized_text(500, "max", token), "big": 12345678901234567890,
                                   "nested": {"list": [1, 2.5, None, True]}}, ensure_ascii=False),
                "min": "{}"}[profile]
    if name == "bytea":  # max: every byte value, NUL and backslash included
        return {"typical": "\\x0001ff", "max": "\\x" + bytes(range(256)).hex(), "min": "\\x"}[profile]
    if name in ("inet", "cidr"):
        if profile == "max":
            return f"2001:db8::{token:x}" if name == "inet" else "2001:db8::/32"
        return f"192.0.2.{token % 250}" if name == "inet" else "192.0.2.0/24"
    if name in ("macaddr", "macaddr8"):
        return "08:00:2b:01:02:03" if name == "macaddr" else "08:00:2b:01:02:03:04:05"
    if name == "tsvector":
        return {"typical": f"'row{token}':1 'sample':2", "max": f"'Ωé漢':1A,2B 'O''Brien':3C 'row{token}':4D",
                "min": ""}[profile]
    return None


def array_literal(items: Sequence[str]) -> str:
    """A PostgreSQL array literal of text items, each quoted (so commas, quotes, braces stay data)."""
    return "{" + ",".join('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items) + "}"


@dataclass
class SeedReport:
    """What seeding did: rows inserted and rows skipped (with why), by table."""

    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)


class Seeder:
    """Inserts rows into a set of tables straight from the catalog, respecting foreign keys.

    Rows that a constraint rejects (check, unique, not null, trigger) are skipped, not errors:
    the schema decides what data can exist.
    """

    def __init__(self, connection) -> None:  # noqa: ANN001
        self.connection = connection
        self.token = 0
        # Edge values (empty string, zero, far dates) go into each column once: repeating them
        # in every round would make a later unique constraint fail on duplicates that only the
        # seeding created. Once there, they stay as pre-release data for every later migration.
        self.used_edges: set[tuple[str, str, str]] = set()

    def seed(self, tables: Sequence[str], profiles: Sequence[str]) -> SeedReport:
        report = SeedReport()
        metas = read_tables(self.connection, tables)
        metas = self._with_foreign_targets(metas)
        for meta in self._in_dependency_order(metas):
            for index, profile in enumerate(profiles):
                self.token += 1
                self._insert(meta, profile, index, report)
        return report

    def _with_foreign_targets(self, metas: dict[str, TableMeta]) -> dict[str, TableMeta]:
        while True:
            missing = {t for m in metas.values() for t, _ in m.foreign_keys.values()} - metas.keys()
            if not missing:
                return metas
            metas.update(read_tables(self.connection, sorted(missing)))
            metas.update({name: TableMeta(name, [], [], {}) for name in missing if name not in metas})

    @staticmethod
    def _in_dependency_order(metas: dict[str, TableMeta]) -> list[TableMeta]:
        ordered: list[TableMeta] = []
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(name: str) -> None:
            if name in done or name in visiting or name not in metas:
                return
            visiting.add(name)
            for target, _ in metas[name].foreign_keys.values():
                if target != name:
                    visit(target)
            visiting.discard(name)
            done.add(name)
            ordered.append(metas[name])

        for name in sorted(metas):
            visit(name)
        return [meta for meta in ordered if meta.columns]

    def _foreign_value(self, target: str, target_column: str, offset: int) -> str | None:
        """`target_column` of the row at `offset` in `target`, counting round (so that rows, and
        retries after a unique violation, refer to different rows); None when `target` is empty."""
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {target}")
            count = cursor.fetchone()[0]
            if not count:
                return None
            cursor.execute(
                f"SELECT {quote_ident(target_column)}::text FROM {target} ORDER BY 1 LIMIT 1 OFFSET %s",
                (offset % count,),
            )
            row = cursor.fetchone()
        return row[0] if row else None

    def _insert(self, meta: TableMeta, profile: str, index: int, report: SeedReport) -> None:
        """Insert one row; when a check or unique constraint rejects it, retry once with ordinary
        values in that constraint's columns, so one strict column does not cost the whole row."""
        ordinary: set[str] = set()
        for _attempt in range(3):
            row = self._row_values(meta, profile, index, ordinary)
            if isinstance(row, str):
                report.skipped.setdefault(meta.name, []).append(f"{profile} row: {row}")
                return
            names, placeholders, values, edges = row
            columns_sql = f"({', '.join(names)}) VALUES ({', '.join(placeholders)})" if names else "DEFAULT VALUES"
            try:
                with self.connection.cursor() as cursor:
                    cursor.execute(f"INSERT INTO {meta.name} {columns_sql}", values)
            except self._psycopg2_error() as error:
                constrained = self._constraint_columns(error, meta.name) - ordinary
                if constrained:
                    ordinary |= constrained
                    self.token += 1
                    continue
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                report.skipped.setdefault(meta.name, []).append(f"{profile} row: {first_line}")
                return
            self.used_edges |= edges  # only once in: a rejected row's edges are still to be tried
            report.inserted[meta.name] = report.inserted.get(meta.name, 0) + 1
            return

    def _row_values(self, meta: TableMeta, profile: str, index: int, ordinary: set[str],
                    ) -> tuple[list[str], list[str], list[str | None], set[tuple[str, str, str]]] | str:
        """Column names, placeholders, values and the edge values among them; or why there is no row."""
        names, placeholders, values, edges = [], [], [], set()
        for column in meta.columns:
            if column.generated or (column.identity or (column.has_default and column.name in meta.primary_key)):
                continue
            column_profile = "typical" if column.name in ordinary else profile
            if column.name in meta.foreign_keys:
                target, target_column = meta.foreign_keys[column.name]
                literal = None if (column_profile == "min" and not column.not_null) else \
                    self._foreign_value(target, target_column, index + self.token % 7)
            elif column_profile == "min" and not column.not_null:
                literal = None
            else:
                literal = column_literal(column, column_profile, self.token)
                if literal is not None and column_profile != "typical":
                    if (meta.name, column.name, literal) in self.used_edges:
                        literal = column_literal(column, "typical", self.token)
                    edges.add((meta.name, column.name, literal))
            if literal is None and column.not_null:
                if column.has_default:
                    continue
                return f"no value for NOT NULL column {column.name} ({column.type})"
            names.append(quote_ident(column.name))
            placeholders.append(f"%s::{column.type}")
            values.append(literal)
        return names, placeholders, values, edges

    def _constraint_columns(self, error: Exception, table: str) -> set[str]:
        """Columns of the check or unique constraint that rejected a row (empty if another cause);
        for a domain's check, the table's columns of that domain."""
        name = getattr(getattr(error, "diag", None), "constraint_name", None)
        if not name or getattr(error, "pgcode", None) not in ("23514", "23505"):
            return set()
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid "
                "AND a.attnum = ANY(con.conkey) WHERE con.conname = %s "
                "UNION SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.atttypid = con.contypid "
                "WHERE con.conname = %s AND a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
                "UNION SELECT a.attname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE ic.relname = %s",
                (name, name, table, name))
            return {row[0] for row in cursor.fetchall()}

    def _psycopg2_error(self) -> type[Exception]:
        return sys.modules["psycopg2"].Error


@dataclass
class TableFingerprint:
    """Per primary key, a hash of each column's value; `columns` in table order."""

    columns: list[str]
    key_columns: list[str]
    rows: dict[str, dict[str, str]]


Fingerprint = dict[str, TableFingerprint]


def user_tables(connection) -> list[str]:  # noqa: ANN001
    with connection.cursor() as cursor:
        cursor.execute(USER_TABLES_SQL)
        return sorted(row[0] for row in cursor.fetchall())


def fingerprint(connection, ignore_columns: dict[str, set[str]] | None = None) -> Fingerprint:  # noqa: ANN001
    """Every row of every user table, as hashes by primary key (whole-row hash when no key)."""
    ignore_columns = ignore_columns or {}
    tables = user_tables(connection)
    metas = read_tables(connection, tables)
    result: Fingerprint = {}
    with connection.cursor() as cursor:
        for table, meta in metas.items():
            columns = [c.name for c in meta.columns if c.name not in ignore_columns.get(table, set())]
            key_columns = meta.primary_key or [c.name for c in meta.columns]
            selected = ", ".join(f"{quote_ident(c)}::text" for c in [*key_columns, *columns])
            if not selected:
                continue
            cursor.execute(f"SELECT {selected} FROM {table}")
            rows: dict[str, dict[str, str]] = {}
            width = len(key_columns)
            for record in cursor.fetchall():
                key = ",".join("NULL" if v is None else v for v in record[:width])
                if not meta.primary_key:  # duplicates are possible: count them apart
                    base, n = key, 1
                    while key in rows:
                        n += 1
                        key = f"{base}#{n}"
                rows[key] = {c: value_hash(v) for c, v in zip(columns, record[width:], strict=True)}
            result[table] = TableFingerprint(columns, key_columns, rows)
    return result


def value_hash(value: str | None) -> str:
    """A column value's hash; NULL and the empty string differ."""
    return hashlib.md5(("\0" if value is None else "v" + value).encode(), usedforsecurity=False).hexdigest()


def compare_fingerprints(before: Fingerprint, after: Fingerprint) -> list[tuple[str, str | None, int, str]]:
    """What pre-release data is gone or changed: (table, column or None for rows, count, example key)."""
    losses = []
    for table, old in sorted(before.items()):
        if not old.rows:
            continue
        new = after.get(table)
        if new is None:
            losses.append((table, None, len(old.rows), next(iter(old.rows))))
            continue
        missing = [key for key in old.rows if key not in new.rows]
        if missing:
            losses.append((table, None, len(missing), missing[0]))
        for column in old.columns:
            if column not in new.columns:
                losses.append((table, column, len(old.rows), next(iter(old.rows))))
                continue
            changed = [key for key, values in old.rows.items()
                       if key in new.rows and new.rows[key].get(column) != values.get(column)]
            if changed:
                losses.append((table, column, len(changed), changed[0]))
    return losses


def dropped_and_restored(before: dict[str, set[str]], middle: dict[str, set[str]],
                         after: dict[str, set[str]]) -> set[tuple[str, str | None]]:
    """(table, column) pairs, or (table, None) for whole tables, gone in `middle` and back in `after`."""
    found: set[tuple[str, str | None]] = set()
    for table, columns in before.items():
        if table not in middle:
            if table in after:
                found.add((table, None))
            continue
        found |= {(table, column) for column in columns - middle[table] if column in after.get(table, set())}
    return found


def column_inventory(connection) -> dict[str, set[str]]:  # noqa: ANN001
    """Table -> column names, to tell which ones a migration created."""
    return {name: {c.name for c in meta.columns}
            for name, meta in read_tables(connection, user_tables(connection)).items()}


# ---------------------------------------------------------------------------------------------
# Checks, part 3: results, the project-wide checks, and each app's rollback window
# ---------------------------------------------------------------------------------------------


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop starting steps; cleanup still runs."""


@dataclass
class CheckResult:
    name: str
    status: str  # passed | failed | skipped
    duration_s: float
    detail: str | None = None


@dataclass
class MigrationResult:
    """The verdicts for one migration of a window (values as in CONTRACT.md)."""

    app: str
    name: str
    file: str | None
    line: int | None = None
    apply: str = "not_run"  # applying it over pre-release data: passed | failed | not_run
    rollback: str = "not_run"  # passed | failed | irreversible | blocked | not_run
    reapply: str = "not_run"  # passed | failed | not_run
    schema: str = "not_checked"  # identical | differs | not_checked
    data: str = "not_checked"  # preserved | lost | not_checked
    error: str | None = None
    details: list[Finding] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    acknowledged: bool = False

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"

    @property
    def problems(self) -> list[str]:
        """What makes this migration fail the run (empty when it passes or is acknowledged)."""
        found = []
        if self.apply == "failed":
            found.append("apply failed")
        if self.rollback in ("failed", "not_run") or (self.rollback == "irreversible" and not self.acknowledged):
            found.append(f"rollback {self.rollback}")
        if self.reapply == "failed":
            found.append("re-apply failed")
        if self.schema == "differs":
            found.append("schema differs")
        if self.data == "lost" and not self.acknowledged:
            found.append("data lost")
        return found


@dataclass
class AppResult:
    app: str
    migrations: list[MigrationResult]  # newest first
    error: str | None = None


@dataclass
class RunResult:
    checks: list[CheckResult]
    apps: list[AppResult]
    duration_s: float
    server_version: str
    ephemeral: bool
    processes: int
    skipped_apps: list[str] = field(default_factory=list)
    project_dir: Path | None = None  # what migration file paths are relative to

    @property
    def ok(self) -> bool:
        return (all(c.status == "passed" for c in self.checks)
                and all(a.error is None and not any(m.problems for m in a.migrations) for a in self.apps))


def relative_file(path: Path | None, project_dir: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.resolve().relative_to(project_dir))
    except ValueError:
        return str(path)


def run_forward_checks(runner: ManagePy, head_url: str, project: Project, log: Log) -> list[CheckResult]:
    """forward (migrate from scratch, and showmigrations agrees) then missing_migrations."""
    result = runner.run(["migrate", "--noinput", "--no-color"], head_url)
    forward = CheckResult("forward", "passed" if result.ok else "failed", round(result.duration_s, 2))
    if result.ok:
        shown = runner.run(["showmigrations", "--plan", "-v", "2", "--no-color"], head_url)
        entries = parse_showmigrations_plan(shown.stdout)
        unapplied = [f"{e.app}.{e.name}" for e in entries if not e.applied]
        if not shown.ok or not entries or unapplied:
            forward.status = "failed"
            forward.detail = (f"showmigrations failed: {shown.error_summary()}" if not shown.ok
                              else f"not applied after migrate: {', '.join(unapplied) or 'no migrations listed'}")
    else:
        forward.detail = result.error_summary()
    log_step(log, "forward: migrate every app from scratch", forward.status, forward.duration_s, forward.detail)
    if forward.status != "passed":
        return [forward, CheckResult("missing_migrations", "skipped", 0.0, "forward migration failed")]
    result = runner.run(["makemigrations", "--check", "--dry-run", "--no-color"], head_url)
    detail = None
    if not result.ok:
        changes = describe_missing_migrations(result.stdout)
        detail = (f"model changes without a migration: {changes} (run: python manage.py makemigrations)"
                  if changes else result.error_summary())
    missing = CheckResult("missing_migrations", "passed" if result.ok else "failed",
                          round(result.duration_s, 2), detail)
    log_step(log, "missing_migrations: makemigrations --check --dry-run", missing.status, missing.duration_s, detail)
    return [forward, missing]


def describe_missing_migrations(output: str) -> str:
    """`makemigrations --dry-run` output as "app: change; change", e.g. "shop: + Add field sku to item"."""
    per_app: dict[str, list[str]] = {}
    app = "?"
    for line in output.splitlines():
        header = re.match(r"^Migrations for '([^']+)':", line.strip())
        if header:
            app = header.group(1)
        elif re.match(r"^[-+~*]\s", line.strip()):  # Django 5 marks +/-/~, older ones "- "
            per_app.setdefault(app, []).append(line.strip())
    return "; ".join(f"{label}: {', '.join(changes)}" for label, changes in per_app.items())


def run_check_deploy(runner: ManagePy, head_url: str, log: Log) -> CheckResult:
    """`check --deploy`: errors fail, warnings are shown."""
    result = runner.run(["check", "--deploy", "--no-color"], head_url)
    warnings = [line.strip() for line in (result.stderr + result.stdout).splitlines()
                if re.match(r"^\S+: \((?:security|[\w.]+)\.W\d+\)", line.strip())]
    detail = None if result.ok else result.error_summary()
    if result.ok and warnings:
        detail = f"{len(warnings)} warning(s): " + " | ".join(warnings)
    check = CheckResult("check_deploy", "passed" if result.ok else "failed", round(result.duration_s, 2), detail)
    log_step(log, "check_deploy: check --deploy", check.status, check.duration_s,
             detail if not result.ok else (f"{len(warnings)} warning(s)" if warnings else None))
    for warning in warnings:
        log.detail(f"    {warning}")
    return check


def log_step(log: Log, what: str, status: str, seconds: float | None, note: str | None = None) -> None:
    shown = {"passed": "OK", "failed": "FAILED", "skipped": "skipped"}.get(status, status)
    timing = f" ({seconds:.1f}s)" if seconds is not None else ""
    show_note = note and (status != "passed" or log.verbosity >= 2)
    log.info(f"{what} ... {shown}{timing}" + (f": {note}" if show_note else ""))


@dataclass
class ObservedState:
    """What was recorded of a database state: schema snapshot, data fingerprint (None when that
    proof is off, or the data had to go), and the columns of every table."""

    schema: SchemaSnapshot | None
    data: Fingerprint | None
    columns: dict[str, set[str]]


@dataclass
class WindowContext:
    """Everything one app's test needs, passed together."""

    config: Config
    project: Project
    server: Server
    runner: ManagePy
    log: Log


class AppWindow:
    """One app's window: its verdicts, named before anything runs when irreversible, and the
    blocking of older migrations behind one that cannot be rolled back. The testable part is run
    by one or more WindowChains, each on a database of its own."""

    def __init__(self, context: WindowContext, app: str, window: list[MigrationInfo]) -> None:
        self.context = context
        self.config = context.config
        self.app = app
        self.window = window
        self.results = {
            m.name: MigrationResult(app, m.name, relative_file(m.file, self.config.project_dir),
                                    next((op.line for op in m.operations if op.line), 1 if m.file else None))
            for m in window
        }

    def mark_irreversible(self) -> list[MigrationInfo]:
        """Name irreversible operations before running anything; return what can be tested."""
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
                result.acknowledged = (migration.key in self.config.allow_irreversible
                                       or migration.marker_present(MARKER_ALLOW_IRREVERSIBLE))
                self.context.log.info(f"{migration.label}: irreversible: {names}"
                                      + (" (acknowledged)" if result.acknowledged else ""))
                return self.window[index + 1 :]
        return list(self.window)

    @staticmethod
    def split(tested: list[MigrationInfo], parts: int) -> list[list[MigrationInfo]]:
        """Consecutive runs of at least two migrations, for chains that run side by side.

        Each extra chain costs one process (building its database), so a run is never shorter
        than two migrations.
        """
        parts = max(1, min(parts, len(tested) // 2))
        size, extra = divmod(len(tested), parts)
        runs, start = [], 0
        for index in range(parts):
            end = start + size + (1 if index < extra else 0)
            runs.append(tested[start:end])
            start = end
        return [run for run in runs if run]

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


class WindowChain:
    """Rolls back and re-applies a run of one app's migrations, with the schema and data proofs.

    The run is tested on a database of its own, built forward from scratch to the state just
    before its oldest migration (so nothing a faulty reverse left behind is already there). Then,
    oldest first, for each migration M: snapshot the schema, seed pre-release rows and
    fingerprint every table; apply M; snapshot, seed post-release rows; roll M back (`migrate APP
    PREVIOUS`): the schema must equal the first snapshot and the pre-release fingerprints must
    hold; re-apply M (`migrate APP M`): the schema must equal the second snapshot. Each finding
    therefore belongs to the one migration that was applied and rolled back.
    """

    def __init__(self, window: AppWindow, tested: list[MigrationInfo], restore: bool) -> None:
        self.context = window.context
        self.config = window.config
        self.app = window.app
        self.results = window.results  # each chain writes only its own migrations' entries
        self.tested = tested
        self.restore = restore  # the chain that ends at the app's newest migration restores head
        self.metadata: dict[str, dict] = {}
        self.database: str | None = None
        self.url = ""
        self.connection = None
        self.seeder: Seeder | None = None

    def run(self) -> str | None:
        """Test the run; returns a problem with the app as a whole, if any."""
        try:
            return self.test_chain(self.tested)
        except (Interrupted, KeyboardInterrupt):
            raise
        except Exception as unexpected:  # a bug here must not hide the other apps' results
            self.context.log.write(traceback.format_exc(), 3)
            return f"internal error while testing {self.app}: {type(unexpected).__name__}: {unexpected}"
        finally:
            self.close()

    def test_chain(self, tested: list[MigrationInfo]) -> str | None:
        """Build the base state, then test each migration oldest first. Returns an app error."""
        project = self.context.project
        deps = {m.key: m.dependencies for m in project.plan}
        excluded = dependents_closure([m.key for m in tested], deps)
        base = {m.key for m in project.plan} - excluded
        targets = forward_targets(project.plan, base)
        self.database = self.context.server.create_database(self.app)
        self.url = self.context.server.url_for(self.database)
        prepared = self.context.runner.run(
            ["shell", "-c", PREPARE_CODE], self.url,
            extra_env={"TM_PREPARE": json.dumps({"app": self.app, "targets": targets,
                                                 "window": [m.name for m in tested]})})
        if not prepared.ok:
            message = f"could not build the state before {tested[0].name}: {prepared.error_summary()}"
            for migration in tested:
                self.results[migration.name].error = message
            return message
        self.metadata = extract_marked_json(prepared.stdout)
        self.connection = self.context.server.connect(self.database)
        self.seeder = Seeder(self.connection)
        for position, migration in enumerate(tested):
            broken = self.test_migration(migration)
            if broken:
                for newer in tested[position + 1 :]:
                    self.results[newer.name].error = f"not tested: {broken}"
                break
        else:
            return self.restore_head() if self.restore else None
        return None

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None
        if self.database is not None:
            with contextlib.suppress(Exception):
                self.context.server.drop_database(self.database)
            self.database = None

    # -- one migration --------------------------------------------------------------------------

    def test_migration(self, migration: MigrationInfo) -> str | None:
        """Apply, roll back and re-apply one migration; returns why the chain broke, if it did."""
        result = self.results[migration.name]
        meta = self.metadata.get(migration.name, {})
        self.apply_missing_dependencies(migration)
        before = self.observe(result, meta, "tables_before", PRE_RELEASE_PROFILES, "pre-release")
        broken = self.apply(migration, result, before)
        if broken:
            return broken
        applied = self.observe(result, meta, "tables_after", POST_RELEASE_PROFILES, "post-release",
                               seed_first=False)
        broken, collateral_columns = self.roll_back(migration, result, before.columns)
        if result.rollback != "passed":
            return broken
        if before.schema is not None:
            findings = diff_schema(before.schema, snapshot_schema(self.connection),
                                   f"after rolling back {migration.name}")
            result.details.extend(findings)
            result.schema = "differs" if findings else "identical"
        if before.data is not None:
            self.judge_data(migration, result, meta, before.data, before.columns, applied.columns,
                            collateral_columns)
        broken = self.reapply(migration, result, applied)
        if not broken:
            self.log_verdict(result)
        return broken

    def observe(self, result: MigrationResult, meta: dict, tables_key: str, profiles: Sequence[str],
                moment: str, seed_first: bool = True) -> ObservedState:
        """Snapshot the schema and the columns, and seed rows (before fingerprinting them when
        `seed_first`: pre-release data; after the snapshot otherwise: post-release data)."""
        state = ObservedState(snapshot_schema(self.connection) if self.config.check_schema else None,
                              None, column_inventory(self.connection))
        if self.config.check_data:
            report = self.seeder.seed(sorted(meta.get(tables_key, {})), profiles)
            self.note_skipped_rows(result, report, moment)
            if seed_first:
                state.data = fingerprint(self.connection, self.auto_now_columns(meta))
        return state

    def apply(self, migration: MigrationInfo, result: MigrationResult, before: ObservedState) -> str | None:
        """`migrate APP M` over the pre-release data; when it fails, empty the tables and retry."""
        applied = self.migrate([self.app, migration.name], "apply", migration)
        result.apply = "passed" if applied.ok else "failed"
        if applied.ok:
            return None
        result.error = f"applying {migration.name} over pre-release data failed: {applied.error_summary()}"
        if applied.timed_out or not self.retry_apply_without_data(migration):
            return f"{migration.name} could not be applied"
        before.data = None  # the pre-release data had to go
        before.columns = column_inventory(self.connection)
        return None

    def roll_back(self, migration: MigrationInfo, result: MigrationResult,
                  columns_before: dict[str, set[str]]) -> tuple[str | None, set[tuple[str, str | None]]]:
        """`migrate APP PREVIOUS`; returns why the chain broke (if it did) and the columns of
        sibling migrations that Django rolled back alongside and that were put back."""
        applied_before = self.applied_migrations()
        rolled_back = self.migrate([self.app, self.previous_in_app(migration)], "rollback", migration)
        result.durations["rollback"] = round(rolled_back.duration_s, 2)
        if not rolled_back.ok:
            result.rollback = "failed"
            result.error = rolled_back.error_summary()
            if rolled_back.timed_out:
                self.stop_leftover_queries()
                return f"rolling back {migration.name} timed out", set()
            if migration.key not in self.applied_migrations():
                return f"the failed rollback of {migration.name} left it unapplied", set()
            return None, set()
        applied_now = self.applied_migrations()
        if migration.key in applied_now:
            result.rollback = "failed"
            result.error = f"migrate exited 0 but {migration.name} is still recorded as applied"
            return f"{migration.name} is still applied after its rollback", set()
        result.rollback = "passed"
        # `migrate APP PARENT` also unapplies PARENT's other children (a sibling branch): put them
        # back, so the comparison is with the state just before this migration.
        collateral = applied_before - applied_now - {migration.key}
        if not collateral:
            return None, set()
        columns_rolled_back = column_inventory(self.connection)
        self.apply_forward(collateral)
        siblings = ", ".join(sorted(name for _, name in collateral))
        result.details.append(Finding("info", f"Django cannot roll back {migration.name} alone: `migrate "
                                      f"{self.app} {self.previous_in_app(migration)}` also rolled back "
                                      f"{siblings}, re-applied before comparing"))
        return None, dropped_and_restored(columns_before, columns_rolled_back, column_inventory(self.connection))

    def reapply(self, migration: MigrationInfo, result: MigrationResult, applied: ObservedState) -> str | None:
        """`migrate APP M` again, with the data present: the schema must be the one after applying."""
        reapplied = self.migrate([self.app, migration.name], "reapply", migration)
        result.durations["reapply"] = round(reapplied.duration_s, 2)
        if not reapplied.ok:
            result.reapply = "failed"
            result.error = reapplied.error_summary()
            if reapplied.timed_out:
                self.stop_leftover_queries()
            return f"{migration.name} could not be re-applied"
        result.reapply = "passed"
        if applied.schema is not None:
            findings = diff_schema(applied.schema, snapshot_schema(self.connection),
                                   f"after re-applying {migration.name} (round trip)")
            result.details.extend(findings)
            if findings:
                result.schema = "differs"
        return None

    def retry_apply_without_data(self, migration: MigrationInfo) -> bool:
        """Empty every table and apply again, so the rest of the window can still be tested."""
        tables = user_tables(self.connection)
        if tables:
            with self.connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        return self.migrate([self.app, migration.name], "apply without data", migration).ok

    def migrate(self, target: list[str], step: str, migration: MigrationInfo) -> StepResult:
        if self.context.runner.cancelled:
            raise Interrupted
        outcome = self.context.runner.run(["migrate", *target, *WINDOW_MIGRATE_OPTIONS], self.url)
        status = "passed" if outcome.ok else "failed"
        log_step(self.context.log, f"{migration.label}: {step}", status, outcome.duration_s,
                 None if outcome.ok else outcome.error_summary())
        return outcome

    def previous_in_app(self, migration: MigrationInfo) -> str:
        """The rollback target: the migration's parent in its own app, or `zero`."""
        parents = [name for app, name in migration.dependencies if app == self.app]
        return parents[-1] if parents else "zero"

    def applied_migrations(self) -> set[MigrationKey]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
            if not cursor.fetchone()[0]:  # nothing migrated yet
                return set()
            cursor.execute("SELECT app, name FROM django_migrations")
            return {(app, name) for app, name in cursor.fetchall()}

    def apply_missing_dependencies(self, migration: MigrationInfo) -> None:
        """Apply what `migration` needs and is not applied yet (other apps, or a sibling branch of
        its own app), so that applying and rolling it back touches it alone."""
        plan = self.context.project.plan
        known = {m.key for m in plan}
        needed = dependency_closure([d for d in migration.dependencies if d in known],
                                    {m.key: m.dependencies for m in plan})
        self.apply_forward(needed - self.applied_migrations())

    def apply_forward(self, keys: set[MigrationKey]) -> None:
        for app, name in forward_targets(self.context.project.plan, keys):
            outcome = self.context.runner.run(["migrate", app, name, *WINDOW_MIGRATE_OPTIONS], self.url)
            log_step(self.context.log, f"{self.app}: apply {app}.{name} first", "passed" if outcome.ok else "failed",
                     outcome.duration_s, None if outcome.ok else outcome.error_summary())

    def restore_head(self) -> str | None:
        """Bring every app back to its newest migration, as after the app's tests in production."""
        expected = {m.key for m in self.context.project.plan if not m.replaces}
        if expected <= self.applied_migrations():
            return None
        outcome = self.context.runner.run(["migrate", *WINDOW_MIGRATE_OPTIONS], self.url)
        log_step(self.context.log, f"{self.app}: restore every app to its newest migration",
                 "passed" if outcome.ok else "failed", outcome.duration_s)
        if not outcome.ok:
            return f"restoring the full state after testing {self.app} failed: {outcome.error_summary()}"
        left = sorted(f"{app}.{name}" for app, name in expected - self.applied_migrations())
        if left:
            return f"after `migrate`, still unapplied: {', '.join(left)}"
        return None

    def stop_leftover_queries(self) -> None:
        """A killed manage.py may leave its query running in the server; end it."""
        with contextlib.suppress(Exception):
            self.context.server.scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name <> 'test_migrations' AND pid <> pg_backend_pid()",
                (self.database,))

    # -- data verdicts --------------------------------------------------------------------------

    @staticmethod
    def auto_now_columns(meta: dict) -> dict[str, set[str]]:
        return {table: set(info.get("auto_now", [])) for table, info in meta.get("tables_before", {}).items()}

    @staticmethod
    def note_skipped_rows(result: MigrationResult, report: SeedReport, moment: str) -> None:
        for table, reasons in sorted(report.skipped.items()):
            result.details.append(Finding("info", f"{moment} seeding skipped {len(reasons)} row(s) of {table}: "
                                          f"{reasons[0]}", {"table": table}))

    def judge_data(self, migration: MigrationInfo, result: MigrationResult, meta: dict,
                   before: Fingerprint, columns_before: dict[str, set[str]],
                   columns_applied: dict[str, set[str]],
                   collateral_columns: set[tuple[str, str | None]] = frozenset()) -> None:
        after = fingerprint(self.connection, self.auto_now_columns(meta))
        losses = []
        for loss in compare_fingerprints(before, after):
            table, column = loss[0], loss[1]
            if (table, column) in collateral_columns or (table, None) in collateral_columns:
                result.details.append(Finding("info", f"{table}.{column or '*'}: values went with the sibling "
                                              "migration rolled back alongside; not judged here", {"table": table}))
            else:
                losses.append(loss)
        # A column first altered then removed was destroyed by the removal: name that first.
        effects = sorted(meta.get("effects", []), key=lambda e: e["type"] == "AlterField")
        for table, column, count, example in losses:
            cause = next((e for e in effects if e["table"] == table.strip('"')
                          and (e["column"] is None or e["column"] == column)), None)
            what = f"column {table}.{column}: {count} row(s) changed or emptied" if column \
                else f"table {table}: {count} row(s) gone"
            message = f"{what} after rolling back {migration.name} (e.g. primary key {example})"
            if cause:
                message += f"; destroyed by the forward operation {cause['type']} ({cause['description']})"
            result.details.append(Finding("data_lost", message, {
                "table": table, "column": column, "rows": count, "example_pk": example,
                "operation": f"{cause['type']}: {cause['description']}" if cause else None}))
        kinds = {op.type for op in migration.operations}
        tables_gone = columns_before.keys() - columns_applied.keys()
        for table, columns in sorted(columns_applied.items()):
            created = sorted(columns - columns_before.get(table, set())) if table in columns_before else None
            # A renamed table or column is not new: the rollback renames it back, values and all.
            if created is None and tables_gone and kinds & {"RenameModel", "AlterModelTable"}:
                continue
            if created and "RenameField" in kinds and columns_before[table] - columns:
                continue
            if created is None:
                result.details.append(Finding("info", f"table {table} was created by {migration.name}; "
                                              "post-release rows in it are discarded by the rollback"))
            elif created:
                result.details.append(Finding("info", f"column(s) {', '.join(created)} of {table} were created "
                                              f"by {migration.name}; post-release values in them are discarded by "
                                              "the rollback"))
        result.data = "lost" if losses else "preserved"
        if losses and (migration.key in self.config.allow_data_loss
                       or migration.marker_present(MARKER_ALLOW_DATA_LOSS)):
            result.acknowledged = True

    def log_verdict(self, result: MigrationResult) -> None:
        note = f"schema {result.schema}, data {result.data}" + (" (acknowledged)" if result.acknowledged else "")
        self.context.log.info(f"{result.label}: {note}")
        for finding in result.details:
            if finding.kind != "info" or self.context.log.verbosity >= 2:
                self.context.log.info(f"    {finding.kind}: {finding.message}")


# ---------------------------------------------------------------------------------------------
# Reports: console summary, JSON, JUnit XML, GitHub Actions (all read the same RunResult)
# ---------------------------------------------------------------------------------------------


def report_json(result: RunResult) -> dict[str, object]:
    """The JSON report of CONTRACT.md (schema 1), plus additions: line, acknowledged, processes."""
    return {
        "schema": REPORT_SCHEMA_VERSION,
        "ok": result.ok,
        "duration_s": round(result.duration_s, 2),
        "database": {"vendor": "postgresql", "server_version": result.server_version,
                     "ephemeral": result.ephemeral},
        "checks": [dataclasses.asdict(check) for check in result.checks],
        "apps": [
            {
                "app": app.app,
                "error": app.error,
                "migrations": [
                    {
                        "name": m.name, "file": m.file, "line": m.line, "apply": m.apply,
                        "rollback": m.rollback, "reapply": m.reapply, "schema": m.schema, "data": m.data,
                        "acknowledged": m.acknowledged, "error": m.error,
                        "details": [finding.to_json() for finding in m.details],
                        "duration_s": {"rollback": m.durations.get("rollback"), "reapply": m.durations.get("reapply")},
                    }
                    for m in app.migrations
                ],
            }
            for app in result.apps
        ],
        "skipped_apps": result.skipped_apps,
        "processes": result.processes,
    }


def junit_xml(result: RunResult) -> ElementTree.ElementTree:
    """One test case per check and per migration step (rollback, reapply, schema, data)."""
    suite = ElementTree.Element("testsuite", name="test_migrations", time=f"{result.duration_s:.2f}")
    cases = 0
    failures = 0
    skipped = 0

    def add(classname: str, name: str, seconds: float | None, failure: str | None, skip: str | None = None) -> None:
        nonlocal cases, failures, skipped
        case = ElementTree.SubElement(suite, "testcase", classname=classname, name=name,
                                      time=f"{seconds or 0:.2f}")
        cases += 1
        if failure:
            failures += 1
            ElementTree.SubElement(case, "failure", message=failure[:500]).text = failure
        elif skip:
            skipped += 1
            ElementTree.SubElement(case, "skipped", message=skip)

    for check in result.checks:
        add("checks", check.name, check.duration_s, check.detail if check.status == "failed" else None,
            check.detail if check.status == "skipped" else None)
    for app in result.apps:
        if app.error:
            add(app.app, "app", None, app.error)
        for m in app.migrations:
            rollback_bad = m.rollback in ("failed", "not_run") or (m.rollback == "irreversible" and not m.acknowledged)
            add(f"{app.app}.{m.name}", "rollback", m.durations.get("rollback"),
                m.error if rollback_bad else None,
                m.error if m.rollback in ("blocked", "irreversible") and not rollback_bad else None)
            add(f"{app.app}.{m.name}", "reapply", m.durations.get("reapply"),
                m.error if m.reapply == "failed" else None, "not run" if m.reapply == "not_run" else None)
            schema_text = "\n".join(f.message for f in m.details if f.kind == "schema")
            add(f"{app.app}.{m.name}", "schema", None, schema_text if m.schema == "differs" else None,
                "not checked" if m.schema == "not_checked" else None)
            data_text = "\n".join(f.message for f in m.details if f.kind == "data_lost")
            add(f"{app.app}.{m.name}", "data", None, data_text if m.data == "lost" and not m.acknowledged else None,
                "not checked" if m.data == "not_checked" else None)
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return ElementTree.ElementTree(suite)


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
                first = next((f.message for f in m.details if f.kind in ("schema", "data_lost")), None)
                text = m.error or first or ""
                lines.append((m.file, m.line, f"{m.label}: {', '.join(m.problems)}" + (f": {text}" if text else "")))
    return lines


def github_annotations(result: RunResult, limit: int = 10, root: Path | None = None) -> list[str]:
    """`::error` workflow commands (GitHub shows at most 10 per step: the first ones matter).

    GitHub resolves `file=` from the repository root (`root`, $GITHUB_WORKSPACE), which is not
    the Django project's folder when manage.py lives in a subfolder.
    """
    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    out = []
    for file, line, message in failure_lines(result)[:limit]:
        if file and root is not None and result.project_dir is not None:
            file = os.path.relpath(result.project_dir / file, root)
        location = f" file={file},line={line or 1}" if file else ""
        out.append(f"::error{location},title=Migration test::{escape(message)}".replace("::error,", "::error "))
    return out


def markdown_summary(result: RunResult) -> str:
    status = "passed" if result.ok else "FAILED"
    lines = [f"## Migration tests {status}", "",
             f"PostgreSQL {result.server_version.split()[0]}, {result.duration_s:.1f}s, "
             f"{result.processes} manage.py processes", "",
             "| check | status | detail |", "| --- | --- | --- |"]
    for check in result.checks:
        lines.append(f"| {check.name} | {check.status} | {(check.detail or '').replace('|', '/')[:300]} |")
    lines += ["", "| migration | rollback | re-apply | schema | data | notes |",
              "| --- | --- | --- | --- | --- | --- |"]
    for app in result.apps:
        for m in app.migrations:
            notes = "; ".join([*([m.error] if m.error else []),
                               *(f.message for f in m.details if f.kind != "info")])
            ack = " (acknowledged)" if m.acknowledged else ""
            lines.append(f"| `{m.label}` | {m.rollback}{ack} | {m.reapply} | {m.schema} | {m.data} | "
                         f"{notes.replace('|', '/')[:500]} |")
    return "\n".join(lines) + "\n"


def print_summary(result: RunResult, log: Log) -> None:
    rows = [("migration", "apply", "rollback", "re-apply", "schema", "data", "time")]
    for app in result.apps:
        for m in app.migrations:
            seconds = sum(v for v in m.durations.values() if v)
            rollback = m.rollback + ("*" if m.acknowledged and m.rollback == "irreversible" else "")
            data = m.data + ("*" if m.acknowledged and m.data == "lost" else "")
            rows.append((m.label, m.apply, rollback, m.reapply, m.schema, data,
                         f"{seconds:.1f}s" if seconds else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    log.info("")
    for row in rows:
        log.info("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if any(m.acknowledged for app in result.apps for m in app.migrations):
        log.info("(* acknowledged on purpose)")
    problems = failure_lines(result)
    log.info("")
    if problems:
        log.info(f"FAILED: {len(problems)} problem(s)")
        for _, _, message in problems:
            log.info(f"  - {message}")
    else:
        log.info(f"OK: all checks passed in {result.duration_s:.1f}s ({result.processes} manage.py processes)")


def write_reports(result: RunResult, config: Config, log: Log, environ: dict[str, str]) -> None:
    if config.report_json:
        config.report_json.parent.mkdir(parents=True, exist_ok=True)
        config.report_json.write_text(json.dumps(report_json(result), indent=2) + "\n", encoding="utf-8")
    if config.junit_xml:
        config.junit_xml.parent.mkdir(parents=True, exist_ok=True)
        junit_xml(result).write(config.junit_xml, encoding="utf-8", xml_declaration=True)
    if environ.get("GITHUB_ACTIONS") == "true":
        for annotation in github_annotations(result, root=Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())):
            print(log.mask(annotation), flush=True)
        summary_path = environ.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            with open(summary_path, "a", encoding="utf-8") as summary:
                summary.write(log.mask(markdown_summary(result))[: 1024 * 1024 - 1])


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def discover(runner: ManagePy, server: Server, config: Config, log: Log) -> tuple[Project, str]:
    """Load the project once (no database writes) and make sure it uses our scratch database."""
    head = server.create_database("head")
    head_url = server.url_for(head)
    probe = runner.run(["shell", "-c", PROBE_CODE], head_url)
    if not probe.ok:
        raise UsageError(f"cannot load the Django project with {config.manage} (settings {config.settings}): "
                         f"{probe.error_summary()}")
    try:
        data = extract_marked_json(probe.stdout)
    except ValueError:
        raise UsageError(f"{config.manage} shell printed no project description; is it a Django manage.py?") from None
    project = project_from_probe(data)
    if project.vendor == "postgresql" and project.database_name != head:
        raise UsageError(f"the settings {config.settings} do not take the database from DATABASE_URL (they name "
                         f"{project.database_name!r}); the tool would migrate that database instead of its scratch "
                         "one, so it stops here. Read DATABASES from DATABASE_URL (dj-database-url)")
    if project.vendor != "postgresql":
        raise UsageError(f"the settings {config.settings} use a {project.vendor} database although DATABASE_URL points "
                         "at PostgreSQL; read DATABASES from DATABASE_URL (dj-database-url) so the tool can "
                         "direct every manage.py call to its scratch database")
    return project, head_url


def test_project(config: Config, log: Log, runner: ManagePy, server: Server) -> RunResult:
    started = time.monotonic()
    project, head_url = discover(runner, server, config, log)
    selected, skipped = select_apps(project, config.apps, config.project_dir)
    for note in skipped:
        log.detail(f"skipping {note}; name it with --app to include it")
    context = WindowContext(config, project, server, runner, log)
    windows = {app: window_of(project.migrations_of(app), config.depth) for app in selected}
    for app, window in windows.items():
        log.info(f"{app}: testing {len(window)} migration(s), {window[0].name} .. {window[-1].name}")
    if project.conflicts:
        log.info("conflicting migrations: app windows are not tested until they are merged")
        windows = {}
    app_windows = [AppWindow(context, app, window) for app, window in windows.items()]
    # With fewer apps than jobs, an app's window is split into runs tested side by side.
    parts = max(1, config.jobs // max(len(app_windows), 1))
    pool = ThreadPoolExecutor(max_workers=config.jobs + 1)
    try:
        # The app windows do not need the head database: they start at once, beside the checks.
        forward = pool.submit(run_forward_checks, runner, head_url, project, log)
        deploy = pool.submit(run_check_deploy, runner, head_url, log)
        chains: list[tuple[AppWindow, Future]] = []
        for app_window in app_windows:
            runs = app_window.split(app_window.mark_irreversible(), parts)
            for index, tested in enumerate(runs):
                chain = WindowChain(app_window, tested, restore=index == len(runs) - 1)
                chains.append((app_window, pool.submit(chain.run)))
        forward_check, missing_check = forward.result()
        checks = [forward_check, deploy.result(), missing_check]
        errors: dict[str, list[str | None]] = {w.app: [] for w in app_windows}
        for app_window, future in chains:
            errors[app_window.app].append(future.result())
        apps = [w.result(errors[w.app]) for w in app_windows]
    except BaseException:
        runner.kill_all()  # threads blocked on children return at once, and start nothing new
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    version = str(server.server_version).split()[0]  # "15.18", without the packager's suffix
    return RunResult(checks, apps, time.monotonic() - started, version, server.ephemeral,
                     runner.started, skipped, config.project_dir)


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt, so a CI cancellation cleans up like Ctrl-C.

    SIGINT is set explicitly too: a process started in the background inherits it ignored.
    """
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = Log(args.verbosity)
    runner = None
    try:
        config = config_from_args(args)
        log.secret_urls.append(config.database_url or os.environ.get("DATABASE_URL") or "")
        runner = ManagePy(config, log)
        with interrupt_on_signals(), postgres_server(config.database_url, dict(os.environ),
                                                     config.project_dir, log) as server:
            log.secret_urls.append(server.url_for("postgres"))
            try:
                result = test_project(config, log, runner, server)
            finally:
                runner.kill_all()
        print_summary(result, log)
        write_reports(result, config, log, dict(os.environ))
        return EXIT_OK if result.ok else EXIT_MIGRATION_PROBLEM
    except UsageError as error:
        print(f"test_migrations: error: {log.mask(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Interrupted):
        if runner is not None:
            runner.kill_all()
        print("test_migrations: interrupted; scratch databases and servers were removed", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
