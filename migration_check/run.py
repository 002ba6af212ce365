"""A whole run: the server, discovery, the project checks and every app's window, in parallel.

Owns: `run_project` (signals, the server, the step runner, and the order of the phases),
`discover` (the probe, and the guard that the settings really use the scratch database the tool
handed over), and the fan-out of windows over `--jobs` threads.

Uses: config, errors, log, server, steps, discovery, checks, scratch, chain, window, results.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from .chain import ChainContext, WindowChain
from .checks import run_check_deploy, run_forward_checks
from .config import Config
from .discovery import Project, project_from_probe, select_apps, window_of
from .errors import UsageError
from .log import Log
from .results import AppResult, CheckResult, RunResult
from .scratch import ScratchDatabase
from .server import Server, postgres_server
from .steps import StepRunner
from .window import AppWindow


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


def discover(runner: StepRunner, server: Server) -> tuple[Project, str]:
    """Load the project once, on the head database the project checks will use."""
    head = server.create_database("head")
    head_url = server.url_for(head)
    return probe_project(runner, head_url, head), head_url


def app_windows(project: Project, selected: list[str], config: Config, log: Log) -> list[AppWindow]:
    windows = {app: window_of(project.migrations_of(app), config.depth) for app in selected}
    for app, window in windows.items():
        log.info(f"{app}: testing {len(window)} migration(s), {window[0].name} .. {window[-1].name}")
    if project.conflicts:
        log.info("conflicting migrations: app windows are not tested until they are merged")
        return []
    return [AppWindow(app, window, config.project_dir) for app, window in windows.items()]


def chains_of(windows: list[AppWindow], context: ChainContext, jobs: int) -> list[tuple[AppWindow, WindowChain]]:
    """The chains that test the windows: with fewer apps than jobs, a window is split into runs
    tested side by side."""
    parts = max(1, jobs // max(len(windows), 1))
    chains = []
    for window in windows:
        tested = window.mark_irreversible(context.config.allow_irreversible)
        for result in window.irreversible():
            context.log.info(f"{result.label}: irreversible: {result.error}"
                             + (" (acknowledged)" if result.acknowledged else ""))
        runs = window.split(tested, parts)
        chains += [(window, WindowChain(context, window, run, restore=index == len(runs) - 1))
                   for index, run in enumerate(runs)]
    return chains


def test_everything(config: Config, log: Log, runner: StepRunner, server: Server) -> RunResult:
    started = time.monotonic()
    project, head_url = discover(runner, server)
    selected, skipped = select_apps(project, config.apps, config.project_dir)
    for note in skipped:
        log.detail(f"skipping {note}; name it with --app to include it")
    windows = app_windows(project, selected, config, log)
    context = ChainContext(config, project, log, lambda purpose: ScratchDatabase(server, runner, project, purpose))
    pool = ThreadPoolExecutor(max_workers=config.jobs + 1)
    try:
        # The app windows do not need the head database: they start at once, beside the checks.
        forward = pool.submit(run_forward_checks, runner, head_url, log)
        deploy = pool.submit(run_check_deploy, runner, head_url, log)
        chains: list[tuple[AppWindow, Future]] = [(window, pool.submit(chain.run))
                                                  for window, chain in chains_of(windows, context, config.jobs)]
        forward_check, missing_check = forward.result()
        checks: list[CheckResult] = [forward_check, deploy.result(), missing_check]
        runner.release(head_url)  # the head database's step server is done with
        apps = collect(windows, chains)
    except BaseException:
        runner.kill_all()  # threads blocked on children return at once, and start nothing new
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return RunResult(checks, apps, time.monotonic() - started, server.version, server.ephemeral,
                     runner.started, skipped, config.project_dir, runner.times.phases(), runner.steps,
                     runner.isolation)


def collect(windows: list[AppWindow], chains: list[tuple[AppWindow, Future]]) -> list[AppResult]:
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
    """Everything a run does, from finding a server to the last scratch database dropped."""
    runner = StepRunner(config.manage, config.settings, config.step_timeout, log, config.isolation)
    try:
        with interrupt_on_signals(), postgres_server(config.database_url, environ, config.project_dir, log) as server:
            return test_everything(config, log, runner, server)
    finally:
        runner.kill_all()
