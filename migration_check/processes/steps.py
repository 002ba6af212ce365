"""The step runner: every `manage.py` call of a run goes through `StepRunner.run`.

Owns: how a step runs (the isolation: `process`, a fresh `sys.executable manage.py ...` with list
arguments in its own process group; or `fork`, a child forked from the database's step server,
`step_server`), the environment handed to a child (in `environment`), the time-out that kills
its process group, cancellation on Ctrl-C, the counts of processes started and of steps run,
`StepResult` and how a failure reads in one line (`error_summary`), and starting the code that
runs inside Django (`run_inside_django`). Both isolations give the same `StepResult`: callers
never know which one ran.

The watchdog is told of each child.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InfrastructureFault, Interrupted
from ..inside_django.faults import Fault, backoff_delays, classify_output, is_connect_failure, retry_window_s
from ..inside_django.protocol import REQUEST_ENV, bootstrap_code, parse_response
from ..log import Log, mask_url
from ..timing import PhaseTimes
from .identity import kill_pgid
from .resources import NO_WATCH, ResourceWatch
from .step_server import Finished, StepServers, describe_returncode

ISOLATIONS = ("fork", "process")
CHILDREN_GONE_S = 10.0  # killed children are reaped by the threads that started them


def default_isolation() -> str:
    """`fork` where the platform has os.fork, else `process`."""
    return "fork" if hasattr(os, "fork") else "process"

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
                return with_state_hint(" | ".join([f"{match.group('type')}: {message}".rstrip(": "), *follow]))
        # No exception printed: the process ended itself (os._exit) or crashed (a signal).
        return describe_returncode(self.returncode) + (f" after: {lines[-1].strip()}" if lines else "")


# Django could not render the historical models of what the database has applied: a model an
# applied migration refers to is gone from the state (django-oscar: customer.0006 removes a model
# order.0001 points at, without depending on order.0008, which re-points it).
UNRENDERABLE_STATE = re.compile(
    r"ValueError: (?:The field \S+ was declared with a lazy reference to '[^']+', but app '[^']+' "
    r"(?:doesn't provide model|isn't installed)|Related model '[^']+' cannot be resolved)")
STATE_HINT = ("(Django cannot render the models of the migrations this database has applied: a migration "
              "removed or moved a model that another app's applied migration still refers to, without depending "
              "on the migration that changes that reference, so the order Django applies them in decides whether "
              "migrate works: add the missing dependency)")


def with_state_hint(summary: str) -> str:
    """`summary`, with what a render failure of the migration state means and what to do."""
    return f"{summary} {STATE_HINT}" if UNRENDERABLE_STATE.search(summary) else summary


def step_label(args: Sequence[str]) -> str:
    """The phase a step's time counts under: `manage.py migrate APP TARGET`, `manage.py shell`..."""
    if args[0] == "migrate":
        return "manage.py migrate APP TARGET" if len(args) > 1 and not args[1].startswith("-") \
            else "manage.py migrate (every app)"
    return f"manage.py {args[0]}"


# Django iterates sets of model keys when it re-renders a migration's models (ProjectState
# reloads), so the order in which `post_migrate` creates the content types and permissions of the
# models one migration adds follows Python's string hashing, random per process: the same run
# twice gave rows different ids, and the data fingerprints differed (verdicts did not). A fixed
# seed makes a run reproducible; a seed the user set is kept.
DJANGO_ORDER_SEED = "0"


class StepRunner:
    """Runs `manage.py` commands, each as a process of the same Python or as a forked child of
    its database's step server (`isolation`).

    Each step gets the scratch database's URL as DATABASE_URL and its own process group, so a
    timeout or Ctrl-C kills the whole tree; `started` counts Python processes started (the
    report's `processes`) and `steps` the Django commands run (`steps`), both asserted by the
    benchmarks.
    """

    def __init__(self, manage: Path, settings: str, step_timeout: float, log: Log,
                 watch: ResourceWatch = NO_WATCH, isolation: str = "process") -> None:
        self.manage = manage
        self.watch = watch  # told of each child, so a watchdog can kill what a killed run left
        self.settings = settings
        self.step_timeout = step_timeout
        self.log = log
        self.isolation = isolation
        self.environ = dict(os.environ)  # the bounded wait for a server (faults.retry_window_s)
        self.started = 0
        self.steps = 0
        self.cancelled = False
        self.failure: Exception | None = None  # what ended the run (a step server died)
        self.times = PhaseTimes()
        self.servers = StepServers(manage, self.environment, self.count_process, self.times, log, watch)
        self._running: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def count_process(self) -> None:
        with self._lock:
            self.started += 1

    def environment(self, database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """What every child gets: the scratch database, the settings, unbuffered output, and a
        fixed hash seed (`DJANGO_ORDER_SEED`) unless the user set PYTHONHASHSEED."""
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": self.settings,
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": env.get("PYTHONWARNINGS", "ignore"),
            "PYTHONHASHSEED": env.get("PYTHONHASHSEED", DJANGO_ORDER_SEED),
        })
        env.update(extra or {})
        return env

    def run(self, args: Sequence[str], database_url: str, extra_env: dict[str, str] | None = None,
            timeout: float | None = None) -> StepResult:
        """`manage.py ARGS` on the database at `database_url`; killed after `timeout` seconds.

        A step that failed because the server refused or lost its connection is no result: one
        that could not connect at all (nothing of it ran) is tried again with back-off for a
        bounded time; any other (a `migrate` that lost its connection midway is never run again
        on that database) raises InfrastructureFault, which ends the run with exit status 3."""
        delays = iter(backoff_delays(retry_window_s(self.environ)))
        while True:
            result = self.run_once(args, database_url, extra_env, timeout)
            fault = self.fault_of(result)
            if fault is None:
                return result
            delay = next(delays, None) if is_connect_failure(fault) else None
            if delay is None:
                self.fail(InfrastructureFault(fault))
                raise InfrastructureFault(fault)
            self.log.detail(f"    the server refused the connection ({fault.kind}: {fault.message}); "
                            f"trying again in {delay:.1f}s")
            time.sleep(delay)
            self.raise_if_cancelled()

    @staticmethod
    def fault_of(result: StepResult) -> Fault | None:
        """The infrastructure fault that ended a failed step (never its time-out: the tool's own kill)."""
        if result.ok or result.timed_out:
            return None
        return classify_output(result.stderr)

    def run_once(self, args: Sequence[str], database_url: str, extra_env: dict[str, str] | None = None,
                 timeout: float | None = None) -> StepResult:
        """One attempt of `run`."""
        self.raise_if_cancelled()
        command = [sys.executable, str(self.manage), *args]
        timeout = timeout or self.step_timeout
        self.log_command(command, database_url)
        started = time.monotonic()
        finished = None
        if self.isolation == "fork":
            try:
                finished = self.servers.run(list(args), database_url, extra_env, timeout, lambda: self.cancelled)
            except Exception as error:
                self.fail(error)
                raise
            if finished is None:
                self.raise_if_cancelled()
                self.give_up_fork()
        if finished is None:
            finished = self.run_process(command, database_url, extra_env, timeout)
        self.raise_if_cancelled()  # killed by kill_all(): an interruption, not a result
        result = StepResult(command, finished.returncode, finished.stdout, finished.stderr,
                            time.monotonic() - started, finished.timed_out, timeout)
        with self._lock:
            self.steps += 1
        self.times.add(step_label(args), result.duration_s)
        self.log_output(result)
        return result

    def run_process(self, command: list[str], database_url: str, extra_env: dict[str, str] | None,
                    timeout: float) -> Finished:
        """`--isolation process`: the step is a process of its own."""
        process = self.start(command, database_url, extra_env)
        timed_out = False
        try:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._kill(process)
                stdout, stderr = process.communicate()
        except BaseException:  # Ctrl-C while waiting: the child is gone before the watchdog hears so
            self._kill(process)
            process.wait()
            raise
        finally:
            with self._lock:
                self._running.discard(process)
            self.watch.process_ended(process.pid)
        return Finished(process.returncode, stdout, stderr, timed_out)

    def give_up_fork(self) -> None:
        """A step server refused to fork (threads in Django's start): every step a process."""
        with self._lock:
            if self.isolation != "fork" or self.cancelled:
                return
            self.isolation = "process"
        self.log.info(f"step server: {self.servers.refused}; forking would copy them half-way, so every "
                      "step runs as a process of its own (--isolation process)")

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise self.failure if self.failure is not None else Interrupted

    def fail(self, error: Exception) -> None:
        """A step server died: stop every other step, and make each of them raise `error`."""
        with self._lock:
            if self.failure is None:
                self.failure = error
        self.kill_all()

    def release(self, database_url: str) -> None:
        """The database at `database_url` is done with: stop its step server, if it has one."""
        self.servers.release(database_url)

    def start(self, command: list[str], database_url: str, extra_env: dict[str, str] | None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            command, cwd=self.manage.parent, env=self.environment(database_url, extra_env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            errors="replace", start_new_session=True,
        )
        self.count_process()
        with self._lock:
            self._running.add(process)
        self.watch.process_started(process.pid)
        return process

    def run_inside_django(self, module: str, request: object, database_url: str) -> tuple[StepResult, object]:
        """`manage.py shell -c` running `inside_django.<module>` with `request`; returns the step
        and the child's answer (None when the step failed or printed none)."""
        result = self.run(["shell", "-c", bootstrap_code(module)], database_url,
                          extra_env={REQUEST_ENV: json.dumps(request)})
        if not result.ok:
            return result, None
        try:
            return result, parse_response(result.stdout)
        except ValueError:
            return result, None

    def log_command(self, command: list[str], database_url: str) -> None:
        shown = " ".join(command[1:])
        if len(shown) >= 200:
            shown = " ".join(command[1:4]) + " ..."
        self.log.detail(f"  $ DATABASE_URL={mask_url(database_url)} {Path(command[0]).name} {shown}")

    def log_output(self, result: StepResult) -> None:
        if (not result.ok and self.log.verbosity >= 2) or self.log.verbosity >= 3:
            output = (result.stdout + result.stderr).strip()
            if output:
                self.log.detail("    | " + output.replace("\n", "\n    | "))

    @staticmethod
    def _kill(process: subprocess.Popen[str]) -> None:
        kill_pgid(process.pid)  # not reaped yet: the pid is still this child's

    def wait_for_children(self, timeout: float = CHILDREN_GONE_S) -> None:
        """Wait until every step process is reaped and reported to the watchdog (its pipe is
        closed after this: a late report would read as a dead watchdog and a leftover)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return
            time.sleep(0.05)

    def kill_all(self) -> None:
        self.cancelled = True
        with self._lock:
            running = list(self._running)
        for process in running:
            self._kill(process)
        self.servers.close(kill=True)
