"""Watching a migration on the server: PostgreSQL event triggers in the scratch database.

While a migration is applied, four event triggers that the tool creates in the chain's scratch
database (and nowhere else) record into `tm_observer.event`:

- `table_rewrite`: the table PostgreSQL rewrites and its reason;
- `ddl_command_start`: the tables' sequential-scan counts (pg_stat_xact_user_tables) before
  the statement, kept in a session setting;
- `sql_drop`: the locks held on the tables a statement dropped (DeleteModel's DROP TABLE takes
  ACCESS EXCLUSIVE; at `ddl_command_end` those tables are gone from pg_class), as a record of
  its own;
- `ddl_command_end`: the statement (`current_query()`), its start and end, the relation locks
  the migrating backend holds at that moment (pg_locks for pg_backend_pid(); in an atomic
  migration every lock is held until it commits), the tables it scanned (scan counts now
  against before), the tables it altered or indexed, and lock_timeout.

A deferred constraint trigger on the record table stamps each record with the time its
transaction committed, which is how long the locks were held. Every function swallows its own
errors: watching must never make a migration fail. Event triggers need a superuser; without
one nothing is installed and the observation is `not_checked`.

Owns: the SQL of the observer, `LockObserver` (install, begin, collect, remove) and
`observation_status` (whether this run can observe, and why not).

Takes ScratchDatabase's psycopg2 connection.
"""

from __future__ import annotations

import json
from typing import Any

from ...config import Config
from ...postgres.catalog import OBSERVER_SCHEMA, USER_SCHEMAS
from ...verdicts import Observation
from .hazards import DdlEvent, Event, RewriteEvent, strongest, with_concurrent_lock

Connection = Any  # a psycopg2 connection

S = OBSERVER_SCHEMA
SCANS_SETTING = f"{S}.scans"
EVENT_TRIGGERS = ("tm_observer_rewrite", "tm_observer_ddl_start", "tm_observer_ddl_end", "tm_observer_drop")

# The user tables' sequential scans counted so far by this backend (this transaction's, not
# yet flushed to the shared statistics), as {"table": count}.
SCANS_SQL = f"""coalesce((SELECT jsonb_object_agg(relid::regclass::text, seq_scan)
    FROM pg_stat_xact_user_tables WHERE seq_scan > 0 AND schemaname <> '{S}'), '{{}}'::jsonb)"""
LOCKS_SQL = f"""coalesce((SELECT jsonb_agg(jsonb_build_array(c.oid::regclass::text, l.mode))
    FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND c.relkind IN ('r', 'p')
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND {USER_SCHEMAS}), '[]'::jsonb)"""
# The locks the migrating backend holds on the tables a command dropped (in `sql_drop`: their
# pg_class rows are gone, so LOCKS_SQL no longer sees them), named as regclass would name them.
DROPPED_LOCKS_SQL = f"""coalesce((SELECT jsonb_agg(jsonb_build_array(
        CASE WHEN d.schema_name = ANY(current_schemas(false)) THEN quote_ident(d.object_name)
             ELSE quote_ident(d.schema_name) || '.' || quote_ident(d.object_name) END, l.mode))
    FROM pg_event_trigger_dropped_objects() d JOIN pg_locks l ON l.relation = d.objid
    WHERE d.object_type = 'table' AND NOT d.is_temporary AND l.pid = pg_backend_pid() AND l.locktype = 'relation'
      AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND {USER_SCHEMAS.replace("n.nspname", "d.schema_name")}), '[]'::jsonb)"""
# The tables a command altered or indexed (an index's table, not the index).
TARGETS_SQL = """coalesce((SELECT jsonb_agg(DISTINCT target) FROM (
    SELECT CASE WHEN d.object_type = 'index'
                THEN (SELECT i.indrelid::regclass::text FROM pg_index i WHERE i.indexrelid = d.objid)
                WHEN d.object_type = 'table' THEN d.objid::regclass::text END AS target
    FROM pg_event_trigger_ddl_commands() d) AS targets WHERE target IS NOT NULL), '[]'::jsonb)"""

INSTALL_SQL = f"""
CREATE SCHEMA {S};
CREATE TABLE {S}.event (
    id bigserial PRIMARY KEY, kind text NOT NULL, txid bigint NOT NULL, tag text, statement text,
    started double precision, ended double precision, committed double precision, relation text,
    reason integer, locks jsonb, scans_before jsonb, scans_after jsonb, targets jsonb, lock_timeout text);
CREATE FUNCTION {S}.on_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {S}.event (kind, txid, tag, statement, relation, reason)
    VALUES ('rewrite', txid_current(), tg_tag, current_query(),
            pg_event_trigger_table_rewrite_oid()::regclass::text, pg_event_trigger_table_rewrite_reason());
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
CREATE FUNCTION {S}.on_ddl_start() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('{SCANS_SETTING}', ({SCANS_SQL})::text, false);
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
CREATE FUNCTION {S}.on_ddl_end() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {S}.event (kind, txid, tag, statement, started, ended, locks, scans_before, scans_after, targets,
                           lock_timeout)
    VALUES ('ddl', txid_current(), tg_tag, current_query(), extract(epoch FROM statement_timestamp()),
            extract(epoch FROM clock_timestamp()), {LOCKS_SQL},
            coalesce(nullif(current_setting('{SCANS_SETTING}', true), '')::jsonb, '{{}}'::jsonb),
            {SCANS_SQL}, {TARGETS_SQL}, current_setting('lock_timeout'));
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
CREATE FUNCTION {S}.on_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
    dropped jsonb := {DROPPED_LOCKS_SQL};
BEGIN
    IF dropped <> '[]'::jsonb THEN
        INSERT INTO {S}.event (kind, txid, tag, statement, started, ended, locks, scans_before, scans_after, targets,
                               lock_timeout)
        VALUES ('ddl', txid_current(), tg_tag, current_query(), extract(epoch FROM statement_timestamp()),
                extract(epoch FROM clock_timestamp()), dropped, '{{}}'::jsonb, '{{}}'::jsonb, '[]'::jsonb,
                current_setting('lock_timeout'));
    END IF;
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
CREATE FUNCTION {S}.stamp_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {S}.event SET committed = extract(epoch FROM clock_timestamp()) WHERE id = NEW.id;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER stamp_commit AFTER INSERT ON {S}.event DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION {S}.stamp_commit();
CREATE EVENT TRIGGER {EVENT_TRIGGERS[0]} ON table_rewrite EXECUTE FUNCTION {S}.on_rewrite();
CREATE EVENT TRIGGER {EVENT_TRIGGERS[1]} ON ddl_command_start EXECUTE FUNCTION {S}.on_ddl_start();
CREATE EVENT TRIGGER {EVENT_TRIGGERS[2]} ON ddl_command_end EXECUTE FUNCTION {S}.on_ddl_end();
CREATE EVENT TRIGGER {EVENT_TRIGGERS[3]} ON sql_drop EXECUTE FUNCTION {S}.on_drop();
"""
REMOVE_SQL = "".join(f"DROP EVENT TRIGGER IF EXISTS {name};\n" for name in EVENT_TRIGGERS) + \
    f"DROP SCHEMA IF EXISTS {S} CASCADE;\n"
COLLECT_SQL = f"""SELECT kind, txid, tag, statement, started, ended, committed, relation, reason, locks,
    scans_before, scans_after, targets, lock_timeout FROM {S}.event ORDER BY id"""
NEED_SUPERUSER = "event triggers need a superuser"


def observation_status(config: Config, superuser: bool, role: str) -> tuple[Observation, str | None]:
    """Whether locks and rewrites are observed, and the one line saying why not."""
    if not config.observe_locks:
        return Observation.OFF, "locks and rewrites not observed: switched off with --no-locks"
    if not superuser:
        return Observation.NOT_CHECKED, (f"locks and rewrites not observed: {NEED_SUPERUSER} and the role {role!r} "
                                         "is not one (the tool's throwaway cluster is; or run with a superuser's URL)")
    return Observation.OBSERVED, None


def as_json(value: object) -> Any:
    """jsonb arrives parsed from psycopg2; text when a driver does not parse it."""
    return json.loads(value) if isinstance(value, str) else value


def event_from_row(row: tuple[Any, ...]) -> Event:
    kind, txid, tag, statement, started, ended, committed, relation, reason, locks, before, after, targets, \
        timeout = row
    if kind == "rewrite":
        return RewriteEvent(int(txid), statement or "", relation or "", int(reason or 0))
    held: dict[str, list[str]] = {}
    for table, mode in as_json(locks) or []:
        held.setdefault(table, []).append(mode)
    before, after = as_json(before) or {}, as_json(after) or {}
    scanned = frozenset(table for table, count in after.items() if count > before.get(table, 0))
    indexed = tuple(as_json(targets) or ())
    locks = with_concurrent_lock(tag or "", statement or "", {table: strongest(modes) for table, modes in held.items()},
                                 indexed)
    return DdlEvent(int(txid), tag or "", statement or "", float(started), float(ended),
                    None if committed is None else float(committed), locks, scanned, indexed, timeout or "0")


class LockObserver:
    """The event triggers of one scratch database, through the tool's own connection to it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def execute(self, sql: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)

    def install(self) -> None:
        self.execute(INSTALL_SQL)

    def begin(self) -> None:
        """Forget what earlier steps recorded (rollbacks and re-applications fire the triggers too)."""
        self.execute(f"DELETE FROM {S}.event")

    def collect(self) -> list[Event]:
        """What was recorded since `begin`, in order (a failed atomic migration recorded nothing:
        its records were rolled back with it)."""
        with self.connection.cursor() as cursor:
            cursor.execute(COLLECT_SQL)
            return [event_from_row(row) for row in cursor.fetchall()]

    def remove(self) -> None:
        self.execute(REMOVE_SQL)
