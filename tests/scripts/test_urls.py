"""Database URLs: masking passwords, parsing server addresses, where the server URL comes from."""

from __future__ import annotations

import urllib.parse

import pytest

SPECIAL_PASSWORD = "p@ss:w/rd%?#x"
SPECIAL_URL = f"postgres://alice:{urllib.parse.quote(SPECIAL_PASSWORD, safe='')}@db.example.com:6543/app"


# -- mask_url -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "masked"), [
    ("postgres://u:secret@h:5432/db", "postgres://u:***@h:5432/db"),
    ("postgresql://u:secret@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
    (SPECIAL_URL, "postgres://alice:***@db.example.com:6543/app"),
    ("postgres://u:p@ss@h:5/db", "postgres://u:***@h:5/db"),  # an unencoded @ in the password
    ("postgres://:secret@h/db", "postgres://:***@h/db"),
    ("postgres://u:secret@[::1]:5432/db", "postgres://u:***@[::1]:5432/db"),
    ("postgres://u:secret@%2Ftmp%2Fx/db", "postgres://u:***@%2Ftmp%2Fx/db"),
    ("mysql://root:secret@h/db", "mysql://root:***@h/db"),
])
def test_mask_url_replaces_the_password(tool, url, masked):
    assert tool.mask_url(url) == masked


@pytest.mark.parametrize("url", [
    "postgres://u@h:5432/db", "postgres:///db?host=/tmp/x", "sqlite:///x.db", "", "not a url",
])
def test_mask_url_leaves_urls_without_password(tool, url):
    assert tool.mask_url(url) == url


def test_mask_url_unparseable(tool):
    assert tool.mask_url("postgres://u:secret@[::1/db") == "<unparseable URL>"


# -- mask_secrets ---------------------------------------------------------------------------------


def test_mask_secrets_removes_plain_and_quoted_password(tool):
    url = "postgres://u:s3cr3t-pw@h/db"
    text = "connecting to postgres://u:s3cr3t-pw@h/db\npassword=s3cr3t-pw"
    assert tool.mask_secrets(text, url) == "connecting to postgres://u:***@h/db\npassword=***"


def test_mask_secrets_removes_the_encoded_form_of_a_special_password(tool):
    """The children get url_for's percent-encoded form; that is what appears in their output."""
    address = tool.ServerAddress.from_url(SPECIAL_URL)
    child_url = address.url_for("tm_scratch_1")
    masked = tool.mask_secrets(f"DATABASE_URL={child_url}", child_url)
    assert "p%40ss" not in masked
    assert masked == "DATABASE_URL=postgres://alice:***@db.example.com:6543/tm_scratch_1"


@pytest.mark.parametrize("url", [None, "", "postgres://u@h/db"])
def test_mask_secrets_without_password_changes_nothing(tool, url):
    assert tool.mask_secrets("nothing secret here", url) == "nothing secret here"


def test_log_masks_every_secret_url(tool):
    import io

    stream = io.StringIO()
    log = tool.Log(verbosity=1, stream=stream, secret_url="postgres://u:first-pw@h/db")
    log.secret_urls.append("postgres://u:second-pw@h/db")
    log.info("first-pw and second-pw")
    log.detail("not shown at verbosity 1: first-pw")
    assert stream.getvalue() == "*** and ***\n"


# -- ServerAddress --------------------------------------------------------------------------------


def test_from_url_decodes_every_part(tool):
    address = tool.ServerAddress.from_url(SPECIAL_URL)
    assert address == tool.ServerAddress("db.example.com", 6543, "alice", SPECIAL_PASSWORD, "app", {})


def test_special_password_round_trip(tool):
    address = tool.ServerAddress.from_url(SPECIAL_URL)
    url = address.url_for("tm_scratch_abc_0_head")
    assert url == (f"postgres://alice:{urllib.parse.quote(SPECIAL_PASSWORD, safe='')}"
                   "@db.example.com:6543/tm_scratch_abc_0_head")
    again = tool.ServerAddress.from_url(url)
    assert again.password == SPECIAL_PASSWORD
    assert again == tool.ServerAddress("db.example.com", 6543, "alice", SPECIAL_PASSWORD, "tm_scratch_abc_0_head", {})


def test_unix_socket_host_in_netloc(tool):
    address = tool.ServerAddress.from_url("postgres://postgres@%2Ftmp%2Ftm-pg-x%2Fsocket:5432/postgres")
    assert address.host == "/tmp/tm-pg-x/socket"
    assert address.password is None
    url = address.url_for("scratch")
    assert url == "postgres://postgres@%2Ftmp%2Ftm-pg-x%2Fsocket:5432/scratch"
    assert tool.ServerAddress.from_url(url) == tool.ServerAddress("/tmp/tm-pg-x/socket", 5432, "postgres", None,
                                                                  "scratch", {})
    kwargs = address.connect_kwargs()
    assert kwargs["host"] == "/tmp/tm-pg-x/socket" and "password" not in kwargs


def test_unix_socket_path_keeps_its_case(tool):
    address = tool.ServerAddress.from_url("postgres://u@%2FVar%2FRun%2FPostgreSQL:5432/db")
    assert address.host == "/Var/Run/PostgreSQL"
    assert tool.ServerAddress.from_url(address.url_for("db")).host == "/Var/Run/PostgreSQL"


def test_host_and_port_in_query(tool):
    address = tool.ServerAddress.from_url("postgres:///app?host=/run/pg&port=6000&sslmode=require")
    assert (address.host, address.port, address.dbname, address.options) == ("/run/pg", 6000, "app",
                                                                             {"sslmode": "require"})
    url = address.url_for("other")
    assert url == "postgres://" + urllib.parse.quote(address.user, safe="") + "@%2Frun%2Fpg:6000/other?sslmode=require"
    assert tool.ServerAddress.from_url(url) == tool.ServerAddress("/run/pg", 6000, address.user, None, "other",
                                                                  {"sslmode": "require"})
    assert address.connect_kwargs("x")["sslmode"] == "require"
    assert address.connect_kwargs("x")["dbname"] == "x"


def test_defaults(tool, monkeypatch):
    monkeypatch.setenv("USER", "someone")
    address = tool.ServerAddress.from_url("postgresql://db.example.com")
    assert address == tool.ServerAddress("db.example.com", 5432, "someone", None, "postgres", {})


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql", "postgis"])
def test_postgres_schemes(tool, scheme):
    assert tool.ServerAddress.from_url(f"{scheme}://u:pw@h:1/d").port == 1


@pytest.mark.parametrize(("url", "shown_scheme"), [
    ("sqlite:///x.db", "sqlite"),
    ("mysql://root:hunter2secret@h/db", "mysql"),
    ("", "empty"),
    ("h:5432/db", "h"),
])
def test_non_postgres_urls_are_usage_errors(tool, url, shown_scheme):
    with pytest.raises(tool.UsageError) as raised:
        tool.ServerAddress.from_url(url)
    message = str(raised.value)
    assert f"is not PostgreSQL (scheme {shown_scheme!r})" in message
    assert "--database-url postgres://" in message
    assert "hunter2secret" not in message


@pytest.mark.parametrize("port", ["abc", "99999"])
def test_bad_port_is_a_usage_error_without_the_password(tool, port):
    with pytest.raises(tool.UsageError, match="bad port") as raised:
        tool.ServerAddress.from_url(f"postgres://u:hunter2secret@h:{port}/db")
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
    ('DATABASE_URL="\n', '"'),
])
def test_read_dotenv_value(tool, tmp_path, content, value):
    (tmp_path / ".env").write_text(content)
    assert tool.read_dotenv_value(tmp_path / ".env", "DATABASE_URL") == value


def test_read_dotenv_value_missing_file(tool, tmp_path):
    assert tool.read_dotenv_value(tmp_path / ".env", "DATABASE_URL") is None


# -- resolve_server_url ---------------------------------------------------------------------------

CLI = "postgres://cli:pw@h/db"
ENV = "postgresql://env:pw@h/db"
DOTENV = "postgres://dotenv:pw@h/db"


@pytest.fixture
def project(tmp_path):
    (tmp_path / ".env").write_text(f"DEBUG=1\nDATABASE_URL={DOTENV}\n")
    return tmp_path


def test_cli_url_wins(tool, project):
    assert tool.resolve_server_url(CLI, {"DATABASE_URL": ENV}, project) == CLI


def test_environment_wins_over_dotenv(tool, project):
    assert tool.resolve_server_url(None, {"DATABASE_URL": ENV}, project) == ENV


def test_dotenv_when_environment_has_none(tool, project):
    assert tool.resolve_server_url(None, {}, project) == DOTENV
    assert tool.resolve_server_url(None, {"DATABASE_URL": ""}, project) == DOTENV


def test_sqlite_in_environment_is_ignored(tool, project):
    assert tool.resolve_server_url(None, {"DATABASE_URL": "sqlite:///db.sqlite3"}, project) == DOTENV


def test_sqlite_everywhere_means_a_throwaway_cluster(tool, tmp_path):
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite:///db.sqlite3\n")
    assert tool.resolve_server_url(None, {"DATABASE_URL": "sqlite:///other.sqlite3"}, tmp_path) is None
    assert tool.resolve_server_url(None, {}, tmp_path / "nowhere") is None


def test_explicit_sqlite_is_a_usage_error(tool, project):
    with pytest.raises(tool.UsageError, match="is not PostgreSQL"):
        tool.resolve_server_url("sqlite:///x.db", {"DATABASE_URL": ENV}, project)


# -- BUGS (failing until scripts/test_migrations.py is fixed; not committed) ----------------------


def test_mask_secrets_removes_the_decoded_password(tool):
    """A percent-encoded password in the user's URL must also be masked in its decoded form."""
    assert tool.mask_secrets("auth failed for p@ss:word", "postgres://u:p%40ss%3Aword@h/db") == "auth failed for ***"


def test_ipv6_host_round_trip(tool):
    address = tool.ServerAddress.from_url("postgres://u:pw@[::1]:5433/db")
    assert address.host == "::1"
    again = tool.ServerAddress.from_url(address.url_for("scratch"))
    assert (again.host, again.port, again.dbname) == ("::1", 5433, "scratch")


@pytest.mark.parametrize("content", [
    "DATABASE_URL=postgres://a@h/db # local server\n",
    'DATABASE_URL="postgres://a@h/db"  # local server\n',
])
def test_read_dotenv_value_inline_comment_like_python_dotenv(tool, tmp_path, content):
    """The host project loads .env with python-dotenv, which drops ` # comment` after a value."""
    (tmp_path / ".env").write_text(content)
    assert tool.read_dotenv_value(tmp_path / ".env", "DATABASE_URL") == "postgres://a@h/db"
