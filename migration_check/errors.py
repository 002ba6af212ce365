"""The ways a run ends early, shared by every module; exit status 3 when the server fails the run
(inside_django/faults.py classifies the server's errors as faults, on both sides of the step)."""

from __future__ import annotations

from typing import Protocol


class UsageError(Exception):
    """A problem with the input or the environment: exit 2 with one line, no traceback."""


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
