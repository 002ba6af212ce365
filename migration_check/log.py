"""Console output and password masking.

Owns: `Log` (progress lines on stdout, flushed before slow work, at Django's verbosity levels;
while chains run side by side, each chain's lines kept together as a block under a heading, and
on a terminal a live progress line at the bottom) and the functions that hide passwords where
they stand in text: the userinfo of a URL, a libpq `password=` setting, a Django
`'PASSWORD': '...'` item, `PGPASSWORD=`. Masking every occurrence of a password anywhere would
mangle ordinary words (a password `postgres` would turn every "postgres" into `***`), so only
these places are masked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from .verdicts import CheckStatus

MASK = "***"
# A chain's block of lines starts with this heading (the app, and its part of the window when
# the window is split over several chains).
HEADING = "== {} =="
# The live line is redrawn at least this often, so its elapsed time moves during a long step.
LIVE_TICK_S = 1.0
# Back to the start of the line and erase it (ANSI "erase in line"; TERM=dumb gets no live line).
CLEAR_LINE = "\r\x1b[K"
# How a progress line shows a finished step's status.
STEP_WORDS = {CheckStatus.PASSED: "OK", CheckStatus.FAILED: "FAILED", CheckStatus.SKIPPED: "skipped"}

# Each pattern keeps `pre` and `post` and replaces `secret`.
PASSWORD_PATTERNS = (
    # scheme://user:PASSWORD@host (up to the last @ before the host's path or the end of the word)
    re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s/?#]*)(?P<post>@)", re.IGNORECASE),
    # libpq connection strings: password=secret or password='se cret'
    re.compile(r"(?P<pre>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s'\"&]+)(?P<post>)", re.IGNORECASE),
    # a Django settings dictionary printed in a traceback: 'PASSWORD': 'secret'
    re.compile(r"(?P<pre>['\"]PASSWORD['\"]\s*:\s*)(?P<secret>'[^']*'|\"[^\"]*\")(?P<post>)"),
    # the environment of a child process: PGPASSWORD=secret
    re.compile(r"(?P<pre>\bPGPASSWORD=)(?P<secret>\S+)(?P<post>)"),
)


def mask_passwords(text: str) -> str:
    """`text` with every password that stands in a URL, a connection string, a settings
    dictionary or PGPASSWORD replaced by ``***``; nothing else changes."""
    for pattern in PASSWORD_PATTERNS:
        text = pattern.sub(lambda m: m.group("pre") + MASK + m.group("post")
                           if m.group("secret") not in ("", MASK) else m.group(0), text)
    return text


def mask_url(url: str) -> str:
    """`url` with its password replaced by ``***`` (safe to print)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def live_line_wanted(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """A live line rewritten in place with `\\r` only on a terminal: in a pipe, a file or a CI
    log every rewrite would stay as garbage (CI logs keep each `\\r` update), and a dumb
    terminal cannot erase a line."""
    if environ.get("CI") or environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a stream without isatty, or a closed one
        return False


@dataclass(eq=False)
class Group:
    """The lines of one chain while chains run side by side, and how far it got (the live line)."""

    title: str
    migrations: int  # how many migrations the chain tests
    done: int = 0
    doing: str = ""  # the step it runs now
    lines: list[str] = field(default_factory=list)  # held until it is printed as a block
    headed: bool = False  # its heading is printed

    def block(self) -> list[str]:
        """The lines held, under the heading the first time: nothing when nothing is held (a
        chain that printed nothing, at this verbosity, gets no heading either)."""
        held, self.lines = self.lines, []
        if not held:
            return []
        heading = [] if self.headed else [HEADING.format(self.title) + "\n"]
        self.headed = True
        return heading + held


class Blocks:
    """Which chain's lines are printed as they come and which are held (no I/O, no lock: `Log`
    calls it under its lock, and writes what each call returns).

    One chain is followed: its heading and lines are streamed as they come, so a long run shows
    progress in a CI log too (buffering every chain would print nothing until the first one ends).
    The others' lines are held; a chain that ends while another is followed waits, whole, until
    the followed one ends. Then the finished blocks are printed, and the oldest running chain
    becomes the followed one (its heading and held lines first). So each chain's lines stay
    together, and nothing is printed twice or out of a chain's own order.
    """

    def __init__(self) -> None:
        self.followed: Group | None = None
        self.running: list[Group] = []  # in the order they started
        self.finished: list[Group] = []  # in the order they ended

    def open(self, group: Group) -> list[str]:
        if self.followed is None:
            self.followed = group
        else:
            self.running.append(group)
        return []

    def line(self, group: Group, text: str) -> list[str]:
        group.lines.append(text)
        return group.block() if group is self.followed else []

    def close(self, group: Group) -> list[str]:
        if group is not self.followed:
            if group in self.running:
                self.running.remove(group)
                self.finished.append(group)
            return []
        shown = [line for done in self.finished for line in done.block()]
        self.finished = []
        self.followed = self.running.pop(0) if self.running else None
        return shown + (self.followed.block() if self.followed is not None else [])

    def flush(self) -> list[str]:
        """Every line still held (the run is ending, e.g. interrupted): finished blocks first,
        then the chains that never ended, each as a block."""
        held = [line for group in (*self.finished, *self.running) for line in group.block()]
        self.followed, self.running, self.finished = None, [], []
        return held


def progress_text(done: int, total: int, elapsed_s: float, doing: list[str], width: int) -> str:
    """The live line: `[12/40] 0:37 upstream.0022_tag_slug rollback` (each running chain's step,
    oldest chain first), cut to the terminal's width (a line longer than the terminal wraps, and
    `\\r` would then only return to its last row)."""
    minutes, seconds = divmod(int(elapsed_s), 60)
    text = f"[{done}/{total}] {minutes}:{seconds:02d}" + (" " + ", ".join(doing) if doing else "")
    return text[: max(width - 1, 0)]


@dataclass
class Progress:
    """Migrations done of all, while chains run."""

    total: int
    done: int = 0


class Log:
    """Console output: progress lines on stdout, flushed before slow work; passwords masked.

    verbosity follows Django: 0 quiet, 1 default (one line per step), 2 verbose (commands and
    output of failing steps), 3 everything.

    Chains run in threads of one process (run.py's pool), all writing through this one object:
    every write takes the lock, and the chain a line belongs to is the group its thread entered
    (`group()`), kept in a thread-local attribute of this object, so the steps' code below (the
    step runner's command lines) needs no chain passed to it. `live` is whether to show the live
    line; by default, when `live_line_wanted` for the stream and the environment.
    """

    def __init__(self, verbosity: int = 1, stream: TextIO | None = None, live: bool | None = None,
                 width: int | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream or sys.stdout
        self.live = verbosity >= 1 and (live_line_wanted(self.stream, os.environ) if live is None else live)
        self.width = width or shutil.get_terminal_size().columns
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._here = threading.local()  # .group: the Group the current thread writes into
        self._groups: list[Group] = []  # entered and not left, in the order they started
        self._blocks: Blocks | None = None  # while chains run side by side with --jobs > 1
        self._progress: Progress | None = None
        self._shown = False  # the live line is on the screen

    @staticmethod
    def mask(text: str) -> str:
        return mask_passwords(text)

    def write(self, text: str, level: int = 1, end: str = "\n") -> None:
        if self.verbosity < level:
            return
        line = self.mask(text) + end
        group: Group | None = getattr(self._here, "group", None)
        with self._lock:
            self._emit(self._blocks.line(group, line) if self._blocks is not None and group is not None else [line])

    def info(self, text: str) -> None:
        self.write(text, 1)

    def detail(self, text: str) -> None:
        self.write(text, 2)

    def debug(self, text: str) -> None:
        self.write(text, 3)

    def step(self, what: str, status: CheckStatus, seconds: float | None, note: str | None = None) -> None:
        """One line for a finished step: `what ... OK (0.4s)`, the note when it failed (or -v)."""
        shown = STEP_WORDS.get(status, status)
        timing = f" ({seconds:.1f}s)" if seconds is not None else ""
        show_note = note and (status != CheckStatus.PASSED or self.verbosity >= 2)
        self.info(f"{what} ... {shown}{timing}" + (f": {note}" if show_note else ""))

    # -- chains side by side --------------------------------------------------------------------

    @contextlib.contextmanager
    def parallel(self, total: int, grouped: bool, tick_s: float | None = LIVE_TICK_S) -> Iterator[None]:
        """While chains run: with `grouped`, each chain's lines as one block (see `Blocks`); on a
        terminal, the live line (`total` migrations). On the way out, also when interrupted or
        after a fault, every held line is written and the live line erased, before anything
        else (the summary, the exit message) is printed."""
        with self._lock:
            self._blocks = Blocks() if grouped and self.verbosity >= 1 else None
            self._progress = Progress(total)
            self._draw()
        stop = threading.Event()
        ticker = None
        if self.live and tick_s:
            ticker = threading.Thread(target=self._tick, args=(stop, tick_s), daemon=True, name="live-line")
            ticker.start()
        try:
            yield
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
            with self._lock:
                held = self._blocks.flush() if self._blocks is not None else []
                self._blocks, self._progress = None, None
                self._emit(held)
                self._erase()
                self.stream.flush()

    @contextlib.contextmanager
    def group(self, title: str, migrations: int = 0) -> Iterator[None]:
        """The current thread's lines belong to the chain `title`, testing `migrations` migrations."""
        group = Group(title, migrations)
        with self._lock:
            self._groups.append(group)
            self._emit(self._blocks.open(group) if self._blocks is not None else [])
        self._here.group = group
        try:
            yield
        finally:
            self._here.group = None
            with self._lock:
                self._groups.remove(group)
                if self._progress is not None:  # the migrations it did not get to count as done
                    self._progress.done += max(group.migrations - group.done, 0)
                self._emit(self._blocks.close(group) if self._blocks is not None else [])
                self._draw()

    def doing(self, what: str) -> None:
        """The step the current thread's chain starts now (shown on the live line)."""
        group: Group | None = getattr(self._here, "group", None)
        if group is None:
            return
        with self._lock:
            group.doing = what
            self._draw()

    def migration_done(self) -> None:
        """The current thread's chain is done with one migration."""
        group: Group | None = getattr(self._here, "group", None)
        with self._lock:
            if group is not None:
                group.done += 1
                group.doing = ""
            if self._progress is not None:
                self._progress.done += 1
            self._draw()

    # -- writing (the lock held) ----------------------------------------------------------------

    def _emit(self, lines: list[str]) -> None:
        """Write `lines` above the live line (erased first, drawn again after)."""
        if not lines:
            return
        self._erase()
        text = "".join(lines)
        self.stream.write(text)
        if text.endswith("\n"):
            self._draw()
        self.stream.flush()

    def _draw(self) -> None:
        if not self.live or self._progress is None:
            return
        doing = [group.doing for group in self._groups if group.doing]
        text = progress_text(self._progress.done, self._progress.total, time.monotonic() - self.started, doing,
                             self.width)
        self.stream.write(CLEAR_LINE + text)
        self.stream.flush()
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            self.stream.write(CLEAR_LINE)
            self._shown = False

    def _tick(self, stop: threading.Event, tick_s: float) -> None:
        while not stop.wait(tick_s):
            with self._lock:
                self._draw()


def error_line(prog: str, message: str) -> str:
    """The one line a usage or configuration error prints on stderr."""
    return f"{prog}: error: {mask_passwords(message)}"
