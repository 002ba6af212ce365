"""What earlier runs left when they were killed so hard that their watchdog could not clean up
either (both killed, a reboot without a clean /tmp), removed when a run starts.

- A throwaway cluster folder (`/tmp/tm-pg-*`) is abandoned when its owner record (written by
  this user) names a process and a watchdog that are both gone: its server is stopped and the
  folder removed. A folder without a record, or whose owner lives, is never touched.
- A scratch database (`tm_scratch_<run>_<n>_<purpose>`, owned by the role this run logs in
  as) is abandoned when the advisory lock of its run is not held (every live run holds it in
  shared mode on two sessions and re-takes it within `server.KEEPALIVE_S` when one is lost,
  see `server.Server`) and nobody is connected to it, both seen twice, `SWEEP_GRACE_S` apart:
  a live run that lost both sessions at once has its lock back by then. Runs side by side
  each hold their own lock, so they never take each other's databases.

Owns: `remove_abandoned_clusters`, `drop_abandoned_scratch` and the pure tests behind them.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

from ..log import Log
from ..postgres.cluster import FOLDER_PREFIX, EphemeralCluster, OwnerRecord, candidate_bindirs, cluster_parent
from ..postgres.server import KEEPALIVE_S, RUN_LOCK_CLASS, SCRATCH_PREFIX, Server, quote_ident

# How long a scratch database must stay without its run's lock before it is a leftover: the
# lock-keeping sessions of a live run are checked and replaced every KEEPALIVE_S.
SWEEP_GRACE_S = 4 * KEEPALIVE_S

SCRATCH_NAME_PATTERN = f"^{SCRATCH_PREFIX}(?P<run>[0-9a-f]{{8}})_[0-9]+_"
SCRATCH_NAME = re.compile(SCRATCH_NAME_PATTERN)

# Scratch databases of this role whose run's lock nobody holds and that have no session. The
# lock's keys are (RUN_LOCK_CLASS, run id as int4); pg_locks shows them as unsigned oids. The
# CASE makes sure only names of the right shape are read as hexadecimal.
ABANDONED_SCRATCH_SQL = """
SELECT d.datname FROM pg_database d
WHERE d.datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)
  AND d.datname ~ %(pattern)s
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)
  AND NOT EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid::bigint = %(class)s
      AND l.objid::bigint = CASE WHEN d.datname ~ %(pattern)s
                                 THEN ('x' || substr(d.datname, %(start)s, 8))::bit(32)::bigint END)
ORDER BY 1
"""


def run_of(name: str) -> str | None:
    """The run id in a scratch database name, or None when the name is not one of ours."""
    match = SCRATCH_NAME.match(name)
    return match.group("run") if match else None


def trusted_bindir(record: OwnerRecord) -> Path | None:
    """The binaries the record names, when they are server binaries found where this tool
    looks for them (a record is never a way to make the tool run another program)."""
    if record.bindir in candidate_bindirs() and (record.bindir / "pg_ctl").is_file():
        return record.bindir
    return None


def abandoned_clusters(parent: Path | None) -> list[tuple[Path, OwnerRecord]]:
    """Cluster folders under `parent` whose owner and watchdog are both gone."""
    if parent is None:
        return []
    found = []
    for folder in sorted(parent.glob(f"{FOLDER_PREFIX}*")):
        record = OwnerRecord.read(folder) if folder.is_dir() and not folder.is_symlink() else None
        if record is not None and record.abandoned():
            found.append((folder, record))
    return found


def remove_abandoned_clusters(log: Log, parent: Path | None = None) -> list[Path]:
    """Stop and remove the throwaway clusters killed runs left; returns their folders."""
    removed = []
    for folder, record in abandoned_clusters(parent or cluster_parent()):
        bindir = trusted_bindir(record)
        if bindir is None:
            log.info(f"left alone {folder}: abandoned, but its server binaries {record.bindir} are not ones "
                     "this tool uses (remove it by hand)")
            continue
        EphemeralCluster.abandoned_in(folder, bindir).stop()
        log.info(f"Removed {folder}, a throwaway PostgreSQL left by an earlier run that was killed")
        removed.append(folder)
    return removed


def drop_abandoned_scratch(server: Server, log: Log) -> list[str]:
    """Drop the scratch databases of this role that belong to runs that are gone."""
    params = {"pattern": SCRATCH_NAME_PATTERN.replace("?P<run>", ""), "class": RUN_LOCK_CLASS,
              "start": len(SCRATCH_PREFIX) + 1}
    names = [row[0] for row in server.rows(ABANDONED_SCRATCH_SQL, params)]
    if names:  # a run whose sessions were just lost re-takes its lock meanwhile
        time.sleep(SWEEP_GRACE_S)
        still = {row[0] for row in server.rows(ABANDONED_SCRATCH_SQL, params)}
        names = [name for name in names if name in still]
    dropped = []
    for name in names:
        if run_of(name) is None or run_of(name) == server.run_id:
            continue
        with contextlib.suppress(Exception):
            server.scalar(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
            dropped.append(name)
    if dropped:
        log.info(f"Dropped {len(dropped)} scratch database(s) left by earlier runs that are gone (killed, or "
                 "ended while the server was unreachable, so that neither they nor their watchdog could drop them): "
                 + ", ".join(dropped))
    return dropped
