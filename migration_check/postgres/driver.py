"""The PostgreSQL driver of the tool's own connections: psycopg2, or psycopg 3 when only that is
installed (Django's documentation recommends it; a project has one or the other).

Owns: `Driver` (connect, and the exception classes the tool catches, under psycopg2's names) and
`load_driver`. psycopg 3 connections use client-side parameter binding (`ClientCursor`), as
psycopg2 does, so that the same SQL with `%s` parameters works with both (server-side binding
rejects parameters in DDL and SET).

Uses: errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from ..errors import UsageError

DRIVERS = ("psycopg2", "psycopg")  # psycopg2 first: the one the tool was built and measured with


@dataclass(frozen=True)
class Driver:
    """What the tool uses of a driver: `connect(**libpq_keywords)`, `Error`, `OperationalError`
    and `errors.ObjectInUse` (psycopg2's names, which psycopg 3 shares)."""

    name: str
    module: Any
    Error: type[Exception]
    OperationalError: type[Exception]
    errors: Any

    def connect(self, **kwargs: Any) -> Any:
        if self.name == "psycopg":
            return self.module.connect(cursor_factory=self.module.ClientCursor, **kwargs)
        return self.module.connect(**kwargs)


def psycopg2_driver() -> Driver:
    import psycopg2
    import psycopg2.errors

    return Driver("psycopg2", psycopg2, psycopg2.Error, psycopg2.OperationalError,
                  SimpleNamespace(ObjectInUse=psycopg2.errors.ObjectInUse))


def psycopg3_driver() -> Driver:
    import psycopg
    import psycopg.errors

    return Driver("psycopg", psycopg, psycopg.Error, psycopg.OperationalError,
                  SimpleNamespace(ObjectInUse=psycopg.errors.ObjectInUse))


def load_driver() -> Driver:
    """psycopg2 if this Python has it, else psycopg 3; neither is one line, exit 2."""
    for loader in (psycopg2_driver, psycopg3_driver):
        try:
            return loader()
        except ImportError:
            continue
    raise UsageError("no PostgreSQL driver in this Python: install psycopg2 (pip install psycopg2-binary) or "
                     "psycopg 3 (pip install 'psycopg[binary]'), or run the tool with the project's virtualenv Python")
