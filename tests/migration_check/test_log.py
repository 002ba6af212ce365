"""Password masking where the password stands, and the console log that applies it."""

from __future__ import annotations

import io
import urllib.parse

import pytest

from migration_check.log import Log, error_line, mask_passwords, mask_url
from migration_check.postgres.address import ServerAddress

SPECIAL_PASSWORD = "p@ss:w/rd%?#x"
SPECIAL_URL = f"postgres://alice:{urllib.parse.quote(SPECIAL_PASSWORD, safe='')}@db.example.com:6543/app"


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
def test_mask_url_replaces_the_password(url, masked):
    assert mask_url(url) == masked
    assert mask_passwords(f"connecting to {url} now") == f"connecting to {masked} now"


@pytest.mark.parametrize("url", [
    "postgres://u@h:5432/db", "postgres:///db?host=/tmp/x", "sqlite:///x.db", "", "not a url",
])
def test_mask_url_leaves_urls_without_password(url):
    assert mask_url(url) == url
    assert mask_passwords(url) == url


def test_mask_url_unparseable():
    assert mask_url("postgres://u:secret@[::1/db") == "<unparseable URL>"


def test_the_encoded_form_a_child_gets_is_masked():
    """Children get url_for's percent-encoded form; that is what appears in their output."""
    child_url = ServerAddress.from_url(SPECIAL_URL).url_for("tm_scratch_1")
    masked = mask_passwords(f"DATABASE_URL={child_url}")
    assert "p%40ss" not in masked
    assert masked == "DATABASE_URL=postgres://alice:***@db.example.com:6543/tm_scratch_1"


@pytest.mark.parametrize(("text", "masked"), [
    ("host=h password=s3cr3t dbname=x", "host=h password=*** dbname=x"),
    ("host=h password='se cr\\'et' dbname=x", "host=h password=*** dbname=x"),
    ("DATABASES = {'default': {'NAME': 'db', 'PASSWORD': 'hunter2', 'HOST': 'h'}}",
     "DATABASES = {'default': {'NAME': 'db', 'PASSWORD': ***, 'HOST': 'h'}}"),
    ('{"PASSWORD": "hunter2"}', '{"PASSWORD": ***}'),
    ("env PGPASSWORD=hunter2 pg_dump", "env PGPASSWORD=*** pg_dump"),
])
def test_connection_strings_settings_and_environment_are_masked(text, masked):
    assert mask_passwords(text) == masked


def test_a_password_that_is_an_ordinary_word_masks_nothing_else():
    """The CI password is `postgres`: masking every occurrence turned "PostgreSQL" into "***SQL"
    and the URL's scheme into "***://"."""
    text = ("the database URL postgres://postgres:postgres@localhost:5432/postgres is fine; "
            "migrations are tested on PostgreSQL only, as user postgres")
    assert mask_passwords(text) == ("the database URL postgres://postgres:***@localhost:5432/postgres is fine; "
                                    "migrations are tested on PostgreSQL only, as user postgres")


def test_the_mysql_url_message_reads_as_written():
    """Tried as a new user would: the message must name the scheme and say what to pass."""
    message = ("the database URL mysql://u:p@localhost/db is not PostgreSQL (scheme 'mysql'); migrations are "
               "tested on PostgreSQL only, pass --database-url postgres://...")
    assert error_line("test_migrations", message) == (
        "test_migrations: error: the database URL mysql://u:***@localhost/db is not PostgreSQL (scheme 'mysql'); "
        "migrations are tested on PostgreSQL only, pass --database-url postgres://...")


def test_log_masks_what_it_writes_at_its_level():
    stream = io.StringIO()
    log = Log(verbosity=1, stream=stream)
    log.info("using postgres://u:first-pw@h/db")
    log.detail("not shown at verbosity 1: postgres://u:second-pw@h/db")
    assert stream.getvalue() == "using postgres://u:***@h/db\n"


def test_log_step_shows_the_note_of_a_failure_only_by_default():
    stream = io.StringIO()
    log = Log(verbosity=1, stream=stream)
    log.step("app.0002: apply", "passed", 0.44, "detail of a success")
    log.step("app.0003: rollback", "failed", 1.0, "ProgrammingError: boom")
    assert stream.getvalue().splitlines() == [
        "app.0002: apply ... OK (0.4s)", "app.0003: rollback ... FAILED (1.0s): ProgrammingError: boom"]
