"""The tool's end of the step servers (`--isolation fork`): one per scratch database name (the
chains' databases take turns under a few names: chain/slots.py).

Owns: `StepServer` (starting `manage.py shell -c` that runs `inside_django.fork_server`, with
the database's environment and two pipes passed in; waiting for it to be ready; sending a step;
the thread that reads its events; killing a step's process group; stopping it) and
`StepServers` (a server per database URL, started on the first step there; what a forked step
gives back; the one line that says a server died). The step runner (`steps.StepRunner`) is the
only user: the rest of the tool does not know which isolation runs its steps.

A step's output goes to two files the child writes at the file-descriptor level and the tool
reads once it has exited; the protocol travels on the pipes, never on the child's stdout.

The watchdog is told of each server, each forked step and the output folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..inside_django.protocol import STEP_SERVER_FDS_ENV, ServerEvent, StepRequest, bootstrap_code
from ..log import Log
from ..timing import PhaseTimes
from .identity import ProcessId, kill_group, kill_pgid
from .resources import NO_WATCH, ResourceWatch

# How long a killed step, or a server told to stop, may take to go before it is killed outright.
GRACE_S = 10.0


class StepServerDied(UsageError):
    """A step server ended while a step was running or about to run: the run cannot go on."""


@dataclass
class Finished:
    """How a step (or a server that failed to start) ended; steps.StepResult is made of it."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False


@dataclass
class ForkedStep:
    """A step sent to a server: its output files and, once known, its pid and exit status."""

    id: int
    args: list[str]
    stdout_path: Path
    stderr_path: Path
    started: threading.Event = field(default_factory=threading.Event)
    exited: threading.Event = field(default_factory=threading.Event)
    process: ProcessId | None = None  # the forked child, as the `started` event named it
    returncode: int | None = None
    lost: bool = False  # the server ended before reporting the exit status

    def finished(self, timed_out: bool) -> Finished:
        return Finished(self.returncode, read_output(self.stdout_path), read_output(self.stderr_path), timed_out)

    def remove_files(self) -> None:
        for path in (self.stdout_path, self.stderr_path):
            with contextlib.suppress(OSError):
                path.unlink()


def read_output(path: Path) -> str:
    """A captured stream as `subprocess.Popen(text=True, errors="replace")` would have read it
    (the same default encoding, universal newlines)."""
    try:
        with open(path, errors="replace") as stream:
            return stream.read()
    except OSError:
        return ""


def describe_returncode(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def database_of(url: str) -> str:
    """The database a URL names (printed instead of the URL: no password to mask)."""
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def kill_forked(step: ForkedStep) -> None:
    """Kill a forked step's process group, unless its pid is no longer that child's (the server
    reaps its children, so the pid may be reused once it has exited)."""
    if step.process is not None:
        kill_group(step.process)


class StepServer:
    """One step server process and the tool's pipes to it. Safe to use from several threads."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], files: Path, number: int,
                 watch: ResourceWatch = NO_WATCH) -> None:
        self.command = command
        self.number = number  # names its output files in `files`
        self.watch = watch
        self.cwd = cwd
        self.env = env
        self.files = files  # where the server's and its steps' output files go
        self.process: subprocess.Popen[bytes] | None = None
        self.hello: ServerEvent | None = None
        self.ready = threading.Event()
        self.alive = False
        self.steps: dict[int, ForkedStep] = {}
        self._ids = 0
        self._lock = threading.Lock()
        self._request_write: int | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        """Start the process (the caller counts it); `wait_ready` waits for its first event."""
        request_read, self._request_write = os.pipe()
        event_read, event_write = os.pipe()
        env = {**self.env, STEP_SERVER_FDS_ENV: f"{request_read},{event_write}"}
        out, err = self.output_paths()
        try:
            with open(out, "wb") as stdout, open(err, "wb") as stderr:
                self.process = subprocess.Popen(
                    [*self.command, "shell", "-c", bootstrap_code("fork_server")], cwd=self.cwd, env=env,
                    stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, pass_fds=(request_read, event_write),
                    start_new_session=True)
        except BaseException:  # no server: the tool's ends of both pipes go too
            os.close(event_read)
            os.close(self._request_write)
            self._request_write = None
            raise
        finally:
            os.close(request_read)
            os.close(event_write)
        self.watch.process_started(self.process.pid)
        self.alive = True
        self._reader = threading.Thread(target=self._read_events, args=(event_read,), daemon=True,
                                        name=f"step-server-{self.process.pid}")
        self._reader.start()

    def wait_ready(self, timeout: float) -> Finished | None:
        """None when the server is ready; otherwise how it ended (refusal: `self.hello`)."""
        if not self.ready.wait(timeout):
            self.kill()
            return Finished(None, *self.server_output(), timed_out=True)
        if self.hello is not None and self.hello.get("event") == "ready":
            return None
        if self.hello is not None:  # refused: it exits by itself
            self.stop()
            return None
        assert self.process is not None  # it ended before it was ready (settings that fail, say)
        self.stop()
        return Finished(self.process.returncode, *self.server_output())

    def output_paths(self) -> tuple[Path, Path]:
        return self.files / f"server-{self.number}.out", self.files / f"server-{self.number}.err"

    def server_output(self) -> tuple[str, str]:
        out, err = self.output_paths()
        return read_output(out), read_output(err)

    def remove_output(self) -> None:
        for path in self.output_paths():
            with contextlib.suppress(OSError):
                path.unlink()

    # -- events -------------------------------------------------------------------------------

    def _read_events(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as events:
            for line in events:
                with contextlib.suppress(ValueError):
                    self._dispatch(json.loads(line))
        self._lost()

    def _dispatch(self, event: ServerEvent) -> None:
        kind = event.get("event")
        if kind in ("ready", "refused"):
            self.hello = event
            self.ready.set()
            return
        with self._lock:
            step = self.steps.get(event.get("id", -1))
            if step is not None and kind == "exited":
                del self.steps[step.id]
        if step is None:
            return
        if kind == "started":
            pid = event.get("pid")
            if isinstance(pid, int):
                step.process = ProcessId.of(pid)
                self.watch.process_started(pid)
        elif kind == "exited":
            if step.process is not None:
                self.watch.process_ended(step.process.pid)
            step.returncode = event.get("returncode")
            if event.get("reason"):
                with open(step.stderr_path, "a", encoding="utf-8") as stderr:
                    stderr.write(f"test_migrations: {event['reason']}\n")
            step.exited.set()
        step.started.set()

    def _lost(self) -> None:
        """The event pipe ended: the server exited. Steps still waiting will get no status."""
        with self._lock:
            self.alive = False
            pending = list(self.steps.values())
            self.steps.clear()
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(GRACE_S)
            if self.process.returncode is not None:
                self.watch.process_ended(self.process.pid)
        for step in pending:
            kill_forked(step)  # orphaned by the server: nobody would reap it
            if step.process is not None:
                self.watch.process_ended(step.process.pid)
            step.lost = True
            step.started.set()
            step.exited.set()
        self.ready.set()

    # -- steps --------------------------------------------------------------------------------

    def submit(self, args: list[str], env: dict[str, str]) -> ForkedStep | None:
        """Send a step; None when the server is gone."""
        with self._lock:
            if not self.alive or self._request_write is None:
                return None
            self._ids += 1
            step = ForkedStep(self._ids, list(args), self.files / f"step-{id(self)}-{self._ids}.out",
                              self.files / f"step-{id(self)}-{self._ids}.err")
            request: StepRequest = {"id": step.id, "args": step.args, "env": env,
                                    "stdout": str(step.stdout_path), "stderr": str(step.stderr_path)}
            self.steps[step.id] = step
            data = (json.dumps(request) + "\n").encode()
            try:
                while data:  # under the lock: a long line from another thread never interleaves
                    data = data[os.write(self._request_write, data):]
            except OSError:
                del self.steps[step.id]
                return None
        return step

    def kill_step(self, step: ForkedStep) -> None:
        """Kill a step's process group and wait for the server to reap it."""
        step.started.wait(GRACE_S)
        kill_forked(step)
        step.exited.wait(GRACE_S)

    # -- ending -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Close the request pipe (the server then exits); kill it if it does not."""
        with self._lock:
            if self._request_write is not None:
                os.close(self._request_write)
                self._request_write = None
        if self.process is not None:
            try:
                self.process.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._reader is not None:
            self._reader.join(GRACE_S)

    def kill(self) -> None:
        """Kill every running step's group and the server's; wait for the server to go."""
        with self._lock:
            running = list(self.steps.values())
        for step in running:
            kill_forked(step)
        if self.process is not None:
            kill_pgid(self.process.pid)  # not reaped until the wait below: still the server's pid
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(GRACE_S)
        with self._lock:
            if self._request_write is not None:
                os.close(self._request_write)
                self._request_write = None
        if self._reader is not None:
            self._reader.join(GRACE_S)


class StepServers:
    """A step server per database URL, started on the first step there (see StepRunner)."""

    def __init__(self, manage: Path, environment: Callable[[str, dict[str, str] | None], dict[str, str]],
                 count_process: Callable[[], None], times: PhaseTimes, log: Log,
                 watch: ResourceWatch = NO_WATCH) -> None:
        self.manage = manage
        self.watch = watch
        self.environment = environment
        self.count_process = count_process
        self.times = times
        self.log = log
        self.refused: str | None = None  # why fork isolation was given up (threads in Django's start)
        self._servers: dict[str, StepServer] = {}
        self._starting: set[StepServer] = set()  # killed too by close(), so Ctrl-C does not wait for them
        self._url_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._files: Path | None = None
        self._started = 0  # servers started: numbers their output files
        self.closed = False

    def files(self) -> Path | None:
        """The servers' output folder, made on first use; None once closed (close() has removed
        it: a server starting in a thread after that must not make a new one, nobody would remove it)."""
        with self._lock:
            if self.closed:
                return None
            if self._files is None:
                self._files = Path(tempfile.mkdtemp(prefix="tm-steps-"))
                self.watch.folder_created(self._files)
            return self._files

    def server_for(self, url: str, timeout: float, args: list[str]) -> StepServer | Finished | None:
        """The ready server of `url` (started now if need be); how its start failed; or None
        when it refused to fork (`refused` says why). A server that died is not replaced."""
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        with url_lock:
            server = self._servers.get(url)
            if server is not None:
                if not server.alive:  # it died while idle, after its last step
                    raise self.died(server, args, url, running=False)
                return server
            files = self.files()
            if files is None:
                return None
            started = time.monotonic()
            with self._lock:
                if self.closed:
                    return None
                self._started += 1
                server = StepServer([sys.executable, str(self.manage)], self.manage.parent,
                                    self.environment(url, None), files, self._started, self.watch)
                server.start()
                self._starting.add(server)
            self.count_process()
            try:
                failed = server.wait_ready(timeout)
            finally:
                with self._lock:
                    self._starting.discard(server)
            if failed is not None:  # the next step here starts one again, as a process step would
                return failed
            if server.hello is not None and server.hello.get("event") == "refused":
                self.refused = str(server.hello.get("reason"))
                return None
            with self._lock:
                if self.closed:  # kill_all() ran while it started
                    server.kill()
                    return None
                self._servers[url] = server
            seconds = time.monotonic() - started
            # Counted in the first step's time too, as a process step counts its own start.
            self.times.add("step server start (manage.py shell -c)", seconds)
            hello = server.hello or {}
            self.log.detail(f"  step server for {database_of(url)} ready: pid {server.pid}, {seconds:.2f}s, "
                            f"{hello.get('migrations', '?')} migration modules loaded, "
                            f"warm-up: {hello.get('warm_up', '?')}, warm states: {hello.get('warm_states', '?')}")
            return server

    def run(self, args: list[str], url: str, extra_env: dict[str, str] | None, timeout: float,
            cancelled: Callable[[], bool]) -> Finished | None:
        """Run `manage.py ARGS` as a child of `url`'s server; None when fork was refused."""
        server = self.server_for(url, timeout, args)
        if server is None or isinstance(server, Finished):
            return server
        step = server.submit(args, extra_env or {})
        if step is None:
            if cancelled():
                return Finished(None, "", "")
            raise self.died(server, args, url, running=False)
        timed_out = not step.exited.wait(timeout)
        if timed_out:
            server.kill_step(step)
        try:
            if step.lost and not cancelled():
                raise self.died(server, args, url, running=True)
            return step.finished(timed_out)
        finally:
            step.remove_files()

    def died(self, server: StepServer, args: list[str], url: str, running: bool) -> StepServerDied:
        """The run-ending fault of a server gone; `running`: it went while running the step
        `args`, else before that step reached it (it died idle, after its last step), which the
        line says so that the step is not blamed."""
        returncode = server.process.returncode if server.process else None
        stderr = server.server_output()[1].strip().splitlines()
        said = f"; it said: {stderr[-1].strip()}" if stderr else ""
        database = database_of(url)
        shown = " ".join([*(arg if len(arg) <= 40 else "..." for arg in args[:3]), *(["..."] if args[3:] else [])])
        return StepServerDied(
            f"the step server of database {database} (pid {server.pid}) ended ({describe_returncode(returncode)}) "
            f"{'while running' if running else 'before it could run'} `manage.py {shown}`{said}; "
            "the run stops here (rerun with "
            "--isolation process to run every step as a process of its own)")

    def release(self, url: str) -> None:
        """Stop `url`'s server (its database is about to be dropped)."""
        with self._lock:
            server = self._servers.pop(url, None)
            self._url_locks.pop(url, None)
        if server is not None:
            server.stop()
            server.remove_output()

    def close(self, kill: bool) -> None:
        """Stop (or kill) every server, and remove the output files."""
        with self._lock:
            self.closed = True
            servers = [*self._servers.values(), *self._starting]
            self._servers.clear()
        for server in servers:
            server.kill() if kill else server.stop()
        with self._lock:  # close() runs more than once on a failing run: the folder goes once
            files, self._files = self._files, None
        if files is not None:
            shutil.rmtree(files, ignore_errors=True)
            self.watch.folder_removed(files)
