"""The ways a run ends early, shared by every module; exit status 3 when the server fails the run
(inside_django/faults.py classifies the server's errors as faults, on both sides of the step)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol


class UsageError(Exception):
    """A problem with the input or the environment: exit 2 with one line, no traceback."""


def load_json_input(path: Path, option: str) -> Any:
    """The JSON a user's file named by `option` holds (--table-sizes, --merge-reports); a file
    that cannot be read or is not JSON is a UsageError saying so in one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{option}: cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:  # not UTF-8 (UnicodeDecodeError) or not JSON (JSONDecodeError)
        raise UsageError(f"{option}: {path} is not JSON ({error})") from None


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop starting steps; cleanup still runs."""


class FaultDescription(Protocol):
    """What a run knows of the fault that ended it (inside_django.faults.Fault)."""

    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    def line(self) -> str: ...
    def to_json(self) -> dict[str, object]: ...


class InfrastructureFault(Exception):
    """The server failed the run (refused, lost or ended its connections): exit 3 with one line;
    no migration is judged by it."""

    def __init__(self, fault: FaultDescription) -> None:
        super().__init__(fault.message)
        self.fault = fault
