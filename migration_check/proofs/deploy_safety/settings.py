"""What a run's chains need to know for deploy safety: whether to observe, squawk, --volume.

Owns: `DeploySafety` (decided once per run by run.py, read by the deploy-safety proof of every
migration).
"""

from __future__ import annotations

from dataclasses import dataclass

from .squawk import Squawk


@dataclass(frozen=True, kw_only=True)
class DeploySafety:
    """Shared by a run's chains: whether to observe, squawk if installed, the server's version
    (squawk's --pg-version), and --volume."""

    observe: bool = False
    squawk: Squawk | None = None
    server_version: str = ""
    volume: int | None = None
