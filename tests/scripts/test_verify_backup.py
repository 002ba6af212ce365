"""scripts/verify_backup.py: the CLI, the seeder, the comparison, and end to end on the project.

End-to-end runs drive the real hello_world project (manage.py) on the test PostgreSQL 15 server,
as a user would (a subprocess), or in-process through `main()` where a step must be sabotaged
(a corrupted dump). Every run must leave no scratch database behind: the names it created are
read from its verbose output and looked up in pg_database, which stays exact when other tests
create scratch databases on the same server at the same time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migration_check.postgres.address import ServerAddress
from migration_check.postgres.server import Server
from tests.pg_plugin import existing_databases
from tests.workflows.workflow_files import REPO_ROOT, load_verify_backup

SCRIPT = REPO_ROOT / "scripts" / "verify_backup.py"
CREATED = re.compile(r"Created scratch database (\w+)")


@pytest.fixture(scope="module")
def vb():
    return load_verify_backup()


def run_script(*args: str, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    environment.update(env or {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=environment, cwd=REPO_ROOT)




def assert_cleaned_up(server_url: str, output: str, expected: int = 2) -> None:
    created = CREATED.findall(output)
    assert len(created) == expected, output
    assert all(name.startswith("tm_scratch_") for name in created)
    assert existing_databases(server_url, created) == [], "scratch databases left behind"


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_help_documents_options_examples_and_exit_codes():
    result = run_script("--help")
    assert result.returncode == 0
    for text in ("--database-url", "--manage", "--settings", "--keep-dump", "--verbose",
                 "--rows", "examples:", "python scripts/verify_backup.py --database-url",
                 "exit status: 0", "130 interrupted"):
        assert text in result.stdout, text
    assert "--pg-dump-arg" not in result.stdout  # a testing aid, not a user option


@pytest.mark.parametrize("args", [["--rows", "0"], ["--bogus"], ["--verbose", "--quiet"]])
def test_bad_options_exit_2_with_usage(args):
    result = run_script(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: verify_backup.py")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--database-url", "sqlite:///db.sqlite3"], "is not PostgreSQL"),
        (["--database-url", "postgres://u:hunter2@127.0.0.1:1/x"], "cannot connect to PostgreSQL"),
        (["--manage", "no/such/manage.py"], "does not exist; pass --manage"),
        (["--settings", "not a module"], "is not a Python module path"),
    ],
)
def test_configuration_errors_exit_2_with_one_line(args, message):
    result = run_script(*args, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("verify_backup.py: error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------------------------


def test_normalized_definition_ignores_how_postgresql_deparses_a_restored_predicate(vb):
    """Captured from PostgreSQL 15: the same partial index before and after pg_restore."""
    before = ("CREATE INDEX upstream_invoice_open_due_idx ON public.upstream_invoice USING btree "
              "(due_date) WHERE ((status)::text = ANY ((ARRAY['draft'::character varying, "
              "'sent'::character varying])::text[]))")
    after = ("CREATE INDEX upstream_invoice_open_due_idx ON public.upstream_invoice USING btree "
             "(due_date) WHERE ((status)::text = ANY (ARRAY[('draft'::character varying)::text, "
             "('sent'::character varying)::text]))")
    assert vb.normalized_definition(before) == vb.normalized_definition(after)
    other = after.replace("'sent'", "'paid'")
    assert vb.normalized_definition(before) != vb.normalized_definition(other)


def test_compare_snapshots_names_what_differs(vb):
    source = vb.Snapshot(
        tables={"a": vb.TableState(3, "x" * 32), "b": vb.TableState(2, "y" * 32),
                "c": vb.TableState(1, "z" * 32), "django_migrations": vb.TableState(2, "m" * 32)},
        migrations=[("app", "0001_initial"), ("app", "0002_more")],
        sequences={"public.a_id_seq": "3"},
        schema={"index a_idx": {"definition": "CREATE INDEX a_idx ON public.a USING btree (x)"},
                "column a.x": {"type": "integer", "null": "NOT NULL",
                               "default": "(ARRAY['a'::character varying])::text[]"},
                "column a.y": {"type": "character varying(3)", "null": "NULL"}},
    )
    restored = vb.Snapshot(
        tables={"a": vb.TableState(2, "w" * 32), "b": vb.TableState(2, "v" * 32),
                "django_migrations": vb.TableState(1, "n" * 32), "extra": vb.TableState(0, "")},
        migrations=[("app", "0001_initial")],
        sequences={"public.a_id_seq": "1"},
        schema={"column a.x": {"type": "integer", "null": "NOT NULL",
                               "default": "ARRAY[('a'::character varying)::text]"},
                "column a.y": {"type": "character varying(4)", "default": "'b'::text"},
                "enum type mood": {"definition": "'sad', 'ok'"}},
    )
    lines = [difference.line() for difference in vb.compare_snapshots(source, restored)]
    assert lines[0] == ("django_migrations public.django_migrations: 2 migrations recorded in "
                        "the source, 1 restored; missing: app.0002_more")
    assert "table a: 3 rows in the source, 2 restored" in lines
    assert any(line.startswith("table b: same row count (2) but different content") for line in lines)
    assert "table c: missing in the restore (1 rows in the source)" in lines
    assert "table extra: in the restore but not in the source" in lines
    assert "sequence public.a_id_seq: last value 3 in the source, 1 restored" in lines
    assert "schema index a_idx: missing in the restore" in lines
    assert "schema enum type mood: in the restore but not in the source" in lines
    assert ("schema column a.y: default (none) in the source, \"'b'::text\" restored; "
            "null 'NULL' in the source, (none) restored; "
            "type 'character varying(3)' in the source, 'character varying(4)' restored") in lines
    assert not any(line.startswith("schema column a.x") for line in lines)  # reprinted casts only
    assert vb.compare_snapshots(source, source) == []


@pytest.mark.parametrize(("rows", "profiles"), [
    (1, ("max",)), (2, ("max", "min")), (3, ("max", "min", "typical")),
    (5, ("max", "min", "typical", "typical", "typical")),
])
def test_rows_are_seeded_with_the_migration_tests_profiles_edges_first(vb, rows, profiles):
    """The values themselves are test_migrations' (tests/migration_check/proofs/data/test_seeding.py)."""
    assert vb.seed_profiles(rows) == profiles
    assert set(profiles) <= {*vb.tm.PRE_RELEASE_PROFILES}


# ---------------------------------------------------------------------------------------------
# The seeder and the comparison on real databases (no Django)
# ---------------------------------------------------------------------------------------------

CATALOG_SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE parent (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    code varchar(3) NOT NULL UNIQUE,
    parent_id bigint REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED,
    amount numeric(8, 2) NOT NULL CHECK (amount >= 0),
    ratio double precision,
    flag boolean NOT NULL,
    born date, seen timestamptz NOT NULL, at_time time, span interval,
    doc jsonb NOT NULL, raw bytea, ident uuid NOT NULL UNIQUE, addr inet,
    tags text[], feeling mood NOT NULL, count positive_int NOT NULL, note text,
    doubled bigint GENERATED ALWAYS AS (count::bigint * 2) STORED
);
CREATE TABLE child (
    id serial PRIMARY KEY,
    parent_id bigint NOT NULL REFERENCES parent (id),
    only_one bigint UNIQUE REFERENCES parent (id),
    label char(4) NOT NULL
);
CREATE TABLE link (
    parent_id bigint NOT NULL REFERENCES parent (id),
    child_id integer NOT NULL REFERENCES child (id),
    UNIQUE (parent_id, child_id)
);
CREATE TABLE no_key (value text);
"""


@pytest.fixture
def server(pg_server_url):
    server = Server(ServerAddress.from_url(pg_server_url), ephemeral=False)
    try:
        yield server
    finally:
        server.drop_all_scratch()
        server.close()


@pytest.fixture
def seeded(server, vb):
    """A scratch database with CATALOG_SCHEMA, seeded; returns (name, summary)."""
    name = server.create_database("vb_seed")
    connection = server.connect(name)
    try:
        with connection.cursor() as cursor:
            cursor.execute(CATALOG_SCHEMA)
        summary = vb.seed_database(connection, 3, vb.tm.Log(0))
    finally:
        connection.close()
    return name, summary


def snapshot(server, vb, name):
    connection = server.connect(name)
    try:
        return vb.take_snapshot(connection)
    finally:
        connection.close()


def execute(server, name, sql):
    connection = server.connect(name)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def test_seeder_fills_every_table_through_foreign_keys_and_constraints(server, vb, seeded):
    name, summary = seeded
    assert summary.unseeded == {}
    assert summary.rows == {"parent": 3, "child": 3, "link": 3, "no_key": 3}
    connection = server.connect(name)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FILTER (WHERE note IS NULL), max(length(note)), "
                           "count(DISTINCT feeling) FROM parent")
            nulls, longest, moods = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM child c JOIN parent p ON p.id = c.parent_id")
            (joined,) = cursor.fetchone()
    finally:
        connection.close()
    assert nulls == 1  # the min row
    assert longest == 2000  # the max row's long text
    assert moods == 2  # the last label in the max row, the first in the others
    assert joined == 3


def test_identical_copy_compares_equal(server, vb, seeded):
    name, _ = seeded
    copy = server.create_database("vb_copy", template=name)
    assert vb.compare_snapshots(snapshot(server, vb, name), snapshot(server, vb, copy)) == []


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("DELETE FROM no_key WHERE value = (SELECT min(value) FROM no_key)",
         "table no_key: 3 rows in the source, 2 restored"),
        ("UPDATE parent SET note = note || '!' WHERE note IS NOT NULL AND length(note) < 100",
         "table parent: same row count (3) but different content"),
        ("UPDATE child SET label = 'zzzz' WHERE id = (SELECT min(id) FROM child)",
         "table child: same row count (3) but different content"),
        ("DROP INDEX parent_code_key_copy", None),
        ("SELECT setval('child_id_seq', 99)", "sequence public.child_id_seq: last value "),
        ("ALTER TABLE no_key ALTER COLUMN value SET DEFAULT 'x'",
         "schema column no_key.value: default (none) in the source, \"'x'::text\" restored"),
        # what test_migrations' catalog snapshot adds: enum types, sequence owners, domains
        ("ALTER TYPE mood ADD VALUE 'great'",
         "schema enum type mood: definition \"'sad', 'ok', 'happy'\" in the source, "
         "\"'sad', 'ok', 'happy', 'great'\" restored"),
        ("ALTER SEQUENCE child_id_seq OWNED BY NONE",
         "schema sequence child_id_seq: owned by 'child.id' in the source, (none) restored"),
        ("ALTER DOMAIN positive_int SET DEFAULT 1", "schema domain positive_int: definition "),
    ],
)
def test_a_damaged_copy_is_caught(server, vb, seeded, damage, expected):
    name, _ = seeded
    if damage.startswith("DROP INDEX"):
        execute(server, name, "CREATE INDEX parent_code_key_copy ON parent (code)")
        expected = "schema index parent_code_key_copy: missing in the restore"
    copy = server.create_database("vb_damaged", template=name)
    execute(server, copy, damage)
    lines = [d.line() for d in vb.compare_snapshots(snapshot(server, vb, name), snapshot(server, vb, copy))]
    assert any(line.startswith(expected) for line in lines), lines
    if "setval" in damage:  # a retried insert may have used a value of the sequence already
        assert lines[0].endswith(" in the source, 99 restored"), lines


# ---------------------------------------------------------------------------------------------
# End to end on the hello_world project
# ---------------------------------------------------------------------------------------------


def test_backup_of_the_project_restores_identically(pg_server_url, tmp_path):
    dump = tmp_path / "kept" / "backup.dump"
    result = run_script("--verbose", "--database-url", pg_server_url, "--keep-dump", str(dump))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Backup verified:" in result.stdout
    assert "could not seed" not in result.stdout
    assert re.search(r"seeded 3 row\(s\) into upstream_invoice\b", result.stdout)
    assert dump.read_bytes().startswith(b"PGDMP")
    assert_cleaned_up(pg_server_url, result.stdout)


def test_the_database_named_in_the_url_is_not_touched(pg_server_url, server):
    sentinel = server.create_database("vb_sentinel")
    execute(server, sentinel, "CREATE TABLE sentinel (id int); INSERT INTO sentinel VALUES (1)")
    result = run_script("--verbose", "--database-url", server.url_for(sentinel))
    assert result.returncode == 0, result.stdout + result.stderr
    connection = server.connect(sentinel)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT array_agg(tablename::text) FROM pg_tables WHERE schemaname = 'public'")
            assert cursor.fetchone()[0] == ["sentinel"]
    finally:
        connection.close()
    assert_cleaned_up(pg_server_url, result.stdout)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("django_migrations",
         r"MISMATCH django_migrations public\.django_migrations: (\d+) migrations recorded in the "
         r"source, 0 restored; missing: contenttypes\.0001_initial"),
        ("upstream_payment", r"MISMATCH table upstream_payment: 3 rows in the source, 0 restored"),
    ],
)
def test_an_incomplete_backup_is_caught(pg_server_url, tmp_path, table, expected):
    summary = tmp_path / "summary.md"
    result = run_script("--verbose", "--database-url", pg_server_url,
                        f"--pg-dump-arg=--exclude-table-data={table}",
                        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(expected, result.stderr), result.stderr
    assert "Backup verification FAILED" in result.stdout
    assert "::error title=Backup verification::" in result.stdout
    assert "## Backup verification" in summary.read_text()
    assert_cleaned_up(pg_server_url, result.stdout)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) * 2 // 3
    for index in range(middle, middle + 64):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("corrupt", [truncate, flip_bytes], ids=["truncated", "flipped-bytes"])
def test_a_corrupted_backup_is_caught(vb, pg_server_url, monkeypatch, capsys, corrupt):
    real_dump = vb.dump_database

    def dump_then_corrupt(server, dbname, path, options, log):
        real_dump(server, dbname, path, options, log)
        corrupt(path)

    monkeypatch.setattr(vb, "dump_database", dump_then_corrupt)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert vb.main(["--verbose", "--database-url", pg_server_url]) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert errors, captured.out
    # Either pg_restore refuses the file (one clear line), or what it restored differs.
    assert errors[0].startswith("verify_backup.py: error: Restoring into fresh database") and (
        "pg_restore" in errors[0]) or errors[0].startswith("MISMATCH"), errors
    assert "Backup verified" not in captured.out
    assert_cleaned_up(pg_server_url, captured.out)


def test_interrupted_run_exits_130_and_drops_its_databases(pg_server_url):
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--verbose", "--database-url", pg_server_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        start_new_session=True,
    )
    output = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        output += line
        if not line or line.startswith("  $ ") and "migrate" in line:
            break
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=120)
    output += rest
    assert process.returncode == 130, output + errors
    assert "interrupted; scratch databases were removed" in errors
    assert_cleaned_up(pg_server_url, output, expected=1)


def test_a_command_that_crashed_silently_is_named_with_its_signal(vb):
    """A damaged dump can crash pg_restore itself (SIGSEGV, no output): the line names it."""
    assert vb.how_it_ended("/usr/lib/postgresql/15/bin/pg_restore", -11) == "pg_restore was killed by SIGSEGV"
    assert vb.how_it_ended("/usr/bin/pg_dump", 1) == "pg_dump exited with status 1"
