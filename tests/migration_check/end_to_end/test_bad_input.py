"""Bad input gets one line on stderr and exit status 2, before any work (no server is started,
no report file is left), run as a user runs the script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from migration_check.errors import UsageError
from migration_check.postgres.address import ServerAddress, read_dotenv_value

REPO_ROOT = Path(__file__).resolve().parents[3]
TOOL = str(REPO_ROOT / "scripts" / "test_migrations.py")
MANAGE = str(REPO_ROOT / "tests" / "fixtures" / "clean_project" / "manage.py")
UNREACHABLE = "postgres://u:pw@127.0.0.1:1/x"


def run_tool(*args: str, cwd: Path = REPO_ROOT, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GITHUB_ACTIONS")}
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, cwd=cwd,
                          env={**environ, **env}, stdin=subprocess.DEVNULL, timeout=120)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_an_argparse_error_is_one_line_that_points_at_help():
    line = one_error_line(run_tool("--depth", "0"))
    assert line == ("test_migrations.py: error: argument --depth: expected a positive number or 'all', got '0' "
                    "(see test_migrations.py --help)")


def test_a_malformed_url_is_one_line():
    line = one_error_line(run_tool("--manage", MANAGE, "--database-url", "postgresql://[::1"))
    assert line.startswith("test_migrations: error: the database URL postgresql://[::1 cannot be read: "
                           "Invalid IPv6 URL")


def test_a_malformed_url_in_the_environment_is_refused_before_any_work():
    result = run_tool("--manage", MANAGE, DATABASE_URL="postgres://u:secret@host:notaport/db")
    line = one_error_line(result)
    assert "has a bad port: Port could not be cast to integer value as 'notaport'" in line
    assert "secret" not in line and result.stdout == ""  # nothing started: no "Starting a throwaway" line


def test_a_dotenv_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / "manage.py").write_text(Path(MANAGE).read_text())
    (tmp_path / ".env").write_bytes(b"DEBUG=1\n# caf\xe9 au lait\nDATABASE_URL=postgres://u@h/db\n")
    line = one_error_line(run_tool("--manage", str(tmp_path / "manage.py"), cwd=tmp_path))
    assert line == (f"test_migrations: error: {tmp_path / '.env'} is not UTF-8: byte 0xe9 on line 2 cannot be "
                    "decoded (python-dotenv reads .env as UTF-8); save the file as UTF-8")


def test_python_dotenv_itself_cannot_read_that_file(tmp_path):
    """The line above is right: python-dotenv fails on the same file (it does not guess)."""
    dotenv = pytest.importorskip("dotenv")
    path = tmp_path / ".env"
    path.write_bytes(b"# caf\xe9\nDATABASE_URL=postgres://u@h/db\n")
    with pytest.raises(UnicodeDecodeError):
        dotenv.dotenv_values(path)
    with pytest.raises(UsageError, match="line 1"):
        read_dotenv_value(path, "DATABASE_URL")


@pytest.mark.parametrize("option", ["--report-json", "--junit-xml"])
def test_a_report_path_that_cannot_be_written_is_refused_before_the_run(option):
    line = one_error_line(run_tool("--manage", MANAGE, option, "/proc/no-such/r.json", "--database-url", UNREACHABLE))
    assert line == f"test_migrations: error: cannot write {option} /proc/no-such/r.json: No such file or directory"


def test_missing_report_folders_are_made_and_no_empty_report_is_left(tmp_path):
    report = tmp_path / "new" / "folder" / "r.json"
    result = run_tool("--manage", MANAGE, "--report-json", str(report), "--database-url", UNREACHABLE)
    assert result.returncode == 2 and "cannot connect to PostgreSQL" in result.stderr  # it went on to the server
    assert report.parent.is_dir() and not report.exists()


def test_jobs_above_the_cpu_count_are_capped_with_a_notice():
    result = run_tool("--manage", MANAGE, "--jobs", "999", "--database-url", UNREACHABLE)
    cpus = os.cpu_count() or 1
    notice = f"test_migrations: note: --jobs 999 is more than the {cpus} CPU(s) here; using --jobs {cpus}"
    assert notice in result.stdout


@pytest.mark.parametrize(("url", "user", "password"), [
    ("postgres://host/db?user=alice&password=s%40cret", "alice", "s@cret"),
    ("postgres://bob:pw@host/db?user=alice&password=other", "bob", "pw"),  # the user-info part wins, as in libpq
])
def test_user_and_password_are_taken_from_the_query_as_libpq_does(url, user, password):
    address = ServerAddress.from_url(url)
    assert (address.user, address.password) == (user, password)
    assert "user" not in address.options and "password" not in address.options
    again = ServerAddress.from_url(address.url_for("db"))
    assert (again.user, again.password) == (user, password)
