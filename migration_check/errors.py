"""The ways a run ends early, shared by every module.

Uses: nothing.
"""


class UsageError(Exception):
    """A problem with the input or the environment: exit 2 with one line, no traceback."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop starting steps; cleanup still runs."""


class InfrastructureFault(Exception):
    """The server failed the run (refused, lost or ended its connections): exit 3 with one line;
    no migration is judged by it. `fault` is a postgres.faults.Fault."""

    def __init__(self, fault: object) -> None:
        super().__init__(getattr(fault, "message", str(fault)))
        self.fault = fault
