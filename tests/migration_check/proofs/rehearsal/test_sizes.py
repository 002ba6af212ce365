"""Production sizes (rehearsal/sizes.py): volumes, the fit, flat by classification, --max-blocking."""

from __future__ import annotations

import json

import pytest

from migration_check.errors import UsageError
from migration_check.proofs.rehearsal.sizes import (
    Measurement,
    blocking_message,
    blocking_problems,
    estimate_impact,
    fit,
    impacts,
    read_table_sizes,
    volumes,
)

TAG = "upstream_tag"
EXCLUSIVE = "AccessExclusiveLock"


def written(rows: int, held: float) -> Measurement:
    return Measurement(TAG, EXCLUSIVE, rows, held, wrote_rows=True)


def catalog_only(rows: int, held: float) -> Measurement:
    return Measurement(TAG, EXCLUSIVE, rows, held)


@pytest.mark.parametrize(("production", "cap", "expected"), [
    (2_000_000, 20_000, [1600, 5600, 20000]),
    (5000, 20_000, [400, 1400, 5000]),
    (None, 1500, [120, 420, 1500]),
    (10, 20_000, [16, 56, 200]),  # below 200 rows only the fixed cost shows
])
def test_volumes_are_three_spread_tenfold_and_capped(production, cap, expected):
    assert volumes(production, cap) == expected


def test_fit_recovers_fixed_and_per_row_cost():
    fixed, per_row = fit([(100, 2.0), (1000, 11.0), (10_000, 101.0)])
    assert fixed == pytest.approx(1.0) and per_row == pytest.approx(0.01)


def test_fit_needs_rows_that_vary():
    assert fit([(100, 1.0)]) is None and fit([(100, 1.0), (100, 2.0)]) is None


def test_a_lock_under_which_rows_were_written_grows():
    impact = estimate_impact([written(100, 2.0), written(1000, 11.0), written(10_000, 101.0)], 1_000_000)
    assert impact.basis == "fitted" and impact.cause == "rows written"
    assert impact.estimated_held_s == pytest.approx(10_001.0)
    assert impact.measured == ((100, 2.0), (1000, 11.0), (10_000, 101.0))


def test_a_catalog_only_lock_is_flat_whatever_the_noise_says():
    # times that rise with rows by chance: a fit would call this growing
    impact = estimate_impact([catalog_only(100, 0.01), catalog_only(1000, 0.02), catalog_only(10_000, 0.04)],
                             1_000_000)
    assert impact.basis == "flat" and impact.estimated_held_s == 0.04 and impact.cause == "catalog only"


def test_growing_work_with_noise_sized_times_is_scaled_not_called_flat():
    rewrite = [Measurement(TAG, EXCLUSIVE, rows, held, rewrote=True)
               for rows, held in ((100, 0.05), (1000, 0.03), (10_000, 0.02))]
    impact = estimate_impact(rewrite, 1_000_000)
    assert impact.basis == "proportional" and impact.estimated_held_s == pytest.approx(2.0)


def test_without_a_production_size_only_the_measurements():
    impact = estimate_impact([written(500, 0.3)], None)
    assert impact.basis == "measured" and impact.estimated_held_s is None and impact.blocking_s == 0.3


def test_impacts_longest_first():
    found = impacts([catalog_only(100, 0.5), Measurement("b", "ShareLock", 100, 0.01, scanned=True),
                     Measurement("b", "ShareLock", 1000, 0.1, scanned=True)], {TAG: 10_000, "b": 100_000})
    assert [(i.table, i.basis) for i in found] == [("b", "fitted"), (TAG, "flat")]


def test_max_blocking_names_the_numbers():
    impact = estimate_impact([written(100, 2.0), written(1000, 11.0), written(10_000, 101.0)], 1_000_000)
    (problem,) = blocking_problems([impact], 1.0)
    assert problem.startswith("blocks writes longer than --max-blocking 1 s: ACCESS EXCLUSIVE on upstream_tag "
                              "(rows written): estimated 10,001 s at 1,000,000 rows, fitted")
    assert "2 s at 100; 11 s at 1,000; 101 s at 10,000" in problem
    assert blocking_problems([impact], 20_000.0) == [] and blocking_problems([impact], None) == []


def test_blocking_message_without_estimate():
    assert blocking_message(estimate_impact([written(500, 0.25)], None)) == \
        "ACCESS EXCLUSIVE on upstream_tag (rows written): held 0.25 s (measured 0.25 s at 500)"


def test_read_table_sizes(tmp_path):
    path = tmp_path / "sizes.json"
    path.write_text(json.dumps({"upstream_tag": 2_000_000, "upstream_invoice": 2.5e7}))
    assert read_table_sizes(path) == {"upstream_tag": 2_000_000, "upstream_invoice": 25_000_000}


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "is not JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"t": -1}', "rows of 't' must be a number >= 0"),
    ('{"t": "many"}', "rows of 't' must be a number >= 0"),
])
def test_bad_table_sizes_are_usage_errors(tmp_path, text, message):
    path = tmp_path / "sizes.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_table_sizes(path)


def test_missing_table_sizes_file(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        read_table_sizes(tmp_path / "absent.json")
