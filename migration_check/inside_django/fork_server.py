"""The step server: Django started once for one scratch database, then a forked child per step.

Runs in `manage.py shell -c` (so the project's own manage.py, settings and environment have set
Django up), started by the tool's step runner with the database's DATABASE_URL exactly as a step
process would be. It imports what every step would import again (each migration module, the
management commands a run uses, the database backend), closes every database connection and
checks that no other thread runs: a forked child then starts from a pristine copy of this
process, with no connection or lock it could share with a sibling.

Before serving it warms up (`warm_up`, skipped with TM_NO_WARMUP=1): its objects are frozen
out of the garbage collector's view, so a child's collections no longer scan them. Before forking
a `migrate` it makes sure the graph and the rendered project state of its database's applied
migrations are built (`warm_states`, skipped with TM_NO_WARM_STATES=1 or on a Django it does not
know): the child takes them where its `migrate` would compute the same, and otherwise plans and
renders exactly as `manage.py migrate` does.

Then it serves requests (JSON lines on a pipe the tool passed in, `protocol.StepRequest`) until
that pipe closes. For each one it forks a child that puts itself in a process group of its own
(the tool kills the group on a time-out), points fds 0/1/2 at /dev/null and the request's two
files, sets the request's environment and runs `manage.py ARGS` through Django's
`execute_from_command_line`, ending with the exit status `python manage.py ARGS` would have.
Events go back on a second pipe, never on stdout (settings and commands print): `started`
(pid) and `exited` (status, as subprocess reports it: negative for a signal). The server waits
for its children with SIGCHLD waking its select loop; it starts no thread.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping

from django.core.management import execute_from_command_line, get_commands, load_command_class
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from .faults import fault_line
from .protocol import NO_WARMUP_ENV, STEP_SERVER_FDS_ENV, ServerEvent, StepRequest
from .warm_states import WarmStates

# The commands a run's steps use: their modules (and what they import) are loaded once here.
PRELOADED_COMMANDS = ("migrate", "showmigrations", "makemigrations", "check", "shell")


def preload() -> int:
    """Import what each step would import again; returns the number of migrations found."""
    loader = MigrationLoader(None, ignore_no_migrations=True)  # imports every migration module
    commands = get_commands()
    for name in PRELOADED_COMMANDS:
        if name in commands:
            load_command_class(commands[name], name)
    connections.all()  # the backends' modules and wrappers, without connecting
    return len(loader.disk_migrations)


def warm_up(environ: Mapping[str, str]) -> str:
    """Collect the server's garbage, then move every object it holds out of the collector's
    view (`gc.freeze`), just before the first fork: a child's collections then no longer scan
    the server's objects (Django, every migration module) nor write to, and so copy, their pages.
    Measured on 20 apps x 50 migrations: a forked backward `migrate` 0.29 s -> 0.24 s. Rendering
    the whole graph's project state beforehand as well gained nothing (and without the freeze made
    forward steps slower: its garbage was scanned by every child), so it is not done.

    Changes nothing a step does: no object changes, only which ones the collector looks at (a
    child's own garbage is collected as before). Returns what was done, or why not
    ("skipped: ..." with TM_NO_WARMUP=1, or on a Python without `gc.freeze`)."""
    refused = freeze_refused(environ)
    if refused is not None:
        return refused
    gc.collect()
    gc.freeze()
    return f"froze {gc.get_freeze_count()} objects"


def freeze_refused(environ: Mapping[str, str]) -> str | None:
    """Why warm_up does not freeze the server's objects (then the states warm_states renders are
    not frozen either); None when it does."""
    if environ.get(NO_WARMUP_ENV, "") not in ("", "0"):
        return f"skipped: {NO_WARMUP_ENV} is set"
    if not hasattr(gc, "freeze"):  # Python 3.7+; feature-detected all the same
        return "skipped: gc.freeze is missing"
    return None


def other_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())


class Server:
    """The serving loop: requests in, a child per request, events out."""

    def __init__(self, request_fd: int, event_fd: int, states: WarmStates | None = None) -> None:
        self.states = states  # rendered project states for the children's `migrate` (warm_states.py)
        self.request_fd = request_fd
        self.event_fd = event_fd
        self.children: dict[int, int] = {}  # pid -> request id
        self.wake_read, self.wake_write = os.pipe()
        self.buffer = b""
        self.selector = selectors.DefaultSelector()

    def send(self, event: ServerEvent) -> None:
        # One short line per write: atomic on a pipe, so events never interleave.
        try:
            os.write(self.event_fd, (json.dumps(event) + "\n").encode())
        except OSError:  # the tool is gone: its steps with it
            self.kill_children()
            os._exit(1)

    def serve(self) -> None:
        for fd in (self.wake_read, self.wake_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes select through the fd
        open_ = True
        with self.selector as selector:
            selector.register(self.request_fd, selectors.EVENT_READ)
            selector.register(self.wake_read, selectors.EVENT_READ)
            while open_ or self.children:
                for key, _ in selector.select():
                    if key.fd == self.wake_read:
                        with contextlib.suppress(BlockingIOError):
                            while os.read(self.wake_read, 512):
                                pass
                    elif not self.read_requests():
                        open_ = False
                        selector.unregister(self.request_fd)
                        self.kill_children()  # the tool is gone or done: nobody waits for them
                self.reap()

    def read_requests(self) -> bool:
        """Start a child for each complete request line; False at the end of the pipe."""
        data = os.read(self.request_fd, 65536)
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self.start(json.loads(line))
        return bool(data)

    def start(self, request: StepRequest) -> None:
        if other_threads():  # a thread started since: a fork would copy it half-way
            self.send({"event": "exited", "id": request["id"], "returncode": 1,
                       "reason": f"threads running in the step server: {', '.join(other_threads())}"})
            return
        if self.states is not None:
            self.states.prepare(request["args"])
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        try:
            pid = os.fork()
        except OSError as error:  # out of processes or memory: this step fails, the server goes on
            self.send({"event": "exited", "id": request["id"], "returncode": 1, "reason": f"fork failed: {error}"})
            return
        if pid == 0:
            if self.states is not None:
                self.states.enter_child()
            selector_fd = getattr(self.selector, "fileno", lambda: -1)()  # epoll, kqueue; poll has none
            run_child(request, (self.request_fd, self.event_fd, self.wake_read, self.wake_write, selector_fd))
        with contextlib.suppress(OSError):  # also done by the child: whichever runs first
            os.setpgid(pid, pid)
        self.children[pid] = request["id"]
        self.send({"event": "started", "id": request["id"], "pid": pid})

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            request_id = self.children.pop(pid, None)
            if request_id is not None:
                self.send({"event": "exited", "id": request_id, "returncode": returncode_of(status)})

    def kill_children(self) -> None:
        for pid in self.children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def returncode_of(status: int) -> int:
    """A wait status as subprocess reports it: the exit status, or minus the signal number."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def run_child(request: StepRequest, server_fds: tuple[int, ...]) -> None:
    """The forked child: become its own process group, take the step's files and environment,
    run the command, exit with its status. Never returns into the server's loop."""
    status = 1
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in server_fds:
            if fd >= 0:
                os.close(fd)
        redirect(request["stdout"], request["stderr"])
        os.environ.update(request["env"])
        sys.argv = [sys.argv[0], *request["args"]]
        status = run_command(sys.argv)
    except BaseException:  # the step could not even start: say why where its output goes
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def redirect(stdout_path: str, stderr_path: str) -> None:
    """fd 0 from /dev/null, fds 1 and 2 into the step's files (sys.stdout/sys.stderr follow)."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)


def run_command(argv: list[str]) -> int:
    """`manage.py ARGV[1:]` with the exit status the interpreter would give it."""
    try:
        execute_from_command_line(argv)
    except SystemExit as stop:
        return exit_status(stop.code)
    except KeyboardInterrupt:
        # Python ends an uncaught KeyboardInterrupt by SIGINT: do the same.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException as error:
        sys.excepthook(*sys.exc_info())
        say_fault(error)
        return 1
    return 0


def say_fault(error: BaseException) -> None:
    """A connection fault gets a marker line with its SQLSTATE (faults.classify_output reads it):
    the tool must tell a server that failed the step from a migration that did."""
    line = fault_line(error)
    if line is not None:
        print(line, file=sys.stderr)


def exit_status(code: object) -> int:
    """What the interpreter makes of `sys.exit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def main() -> None:
    request_fd, event_fd = (int(fd) for fd in os.environ.pop(STEP_SERVER_FDS_ENV).split(","))
    started = time.perf_counter()
    migrations = preload()
    connections.close_all()
    states, warm_states = WarmStates.install(os.environ, freeze=freeze_refused(os.environ) is None)
    server = Server(request_fd, event_fd, states)
    warmed = warm_up(os.environ)  # last: what the server made before serving is frozen too
    threads = other_threads()
    if threads:
        server.send({"event": "refused", "reason": f"threads running after Django started: {', '.join(threads)}"})
        return
    server.send({"event": "ready", "pid": os.getpid(), "seconds": round(time.perf_counter() - started, 3),
                 "migrations": migrations, "warm_up": warmed, "warm_states": warm_states})
    server.serve()
