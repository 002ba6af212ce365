"""benchmarks/run.py --project: its options (bad combinations exit 2 before anything runs), the
windows of a linear app folder, and one run on a tiny generated project (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import run  # noqa: E402
from synthetic import generate_project  # noqa: E402


@pytest.mark.parametrize("argv, message", [
    (["--settings", "x.settings"], "go with --project"),
    (["--app", "shop"], "go with --project"),
    (["--depth", "3"], "go with --project"),
    (["--project", "{missing}", "--settings", "s", "--app", "a"], "no such file"),
    (["--project", "{manage}", "--app", "a"], "needs --settings"),
    (["--project", "{manage}", "--settings", "s"], "needs --settings"),
    (["--project", "{manage}", "--settings", "s", "--app", "a", "--quick"], "drop --quick"),
    (["--project", "{manage}", "--settings", "s", "--app", "a", "--depth", "0"], "not a positive number"),
])
def test_bad_project_options_exit_2(tmp_path, capsys, argv, message):
    manage = tmp_path / "manage.py"
    manage.write_text("")
    argv = [a.format(manage=manage, missing=tmp_path / "nope" / "manage.py") for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        run.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_project_spec(tmp_path):
    manage = tmp_path / "shop" / "manage.py"
    manage.parent.mkdir()
    manage.write_text("")
    parser = run.build_parser()
    args = parser.parse_args(["--project", str(manage), "--settings", "s.settings", "--app", "a", "--app", "b"])
    spec = run.project_spec(args, parser)
    assert spec == run.ProjectSpec(manage=manage, settings="s.settings", apps=("a", "b"), depth="5",
                                   python=sys.executable, label="project-shop")


def test_local_window_pairs_each_file_with_its_predecessor(tmp_path):
    for name in ("0001_initial", "0002_a", "0003_b", "__init__"):
        (tmp_path / f"{name}.py").write_text("")
    assert run.local_window(tmp_path, 2) == [["0002_a", "0001_initial"], ["0003_b", "0002_a"]]
    assert run.local_window(tmp_path, None) == [["0001_initial", "zero"], ["0002_a", "0001_initial"],
                                                ["0003_b", "0002_a"]]


@pytest.mark.slow
def test_a_project_run_measures_floor_loop_and_tool(tmp_path, pg_server_url):
    manage = generate_project(tmp_path / "tiny", 2, 3)
    # A virtualenv inside the project folder is not the project's code: left as it is.
    (manage.parent / ".venv" / "lib").mkdir(parents=True)
    (manage.parent / ".venv" / "lib" / "installed.py").write_text("VALUE = 1\n")
    output = tmp_path / "project.json"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--project", str(manage),
                           "--settings", "benchproj.settings", "--app", "app1", "--app", "app2", "--depth", "2",
                           "--label", "tiny", "--output", str(output)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
                          # no process of the run writes a .pyc: only the benchmark's compiling does
                          env={**os.environ, "DATABASE_URL": pg_server_url, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["failures"] == []
    assert [row["workload"] for row in results["sizes"]] == ["tiny-d2"]
    # The windows from Django's graph: 1 migrate, then per app and tested migration a rollback
    # and a migrate (2 apps x 2).
    loop = results["plain_loops"]["tiny-d2"]
    assert (loop["processes"], loop["failed_processes"]) == (1 + 2 * 2 * 2, 0)
    assert results["floors"]["tiny-d2"]["steps"] == 2 * 2 * 3
    [tool] = results["tool"]
    assert (tool["id"], tool["tested_migrations"]) == ("tiny-d2/fork/all", 4)
    assert results["project"]["apps"] == ["app1", "app2"]
    assert "not checked: tiny-d2/fork/all" in done.stdout
    # Measured as on a machine that writes .pyc files (the suite's environment may say not to):
    # every migration of the project was compiled before the runs.
    assert results["machine"]["bytecode"] == "compiled before measuring"
    migrations = sorted((manage.parent / "app1" / "migrations").glob("0*.py"))
    assert len(migrations) == 3
    for migration in migrations:
        assert list((migration.parent / "__pycache__").glob(f"{migration.stem}.*.pyc")), migration
    assert not (manage.parent / ".venv" / "lib" / "__pycache__").exists()
