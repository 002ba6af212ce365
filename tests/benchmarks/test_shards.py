"""benchmarks/shards.py on a small synthetic project: it runs, the merged shards' verdicts equal
the single job's, and the process counts are the exact ones (timings are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_shards_benchmark_on_a_small_project(tmp_path, pg_server_url):
    output = tmp_path / "shards.json"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "shards.py"), "--apps", "3",
                           "--migrations", "3", "--shards", "2", "--output", str(output)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(output.read_text())
    assert figures["merged_equals_whole"] is True and figures["merge_exit"] == 0
    # Steps (Django commands, the same in both isolations): 5 fixed (probe, migrate,
    # showmigrations, makemigrations, check), then per app one build and 3 per migration (3 apps
    # x 3 migrations, one chain each: 3 apps > 2 jobs).
    assert figures["whole"]["steps"] == 5 + 3 * (1 + 3 * 3)
    # Equal windows: app1 -> shard 1, app2 -> shard 2, app3 -> shard 1 (the lighter one, then the
    # lower index). Shard 2 only probes (1) and tests its app (one chain: 3 migrations split into
    # runs of at least two gives one run).
    assert [part["steps"] for part in figures["shards"]] == [5 + 2 * (1 + 9), 1 + (1 + 9)]
    # Processes under fork isolation (the default here): a step server per database, the head
    # database's and one per chain.
    assert figures["whole"]["isolation"] == "fork"
    assert figures["whole"]["processes"] == 1 + 3
    assert [part["processes"] for part in figures["shards"]] == [1 + 2, 1 + 1]
    assert [part["apps"] for part in figures["shards"]] == [2, 1]
    assert figures["shards_total_s"] >= figures["longest_shard_s"] > 0
    assert "shards, total" in done.stdout
