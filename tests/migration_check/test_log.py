"""Password masking where the password stands, and the console log that applies it."""

from __future__ import annotations

import io
import re
import threading
import time
import urllib.parse

import pytest

from migration_check.log import (
    Blocks,
    Group,
    Log,
    error_line,
    live_line_wanted,
    mask_passwords,
    mask_url,
    progress_text,
)
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


# -- grouped output and the live line (issue 21, part 6) -----------------------------------------


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def screen(written: str) -> list[str]:
    """What a terminal shows after `written`: `\\r` returns to the line's start, ESC[K erases to
    its end, a newline ends the line (the emulation the live line relies on)."""
    rows, row, column = [], "", 0
    for part in re.split(r"(\r|\n|\x1b\[K)", written):
        if part == "\r":
            column = 0
        elif part == "\n":
            rows.append(row)
            row, column = "", 0
        elif part == "\x1b[K":
            row = row[:column]
        else:
            row = row[:column] + part + row[column + len(part):]
            column += len(part)
    return rows + ([row] if row else [])


def in_thread(work) -> threading.Thread:
    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_blocks_stream_the_followed_chain_and_hold_the_others_until_it_ends():
    blocks = Blocks()
    a, b, c = Group("a", 1), Group("b", 1), Group("c", 1)
    assert blocks.open(a) == []  # the first chain is followed: its heading with its first line
    assert blocks.open(b) == []
    assert blocks.open(c) == []
    assert blocks.line(b, "b1\n") == []
    assert blocks.line(a, "a1\n") == ["== a ==\n", "a1\n"]
    assert blocks.line(c, "c1\n") == []
    assert blocks.close(c) == []  # ended while a is followed: waits, whole
    assert blocks.line(a, "a2\n") == ["a2\n"]
    assert blocks.close(a) == ["== c ==\n", "c1\n", "== b ==\n", "b1\n"]  # then b is followed
    assert blocks.line(b, "b2\n") == ["b2\n"]
    assert blocks.close(b) == []
    assert blocks.flush() == []


def test_a_chain_that_printed_nothing_gets_no_heading():
    blocks = Blocks()
    a, b, c = Group("a", 1), Group("b", 1), Group("c", 1)
    blocks.open(a), blocks.open(b), blocks.open(c)
    assert blocks.close(b) == []
    assert blocks.close(a) == []  # c is followed now, with nothing held yet
    assert blocks.line(c, "c1\n") == ["== c ==\n", "c1\n"]
    assert blocks.line(c, "c2\n") == ["c2\n"]


def test_blocks_flush_what_is_held_when_the_run_ends_early():
    blocks = Blocks()
    a, b, c = Group("a", 1), Group("b", 1), Group("c", 1)
    blocks.open(a), blocks.open(b), blocks.open(c)
    blocks.line(b, "b1\n"), blocks.line(c, "c1\n"), blocks.close(c)
    assert blocks.flush() == ["== c ==\n", "c1\n", "== b ==\n", "b1\n"]


def test_with_jobs_each_chains_lines_are_contiguous_under_its_heading():
    """Two chains in threads, writing turn by turn: the output has each one's lines together."""
    stream = io.StringIO()
    log = Log(1, stream, live=False)
    turns = [threading.Semaphore(0), threading.Semaphore(0)]
    alpha_open = threading.Event()

    def chain(index: int, name: str) -> None:
        with log.group(name, 3):
            alpha_open.set()
            for step in range(3):
                turns[index].acquire()
                log.info(f"{name}.000{step}: apply ... OK")
                log.detail(f"  $ manage.py migrate {name}")  # below the verbosity: nowhere
                turns[1 - index].release()

    with log.parallel(6, grouped=True):
        log.info("an ungrouped line is written at once")
        threads = [in_thread(lambda: chain(0, "alpha"))]
        assert alpha_open.wait(5)  # alpha is open (followed) before beta starts
        threads.append(in_thread(lambda: chain(1, "beta")))
        turns[0].release()
        for thread in threads:
            thread.join()
    assert stream.getvalue().splitlines() == [
        "an ungrouped line is written at once",
        "== alpha ==", "alpha.0000: apply ... OK", "alpha.0001: apply ... OK", "alpha.0002: apply ... OK",
        "== beta ==", "beta.0000: apply ... OK", "beta.0001: apply ... OK", "beta.0002: apply ... OK",
    ]


def test_with_one_job_lines_stream_as_they_come_without_headings():
    stream = io.StringIO()
    log = Log(1, stream, live=False)
    with log.parallel(2, grouped=False):
        with log.group("alpha", 1):
            log.info("alpha.0001: apply ... OK")
            in_thread(lambda: log.info("a line of another thread, written at once")).join()
            log.info("alpha.0001: rollback ... OK")
    assert stream.getvalue().splitlines() == [
        "alpha.0001: apply ... OK", "a line of another thread, written at once", "alpha.0001: rollback ... OK"]


def test_held_lines_are_written_when_the_run_is_interrupted():
    """Ctrl-C while a chain's lines are held: they are written when `parallel` ends, before the
    exit message, once each."""
    stream = io.StringIO()
    log = Log(1, stream, live=False)
    opened, release = threading.Event(), threading.Event()

    def chain(name: str) -> None:
        with log.group(name, 2):
            log.info(f"{name}.0001: apply ... OK")
            opened.set()
            release.wait(5)

    threads = []
    with pytest.raises(KeyboardInterrupt), log.parallel(4, grouped=True):
        for name in ("alpha", "beta"):
            opened.clear()
            threads.append(in_thread(lambda name=name: chain(name)))
            assert opened.wait(5)
        raise KeyboardInterrupt
    log.info("interrupted")
    release.set()
    for thread in threads:
        thread.join()
    assert stream.getvalue().splitlines() == [
        "== alpha ==", "alpha.0001: apply ... OK", "== beta ==", "beta.0001: apply ... OK", "interrupted"]


@pytest.mark.parametrize(("tty", "environ", "wanted"), [
    (True, {"TERM": "xterm-256color"}, True),
    (True, {}, True),
    (True, {"TERM": "xterm", "CI": "true"}, False),
    (True, {"TERM": "dumb"}, False),
    (False, {"TERM": "xterm"}, False),
])
def test_the_live_line_is_for_terminals_only(tty, environ, wanted):
    assert live_line_wanted(Terminal() if tty else io.StringIO(), environ) is wanted


def test_progress_text_reads_done_of_all_elapsed_and_the_step():
    assert progress_text(12, 40, 37.9, ["upstream.0022_tag_slug rollback"], 80) == \
        "[12/40] 0:37 upstream.0022_tag_slug rollback"
    assert progress_text(3, 40, 3725, ["a.0001 apply", "b.0002 reapply"], 80) == \
        "[3/40] 62:05 a.0001 apply, b.0002 reapply"
    assert progress_text(0, 4, 1, [], 80) == "[0/4] 0:01"
    assert progress_text(1, 2, 0, ["x" * 100], 20) == "[1/2] 0:00 xxxxxxxx"  # one short of the width


def test_on_a_terminal_the_live_line_stays_below_the_lines_and_is_erased_at_the_end():
    stream = Terminal()
    log = Log(1, stream, live=True, width=80)  # live given: this test may run in CI
    log.info("before")
    with log.parallel(2, grouped=True, tick_s=None):
        with log.group("upstream", 2):
            log.doing("upstream.0022_tag_slug rollback")
            assert screen(stream.getvalue())[-1].startswith("[0/2] 0:")
            assert screen(stream.getvalue())[-1].endswith(" upstream.0022_tag_slug rollback")
            log.info("upstream.0022_tag_slug: rollback ... OK")
            assert screen(stream.getvalue())[-2:-1] == ["upstream.0022_tag_slug: rollback ... OK"]
            log.migration_done()
            assert screen(stream.getvalue())[-1].startswith("[1/2] 0:")
        assert screen(stream.getvalue())[-1].startswith("[2/2] 0:")  # the untested one counts as done
    log.info("summary")
    assert screen(stream.getvalue()) == [
        "before", "== upstream ==", "upstream.0022_tag_slug: rollback ... OK", "summary"]
    assert "\r" in stream.getvalue()


def test_in_a_pipe_there_is_no_live_line():
    stream = io.StringIO()
    log = Log(1, stream)
    with log.parallel(2, grouped=True, tick_s=0.01):
        with log.group("upstream", 2):
            log.doing("upstream.0022_tag_slug rollback")
            time.sleep(0.05)
            log.info("upstream.0022_tag_slug: rollback ... OK")
            log.migration_done()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert stream.getvalue() == "== upstream ==\nupstream.0022_tag_slug: rollback ... OK\n"


def test_the_live_line_moves_on_its_own_during_a_long_step():
    stream = Terminal()
    log = Log(1, stream, live=True, width=80)
    with log.parallel(1, grouped=False, tick_s=0.01):
        time.sleep(0.1)
    drawn = stream.getvalue().count("\r\x1b[K[0/1]")
    assert drawn >= 3, stream.getvalue()
    assert screen(stream.getvalue()) == []


def test_quiet_shows_no_live_line_and_no_headings():
    stream = Terminal()
    log = Log(0, stream, live=True)
    with log.parallel(1, grouped=True, tick_s=None), log.group("upstream", 1):
        log.info("not shown")
    assert stream.getvalue() == ""
