#!/usr/bin/env python3
"""Prove that a pg_dump backup of the project's database restores completely.

On a scratch PostgreSQL database: `manage.py migrate`, seed representative rows into every table
(edge values, NULLs, unicode, maximum lengths, foreign keys), `pg_dump --format=custom`,
`pg_restore` into a second, fresh scratch database, then compare the two: per-table row counts
and content checksums, the `django_migrations` table, sequence positions, and the schema
(test_migrations' catalog snapshot: tables, views, columns, constraints, indexes, sequences,
triggers, functions, types, extensions). Exit 1 with what differs when anything does.

The database named in the URL is only used to connect: it is never migrated, written or dropped.
Scratch databases (named `tm_scratch_...`) are dropped at the end, also on errors and Ctrl-C.

It uses the public API of the migration tool's package (`migration_check`, beside this folder):
server resolution, the throwaway cluster, scratch databases, the settings guard, the seeder and
the schema snapshot, so both tools behave the same.

Exit status: 0 the backup restored identically; 1 it did not (or a step failed: migrate,
pg_dump, pg_restore); 2 usage or configuration error (one line, no traceback); 130 interrupted.

Sections, in reading order: constants, CLI, PostgreSQL client tools, seeding, snapshots and
comparison, the verification steps, reports, main.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import migration_check as tm  # noqa: E402 - the migration tool's package, in the repository root

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

EXIT_OK = tm.EXIT_OK
EXIT_MISMATCH = 1
EXIT_USAGE = tm.EXIT_USAGE
EXIT_INTERRUPTED = tm.EXIT_INTERRUPTED

DEFAULT_ROWS = 3
DEFAULT_STEP_TIMEOUT_S = 600.0
MAX_ANNOTATIONS = 10  # GitHub shows at most 10 error annotations per step
MAX_LISTED = 10  # names listed per difference before "... and N more"
PROG = "verify_backup.py"
# The host project this script verifies (migration-check's own default is ./manage.py instead).
REPOSITORY_MANAGE = Path(__file__).resolve().parent.parent / "manage.py"

EXAMPLES = """\
examples:
  # on a throwaway local PostgreSQL (started and removed; needs PostgreSQL binaries)
  python scripts/verify_backup.py

  # on a server (only scratch databases are created there; the URL's database is not touched)
  python scripts/verify_backup.py --database-url postgres://postgres:postgres@localhost:5432/postgres

  # keep the verified dump, show every command
  python scripts/verify_backup.py --verbose --keep-dump reports/backup.dump

exit status: 0 the backup restored identically, 1 a difference or a failed step (listed),
2 usage or configuration error, 130 interrupted (scratch databases are still removed)
"""


class VerificationFailed(Exception):
    """A step of the verification failed (migrate, pg_dump, pg_restore): exit 1 with its output."""


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What the user asked for, validated."""

    manage: Path  # the project's manage.py
    settings: str  # Django settings module given to manage.py
    database_url: str | None  # a PostgreSQL server, or None for $DATABASE_URL / .env / throwaway
    rows: int  # rows seeded per table
    keep_dump: Path | None  # where to copy the verified dump
    verbosity: int  # 0-3, as in Django
    pg_dump_args: tuple[str, ...] = ()  # extra pg_dump arguments (hidden; used by the tests)

    @property
    def project_dir(self) -> Path:
        return self.manage.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Verify that a pg_dump backup of the project's database restores completely: migrate "
            "a scratch database, seed representative data, pg_dump --format=custom, pg_restore "
            "into a fresh database, and compare row counts, content checksums, django_migrations, "
            "sequences and schema."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL server to create scratch databases on (default: "
                             "$DATABASE_URL, then DATABASE_URL in .env; a throwaway local cluster "
                             "when none is PostgreSQL)")
    parser.add_argument("--manage", type=Path, default=REPOSITORY_MANAGE, metavar="PATH",
                        help="the manage.py to drive (default: manage.py in the repository root)")
    parser.add_argument("--settings", metavar="MODULE",
                        default=os.environ.get("DJANGO_SETTINGS_MODULE") or tm.DEFAULT_SETTINGS,
                        help="Django settings module (default: $DJANGO_SETTINGS_MODULE, else "
                             f"{tm.DEFAULT_SETTINGS})")
    parser.add_argument("--rows", type=tm.parse_positive_int, default=DEFAULT_ROWS, metavar="N",
                        help=f"rows seeded per table (default: {DEFAULT_ROWS}; the first at the "
                             "upper edges, the second NULL wherever allowed, then typical ones)")
    parser.add_argument("--keep-dump", type=Path, metavar="PATH",
                        help="copy the verified dump file there (default: deleted)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=2,
                        default=1, help="show every command, its duration and output on failure")
    output.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=0,
                        help="print only differences and errors")
    # Testing aid: lets the tests make an incomplete backup on purpose
    # (e.g. --pg-dump-arg=--exclude-table-data=django_migrations).
    parser.add_argument("--pg-dump-arg", dest="pg_dump_args", action="append", default=[],
                        help=argparse.SUPPRESS)
    return parser


def validate(args: argparse.Namespace) -> Options:
    manage = args.manage.resolve()
    if not manage.is_file():
        raise tm.UsageError(f"{args.manage} does not exist; pass --manage path/to/manage.py")
    if not re.fullmatch(r"[A-Za-z_][\w.]*", args.settings):
        raise tm.UsageError(f"--settings {args.settings!r} is not a Python module path")
    keep_dump = args.keep_dump.resolve() if args.keep_dump else None
    if keep_dump is not None and keep_dump.is_dir():
        raise tm.UsageError(f"--keep-dump {args.keep_dump} is a folder; give a file name")
    return Options(manage=manage, settings=args.settings, database_url=args.database_url,
                   rows=args.rows, keep_dump=keep_dump, verbosity=args.verbosity,
                   pg_dump_args=tuple(args.pg_dump_args))


# ---------------------------------------------------------------------------------------------
# PostgreSQL client tools (pg_dump, pg_restore)
# ---------------------------------------------------------------------------------------------


def tool_major(path: Path) -> int | None:
    """The major version printed by `path --version` (pg_dump (PostgreSQL) 15.10 -> 15)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
        match = re.search(r"\)\s*(\d+)", out.stdout) or re.search(r"(\d+)(?:\.\d+)", out.stdout)
        if out.returncode == 0 and match:
            return int(match.group(1))
    return None


def find_client_tool(name: str, server_major: int) -> Path:
    """`name` (pg_dump or pg_restore) of a major version >= the server's, the closest one first.

    Looks where test_migrations finds server binaries (its bindir discovery, preferring the
    server's major version), in /usr/lib/postgresql/*/bin, then on PATH. An older pg_dump refuses
    to dump a newer server, so the version matters.
    """
    candidates: list[Path] = []
    bindir = tm.find_postgres_bindir(preferred_major=server_major)
    if bindir is not None:
        candidates.append(bindir / name)
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")))
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    versions = {path: tool_major(path) for path in dict.fromkeys(candidates) if path.is_file()}
    usable = [(major, path) for path, major in versions.items() if major and major >= server_major]
    if not usable:
        found = ", ".join(f"{path} ({major or '?'})" for path, major in versions.items()) or "none"
        raise tm.UsageError(
            f"no {name} of PostgreSQL {server_major} or newer found (found: {found}); install the "
            f"client tools, e.g. apt-get install postgresql-client-{server_major}"
        )
    usable.sort(key=lambda item: (item[0] != server_major, item[0]))
    return usable[0][1]


def libpq_env(address: tm.ServerAddress, dbname: str) -> dict[str, str]:
    """Connection settings for pg_dump/pg_restore as libpq environment variables.

    The password goes through the environment, never the command line (visible in `ps`).
    """
    env = {"PGHOST": address.host or "localhost", "PGPORT": str(address.port),
           "PGUSER": address.user, "PGDATABASE": dbname, "PGAPPNAME": "verify_backup",
           "PGCONNECT_TIMEOUT": "10"}
    if address.password is not None:
        env["PGPASSWORD"] = address.password
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if key in address.options:
            env["PG" + key.upper()] = address.options[key]
    return env


# ---------------------------------------------------------------------------------------------
# Seeding: representative rows in every table, by test_migrations' catalog-driven seeder
# ---------------------------------------------------------------------------------------------


@dataclass
class SeedSummary:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows inserted
    unseeded: dict[str, str] = field(default_factory=dict)  # table -> why (last error)


def seed_profiles(rows: int) -> tuple[str, ...]:
    """test_migrations' profiles for `rows` rows: the upper edges, the lower edges, then typical."""
    return ("max", "min", *("typical",) * max(rows - 2, 0))[:rows]


def seed_database(connection: object, rows: int, log: tm.Log) -> SeedSummary:
    """Insert `rows` rows into every user table except django_migrations (compared as migrate
    recorded it), with the seeder of the migration tests (tm.Seeder): the first row at the upper
    edges (maximum lengths in non-ASCII text with quotes, backslash, newline and a non-BMP
    character, largest numbers, far dates, IPv6), the second at the lower ones (NULL wherever
    allowed), the others typical. A row a constraint rejects is retried with ordinary values in
    that constraint's columns, then skipped; a table that takes no row is reported.
    """
    tables = tm.user_tables(connection)
    report = tm.Seeder(connection).seed(tables, seed_profiles(rows))
    summary = SeedSummary()
    for table in tables:
        inserted = summary.rows[table] = report.inserted.get(table, 0)
        rejected = report.skipped.get(table, [])
        for reason in rejected:
            log.debug(f"  {table}: {reason} (rejected)")
        if inserted == 0:
            summary.unseeded[table] = rejected[-1] if rejected else "no column to put a value in"
            log.info(f"  warning: could not seed {table}: {summary.unseeded[table]}")
        else:
            log.detail(f"  seeded {inserted} row(s) into {table}")
    return summary


# ---------------------------------------------------------------------------------------------
# Snapshots and comparison
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableState:
    rows: int
    checksum: str  # md5 of every row's text, sorted byte-wise


@dataclass
class Snapshot:
    """What a backup must preserve, read from one database."""

    tables: dict[str, TableState]
    migrations: list[tuple[str, str]]  # django_migrations (app, name), in id order
    sequences: dict[str, str | None]  # sequence -> last_value (None: never used)
    # test_migrations' catalog snapshot: {"index x": {"definition": ...}, "column t.c": {...}};
    # django_migrations' own schema is left out there (its rows are compared above instead).
    schema: tm.SchemaSnapshot


@dataclass(frozen=True)
class Difference:
    kind: str  # table | django_migrations | sequence | schema
    subject: str
    detail: str

    def line(self) -> str:
        return f"{self.kind} {self.subject}: {self.detail}"


# Every user table (test_migrations' definition), django_migrations included.
TABLES_SQL = f"""
SELECT c.oid::regclass::text, n.nspname = 'public' AND c.relname = 'django_migrations'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {tm.USER_SCHEMAS} AND {tm.NOT_FROM_EXTENSION.format(oid="c.oid")}
ORDER BY n.nspname, c.relname
"""

SEQUENCES_SQL = """
SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), last_value::text
FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
"""


def take_snapshot(connection: object) -> Snapshot:
    tables: dict[str, TableState] = {}
    migrations: list[tuple[str, str]] = []
    with connection.cursor() as cursor:
        cursor.execute(TABLES_SQL)
        for table, is_migrations in cursor.fetchall():
            cursor.execute(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text "
                f'COLLATE "C"), \'\')) FROM {table} AS t'
            )
            count, checksum = cursor.fetchone()
            tables[table] = TableState(count, checksum)
            if is_migrations:
                cursor.execute("SELECT app, name FROM public.django_migrations ORDER BY id")
                migrations = [(app, name) for app, name in cursor.fetchall()]
        cursor.execute(SEQUENCES_SQL)
        sequences = dict(cursor.fetchall())
    return Snapshot(tables, migrations, sequences, tm.snapshot_schema(connection))


def listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def normalized_definition(definition: str) -> str:
    """A schema attribute (index, constraint, default...) without casts, parentheses, extra spaces.

    PostgreSQL stores expressions parsed and prints them back (deparses) when asked; an
    expression restored from a dump is parsed again and may print with casts in other places,
    e.g. a partial index `WHERE status = ANY (ARRAY['draft', 'sent'])` on a varchar column reads
    `((status)::text = ANY ((ARRAY['draft'::character varying, ...])::text[]))` in the source and
    `... ANY (ARRAY[('draft'::character varying)::text, ...])` restored. Both mean the same, so
    the comparison ignores the casts and parentheses in which such prints differ.
    """
    text = re.sub(r"::[a-z_][a-z0-9_ ]*(?:\([0-9, ]+\))?(?:\[\])*", "", definition)
    text = " ".join(re.sub(r"[()]", " ", text).split())
    return re.sub(r"\s*([\[\],])\s*", r"\1", text)


def schema_changes(source: dict[str, str], restored: dict[str, str]) -> list[str]:
    """The attributes of one schema object (type, default, definition...) that differ, each as
    "<attribute> <source value> in the source, <restored value> restored"; values are compared
    normalized (normalized_definition) so a restored expression printed differently is equal."""
    changes = []
    for attribute in sorted(source.keys() | restored.keys()):
        was, now = source.get(attribute), restored.get(attribute)
        if was is not None and now is not None:
            if normalized_definition(was) == normalized_definition(now):
                continue
            was, now = tm.describe_change(was, now)
        elif was == now:
            continue
        changes.append(f"{attribute} {shown(was)} in the source, {shown(now)} restored")
    return changes


def shown(value: str | None) -> str:
    return "(none)" if value is None else repr(value)


def compare_snapshots(source: Snapshot, restored: Snapshot) -> list[Difference]:
    """Everything the restored database lost or changed, most telling first."""
    differences: list[Difference] = []
    source_keys = {f"{app}.{name}" for app, name in source.migrations}
    restored_keys = {f"{app}.{name}" for app, name in restored.migrations}
    if source.migrations != restored.migrations:
        missing = [f"{a}.{n}" for a, n in source.migrations if f"{a}.{n}" not in restored_keys]
        extra = [f"{a}.{n}" for a, n in restored.migrations if f"{a}.{n}" not in source_keys]
        detail = (f"{len(source.migrations)} migrations recorded in the source, "
                  f"{len(restored.migrations)} restored")
        if missing:
            detail += f"; missing: {listed(missing)}"
        if extra:
            detail += f"; unexpected: {listed(extra)}"
        if not missing and not extra:
            detail += "; same migrations in another order"
        differences.append(Difference("django_migrations", "public.django_migrations", detail))
    for name, state in source.tables.items():
        other = restored.tables.get(name)
        if other is None:
            differences.append(Difference(
                "table", name, f"missing in the restore ({state.rows} rows in the source)"))
        elif other.rows != state.rows:
            differences.append(Difference(
                "table", name, f"{state.rows} rows in the source, {other.rows} restored"))
        elif other.checksum != state.checksum:
            differences.append(Difference(
                "table", name, f"same row count ({state.rows}) but different content "
                f"(checksum {state.checksum[:12]} in the source, {other.checksum[:12]} restored)"))
    for name in restored.tables.keys() - source.tables.keys():
        differences.append(Difference("table", name, "in the restore but not in the source"))
    for name, value in source.sequences.items():
        if name not in restored.sequences:
            differences.append(Difference("sequence", name, "missing in the restore"))
        elif restored.sequences[name] != value:
            differences.append(Difference(
                "sequence", name,
                f"last value {value} in the source, {restored.sequences[name]} restored"))
    for key in sorted(source.schema.keys() | restored.schema.keys(), key=tm.object_order):
        if key not in restored.schema:
            differences.append(Difference("schema", key, "missing in the restore"))
        elif key not in source.schema:
            differences.append(Difference("schema", key, "in the restore but not in the source"))
        else:
            changed = schema_changes(source.schema[key], restored.schema[key])
            if changed:
                differences.append(Difference("schema", key, "; ".join(changed)))
    return differences


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    server_version: str = ""
    tables: int = 0
    seeded_rows: int = 0
    unseeded: dict[str, str] = field(default_factory=dict)
    dump_bytes: int = 0
    pg_dump: str = ""
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None  # a failed step
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.differences


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def how_it_ended(program: str, returncode: int) -> str:
    """A failed command that printed nothing, named (a damaged dump can crash pg_restore itself)."""
    name = Path(program).name
    if returncode < 0:
        try:
            return f"{name} was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"{name} was killed by signal {-returncode}"
    return f"{name} exited with status {returncode}"


def run_step(label: str, argv: list[str], env: dict[str, str], log: tm.Log) -> str:
    """Run one external command; flush a progress line first; raise VerificationFailed on error."""
    log.write(f"{label}...", 1, end="")
    log.detail(f"\n  $ {' '.join(argv)}")
    started = time.monotonic()
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True,
                                timeout=DEFAULT_STEP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        log.info(" TIMEOUT")
        raise VerificationFailed(
            f"{label} did not finish within {DEFAULT_STEP_TIMEOUT_S:.0f}s") from None
    except OSError as error:
        log.info(" FAILED")
        raise VerificationFailed(f"{label}: cannot run {argv[0]}: {error}") from None
    elapsed = time.monotonic() - started
    output = (result.stdout or "") + (result.stderr or "")
    if result.returncode != 0:
        log.info(f" FAILED ({elapsed:.1f}s)")
        first = next((line for line in output.splitlines() if "error" in line.lower()),
                     tail(output, 1) or how_it_ended(argv[0], result.returncode))
        log.detail(tail(output))
        raise VerificationFailed(f"{label} failed: {first.strip()}")
    log.info(f" OK ({elapsed:.1f}s)")
    log.debug(tail(output, 200))
    return output


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment handed to every child process, in one place."""
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


def check_settings(server: tm.Server, dbname: str, options: Options, log: tm.Log) -> None:
    """Refuse settings that ignore DATABASE_URL before anything is migrated: `migrate` would
    run on whatever database they name (the migration tool's guard, with its probe)."""
    runner = tm.StepRunner(options.manage, options.settings, DEFAULT_STEP_TIMEOUT_S, log)
    tm.probe_project(runner, server.url_for(dbname), dbname)


def migrate(server: tm.Server, dbname: str, options: Options, log: tm.Log) -> None:
    argv = [sys.executable, str(options.manage), "migrate", "--noinput", "--no-color",
            "-v", str(max(0, options.verbosity - 1))]
    env = child_env({"DATABASE_URL": server.url_for(dbname),
                     "DJANGO_SETTINGS_MODULE": options.settings})
    run_step(f"Migrating scratch database {dbname}", argv, env, log)


def dump_database(server: tm.Server, dbname: str, path: Path, options: Options,
                  log: tm.Log) -> None:
    pg_dump = find_client_tool("pg_dump", server_major(server))
    argv = [str(pg_dump), "--format=custom", "--no-password", f"--file={path}",
            *options.pg_dump_args]
    run_step(f"Dumping {dbname} with {pg_dump} --format=custom", argv,
             child_env(libpq_env(server.address, dbname)), log)


def restore_database(server: tm.Server, dbname: str, path: Path, log: tm.Log) -> None:
    pg_restore = find_client_tool("pg_restore", server_major(server))
    # --exit-on-error: the first error is the one worth reading (a damaged file reports it first).
    argv = [str(pg_restore), "--exit-on-error", "--no-password", f"--dbname={dbname}", str(path)]
    run_step(f"Restoring into fresh database {dbname}", argv,
             child_env(libpq_env(server.address, dbname)), log)


def server_major(server: tm.Server) -> int:
    match = re.match(r"(\d+)", str(server.server_version))
    return int(match.group(1)) if match else tm.PREFERRED_PG_MAJOR


@contextlib.contextmanager
def connected(server: tm.Server, dbname: str) -> Iterator[object]:
    connection = server.connect(dbname)
    try:
        yield connection
    finally:
        connection.close()


def verify(server: tm.Server, options: Options, log: tm.Log) -> Result:
    """The whole check on `server`; scratch databases are left for postgres_server to drop."""
    result = Result(server_version=str(server.server_version))
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="verify-backup-"))
    try:
        source = server.create_database("backup_source")
        log.detail(f"Created scratch database {source}")
        check_settings(server, source, options, log)
        migrate(server, source, options, log)
        log.info(f"Seeding {options.rows} row(s) per table...")
        with connected(server, source) as connection:
            summary = seed_database(connection, options.rows, log)
            before = take_snapshot(connection)
        result.tables, result.unseeded = len(before.tables), summary.unseeded
        result.seeded_rows = sum(summary.rows.values())
        log.info(f"  {result.seeded_rows} rows in {len(summary.rows) - len(summary.unseeded)} of "
                 f"{len(summary.rows)} tables")
        dump = workdir / "backup.dump"
        dump_database(server, source, dump, options, log)
        result.dump_bytes = dump.stat().st_size if dump.exists() else 0
        if options.keep_dump is not None:
            options.keep_dump.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dump, options.keep_dump)
            log.info(f"  dump kept at {options.keep_dump}")
        restored = server.create_database("backup_restored")
        log.detail(f"Created scratch database {restored}")
        restore_database(server, restored, dump, log)
        log.info("Comparing the restored database with the source...")
        with connected(server, restored) as connection:
            after = take_snapshot(connection)
        result.differences = compare_snapshots(before, after)
    except VerificationFailed as error:
        result.error = str(error)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        result.duration_s = time.monotonic() - started
    return result


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def report_console(result: Result, log: tm.Log, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    if result.error:
        print(f"{PROG}: error: {log.mask(result.error)}", file=stream, flush=True)
        return
    for difference in result.differences:
        print(f"MISMATCH {log.mask(difference.line())}", file=stream, flush=True)
    if result.differences:
        log.write(f"Backup verification FAILED: {len(result.differences)} difference(s) between "
                  "the source and the restored database", 0)
    else:
        log.info(f"Backup verified: {result.tables} tables, {result.seeded_rows} seeded rows, "
                 f"django_migrations, sequences and schema identical after pg_restore "
                 f"(dump {result.dump_bytes} bytes, {result.duration_s:.1f}s)")


def report_github(result: Result, environ: dict[str, str]) -> None:
    """Annotations (the first few) and the step summary (everything) on GitHub Actions."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return
    problems = [result.error] if result.error else [d.line() for d in result.differences]
    for line in problems[:MAX_ANNOTATIONS]:
        message = line.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::error title=Backup verification::{message}", flush=True)
    summary_path = environ.get("GITHUB_STEP_SUMMARY")
    if not summary_path:
        return
    lines = ["## Backup verification", ""]
    if result.ok:
        lines.append(f"Passed: {result.tables} tables, {result.seeded_rows} seeded rows restored "
                     f"identically (PostgreSQL {result.server_version}, "
                     f"dump {result.dump_bytes} bytes).")
    else:
        lines += ["Failed:", ""] + [f"- {line}" for line in problems]
    if result.unseeded:
        lines += ["", "Tables that could not be seeded (compared empty):", ""]
        lines += [f"- `{name}`: {why}" for name, why in result.unseeded.items()]
    with contextlib.suppress(OSError), open(summary_path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = tm.Log(args.verbosity)
    # SIGINT too, explicitly (as test_migrations.py does): a process started in the background
    # by a non-interactive shell inherits SIGINT ignored, and Python then leaves it so.
    previous = {signum: signal.signal(signum, raise_keyboard_interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        options = validate(args)
        with tm.postgres_server(options.database_url, dict(os.environ), options.project_dir,
                                log) as server:
            result = verify(server, options, log)
    except tm.UsageError as error:
        print(tm.error_line(PROG, str(error)), file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; scratch databases were removed", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    report_console(result, log)
    report_github(result, dict(os.environ))
    return EXIT_OK if result.ok else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
