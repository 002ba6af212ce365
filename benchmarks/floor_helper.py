"""Reference floor for benchmarks/run.py: the tool's migration work in ONE Python process.

Run as ``python floor_helper.py PROJECT_DIR SETTINGS REQUEST_JSON`` with DATABASE_URL pointing at
any database of the server (the settings must read it). REQUEST_JSON is
``{"head": DBNAME, "apps": {APP: DBNAME}, "depth": N or null}``. Through Django's
MigrationExecutor, with no schema snapshots and no seeded data, it does what the tool's
``manage.py migrate`` children do:

- on ``head``: every migration forward from scratch (the tool's "forward" check);
- per app, on its database: forward to the state before the app's window (the newest ``depth``
  migrations), then for each migration of the window, oldest first: apply, roll back to its
  parent in the app, re-apply. A step Django refuses (an irreversible migration of a real app)
  is counted in ``failed_steps`` and the walk goes on, as the plain loop's does.

Prints one JSON line: seconds for set-up (imports, ``django.setup()``), forward and window work.

With REQUEST_JSON ``{"windows": [APP, ...], "depth": N or null}`` it touches no database and prints
the windows instead: ``{APP: [[MIGRATION, PREVIOUS or "zero"], ...]}``, oldest first, the same
migrations and rollback targets the floor walks (the plain loop of a project whose apps are not
folders beside its manage.py takes them from here).
"""

from __future__ import annotations

import json
import os
import sys
import time


def full_plan(graph) -> list[tuple[str, str]]:
    """Every migration of the project in the order `migrate` applies them from scratch."""
    plan = []
    for leaf in graph.leaf_nodes():
        plan.extend(key for key in graph.forwards_plan(leaf) if key not in plan)
    return plan


def window(graph, plan: list[tuple[str, str]], app: str,
           depth: int | None) -> list[tuple[tuple[str, str], tuple[str, str | None]]]:
    """The app's newest `depth` migrations of `plan` (all with None), oldest first, each with the
    target that rolls it back: its parent in the app, or (app, None) for zero."""
    history = [key for key in plan if key[0] == app]
    out = []
    for key in history if depth is None else history[-depth:]:
        parents = [p for p in graph.node_map[key].parents if p.key[0] == app]
        out.append((key, (app, parents[-1].key[1]) if parents else (app, None)))
    return out


def main() -> int:
    started = time.perf_counter()
    project_dir, settings, request = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    sys.path.insert(0, project_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    import django

    django.setup()
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    setup_s = time.perf_counter() - started
    if "windows" in request:
        from django.db.migrations.loader import MigrationLoader

        graph = MigrationLoader(None, ignore_no_migrations=True).graph
        plan = full_plan(graph)
        print(json.dumps({app: [[key[1], previous[1] or "zero"]
                                for key, previous in window(graph, plan, app, request["depth"])]
                          for app in request["windows"]}))
        return 0

    def use_database(name: str) -> MigrationExecutor:
        connection.close()
        connection.settings_dict["NAME"] = name
        return MigrationExecutor(connection)

    timings = {"setup_s": round(setup_s, 3), "forward_s": 0.0, "window_s": 0.0, "steps": 0, "failed_steps": 0}
    t = time.perf_counter()
    executor = use_database(request["head"])
    executor.migrate(executor.loader.graph.leaf_nodes())
    timings["forward_s"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    for app, database in request["apps"].items():
        executor = use_database(database)
        graph = executor.loader.graph
        plan = full_plan(graph)
        steps = window(graph, plan, app, request["depth"])
        excluded = set()
        for key, _previous in steps:
            excluded |= set(graph.backwards_plan(key))
        base = [key for key in plan if key not in excluded]
        targets = {}
        for key in base:
            targets[key[0]] = key
        if base:
            executor.migrate(list(targets.values()))
            executor.loader.build_graph()
        for key, previous in steps:
            for target in (key, previous, key):
                try:
                    executor.migrate([target])
                except Exception:  # noqa: BLE001 - an irreversible migration of a real app: counted, walked on
                    timings["failed_steps"] += 1
                executor.loader.build_graph()
                timings["steps"] += 1
    timings["window_s"] = round(time.perf_counter() - t, 3)
    connection.close()
    timings["total_in_process_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
