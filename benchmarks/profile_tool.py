#!/usr/bin/env python3
"""Where the time of one migration-tool run goes, by phase (threads included).

    .venv/bin/python benchmarks/profile_tool.py [tool options...]

Runs the tool once through its public API (`migration_check.run_project`, with the given
options, e.g. ``--app upstream``, ``--no-schema --no-data`` or ``--isolation process``) and
prints the phase times the run records itself (`RunResult.timings`: every manage.py command by
name, step server starts, schema snapshots, seeding, fingerprints, CREATE/DROP DATABASE),
seconds summed over the worker threads. A step server's start is also counted in the first
step's time on its database, as a process step counts its own start.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import migration_check as mc  # noqa: E402 - the tool's package, in the repository root


def main(argv: list[str]) -> int:
    config = mc.config_from_args(mc.build_parser().parse_args([*argv, "-q"]))
    started = time.perf_counter()
    result = mc.run_project(config, mc.Log(0), dict(os.environ))
    total = time.perf_counter() - started
    print(f"tool run: {total:.2f}s wall, ok={result.ok}, --isolation {result.isolation}, {result.steps} steps, "
          f"{result.processes} processes, load average {os.getloadavg()[0]:.2f}")
    print(f"{'phase':40s} {'calls':>5s} {'wall s (sum over threads)':>26s}")
    for label, phase in result.timings.items():
        print(f"{label:40s} {phase.calls:5d} {phase.seconds:26.2f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except mc.UsageError as error:
        print(mc.error_line("profile_tool", str(error)), file=sys.stderr)
        sys.exit(2)
