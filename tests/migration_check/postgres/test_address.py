"""Database URLs: parsing server addresses, where the server URL comes from (.env included)."""

from __future__ import annotations

import sys
import urllib.parse

import pytest

from migration_check.errors import UsageError
from migration_check.postgres.address import ServerAddress, parse_dotenv_value, read_dotenv_value, resolve_server_url

SPECIAL_PASSWORD = "p@ss:w/rd%?#x"
SPECIAL_URL = f"postgres://alice:{urllib.parse.quote(SPECIAL_PASSWORD, safe='')}@db.example.com:6543/app"


# -- ServerAddress --------------------------------------------------------------------------------


def test_from_url_decodes_every_part():
    address = ServerAddress.from_url(SPECIAL_URL)
    assert address == ServerAddress("db.example.com", 6543, "alice", SPECIAL_PASSWORD, "app", {})


def test_special_password_round_trip():
    address = ServerAddress.from_url(SPECIAL_URL)
    url = address.url_for("tm_scratch_abc_0_head")
    assert url == (f"postgres://alice:{urllib.parse.quote(SPECIAL_PASSWORD, safe='')}"
                   "@db.example.com:6543/tm_scratch_abc_0_head")
    again = ServerAddress.from_url(url)
    assert again.password == SPECIAL_PASSWORD
    assert again == ServerAddress("db.example.com", 6543, "alice", SPECIAL_PASSWORD, "tm_scratch_abc_0_head", {})


def test_unix_socket_host_in_netloc():
    address = ServerAddress.from_url("postgres://postgres@%2Ftmp%2Ftm-pg-x%2Fsocket:5432/postgres")
    assert address.host == "/tmp/tm-pg-x/socket"
    assert address.password is None
    url = address.url_for("scratch")
    assert url == "postgres://postgres@%2Ftmp%2Ftm-pg-x%2Fsocket:5432/scratch"
    assert ServerAddress.from_url(url) == ServerAddress("/tmp/tm-pg-x/socket", 5432, "postgres", None,
                                                                  "scratch", {})
    kwargs = address.connect_kwargs()
    assert kwargs["host"] == "/tmp/tm-pg-x/socket" and "password" not in kwargs


def test_unix_socket_path_keeps_its_case():
    address = ServerAddress.from_url("postgres://u@%2FVar%2FRun%2FPostgreSQL:5432/db")
    assert address.host == "/Var/Run/PostgreSQL"
    assert ServerAddress.from_url(address.url_for("db")).host == "/Var/Run/PostgreSQL"


def test_host_and_port_in_query():
    address = ServerAddress.from_url("postgres:///app?host=/run/pg&port=6000&sslmode=require")
    assert (address.host, address.port, address.dbname, address.options) == ("/run/pg", 6000, "app",
                                                                             {"sslmode": "require"})
    url = address.url_for("other")
    assert url == "postgres://" + urllib.parse.quote(address.user, safe="") + "@%2Frun%2Fpg:6000/other?sslmode=require"
    assert ServerAddress.from_url(url) == ServerAddress("/run/pg", 6000, address.user, None, "other",
                                                                  {"sslmode": "require"})
    assert address.connect_kwargs("x")["sslmode"] == "require"
    assert address.connect_kwargs("x")["dbname"] == "x"


def test_defaults(monkeypatch):
    monkeypatch.setenv("USER", "someone")
    address = ServerAddress.from_url("postgresql://db.example.com")
    assert address == ServerAddress("db.example.com", 5432, "someone", None, "postgres", {})


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql", "postgis"])
def test_postgres_schemes(scheme):
    assert ServerAddress.from_url(f"{scheme}://u:pw@h:1/d").port == 1


@pytest.mark.parametrize(("url", "shown_scheme"), [
    ("sqlite:///x.db", "sqlite"),
    ("mysql://root:hunter2secret@h/db", "mysql"),
    ("", "empty"),
    ("h:5432/db", "h"),
])
def test_non_postgres_urls_are_usage_errors(url, shown_scheme):
    with pytest.raises(UsageError) as raised:
        ServerAddress.from_url(url)
    message = str(raised.value)
    assert f"is not PostgreSQL (scheme {shown_scheme!r})" in message
    assert "--database-url postgres://" in message
    assert "hunter2secret" not in message


@pytest.mark.parametrize("port", ["abc", "99999"])
def test_bad_port_is_a_usage_error_without_the_password(port):
    with pytest.raises(UsageError, match="bad port") as raised:
        ServerAddress.from_url(f"postgres://u:hunter2secret@h:{port}/db")
    assert "hunter2secret" not in str(raised.value)
    assert "postgres://u:***@h:" in str(raised.value)


# -- read_dotenv_value ----------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "value"), [
    ("DATABASE_URL=postgres://a@h/db\n", "postgres://a@h/db"),
    ('DATABASE_URL="postgres://a@h/db"\n', "postgres://a@h/db"),
    ("DATABASE_URL='postgres://a@h/db'\n", "postgres://a@h/db"),
    ("export DATABASE_URL=postgres://a@h/db\n", "postgres://a@h/db"),
    ("  export   DATABASE_URL = 'postgres://a@h/db'  \n", "postgres://a@h/db"),
    ("# DATABASE_URL=postgres://commented@h/db\nDATABASE_URL=postgres://real@h/db\n", "postgres://real@h/db"),
    ("#DATABASE_URL=postgres://commented@h/db\n", None),
    ("OTHER_DATABASE_URL=postgres://x@h/db\nDATABASE_URL_2=y\n", None),
    ("DATABASE_URL=\n", None),
    ('DATABASE_URL=""\n', None),
    ("SECRET_KEY=a=b\nDATABASE_URL=postgres://a@h/db?x=1\n", "postgres://a@h/db?x=1"),
    ('DATABASE_URL="\n', None),
    ("DATABASE_URL=postgres://first@h/db\nDATABASE_URL=postgres://last@h/db\n", "postgres://last@h/db"),
])
def test_read_dotenv_value(tmp_path, content, value):
    """python-dotenv's reading (the project loads .env with it); the fallback reads the same."""
    (tmp_path / ".env").write_text(content)
    assert read_dotenv_value(tmp_path / ".env", "DATABASE_URL") == value
    assert parse_dotenv_value(tmp_path / ".env", "DATABASE_URL") == value


def test_without_python_dotenv_the_fallback_reads_the_last_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dotenv", None)  # import dotenv now raises ImportError
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://first@h/db\nDATABASE_URL=postgres://last@h/db\n")
    assert read_dotenv_value(tmp_path / ".env", "DATABASE_URL") == "postgres://last@h/db"


def test_read_dotenv_value_missing_file(tmp_path):
    assert read_dotenv_value(tmp_path / ".env", "DATABASE_URL") is None


# -- resolve_server_url ---------------------------------------------------------------------------

CLI = "postgres://cli:pw@h/db"
ENV = "postgresql://env:pw@h/db"
DOTENV = "postgres://dotenv:pw@h/db"


@pytest.fixture
def project(tmp_path):
    (tmp_path / ".env").write_text(f"DEBUG=1\nDATABASE_URL={DOTENV}\n")
    return tmp_path


def test_cli_url_wins(project):
    assert resolve_server_url(CLI, {"DATABASE_URL": ENV}, project) == CLI


def test_environment_wins_over_dotenv(project):
    assert resolve_server_url(None, {"DATABASE_URL": ENV}, project) == ENV


def test_dotenv_when_environment_has_none(project):
    assert resolve_server_url(None, {}, project) == DOTENV
    assert resolve_server_url(None, {"DATABASE_URL": ""}, project) == DOTENV


def test_sqlite_in_environment_is_ignored(project):
    assert resolve_server_url(None, {"DATABASE_URL": "sqlite:///db.sqlite3"}, project) == DOTENV


def test_sqlite_everywhere_means_a_throwaway_cluster(tmp_path):
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite:///db.sqlite3\n")
    assert resolve_server_url(None, {"DATABASE_URL": "sqlite:///other.sqlite3"}, tmp_path) is None
    assert resolve_server_url(None, {}, tmp_path / "nowhere") is None


def test_explicit_sqlite_is_a_usage_error(project):
    with pytest.raises(UsageError, match="is not PostgreSQL"):
        resolve_server_url("sqlite:///x.db", {"DATABASE_URL": ENV}, project)


def test_ipv6_host_round_trip():
    address = ServerAddress.from_url("postgres://u:pw@[::1]:5433/db")
    assert address.host == "::1"
    again = ServerAddress.from_url(address.url_for("scratch"))
    assert (again.host, again.port, again.dbname) == ("::1", 5433, "scratch")


@pytest.mark.parametrize("content", [
    "DATABASE_URL=postgres://a@h/db # local server\n",
    'DATABASE_URL="postgres://a@h/db"  # local server\n',
])
def test_read_dotenv_value_inline_comment_like_python_dotenv(tmp_path, content):
    """The host project loads .env with python-dotenv, which drops ` # comment` after a value."""
    (tmp_path / ".env").write_text(content)
    assert read_dotenv_value(tmp_path / ".env", "DATABASE_URL") == "postgres://a@h/db"
    assert parse_dotenv_value(tmp_path / ".env", "DATABASE_URL") == "postgres://a@h/db"
