"""faults.py: which database errors are infrastructure faults, on errors a real server raised
(psycopg2) and on the stderr of real failed steps. A migration's own errors, a statement
timeout and a missing extension are never faults."""

from __future__ import annotations

import psycopg2
import pytest

from migration_check.inside_django.faults import classify_exception, classify_output, fault_line, is_connect_failure


def raised(url: str, *statements: str) -> psycopg2.Error:
    """The error a real session raises running `statements`."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    except psycopg2.Error as error:
        return error
    finally:
        connection.close()
    raise AssertionError("no error")


def test_a_refused_connection_is_an_unreachable_server_and_may_be_retried():
    with pytest.raises(psycopg2.OperationalError) as refused:
        psycopg2.connect(host="127.0.0.1", port=1, user="u", dbname="d", connect_timeout=5)
    fault = classify_exception(refused.value)
    assert fault is not None and fault.kind == "unreachable"
    assert is_connect_failure(fault)


def test_a_terminated_session_is_a_fault_and_not_retried(pg_server_url):
    error = raised(pg_server_url, "SELECT pg_terminate_backend(pg_backend_pid())")
    fault = classify_exception(error)
    assert fault is not None and fault.kind in ("terminated", "connection_lost")
    assert not is_connect_failure(fault)


@pytest.mark.parametrize("statements", [
    ("SET statement_timeout = 50", "SELECT pg_sleep(1)"),  # 57014, the migration's own time-out
    ("SELECT * FROM no_such_table",),
    ("SELECT 1/0",),
    ("DO $$ BEGIN PERFORM dblink_connect('x'); END $$",),  # 42883: a missing extension's function
    ("SELECT 'x'::integer",),
])
def test_a_migrations_own_errors_are_no_faults(pg_server_url, statements):
    error = raised(pg_server_url, *statements)
    assert classify_exception(error) is None, error.pgcode


def test_a_django_error_wrapping_a_fault_is_a_fault(pg_server_url):
    error = raised(pg_server_url, "SELECT pg_terminate_backend(pg_backend_pid())")
    try:
        try:
            raise error
        except psycopg2.Error as inner:
            raise RuntimeError("django.db.utils.OperationalError") from inner
    except RuntimeError as wrapped:
        assert classify_exception(wrapped) == classify_exception(error)


# The end of a real `manage.py migrate` stderr (process isolation) when its backend was ended.
PROCESS_STEP_TERMINATED = """\
  File "/x/django/db/backends/utils.py", line 103, in _execute
    return self.cursor.execute(sql)
           ^^^^^^^^^^^^^^^^^^^^^^^^
django.db.utils.OperationalError: server closed the connection unexpectedly
\tThis probably means the server terminated abnormally
\tbefore or while processing the request.
"""
PROCESS_STEP_ADMIN_SHUTDOWN = """\
psycopg2.errors.AdminShutdown: terminating connection due to administrator command

The above exception was the direct cause of the following exception:

django.db.utils.OperationalError: terminating connection due to administrator command
"""
PROCESS_STEP_TOO_MANY = """\
django.db.utils.OperationalError: connection to server at "127.0.0.1", port 5432 failed: FATAL:  sorry, too \
many clients already
"""
PROCESS_STEP_SQL_ERROR = """\
psycopg2.errors.UndefinedTable: relation "shop_item" does not exist
LINE 1: UPDATE shop_item SET name = upper(name)

The above exception was the direct cause of the following exception:

django.db.utils.ProgrammingError: relation "shop_item" does not exist
LINE 1: UPDATE shop_item SET name = upper(name)
"""
PROCESS_STEP_CANCELLED = """\
psycopg2.errors.QueryCanceled: canceling statement due to statement timeout

django.db.utils.OperationalError: canceling statement due to statement timeout
"""


@pytest.mark.parametrize(("stderr", "kind", "connecting"), [
    (PROCESS_STEP_TERMINATED, "connection_lost", False),
    (PROCESS_STEP_ADMIN_SHUTDOWN, "terminated", False),
    (PROCESS_STEP_TOO_MANY, "too_many_connections", True),
    (PROCESS_STEP_SQL_ERROR, None, None),
    (PROCESS_STEP_CANCELLED, None, None),
    ("CommandError: Conflicting migrations detected", None, None),
])
def test_step_output(stderr, kind, connecting):
    fault = classify_output(stderr)
    assert (fault.kind if fault else None) == kind
    if fault is not None:
        assert is_connect_failure(fault) is connecting


def test_the_forked_steps_marker_line_round_trips(pg_server_url):
    error = raised(pg_server_url, "SELECT pg_terminate_backend(pg_backend_pid())")
    line = fault_line(error)
    assert line is not None
    assert classify_output("Traceback ...\nSomething: else\n" + line + "\n") == classify_exception(error)
