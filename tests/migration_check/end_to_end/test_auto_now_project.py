"""End to end: no false alarm on auto_now columns (auto_now_project).

stamped.0002 saves every row forward and backward; Django moves `updated_at` (auto_now) on each
save, so that column changes by design. tests/migration_check/fixture_sanity/test_defect_corpus.py shows it really
changes; here the tool must still say data preserved.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import PASSED, assert_cleaned_up, fixture_in_fork

pytestmark = pytest.mark.slow


# Fork isolation only: its steps all pass (docs/tests.md: which configurations run in both).
run = fixture_in_fork("auto_now_project")


def test_exits_0(run):
    assert run.returncode == 0, run.context()
    assert_cleaned_up(run)


@pytest.mark.parametrize("name", ["0002_resave_notes", "0001_initial"])
def test_resaving_rows_is_not_data_loss(run, name):
    run.assert_verdicts("stamped", name, apply="passed", **PASSED)
