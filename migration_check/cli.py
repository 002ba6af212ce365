"""Command line: options, their validation, the configuration of a run, exit codes, `main()`.

Owns: what the user can ask for (`build_parser`, `Config`) and how a run ends (exit status, the
one-line error). The run itself is `run.run_project`; reports are written by `reports`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .config import (
    DEFAULT_DEPTH,
    DEFAULT_STEP_TIMEOUT_S,
    DEFAULT_TRAFFIC_SESSIONS,
    DEFAULT_VOLUME_MAX,
    Config,
    MigrationKey,
)
from .errors import FaultDescription, InfrastructureFault, Interrupted, UsageError
from .log import Log, error_line, mask_passwords
from .postgres.address import ServerAddress, resolve_server_url
from .processes.steps import ISOLATIONS, default_isolation
from .project.defaults import check_settings_exist, find_settings
from .project.pyproject import KEYS, config_tokens, read_table
from .project.selection import parse_revision, parse_shard
from .proofs.rehearsal.sizes import read_table_sizes
from .reports import print_summary, write_reports
from .reports.merge import merge_reports
from .results import RunResult
from .run import run_project

EXIT_OK = 0
EXIT_MIGRATION_PROBLEM = 1
EXIT_USAGE = 2
EXIT_FAULT = 3  # the run could not finish: the server failed it (faults.py), not a migration
EXIT_INTERRUPTED = 130

PROG = "test_migrations"  # the prefix of every error line (the contract's `test_migrations: error:`)
COMMAND = "migration-check"  # the installed console script


def default_manage() -> Path:
    """The `manage.py` a run drives when --manage is not given: the one in the current folder."""
    return Path.cwd() / "manage.py"


EXAMPLES = """\
examples:
  migration-check --verbose
      every project app, newest 5 migrations each, on a throwaway PostgreSQL cluster
      (or on the server in $DATABASE_URL / .env, in scratch databases only)
  migration-check --app shop --depth all
      the whole history of one app
  migration-check --database-url postgres://postgres:pw@localhost:5432/postgres \\
      --junit-xml reports/junit.xml --report-json reports/migrations.json
      CI: reports for the build server
  migration-check --allow-data-loss shop.0007_remove_order_note
      accept a known destructive migration (or put the line
      "# test_migrations: allow-data-loss" in the migration file)
  migration-check --allow-breaking shop.0008_product_slug
      accept a migration whose schema breaks the previous release during the deploy (or put
      the line "# test_migrations: allow-breaking-change" in the migration file)
  migration-check --since origin/main
      a pull request: only the migrations added or modified since origin/main
  migration-check --shard 2/4 --report-json reports/shard-2.json
  migration-check --merge-reports reports/shard-*.json --junit-xml reports/junit.xml
      a big project over four jobs, then one summary

configuration: [tool.migration_check] in the pyproject.toml beside manage.py sets the same options
(apps, depth, step-timeout, jobs, allow-data-loss, fail-on-hazards, ...); options given here win.

exit status: 0 all passed, 1 a migration problem was found, 2 usage or configuration error,
3 the run could not finish (the server failed it: stopped, unreachable, sessions ended, no free
connections; nothing is blamed on a migration), 130 interrupted (scratch databases and servers
are removed in every case)
"""


def parse_positive_int(value: str) -> int:
    """A whole number of at least 1 (argparse `type=`)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def parse_depth(value: str) -> int | None:
    """`--depth`: a positive whole number, or `all` (None: the whole history)."""
    if value.strip().lower() == "all":
        return None
    try:
        return parse_positive_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'all', got {value!r}") from None


def parse_positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def parse_row_count(value: str) -> int:
    """`--volume`: a positive whole number of rows (1,000 and 1_000 are read as 1000 too)."""
    try:
        rows = int(value.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of rows, got {value!r}") from None
    if rows < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of rows, got {value!r}")
    return rows


def parse_migration_key(value: str) -> MigrationKey:
    """`APP.MIGRATION` as used by --allow-data-loss and --allow-irreversible."""
    app, dot, name = value.partition(".")
    if not dot or not app or not name:
        raise argparse.ArgumentTypeError(f"expected APP.MIGRATION (e.g. upstream.0018_remove_invoice_paid_on), "
                                         f"got {value!r}")
    return (app, name)


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad options end with one line and exit status 2 (not the whole usage), as documented."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(prog: str = COMMAND) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=prog,
        description=(
            "Apply every migration from scratch on a scratch PostgreSQL database, run the deploy "
            "checks, then roll back and re-apply each app's newest migrations one at a time, "
            "proving that the schema after a rollback is the schema before the migration and "
            "that data written before and after the release survives the rollback."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_selection_options(parser)
    add_report_options(parser)
    add_proof_options(parser)
    add_since_and_shard_options(parser)
    add_hazard_options(parser)
    add_output_options(parser)
    return parser


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manage", type=Path, metavar="PATH",
                        help="the manage.py to drive (default: manage.py in the current folder)")
    parser.add_argument("--settings", metavar="MODULE",
                        help="Django settings module (default: $DJANGO_SETTINGS_MODULE, else the module "
                             "manage.py sets with os.environ.setdefault)")
    parser.add_argument("--app", dest="apps", action="append", default=[], metavar="LABEL",
                        help="app whose migrations are rolled back and re-applied (repeatable; "
                             "default: every app with migrations inside the project folder)")
    parser.add_argument("--depth", type=parse_depth, default=DEFAULT_DEPTH, metavar="N|all",
                        help="how many of each app's newest migrations to test (default: %(default)s)")
    parser.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL server to make scratch databases on (default: $DATABASE_URL, "
                             "then DATABASE_URL in .env; else a throwaway local cluster); the database "
                             "named in the URL is never migrated, written or dropped")


def add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-json", type=Path, metavar="PATH", help="write the JSON report here")
    parser.add_argument("--junit-xml", type=Path, metavar="PATH", help="write JUnit XML here")
    parser.add_argument("--allow-data-loss", action="append", default=[], type=parse_migration_key,
                        metavar="APP.MIGRATION", help="accept a known destructive migration (repeatable)")
    parser.add_argument("--allow-irreversible", action="append", default=[], type=parse_migration_key,
                        metavar="APP.MIGRATION", help="accept a known irreversible migration (repeatable)")
    parser.add_argument("--allow-breaking", action="append", default=[], type=parse_migration_key,
                        metavar="APP.MIGRATION",
                        help="accept a migration whose schema breaks the code running beside it during the deploy "
                             "(compat: breaks_old_code; repeatable)")
    parser.add_argument("--allow-unsafe-retry", action="append", default=[], type=parse_migration_key,
                        metavar="APP.MIGRATION",
                        help="accept a non-atomic migration whose retry after a cut-off attempt does not end "
                             "where a clean apply does (retry: failed; repeatable)")


def add_proof_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-schema", dest="check_schema", action="store_false",
                        help="do not compare schema snapshots")
    parser.add_argument("--no-data", dest="check_data", action="store_false",
                        help="do not seed data and check that rollbacks preserve it")
    parser.add_argument("--no-compat", dest="check_compat", action="store_false",
                        help="do not run the previous release's queries on the new schema (the compat check)")
    parser.add_argument("--no-retry", dest="check_retry", action="store_false",
                        help="do not cut non-atomic migrations off part-way and run them again (the retry proof)")
    parser.add_argument("--step-timeout", type=parse_positive_seconds, default=DEFAULT_STEP_TIMEOUT_S,
                        metavar="SECONDS", help="kill a manage.py step that runs longer (default: %(default)g)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                        help="apps, or segments of one app's window, tested in parallel on databases of their own "
                             "(default: 2, at most the number of CPUs)")
    parser.add_argument("--isolation", choices=ISOLATIONS, default=default_isolation(),
                        help="how each manage.py step runs: fork (a child forked from a step server that "
                             "started Django once for its database name) or process (a fresh manage.py process "
                             "per step) (default: %(default)s)")
    cloning = parser.add_mutually_exclusive_group()
    cloning.add_argument("--no-clone", dest="clone", action="store_const", const="never",
                         help="build every chain's database from an empty one, never from a clone of the state "
                              "they all start from (by default that state is built once per run and cloned, "
                              "CREATE DATABASE ... TEMPLATE, when it saves enough); the same migrate commands run "
                              "either way, so the verdicts are the same")
    cloning.add_argument("--always-clone", dest="clone", action="store_const", const="always",
                         help="clone whenever two chains or more share a state, however small (to compare with "
                              "--no-clone)")
    parser.set_defaults(clone="auto")


def add_since_and_shard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=parse_revision, metavar="REF",
                        help="test only the migrations added or modified since the git revision REF "
                             "(git diff REF...HEAD; instead of --depth), as one release: pre-release rows are "
                             "seeded before its first migration of each app; a migration edited after it was "
                             "merged fails check edited_migrations")
    parser.add_argument("--allow-edited", action="append", default=[], type=parse_migration_key,
                        metavar="APP.MIGRATION", help="accept a migration edited after it was merged (repeatable)")
    parser.add_argument("--shard", type=parse_shard, metavar="I/N",
                        help="test shard I of N of the app windows (balanced by migration count); the project "
                             "checks run in shard 1")
    parser.add_argument("--merge-reports", nargs="+", type=Path, metavar="REPORT",
                        help="run nothing: merge the JSON reports of the shards into one summary, --junit-xml, "
                             "--report-json and the GitHub step summary; exit status as for one run")
def add_hazard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-locks", dest="observe_locks", action="store_false",
                        help="do not observe locks, rewrites and statements while migrations are applied")
    parser.add_argument("--fail-on-hazards", action="store_true",
                        help="deploy hazards (locks, rewrites, squawk findings) fail the run (default: warnings)")
    parser.add_argument("--volume", type=parse_row_count, metavar="N",
                        help="before each apply, add N rows to each existing table of the app and report how "
                             "long each write-blocking lock was held")
    add_rehearsal_options(parser)


def add_rehearsal_options(parser: argparse.ArgumentParser) -> None:
    """The deploy rehearsal (docs/rehearsal.md)."""
    traffic = parser.add_mutually_exclusive_group()
    traffic.add_argument("--traffic", dest="traffic", action="store_true", default=None,
                         help="rehearse each apply on a database of its own while the previous release's queries "
                              "run (default: on with --volume or --long-query)")
    traffic.add_argument("--no-traffic", dest="traffic", action="store_false", help="no traffic rehearsal")
    parser.add_argument("--traffic-sessions", type=parse_sessions, default=DEFAULT_TRAFFIC_SESSIONS, metavar="K",
                        help="concurrent sessions of the previous release's traffic "
                             f"(default {DEFAULT_TRAFFIC_SESSIONS})")
    parser.add_argument("--long-query", type=parse_positive_seconds, metavar="SECONDS",
                        help="in the rehearsal, hold a read transaction on each table the migration touches from "
                             "before it starts until SECONDS after its lock request queues behind it (a slow request "
                             "in the lock queue)")
    parser.add_argument("--table-sizes", type=Path, metavar="FILE",
                        help="JSON {table: rows} of production (docs/rehearsal.md gives the query): each "
                             "write-blocking lock is measured at three volumes and estimated at that size")
    parser.add_argument("--volume-max", type=parse_row_count, default=DEFAULT_VOLUME_MAX, metavar="N",
                        help="largest number of rows added in a --table-sizes measurement "
                             f"(default {DEFAULT_VOLUME_MAX:,})")
    parser.add_argument("--max-blocking", type=parse_positive_seconds, metavar="SECONDS",
                        help="fail the run for each lock measured or estimated to block writes longer than SECONDS")


def parse_sessions(value: str) -> int:
    """`--traffic-sessions`: 1 to 64 sessions."""
    try:
        sessions = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of sessions, got {value!r}") from None
    if not 1 <= sessions <= 64:
        raise argparse.ArgumentTypeError(f"expected 1 to 64 sessions, got {value!r}")
    return sessions


def traffic_sessions(args: argparse.Namespace) -> int:
    """Traffic is on with --traffic, and by default with --volume or --long-query; 0 when off."""
    on = args.traffic if args.traffic is not None else bool(args.volume or args.long_query)
    return int(args.traffic_sessions) if on else 0


def add_output_options(parser: argparse.ArgumentParser) -> None:
    output = parser.add_mutually_exclusive_group()
    # `-v` alone is verbosity 2; `-v N` as in Django's manage.py (`-v 2`, `-v 3`).
    output.add_argument("-v", "--verbose", dest="verbosity", nargs="?", const=2, type=int, choices=range(4),
                        metavar="N", help="show every command, its duration, and the output of failing steps "
                                          "(-v N: that verbosity, as --verbosity)")
    output.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=0,
                        help="print nothing but errors")
    output.add_argument("--verbosity", dest="verbosity", type=int, choices=range(4),
                        help="0 quiet, 1 default, 2 verbose, 3 also the output of passing steps")
    parser.set_defaults(verbosity=1)


def explicit_options(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """The dests the command line itself set (defaults suppressed for one more parse)."""
    saved = [(action, action.default) for action in parser._actions]
    saved_defaults = dict(parser._defaults)
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        parser._defaults.clear()
        return set(vars(parser.parse_args(argv)))
    finally:
        for action, default in saved:
            action.default = default
        parser._defaults.update(saved_defaults)


def apply_project_config(args: argparse.Namespace, explicit: set[str], pyproject: Path) -> None:
    """Fill the options the command line did not give from `[tool.migration_check]` of
    `pyproject`, each value validated by the option's own argparse type."""
    tokens = config_tokens(read_table(pyproject), pyproject)
    if not tokens:
        return
    parser = build_parser()

    def refuse(message: str) -> NoReturn:
        raise UsageError(f"{pyproject} [tool.migration_check]: {message}")

    parser.error = refuse  # type: ignore[method-assign]  # a bad value is one line naming the file
    configured = parser.parse_args([token for key_tokens in tokens.values() for token in key_tokens])
    for key in tokens:
        dest = parser._option_string_actions[KEYS[key][0]].dest
        if dest not in explicit:
            setattr(args, dest, getattr(configured, dest))


def resolve_project(args: argparse.Namespace, explicit: set[str], manage_default: Path | None,
                    environ: dict[str, str]) -> argparse.Namespace:
    """--manage (else `manage_default`, else ./manage.py), the project's pyproject.toml options,
    and the settings module (found, and checked to exist) before anything is started."""
    manage = (args.manage or manage_default or default_manage()).expanduser().resolve()
    if not manage.is_file():
        raise UsageError(f"manage.py not found at {manage} (pass --manage PATH/TO/manage.py)")
    args.manage = manage
    apply_project_config(args, explicit, manage.parent / "pyproject.toml")
    args.settings = find_settings(args.settings, environ, manage)
    check_settings_exist(args.settings, manage.parent)
    return args


def config_from_args(args: argparse.Namespace) -> Config:
    """Validate what argparse cannot (files that must exist)."""
    manage = (args.manage or default_manage()).expanduser().resolve()
    if not manage.is_file():
        raise UsageError(f"manage.py not found at {manage} (pass --manage PATH/TO/manage.py)")
    if args.settings is None:
        args.settings = find_settings(None, os.environ, manage)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.isolation == "fork" and not hasattr(os, "fork"):
        raise UsageError("--isolation fork needs os.fork, which this platform does not have; "
                         "use --isolation process")
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
        check_compat=args.check_compat,
        allow_breaking=frozenset(args.allow_breaking),
        since=args.since,
        shard=args.shard,
        allow_edited=frozenset(args.allow_edited),
        observe_locks=args.observe_locks,
        fail_on_hazards=args.fail_on_hazards,
        volume=args.volume,
        isolation=args.isolation,
        check_retry=args.check_retry,
        allow_unsafe_retry=frozenset(args.allow_unsafe_retry),
        clone=args.clone,
        traffic_sessions=traffic_sessions(args),
        long_query=args.long_query,
        table_sizes=read_table_sizes(args.table_sizes) if args.table_sizes else None,
        volume_max=args.volume_max,
        max_blocking=args.max_blocking,
    )


def check_inputs(config: Config, environ: dict[str, str], log: Log) -> Config:
    """What can be refused before any work (exit 2, one line): the server URL (given, in the
    environment or in .env), the report paths; `--jobs` above the CPU count is capped."""
    url = resolve_server_url(config.database_url, environ, config.project_dir)
    if url is not None:
        ServerAddress.from_url(url)
    check_writable("--report-json", config.report_json)
    check_writable("--junit-xml", config.junit_xml)
    return cap_jobs(config, log)


def check_writable(option: str, path: Path | None) -> None:
    """`path` can be written (missing parent folders are made, as pytest does); a file this
    makes is removed again, so a run that fails leaves no empty report behind."""
    if path is None:
        return
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder")
        if path.exists():  # never opened here: it may be a FIFO or a device a reader waits on
            if not os.access(path, os.W_OK):
                raise PermissionError(13, "Permission denied")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8"):
            pass
        path.unlink()
    except OSError as error:
        raise UsageError(f"cannot write {option} {path}: {error.strerror or error}") from None


def cap_jobs(config: Config, log: Log) -> Config:
    cpus = os.cpu_count() or 1
    if config.jobs <= cpus:
        return config
    log.info(f"{PROG}: note: --jobs {config.jobs} is more than the {cpus} CPU(s) here; using --jobs {cpus}")
    return dataclasses.replace(config, jobs=cpus)


def finish_run(result: RunResult, config: Config, log: Log) -> int:
    """The summary and the reports of a run that ended; its exit status."""
    if result.fault is not None:  # what was reached goes into the reports, the fault in one line
        write_reports(result, config, log, dict(os.environ))
        return fault_exit(result.fault)
    print_summary(result, log)
    write_reports(result, config, log, dict(os.environ))
    return EXIT_OK if result.ok else EXIT_MIGRATION_PROBLEM


def unfinished(fault: FaultDescription, duration_s: float) -> RunResult:
    """The result of a run that a fault ended before it had one (while the server started or the
    project was probed): nothing was checked, and a CI job reading the report must see why."""
    return RunResult(checks=[], apps=[], duration_s=duration_s, server_version="", ephemeral=False, processes=0,
                     fault=fault)


def fault_exit(fault: FaultDescription) -> int:
    """Exit status 3: one line naming the fault and what to check."""
    print(f"{PROG}: {mask_passwords(fault.line())}", file=sys.stderr)
    return EXIT_FAULT


def main(argv: Sequence[str] | None = None, *, prog: str = COMMAND, manage_default: Path | None = None) -> int:
    """Run the migration tests (`migration-check`, `scripts/test_migrations.py` with its
    repository-root `manage_default`); returns the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    log = Log(args.verbosity)
    config: Config | None = None
    started = time.monotonic()
    try:
        if args.merge_reports:
            manage = args.manage or manage_default or default_manage()
            ok = merge_reports(args.merge_reports, args.report_json, args.junit_xml,
                               manage.expanduser().resolve().parent, log, dict(os.environ))
            return EXIT_OK if ok else EXIT_MIGRATION_PROBLEM
        resolve_project(args, explicit_options(parser, argv), manage_default, dict(os.environ))
        log = Log(args.verbosity)
        config = check_inputs(config_from_args(args), dict(os.environ), log)
        result = run_project(config, log, dict(os.environ))
        return finish_run(result, config, log)
    except InfrastructureFault as error:  # before any result: the reports say so, and one line
        if config is not None:
            write_reports(unfinished(error.fault, time.monotonic() - started), config, log, dict(os.environ))
        return fault_exit(error.fault)
    except UsageError as error:
        print(error_line(PROG, str(error)), file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Interrupted):
        print(f"{PROG}: interrupted; scratch databases and servers were removed", file=sys.stderr)
        return EXIT_INTERRUPTED
