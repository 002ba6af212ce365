"""A whole run: the server, discovery, the project checks and every app's window, in parallel.

Owns: `run_project` (the watchdog, signals, the server, the step runner, the order of the phases),
`discover` (the probe, and the guard that the settings really use the scratch database the tool
handed over), and the fan-out of windows over `--jobs` threads.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from .chain.scratch import ScratchDatabase
from .chain.slots import slot_count
from .chain.squash_path import OpenReplacedPath, ReplacedPathDatabase, replaced_path_chains
from .chain.templates import Builds, template_tree
from .chain.window_chain import ChainContext, WindowChain
from .cleanup.leftovers import drop_abandoned_scratch, remove_abandoned_clusters
from .cleanup.watchdog import watchdog
from .config import Config
from .errors import FaultDescription, InfrastructureFault, UsageError
from .log import Log
from .postgres.catalog import SequenceBehind, sequences_behind
from .postgres.server import Server, postgres_server
from .processes.steps import StepRunner
from .project.checks import run_check_deploy, run_forward_checks
from .project.discovery import MigrationInfo, Project, project_from_probe, select_apps
from .project.selection import GitChanges, choose, git_changes, runs_project_checks
from .project.window import AppWindow
from .proofs.deploy_safety.hazards import lock_timeout_hazard
from .proofs.deploy_safety.locks import observation_status
from .proofs.deploy_safety.proof import DeploySafety
from .proofs.deploy_safety.squawk import find_squawk
from .results import AppResult, CheckResult, RunResult
from .verdicts import Observation, Rollback, StepOutcome

T = TypeVar("T")


def settings_guard(project: Project, expected_database: str, settings: str) -> None:
    """Stop before anything is migrated unless the settings use the database handed over in
    DATABASE_URL: otherwise every `migrate` would run on whatever database they name."""
    if project.vendor != "postgresql":
        raise UsageError(f"the settings {settings} use a {project.vendor} database although DATABASE_URL points "
                         "at PostgreSQL; read DATABASES from DATABASE_URL (dj-database-url) so the tool can "
                         "direct every manage.py call to its scratch database")
    if project.database_name != expected_database:
        raise UsageError(f"the settings {settings} do not take the database from DATABASE_URL (they name "
                         f"{project.database_name!r}); the tool would migrate that database instead of its scratch "
                         "one, so it stops here. Read DATABASES from DATABASE_URL (dj-database-url)")
    stray = stray_aliases(project, expected_database)
    if stray:
        alias, where = stray[0]
        raise UsageError(f"the settings {settings} point the database alias {alias!r} at {where}, not at the scratch "
                         "database: a migration that uses it (RunPython with `using`, a router) would write there, "
                         "so the tool stops here. While testing, point every alias at DATABASE_URL")


def stray_aliases(project: Project, expected_database: str) -> list[tuple[str, str]]:
    """Aliases other than `default` that point anywhere but the scratch database (another
    database, another server, another engine), with where they point, in the settings' order."""
    default = project.databases.get("default")
    stray = []
    for alias, found in project.databases.items():
        if alias == "default" or default is None:
            continue
        same = (found["vendor"] == "postgresql" and found["name"] == expected_database
                and (found["host"], found["port"]) == (default["host"], default["port"]))
        if not same:
            host = f" on {found['host'] or 'localhost'}{':' + found['port'] if found['port'] else ''}" \
                if found["vendor"] == "postgresql" else ""
            stray.append((alias, f"the {found['vendor']} database {found['name']!r}{host}"))
    return stray


def probe_project(runner: StepRunner, database_url: str, database: str) -> Project:
    """Load the project (the probe reads migration files and writes nothing) and make sure its
    settings use `database`, the scratch database that `database_url` names."""
    probe, answer = runner.run_inside_django("probe", {}, database_url)
    if not probe.ok:
        raise UsageError(f"cannot load the Django project with {runner.manage} (settings {runner.settings}): "
                         f"{probe.error_summary()}")
    if answer is None:
        raise UsageError(f"{runner.manage} shell printed no project description; is it a Django manage.py?")
    project = project_from_probe(answer)  # type: ignore[arg-type]
    settings_guard(project, database, runner.settings)
    return project


def discover(runner: StepRunner, server: Server) -> tuple[Project, str, str]:
    """Load the project once, on the head database the project checks will use: the project,
    that database's name and its URL."""
    head = server.create_database("head")
    head_url = server.url_for(head)
    return probe_project(runner, head_url, head), head, head_url


def read_sequences(server: Server, database: str, project: Project) -> list[SequenceBehind]:
    """The sequences behind their columns in `database` (the head, after its migrate), read as
    the project's code connects."""
    connection = server.connect(database, dict(project.connection_options))
    try:
        return sequences_behind(connection)
    finally:
        connection.close()


def app_windows(project: Project, windows: dict[str, list[MigrationInfo]], config: Config,
                log: Log) -> list[AppWindow]:
    for app, window in windows.items():
        names = ", ".join(m.name for m in window) if config.since else f"{window[0].name} .. {window[-1].name}"
        log.info(f"{app}: testing {len(window)} migration(s), {names}")
    if project.conflicts:
        log.info("conflicting migrations: app windows are not tested until they are merged")
        return []
    return [AppWindow(app, window, config.project_dir) for app, window in windows.items()]


def chains_of(windows: list[AppWindow], context: ChainContext, jobs: int,
              open_replaced: OpenReplacedPath | None = None) -> list[tuple[AppWindow, WindowChain]]:
    """The chains that test the windows: with fewer apps than jobs, a window is split into
    segments tested side by side; each squash's replaced migrations get a chain of their own.
    With --since a window is a release, never split: its migrations are tested over the rows
    seeded at its start (proofs.data.pre_release), which a segment of its own would not have."""
    parts = 1 if context.config.since is not None else max(1, jobs // max(len(windows), 1))
    chains = []
    for window in windows:
        tested = window.mark_irreversible(context.config.allow_irreversible)
        for result in window.irreversible():
            context.log.info(f"{result.label}: irreversible: {result.error}"
                             + (" (acknowledged)" if result.acknowledged else ""))
        segments = window.split(tested, parts)
        chains += [(window, WindowChain(context, window, segment, restore=index == len(segments) - 1))
                   for index, segment in enumerate(segments)]
        if open_replaced is not None:
            chains += [(window, chain) for chain in replaced_path_chains(window, tested, context, open_replaced)]
    return chains


def chains_per_window(windows: list[AppWindow], planned: list[tuple[AppWindow, WindowChain]]) -> list[int]:
    """How many of the planned chains test each window, in the windows' order."""
    return [sum(1 for window_of, _ in planned if window_of is window) for window in windows]


def deploy_safety(config: Config, server: Server, log: Log) -> tuple[DeploySafety, Observation, str | None]:
    """Whether this run observes locks (event triggers need a superuser), squawk if installed;
    and the observation status with the one line saying why not."""
    superuser = bool(server.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    status, note = observation_status(config, superuser, server.address.user)
    if note and status == Observation.NOT_CHECKED:
        log.info(note)
    observe = status == Observation.OBSERVED
    safety = DeploySafety(observe=observe, squawk=find_squawk() if observe else None, server_version=server.version,
                          volume=config.volume)
    return safety, status, note


def check_project(config: Config, log: Log, runner: StepRunner, server: Server,
                  changes: GitChanges | None = None) -> RunResult:
    """Discover the project, choose what to test, and test it: the project checks and every
    app's window, side by side."""
    started = time.monotonic()
    project, head, head_url = discover(runner, server)
    selected, skipped = select_apps(project, config.apps, config.project_dir)
    for skip in skipped:
        if skip.nothing_to_test:  # nothing of its own to test: not a choice the user made, so said
            log.info(f"not testing {skip.note}")
        else:
            log.detail(f"skipping {skip.note}; name it with --app to include it")
    choice = choose(project, selected, config, changes)
    for line in choice.describe():
        log.info(line)
    windows = app_windows(project, choice.windows, config, log)
    safety, observation, observation_note = deploy_safety(config, server, log)
    builds = Builds(server, runner, project, log)
    context = ChainContext(config=config, project=project, log=log, safety=safety,
                           open_database=lambda purpose: ScratchDatabase(server, runner, project, purpose,
                                                                         safety.observe, builds))

    def open_replaced(purpose: str, squash: MigrationInfo) -> ReplacedPathDatabase:
        return ReplacedPathDatabase(server, runner, project, purpose, squash, safety.observe, builds)

    pool = ThreadPoolExecutor(max_workers=config.jobs + 1)
    checks: list[CheckResult] = []
    apps: list[AppResult] = []
    fault: FaultDescription | None = None
    planned = chains_of(windows, context, config.jobs, open_replaced)
    titles = chain_titles(planned)
    # With --jobs 1 the lines stream as they come (what runs beside the one chain is only the
    # project checks, a few lines); with more, each chain's lines are one block (log.Blocks).
    # The held lines are written when `parallel` ends: after the pool has stopped, before the
    # summary or the exit message.
    with log.parallel(sum(len(chain.tested) for _, chain in planned), grouped=config.jobs > 1):
        try:
            # The app windows do not need the head database: they start at once, beside the checks.
            project_checks = runs_project_checks(config)
            forward = deploy = None
            if project_checks:
                forward = pool.submit(in_group, log, "checks: forward, missing_migrations, sequences", 0,
                                      functools.partial(run_forward_checks, runner, head_url, log,
                                                        functools.partial(read_sequences, server, head, project)))
                deploy = pool.submit(in_group, log, "checks: check_deploy", 0,
                                     functools.partial(run_check_deploy, runner, head_url, log))
            # The chains' databases take turns under slot names, a step server each (chain/slots.py).
            builds.use_slots(slot_count(len(planned), config.jobs + 1, runner.isolation, runner.environ))
            # --no-clone stages every build through the templates --always-clone would build.
            tree = template_tree(project, [w.window for w in windows], chains_per_window(windows, planned),
                                 "always" if config.clone == "never" else config.clone)
            template = bool(tree) and config.clone != "never"
            builds.plan_tree(tree if template or config.clone == "never" else [])
            if template:  # beside the project checks; every chain clones one
                in_group(log, "templates: the states the chains start from", 0,
                         functools.partial(builds.build_template, config.jobs))
            chains: list[tuple[AppWindow, Future[str | None]]] = [
                (window, pool.submit(in_group, log, title, len(chain.tested), chain.check))
                for (window, chain), title in zip(planned, titles, strict=True)]
            if forward is not None and deploy is not None:
                forward_check, missing_check, sequences_check = forward.result()
                checks = [forward_check, deploy.result(), missing_check, sequences_check, *choice.checks]
            # The head database's step server is done with (only the probe, without the checks).
            runner.release(head_url)
            apps = collect(windows, chains)
        except InfrastructureFault as error:  # the server failed the run: report what was reached
            runner.kill_all()
            fault = error.fault
        except BaseException:
            runner.kill_all()  # threads blocked on children return at once, and start nothing new
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            builds.close()
    if fault is not None:
        apps = [not_reached(window.result([])) for window in windows]
    return RunResult(checks=checks, apps=apps, duration_s=time.monotonic() - started,
                     server_version=server.version, ephemeral=server.ephemeral, processes=runner.started,
                     skipped_apps=[skip.note for skip in skipped], project_dir=config.project_dir,
                     timings=runner.times.phases(),
                     observation=observation, observation_note=observation_note,
                     run_hazards=lock_timeout_hazard([m for a in apps for m in reversed(a.migrations)]),
                     squawk=safety.squawk.version if safety.squawk else None, volume=config.volume,
                     fail_on_hazards=config.fail_on_hazards, selection=choice.selection, steps=runner.steps,
                     isolation=runner.isolation, fault=fault)


def chain_titles(planned: list[tuple[AppWindow, WindowChain]]) -> list[str]:
    """Each chain's heading: its app, and which migrations when the app has several chains."""
    per_app = Counter(window.app for window, _ in planned)
    titles = []
    for window, chain in planned:
        names = [m.name for m in chain.tested]
        part = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
        titles.append(window.app if per_app[window.app] == 1 or not names else f"{window.app} ({part})")
    return titles


def in_group(log: Log, title: str, migrations: int, work: Callable[[], T]) -> T:
    """`work` in a pool thread, its lines the group `title` (testing `migrations` migrations)."""
    with log.group(title, migrations):
        return work()


def not_reached(app: AppResult) -> AppResult:
    """After a fault: each migration whose test did not finish is `not_reached`, never failed
    (what its test found before, an apply that passed, stays)."""
    for migration in app.migrations:
        if migration.rollback == Rollback.NOT_RUN and migration.apply != StepOutcome.FAILED and migration.error is None:
            migration.not_reached = True
    return app


def collect(windows: list[AppWindow], chains: list[tuple[AppWindow, Future[str | None]]]) -> list[AppResult]:
    errors: dict[str, list[str | None]] = {w.app: [] for w in windows}
    for window, future in chains:
        errors[window.app].append(future.result())
    return [w.result(errors[w.app]) for w in windows]


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


def run_project(config: Config, log: Log, environ: dict[str, str]) -> RunResult:
    """Everything a run does, from finding a server to the last scratch database dropped.

    The watchdog starts before anything is created and ends after everything is removed; a bad
    --since revision is refused before either.
    """
    changes = git_changes(config.project_dir, config.since) if config.since else None
    with watchdog(log) as watch:
        runner = StepRunner(config.manage, config.settings, config.step_timeout, log, watch, config.isolation)
        try:
            with interrupt_on_signals():
                remove_abandoned_clusters(log)
                with postgres_server(config.database_url, environ, config.project_dir, log, watch) as server:
                    if not server.ephemeral:
                        drop_abandoned_scratch(server, log)
                    return check_project(config, log, runner, server, changes)
        finally:
            runner.kill_all()
            runner.wait_for_children()  # before the watchdog's pipe closes
