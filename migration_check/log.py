"""Console output and password masking.

Owns: `Log` (progress lines on stdout, flushed before slow work, at Django's verbosity levels)
and the functions that hide passwords where they stand in text: the userinfo of a URL, a libpq
`password=` setting, a Django `'PASSWORD': '...'` item, `PGPASSWORD=`. Masking every occurrence
of a password anywhere would mangle ordinary words (a password `postgres` would turn every
"postgres" into `***`), so only these places are masked.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
from typing import TextIO

from .verdicts import CheckStatus

MASK = "***"
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


class Log:
    """Console output: progress lines on stdout, flushed before slow work; passwords masked.

    verbosity follows Django: 0 quiet, 1 default (one line per step), 2 verbose (commands and
    output of failing steps), 3 everything.
    """

    def __init__(self, verbosity: int = 1, stream: TextIO | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream or sys.stdout

    @staticmethod
    def mask(text: str) -> str:
        return mask_passwords(text)

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

    def step(self, what: str, status: CheckStatus, seconds: float | None, note: str | None = None) -> None:
        """One line for a finished step: `what ... OK (0.4s)`, the note when it failed (or -v)."""
        shown = STEP_WORDS.get(status, status)
        timing = f" ({seconds:.1f}s)" if seconds is not None else ""
        show_note = note and (status != CheckStatus.PASSED or self.verbosity >= 2)
        self.info(f"{what} ... {shown}{timing}" + (f": {note}" if show_note else ""))


def error_line(prog: str, message: str) -> str:
    """The one line a usage or configuration error prints on stderr."""
    return f"{prog}: error: {mask_passwords(message)}"
