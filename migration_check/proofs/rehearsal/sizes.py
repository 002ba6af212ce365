"""Production sizes: each write-blocking lock's hold measured at several volumes, and what it
becomes at the table's production size (pure: measurements in, estimates out).

A lock under which the observation saw no rewrite, no table scan and no rows written (DROP NOT
NULL, a new nullable column) costs the same on any table: it is *flat* by classification, its
estimate the longest hold measured, never a fit that noise can tilt. Every other lock is
measured at three or more volumes spread at least tenfold (`volumes`) and fitted as fixed +
per-row cost by least squares; when noise makes that per-row cost come out zero or negative, the
largest hold is scaled by rows as if it were all per-row cost (`proportional`, an upper bound).

Owns: `read_table_sizes` (the --table-sizes file), `volumes`, `Measurement`, `fit`,
`estimate_impact`, `blocking_problems` (the lines of the locks over --max-blocking; which
ones are over it, and the verdict, are verdict_table's) and `blocking_message`.

Pure apart from reading the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError, load_json_input
from ...results import Impact
from ...verdict_table import over_limit
from ..deploy_safety.hazards import sql_mode

# Three volumes, the largest 12.5 times the smallest: with the few seeded rows on top, the
# tables' rows still spread at least tenfold.
VOLUME_STEPS = (0.08, 0.28, 1.0)
MIN_TOP_VOLUME = 200  # below that, the fixed cost is all there is to see
SIZES_QUERY = ("SELECT c.oid::regclass::text, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n "
               "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN "
               "('pg_catalog', 'information_schema') AND c.reltuples >= 0")


def read_table_sizes(path: Path) -> dict[str, int]:
    """--table-sizes FILE: a JSON object {table: rows}; anything else is a usage error."""
    data = load_json_input(path, "--table-sizes")
    if not isinstance(data, dict) or not data:
        raise UsageError(f"--table-sizes: {path} must hold a JSON object {{\"table\": rows, ...}}")
    sizes = {}
    for table, rows in data.items():
        if isinstance(rows, bool) or not isinstance(rows, (int, float)) or rows < 0:
            raise UsageError(f"--table-sizes: {path}: rows of {table!r} must be a number >= 0, got {rows!r}")
        sizes[str(table)] = int(rows)
    return sizes


def volumes(production_rows: int | None, volume_max: int) -> list[int]:
    """The rows to add at each measurement: up to the production size, capped by volume_max,
    three of them, spread more than tenfold."""
    top = min(production_rows, volume_max) if production_rows else volume_max
    top = max(top, MIN_TOP_VOLUME)
    return sorted({max(int(top * step), 1) for step in VOLUME_STEPS})


@dataclass(frozen=True)
class Measurement:
    """One lock hold of one measurement: the table's rows, the time held, and what the
    observation saw under the lock (rewrite, scan, rows written)."""

    table: str
    mode: str
    rows: int
    held_s: float
    rewrote: bool = False
    scanned: bool = False
    wrote_rows: bool = False

    @property
    def grows(self) -> bool:
        return self.rewrote or self.scanned or self.wrote_rows


def fit(points: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    """Least squares fixed + per-row cost; None when the rows do not vary."""
    if len(points) < 2:
        return None
    xs, ys = [float(r) for r, _ in points], [h for _, h in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    per_row = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return mean_y - per_row * mean_x, per_row


def cause_of(measurements: Sequence[Measurement]) -> str:
    causes = [name for name, seen in (("rewrite", any(m.rewrote for m in measurements)),
                                      ("table scan", any(m.scanned for m in measurements)),
                                      ("rows written", any(m.wrote_rows for m in measurements))) if seen]
    return ", ".join(causes) or "catalog only"


def estimate_impact(measurements: Sequence[Measurement], production_rows: int | None) -> Impact:
    """One table's lock, from its measurements (same table and mode, one or more volumes)."""
    first = measurements[0]
    points = tuple(sorted((m.rows, round(m.held_s, 4)) for m in measurements))
    longest = max(held for _, held in points)
    cause = cause_of(measurements)
    if production_rows is None:
        return Impact(first.table, first.mode, points, None, None, "measured", cause)
    if not any(m.grows for m in measurements):
        return Impact(first.table, first.mode, points, production_rows, longest, "flat", cause)
    fitted = fit(points)
    if fitted is None or fitted[1] <= 0:
        # The work grows with rows but the times are noise-sized: the largest hold, scaled as if
        # all of it were per-row cost (an upper bound, never flat).
        top_rows, top_held = max(points, key=lambda point: point[0])
        estimate = top_held * production_rows / max(top_rows, 1)
        return Impact(first.table, first.mode, points, production_rows, round(max(estimate, longest), 3),
                      "proportional", cause)
    fixed, per_row = fitted
    estimate = max(fixed, 0.0) + per_row * production_rows
    return Impact(first.table, first.mode, points, production_rows, round(max(estimate, longest), 3), "fitted", cause)


def impacts(measurements: Sequence[Measurement], sizes: dict[str, int] | None) -> list[Impact]:
    """One Impact per (table, mode) measured, by estimated blocking, longest first."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for measurement in measurements:
        groups.setdefault((measurement.table, measurement.mode), []).append(measurement)
    found = [estimate_impact(group, (sizes or {}).get(table) if sizes is not None else None)
             for (table, _), group in sorted(groups.items())]
    return sorted(found, key=lambda impact: -impact.blocking_s)


def figure(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 100 else f"{seconds:,.0f} s"


def blocking_message(impact: Impact) -> str:
    """ACCESS EXCLUSIVE on upstream_tag (rows written): estimated 390 s at 2,000,000 rows
    (3.9 s at 20,000; 7.8 s at 40,000)."""
    measured = "; ".join(f"{figure(held)} at {rows:,}" for rows, held in impact.measured)
    what = f"{sql_mode(impact.mode)} on {impact.table} ({impact.cause})"
    if impact.estimated_held_s is not None and impact.production_rows is not None:
        return (f"{what}: estimated {figure(impact.estimated_held_s)} at {impact.production_rows:,} rows, "
                f"{impact.basis} (measured {measured})")
    return f"{what}: held {figure(impact.blocking_s)} (measured {measured})"


def blocking_problems(found: Sequence[Impact], limit_s: float | None) -> list[str]:
    """--max-blocking: one line, with the numbers, per lock the verdict table finds over the limit."""
    return [f"blocks writes longer than --max-blocking {limit_s:g} s: {blocking_message(impact)}"
            for impact in over_limit(found, limit_s)]
