"""A server error that is an infrastructure fault ends the run (exit 3); it never becomes a
finding. The classification itself is inside_django/faults.py, which the step children use too.

Owns: `raise_if_fault`, for the tool's own connections (seeding, the compat check, --volume, the
chain's reads) that turn other database errors into findings.
"""

from __future__ import annotations

from ..errors import InfrastructureFault
from ..inside_django.faults import classify_exception


def raise_if_fault(error: BaseException) -> None:
    """For code that turns a database error into a finding: a fault is never one."""
    fault = classify_exception(error)
    if fault is not None:
        raise InfrastructureFault(fault) from None
