"""The two ways a run ends early, shared by every module.
"""


class UsageError(Exception):
    """A problem with the input or the environment: exit 2 with one line, no traceback."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop starting steps; cleanup still runs."""
