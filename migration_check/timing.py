"""Where a run's time goes: seconds and calls by phase, summed over the worker threads.

Owns: `PhaseTimes`, which the step runner and the scratch databases feed (every `manage.py`
command by name, schema snapshots, seeding, fingerprints, CREATE/DROP DATABASE). The run's
result carries it; `benchmarks/profile_tool.py` prints it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Phase:
    calls: int = 0
    seconds: float = 0.0


class PhaseTimes:
    """Thread-safe totals by phase label."""

    def __init__(self) -> None:
        self._phases: dict[str, Phase] = {}
        self._lock = threading.Lock()

    def add(self, label: str, seconds: float) -> None:
        with self._lock:
            phase = self._phases.setdefault(label, Phase())
            phase.calls += 1
            phase.seconds += seconds

    @contextlib.contextmanager
    def measure(self, label: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(label, time.perf_counter() - started)

    def phases(self) -> dict[str, Phase]:
        """A copy, longest first."""
        with self._lock:
            items = sorted(self._phases.items(), key=lambda item: -item[1].seconds)
            return {label: Phase(p.calls, p.seconds) for label, p in items}
