#!/usr/bin/env python3
"""Benchmarks of scripts/test_migrations.py: time, steps and processes, peak memory, growth.

    .venv/bin/python benchmarks/run.py [--quick] [--size AxM[-dD] ...] [--traffic-only] [--output PATH]
        [--summary PATH] [--repeat N]
    .venv/bin/python benchmarks/run.py --project PATH/manage.py --settings MODULE --app LABEL ...
        [--depth N|all] [--python PATH] [--label NAME] [--output PATH] [--summary PATH] [--repeat N]

(`make benchmark ARGS=--quick`). One throwaway PostgreSQL 15 server for the whole run (the tool's
own EphemeralCluster), or the server in $DATABASE_URL (only databases named bench_* / tm_scratch_*
are created there, and dropped). Synthetic Django projects are generated in a temporary folder.

Measured, each a fresh subprocess:
- the tool on `upstream` (default depth 5 and, without --quick, --depth all) and on synthetic
  projects (without --quick, also 20 apps x 50 migrations), in `--isolation fork` with all
  proofs and with --no-schema --no-data, and in `--isolation process` with all proofs (the
  reference): wall time, Django commands run and Python processes started (the report's
  "steps" and "processes", checked against benchmarks/counts.py), peak RSS (ru_maxrss of
  RUSAGE_CHILDREN: the largest single process);
- the floor of each workload: the same migrations forward and backward in one Python process
  through Django's MigrationExecutor (benchmarks/floor_helper.py); every tool figure is also
  given as a ratio to it;
- the plain loop of each workload: `manage.py migrate`, then per app, for each migration of its
  window, `migrate APP PREVIOUS` and `migrate APP`, exit statuses only;
- manage.py start-up: `manage.py check` of this project vs a `startproject` one;
- growth: N vs 2N migrations in one app, and N vs 2N apps;
- the cost of the deploy rehearsal's traffic: the tool on `upstream` (depth 5) with --volume,
  once with --no-traffic and once with --traffic (its default sessions), the same run otherwise
  (`--traffic-only` measures only this).

With --project, only that project is measured (its settings must read DATABASE_URL): the floor,
the plain loop (windows from Django's graph; a failing `migrate`, e.g. of an irreversible
migration, is counted in `failed_processes`, not fatal) and the tool in `--isolation fork` with
all proofs, every one with --python (the interpreter that has the project's Django and apps);
step and process counts are reported, not checked (the formula assumes independent, reversible
apps). benchmarks/real_apps.py builds such a project from pinned PyPI apps and runs this.

First printed: issue 20's table (size | tested | loop | tool | floor | tool/loop | tool/floor, with
the tool's peak RSS) and the growth exponents of loop, tool and floor over the synthetic sizes.
Targets are reported, never asserted. Exit status 0 unless something failed to run or a count
differs from its formula.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "scripts" / "test_migrations.py"
# What compileall skips in a project's folder: a virtualenv or a checkout inside it (its
# packages are compiled when installed).
NOT_PROJECT_CODE = r"[/\\](\.?venv[^/\\]*|site-packages|\.git|node_modules)[/\\]"
FLOOR_HELPER = Path(__file__).resolve().parent / "floor_helper.py"
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "latest.json"
RESULT_SCHEMA = 1
RUN_TIMEOUT_S = 3600
DEFAULT_PROJECT_DEPTH = "5"  # --project: the tool's default depth

sys.path.insert(0, str(REPO))
from counts import (  # noqa: E402 - next to this file
    FIXED_STEPS,
    JOBS,
    PER_CHAIN_STEPS,
    TEMPLATE_STEPS,
    chains_of,
    expected_processes,
    expected_steps,
    formula,
    templates_of,
)
from report import (  # noqa: E402
    exponent_line,
    growth_exponents,
    ratio,
    render_markdown,
    render_text,
    size_rows,
    sizes,
    table,
    targets,
)
from synthetic import generate_project  # noqa: E402

import migration_check as tm  # noqa: E402 - the tool's package (its public PostgreSQL lifecycle API)


def generate_bare_project(root: Path) -> Path:
    """What `django-admin startproject` makes (contrib apps, SQLite): the start-up reference."""
    root.mkdir(parents=True)
    run_checked([sys.executable, "-m", "django", "startproject", "bareproject", str(root)])
    return root / "manage.py"


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------

# A fresh process per measurement, so that ru_maxrss of RUSAGE_CHILDREN covers only the command.
MEASURE_CODE = """
import json, resource, subprocess, sys, time
spec = json.loads(sys.argv[1])
started = time.perf_counter()
done = subprocess.run(spec["argv"], cwd=spec["cwd"], capture_output=True, text=True, errors="replace",
                      timeout=spec["timeout"])
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall_s": wall, "returncode": done.returncode, "maxrss_kb": usage.ru_maxrss,
                  "cpu_s": usage.ru_utime + usage.ru_stime,
                  "stdout": done.stdout[-20000:], "stderr": done.stderr[-4000:]}))
"""


class Failure(Exception):
    """A benchmark step could not run (reported, makes the exit status 1)."""


def run_checked(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, **kwargs)
    if done.returncode != 0:
        raise Failure(f"{' '.join(argv[:4])} ... exited {done.returncode}: {(done.stderr or done.stdout)[-800:]}")
    return done


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], cwd: Path, env: dict[str, str]) -> dict:
    spec = json.dumps({"argv": argv, "cwd": str(cwd), "timeout": RUN_TIMEOUT_S})
    done = subprocess.run([sys.executable, "-c", MEASURE_CODE, spec], capture_output=True, text=True,
                          env=env, timeout=RUN_TIMEOUT_S + 60)
    if done.returncode != 0:
        raise Failure(f"measuring {' '.join(argv[:3])} failed: {done.stderr[-800:]}")
    return json.loads(done.stdout)


class Bench:
    def __init__(self, server: tm.Server, tmp: Path, repeat: int, log, python: str = sys.executable) -> None:
        self.python = python  # the interpreter of the measured project (--python): tool, floor, loop
        self.server = server
        self.tmp = tmp
        self.repeat = repeat
        self.log = log
        self.databases: list[str] = []
        self.failures: list[str] = []
        self.compiled: set[Path] = set()

    # -- databases ------------------------------------------------------------------------------

    def create_db(self, purpose: str) -> str:
        name = f"bench_{self.server.run_id}_{len(self.databases)}_{purpose}"[:63]
        name = re.sub(r"[^a-z0-9_]", "_", name.lower())
        with self.server.admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {tm.quote_ident(name)}")
        self.databases.append(name)
        return name

    def drop_dbs(self) -> None:
        for name in reversed(self.databases):
            with contextlib.suppress(Exception), self.server.admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {tm.quote_ident(name)} WITH (FORCE)")
        self.databases.clear()

    def env(self, settings: str, dbname: str = "postgres") -> dict[str, str]:
        env = dict(os.environ)
        env.update({"DATABASE_URL": self.server.url_for(dbname), "DJANGO_SETTINGS_MODULE": settings,
                    "PYTHONWARNINGS": "ignore"})
        env.pop("GITHUB_ACTIONS", None)  # no annotations or step summary from the tool's runs
        return env

    def compile_bytecode(self, folder: Path) -> None:
        """Write the .pyc files of `folder`'s modules before anything is measured on them. Where
        PYTHONDONTWRITEBYTECODE=1 is set (these machines), no measured process writes one, and
        every process would compile what it imports from source: each of the plain loop's
        processes compiles every migration of the project (at 1,000 migrations 11 % of its
        time), a step server only once. A developer's machine or CI writes them at the first
        run; so the figures are taken as there, whatever that variable says."""
        if folder not in self.compiled:
            run_checked([self.python, "-m", "compileall", "-q", "-j", "0", "-x", NOT_PROJECT_CODE, str(folder)])
            self.compiled.add(folder)

    def compile_project(self, manage: Path) -> None:
        for folder in ((REPO / "hello_world", REPO / "upstream") if manage == UPSTREAM_MANAGE else (manage.parent,)):
            self.compile_bytecode(folder)

    def repeated(self, fn):
        """Run `fn` `repeat` times; keep the run with the median wall time."""
        return median_run([fn() for _ in range(self.repeat)])

    # -- the tool -------------------------------------------------------------------------------

    def tool(self, manage: Path, settings: str, depth: str, proofs: bool, isolation: str, total: int,
             apps: tuple[str, ...] = ()) -> Callable[[], dict]:
        """One run of the tool, as a function (Runner.workload alternates it with the loop's and
        the floor's). `total`: the project's migrations; those below every window (the apps are independent)
        are the base a template would hold. `apps`: --app labels (none: the tool's default)."""
        def once() -> dict:
            report_path = self.tmp / f"report-{secrets.token_hex(4)}.json"
            argv = [self.python, str(TOOL), "--manage", str(manage), "--settings", settings, "--depth", depth,
                    "--database-url", self.server.url_for("postgres"), "--report-json", str(report_path), "-q",
                    "--jobs", str(JOBS), "--isolation", isolation, *(f"--app={app}" for app in apps)]
            if not proofs:
                argv += ["--no-schema", "--no-data"]
            result = measure(argv, manage.parent, self.env(settings))
            if result["returncode"] not in (0, 1) or not report_path.is_file():
                raise Failure(f"the tool exited {result['returncode']} on {manage}: {result['stderr'][-800:]}")
            report = json.loads(report_path.read_text())
            # rolled back by the run: a blocked migration's own rollback is tested too (rollback_alone)
            tested = [sum(1 for m in app["migrations"]
                          if m.get("rollback_alone", m["rollback"]) not in ("irreversible", "blocked"))
                      for app in report["apps"]]
            problems = [f"{app['app']}.{m['name']}: {m['rollback']}/{m['reapply']}/{m['schema']}/{m['data']}"
                        for app in report["apps"] for m in app["migrations"]
                        if m["rollback"] != "passed" or m["reapply"] != "passed"
                        or m["schema"] == "differs" or (m["data"] == "lost" and not m["acknowledged"])]
            problems += [f"check {c['name']}: {c['detail']}" for c in report["checks"] if c["status"] != "passed"]
            chains = [chains_of(n, len(tested)) for n in tested]
            template = templates_of(tested, total - sum(tested))
            return {"wall_s": result["wall_s"], "report_duration_s": report["duration_s"],
                    "isolation": report["isolation"], "processes": report["processes"], "steps": report["steps"],
                    "tested_per_app": tested, "tested_migrations": sum(tested),
                    "expected_processes": expected_processes(tested, total - sum(tested), isolation),
                    "expected_steps": expected_steps(tested, total - sum(tested)), "chains_per_app": chains,
                    "template": template,
                    "steps_per_tested_migration": ratio(report["steps"] - FIXED_STEPS - PER_CHAIN_STEPS * sum(chains)
                                                        - TEMPLATE_STEPS * template, sum(tested)),
                    "peak_rss_mb": round(result["maxrss_kb"] / 1024, 1), "cpu_s": round(result["cpu_s"], 2),
                    "ok": report["ok"], "problems": problems[:10]}
        return once

    # -- the rehearsal's traffic ---------------------------------------------------------------

    def traffic(self, manage: Path, settings: str, volume: int, traffic: bool) -> dict:
        """The tool at depth 5 with --volume, with or without the rehearsal's traffic: what
        --traffic adds is a clone per migration, the --volume rows filled again, and the apply
        under K sessions of the previous release's queries."""
        def once() -> dict:
            report_path = self.tmp / f"report-{secrets.token_hex(4)}.json"
            argv = [sys.executable, str(TOOL), "--manage", str(manage), "--settings", settings,
                    "--database-url", self.server.url_for("postgres"), "--report-json", str(report_path), "-q",
                    "--jobs", str(JOBS), "--volume", str(volume), "--traffic" if traffic else "--no-traffic"]
            result = measure(argv, manage.parent, self.env(settings))
            if result["returncode"] not in (0, 1) or not report_path.is_file():
                raise Failure(f"the tool exited {result['returncode']} on {manage}: {result['stderr'][-800:]}")
            report = json.loads(report_path.read_text())
            stats = [stat for app in report["apps"] for m in app["migrations"] for stat in m.get("traffic") or []]
            rehearsed = sum(1 for app in report["apps"] for m in app["migrations"] if m.get("traffic"))
            return {"wall_s": result["wall_s"], "cpu_s": round(result["cpu_s"], 2),
                    "peak_rss_mb": round(result["maxrss_kb"] / 1024, 1), "ok": report["ok"],
                    "migrations": sum(len(app["migrations"]) for app in report["apps"]),
                    "rehearsed_migrations": rehearsed, "traffic_queries": sum(stat["queries"] for stat in stats)}
        return self.repeated(once)

    # -- the floor: one process, Django's MigrationExecutor --------------------------------------

    def floor(self, manage: Path, settings: str, apps: list[str], depth: int | None) -> Callable[[], dict]:
        def once() -> dict:
            request = {"head": self.create_db("floor_head"),
                       "apps": {app: self.create_db(f"floor_{app}") for app in apps}, "depth": depth}
            argv = [self.python, str(FLOOR_HELPER), str(manage.parent), settings, json.dumps(request)]
            result = measure(argv, manage.parent, self.env(settings))
            if result["returncode"] != 0:
                raise Failure(f"the floor helper failed on {manage}: {result['stderr'][-800:]}")
            inner = json.loads(result["stdout"].strip().splitlines()[-1])
            return {"wall_s": result["wall_s"], "cpu_s": round(result["cpu_s"], 2),
                    "peak_rss_mb": round(result["maxrss_kb"] / 1024, 1), **inner}
        return once

    # -- the plain loop: exit statuses only ----------------------------------------------------

    def plain_loop(self, manage: Path, settings: str, apps: list[str], depth: int | None,
                   from_graph: bool = False) -> Callable[[], dict]:
        """`migrate`, then per app, for each migration of its window (newest first), `migrate APP
        PREVIOUS` and `migrate APP` (linear histories: the previous file is the parent).

        `from_graph` (a project of installed apps, --project): the windows come from Django's
        graph (floor_helper.py's, the floor's own), and a command that fails is counted in
        `failed_processes` and the loop goes on, as a shell loop of exit statuses would."""
        windows = self.windows(manage, settings, apps, depth) if from_graph else {
            app: local_window(manage.parent / app / "migrations", depth) for app in apps}
        targets = [[]]
        for app, window in windows.items():
            for _name, previous in reversed(window):
                targets += [[app, previous], [app]]

        def once() -> dict:
            env = self.env(settings, self.create_db("plain_loop"))
            started, cpu_started = time.perf_counter(), children_cpu()
            processes = failed = 0
            for target in targets:
                argv = [self.python, str(manage), "migrate", *target, "--noinput"]
                if from_graph:
                    failed += subprocess.run(argv, cwd=manage.parent, env=env, capture_output=True,
                                             timeout=RUN_TIMEOUT_S).returncode != 0
                else:
                    run_checked(argv, cwd=manage.parent, env=env)
                processes += 1
            return {"wall_s": time.perf_counter() - started, "cpu_s": round(children_cpu() - cpu_started, 2),
                    "processes": processes, "failed_processes": failed}
        return once

    def windows(self, manage: Path, settings: str, apps: list[str], depth: int | None) -> dict[str, list[list[str]]]:
        """Per app, [migration, rollback target] oldest first, from the project's own graph."""
        request = json.dumps({"windows": apps, "depth": depth})
        done = run_checked([self.python, str(FLOOR_HELPER), str(manage.parent), settings, request],
                           cwd=manage.parent, env=self.env(settings))
        return json.loads(done.stdout.strip().splitlines()[-1])

    # -- start-up -------------------------------------------------------------------------------

    def startup(self, manage: Path, settings: str, repeat: int) -> dict:
        env = self.env(settings)
        times, rss, cpu = [], [], []
        for _ in range(repeat):
            result = measure([sys.executable, str(manage), "check"], manage.parent, env)
            if result["returncode"] != 0:
                raise Failure(f"{manage} check failed: {result['stderr'][-800:]}")
            times.append(result["wall_s"])
            rss.append(result["maxrss_kb"])
            cpu.append(result["cpu_s"])
        return {"wall_s": statistics.median(times), "wall_s_all": [round(t, 3) for t in times],
                "cpu_s": round(statistics.median(cpu), 3),
                "peak_rss_mb": round(max(rss) / 1024, 1)}

    def importtime(self, manage: Path, settings: str, top: int = 8) -> list[dict]:
        done = subprocess.run([sys.executable, "-X", "importtime", str(manage), "check"], cwd=manage.parent,
                              env=self.env(settings), capture_output=True, text=True, timeout=300)
        rows = []
        for line in done.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
            if match and len(match.group(3)) <= 1:  # top-level imports only
                rows.append({"module": match.group(4), "cumulative_ms": round(int(match.group(2)) / 1000, 1)})
        rows.sort(key=lambda r: -r["cumulative_ms"])
        return rows[:top]


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def plan(quick: bool) -> dict:
    """Sizes. Growth by migrations: one app with a longer history, tested at depth N and 2N. Growth
    by apps: A and 2A apps of `apps_migrations` migrations, depth `apps_depth`. Without --quick,
    also the large size: 20 apps of 50 migrations (1,000), default depth. Every window leaves the
    app's 0001 below it (see the README: a single app tested down to zero crashes the tool)."""
    if quick:
        # The one-app size of the growth by apps is the smaller size of the growth by migrations
        # (1 x 5 at depth 2, measured once); the process-isolation reference runs on the two-app
        # size only: on upstream and the one-app sizes it would check the same formula again
        # (one process per step) at the highest cost of the run (upstream's: 8 s of the suite's
        # slowest module).
        return {"upstream_depths": ["5"], "growth_depths": (2, 4), "growth_history": 5, "growth_apps": (1, 2),
                "apps_migrations": 5, "apps_depth": 2, "startup_repeat": 1, "large": None,
                "traffic_volume": 1_000, "reference_everywhere": False}
    return {"upstream_depths": ["5", "all"], "growth_depths": (5, 10), "growth_history": 11, "growth_apps": (2, 4),
            "apps_migrations": 4, "apps_depth": 3, "startup_repeat": 5, "large": (20, 50, 5),
            "traffic_volume": 20_000,  # the issue's figures: 0022's backfill holds its lock ~4 s there
            "reference_everywhere": True}


# What each workload is measured with: (isolation, all proofs). Fork is the default; process the
# reference (every step a process of its own, as before step servers).
TOOL_RUNS = (("fork", True), ("fork", False), ("process", True))


class Runner:
    """The run of every measurement into `results`; failures are recorded, the rest goes on."""

    def __init__(self, bench: Bench, log) -> None:
        self.bench = bench
        self.log = log
        self.results: dict = {"tool": [], "floors": {}, "plain_loops": {}, "plain_loop": None, "startup": {},
                              "growth": {}, "traffic": None}

    def step(self, label: str, fn):
        self.log(f"  {label} ...")
        try:
            return fn()
        except Failure as error:
            self.bench.failures.append(f"{label}: {error}")
            self.log(f"    FAILED: {error}")
            return None

    def workload(self, wid: str, manage: Path, settings: str, apps: list[str], depth: str, shape: dict,
                 installed: bool = False, reference: bool = True) -> None:
        """The floor, the plain loop and the tool runs of one workload, alternated (see
        `alternated`). `installed`: a project of installed apps (--project): windows from Django's
        graph, the tool told the apps with --app, and only the default tool run (fork, all proofs).
        `reference`: also the process-isolation run (--quick leaves it out on some sizes)."""
        if wid in self.results["floors"]:  # the same project, apps and depth: measured already
            return
        self.bench.compile_project(manage)
        depth_n = None if depth == "all" else int(depth)
        floor_label = f"{wid}: floor (one process, MigrationExecutor)"
        loop_label = f"{wid}: plain loop (migrate; rollback + migrate per migration, exit statuses)"
        runs: dict[str, Callable[[], dict]] = {
            floor_label: self.bench.floor(manage, settings, apps, depth_n),
            loop_label: self.bench.plain_loop(manage, settings, apps, depth_n, from_graph=installed)}
        tool_runs = TOOL_RUNS[:1] if installed else TOOL_RUNS if reference else TOOL_RUNS[:2]
        proofs_of: dict[str, bool] = {}
        for isolation, proofs in tool_runs:
            label = f"{wid}: tool, --isolation {isolation}, {'all proofs' if proofs else '--no-schema --no-data'}"
            proofs_of[label] = proofs
            runs[label] = self.bench.tool(manage, settings, depth, proofs, isolation, shape["migrations"],
                                          tuple(apps) if installed else ())
        measured = self.alternated(runs)
        floor, loop = measured.pop(floor_label), measured.pop(loop_label)
        self.results["floors"][wid] = floor
        if loop:
            loop.update(floor_s=floor["wall_s"] if floor else None,
                        ratio_to_floor=ratio(loop["wall_s"], floor["wall_s"] if floor else None))
            self.results["plain_loops"][wid] = loop
        for label, tool in measured.items():
            if tool is not None:
                self.record(tool, wid, depth, proofs_of[label], shape, floor, loop)

    def alternated(self, runs: dict[str, Callable[[], dict]]) -> dict[str, dict | None]:
        """Each measurement once per round, in turn (floor, loop, tool, ..., floor, loop, ...),
        for --repeat rounds: a load from other work that comes and goes during the run then
        weighs on the loop and the tool alike, and their ratio is taken under the same
        conditions. Per measurement, the run with the median wall time is kept (all of them
        in `wall_s_all`, in round order); one that fails is recorded and not run again."""
        done: dict[str, list[dict]] = {label: [] for label in runs}
        failed: set[str] = set()
        for round_number in range(1, self.bench.repeat + 1):
            for label, once in runs.items():
                if label in failed:
                    continue
                suffix = f" (round {round_number} of {self.bench.repeat})" if self.bench.repeat > 1 else ""
                result = self.step(label + suffix, once)
                if result is None:
                    failed.add(label)
                    continue
                done[label].append(result)
                self.log(f"    {result['wall_s']:.1f}s" + (f", {result['processes']} processes"
                                                             if "processes" in result else ""))
        return {label: None if label in failed else median_run(results) for label, results in done.items()}

    def record(self, measured: dict, wid: str, depth: str, proofs: bool, shape: dict, floor: dict | None,
               loop: dict | None) -> None:
        proofs_name = "all" if proofs else "none"
        measured.update({"id": f"{wid}/{measured['isolation']}/{proofs_name}", "workload": wid, "depth": depth,
                         "proofs": proofs_name, **shape})
        measured["floor_s"] = floor["wall_s"] if floor else None
        measured["ratio_to_floor"] = ratio(measured["wall_s"], measured["floor_s"])
        measured["loop_s"] = loop["wall_s"] if loop else None
        measured["ratio_to_loop"] = ratio(measured["wall_s"], measured["loop_s"])
        self.results["tool"].append(measured)
        self.log(f"    {measured['wall_s']:.1f}s, {measured['steps']} steps, {measured['processes']} processes, "
                 f"{measured['ratio_to_floor']}x floor, {measured['ratio_to_loop']}x loop, ok={measured['ok']}")

    def traffic(self, volume: int) -> None:
        """`upstream` at depth 5 with --volume, without and with the rehearsal's traffic."""
        runs = {name: self.step(f"upstream-d5 --volume {volume:,} --{name.replace('_', '-')}",
                                lambda on=on: self.bench.traffic(UPSTREAM_MANAGE, UPSTREAM_SETTINGS, volume, on))
                for name, on in (("no_traffic", False), ("traffic", True))}
        without, with_traffic = runs["no_traffic"], runs["traffic"]
        self.results["traffic"] = {
            "workload": "upstream-d5", "volume": volume, "without": without, "with": with_traffic,
            "ratio": ratio(with_traffic["wall_s"], without["wall_s"]) if without and with_traffic else None,
            "cpu_ratio": ratio(with_traffic["cpu_s"], without["cpu_s"]) if without and with_traffic else None}
        for name, measured in runs.items():
            if measured:
                self.log(f"    --{name.replace('_', '-')}: {measured['wall_s']:.1f}s, {measured['cpu_s']} CPU s, "
                         f"{measured['rehearsed_migrations']} migration(s) rehearsed, "
                         f"{measured['traffic_queries']} queries")

    def figure(self, wid: str, key: str, isolation: str = "fork", proofs: str = "all") -> float | None:
        return next((m[key] for m in self.results["tool"] if m["id"] == f"{wid}/{isolation}/{proofs}"), None)

    def startup(self, long_app: Path, repeat: int) -> None:
        bare = generate_bare_project(self.bench.tmp / "bare")
        for manage in (UPSTREAM_MANAGE, bare, long_app):
            self.bench.compile_project(manage)
        for name, manage, settings in (("upstream", UPSTREAM_MANAGE, UPSTREAM_SETTINGS),
                                       ("bare_startproject", bare, "bareproject.settings"),
                                       ("synthetic", long_app, "benchproj.settings")):
            self.results["startup"][name] = self.step(f"start-up: {name} manage.py check",
                                                      lambda m=manage, s=settings: self.bench.startup(m, s, repeat))
        self.results["startup"]["upstream_importtime_top"] = self.step(
            "start-up: -X importtime of upstream", lambda: self.bench.importtime(UPSTREAM_MANAGE, UPSTREAM_SETTINGS))

    def growth(self, kind: str, small: str, large: str) -> None:
        for proofs in ("all", "none"):
            self.results["growth"][f"{kind}/{proofs}"] = {
                "small": small, "large": large,
                "small_s": self.figure(small, "wall_s", proofs=proofs),
                "large_s": self.figure(large, "wall_s", proofs=proofs),
                "ratio": ratio(self.figure(large, "wall_s", proofs=proofs),
                               self.figure(small, "wall_s", proofs=proofs)),
                "cpu_ratio": ratio(self.figure(large, "cpu_s", proofs=proofs),
                                   self.figure(small, "cpu_s", proofs=proofs)),
                "floor_ratio": ratio((self.results["floors"].get(large) or {}).get("wall_s"),
                                     (self.results["floors"].get(small) or {}).get("wall_s"))}


UPSTREAM_MANAGE, UPSTREAM_SETTINGS = REPO / "manage.py", "hello_world.settings"


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the upper one of an even count); with more than one,
    every run's wall time too, in the order they ran."""
    chosen = dict(sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2])
    if len(runs) > 1:
        chosen["wall_s_all"] = [round(r["wall_s"], 2) for r in runs]
    return chosen


def local_window(folder: Path, depth: int | None) -> list[list[str]]:
    """[migration, rollback target] of an app folder's newest `depth` files, oldest first (a
    linear history: the previous file is the parent)."""
    names = sorted(p.stem for p in folder.glob("[0-9]*.py"))
    return [[name, names[names.index(name) - 1] if names.index(name) else "zero"]
            for name in (names if depth is None else names[-depth:])]


def planned_migrations(bench: Bench, manage: Path, settings: str) -> int:
    """How many migrations `showmigrations --plan` lists (contrib apps included)."""
    db = bench.create_db("plan")
    try:
        done = run_checked([bench.python, str(manage), "showmigrations", "--plan", "--no-color"], cwd=manage.parent,
                           env=bench.env(settings, db))
    finally:
        bench.drop_dbs()
    return sum(1 for line in done.stdout.splitlines() if line.startswith("["))


def synthetic_workload(runner: Runner, apps: int, migrations: int, depth: int, project: Path | None = None,
                       reference: bool = True) -> str:
    wid = f"synthetic-{apps}x{migrations}-d{depth}"
    folder = runner.bench.tmp / f"synthetic-{apps}x{migrations}"
    manage = project or (folder / "manage.py" if folder.is_dir() else generate_project(folder, apps, migrations))
    runner.workload(wid, manage, "benchproj.settings", [f"app{k}" for k in range(1, apps + 1)], str(depth),
                    {"project": "synthetic", "apps": apps, "migrations_per_app": migrations,
                     "migrations": apps * migrations}, reference=reference)
    return wid


def parse_size(text: str) -> tuple[int, int, int]:
    """`AxM-dD` (D defaults to 5): A synthetic apps of M migrations, tested at depth D."""
    match = re.fullmatch(r"(\d+)x(\d+)(?:-d(\d+))?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not AxM or AxM-dD (e.g. 10x20-d5)")
    apps, migrations, depth = int(match[1]), int(match[2]), int(match[3] or 5)
    if not (apps >= 1 and migrations >= 2 and 1 <= depth < migrations):
        raise argparse.ArgumentTypeError(f"{text!r}: need apps >= 1 and 1 <= depth < migrations (0001 stays below)")
    return apps, migrations, depth


@dataclasses.dataclass(frozen=True)
class ProjectSpec:
    """--project: a Django project of installed (e.g. third-party) apps, measured on its own."""

    manage: Path  # its manage.py
    settings: str  # DJANGO_SETTINGS_MODULE; DATABASES must read DATABASE_URL
    apps: tuple[str, ...]  # app labels tested (the tool's --app)
    depth: str  # "5" or "all"
    python: str  # the interpreter that has the project's Django and apps (and a PostgreSQL driver)
    label: str  # the workload's name in the tables


def project_spec(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ProjectSpec | None:
    """The --project options, validated together (a usage error exits 2)."""
    if args.project is None:
        if args.settings or args.apps or args.python or args.label or args.depth:
            parser.error("--settings, --app, --depth, --python and --label go with --project")
        return None
    if not args.project.is_file():
        parser.error(f"--project {args.project}: no such file (give the project's manage.py)")
    if not (args.settings and args.apps):
        parser.error("--project needs --settings MODULE and at least one --app LABEL")
    if args.quick or args.traffic_only or args.size:
        parser.error("--project measures that project only: drop --quick, --traffic-only and --size")
    return ProjectSpec(manage=args.project.resolve(), settings=args.settings, apps=tuple(args.apps),
                       depth=args.depth or DEFAULT_PROJECT_DEPTH, python=args.python or sys.executable,
                       label=args.label or f"project-{args.project.resolve().parent.name}")


def parse_depth(text: str) -> str:
    if text != "all" and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number or 'all'")
    return text


def project_workload(runner: Runner, project: ProjectSpec) -> str:
    """--project: the floor, the plain loop and the tool on a project of installed apps."""
    wid = f"{project.label}-d{project.depth}"
    runner.workload(wid, project.manage, project.settings, list(project.apps), project.depth,
                    {"project": project.label, "apps": len(project.apps),
                     "migrations": planned_migrations(runner.bench, project.manage, project.settings)},
                    installed=True)
    return wid


def run_benchmarks(bench: Bench, quick: bool, log, extra_sizes: tuple[tuple[int, int, int], ...] = (),
                   traffic_only: bool = False, project: ProjectSpec | None = None) -> dict:
    sizes = plan(quick)
    runner = Runner(bench, log)
    if project is not None:
        project_workload(runner, project)
        return runner.results
    if traffic_only:
        runner.traffic(sizes["traffic_volume"])
        return runner.results
    for depth in sizes["upstream_depths"]:
        runner.workload(f"upstream-d{depth}", UPSTREAM_MANAGE, UPSTREAM_SETTINGS, ["upstream"], depth,
                        {"project": "upstream", "apps": 1,
                         "migrations": planned_migrations(bench, UPSTREAM_MANAGE, UPSTREAM_SETTINGS)},
                        reference=sizes["reference_everywhere"])
    runner.results["plain_loop"] = runner.results["plain_loops"].get("upstream-d5")
    history = sizes["growth_history"]
    long_app = generate_project(bench.tmp / f"synthetic-1x{history}", 1, history)
    everywhere = sizes["reference_everywhere"]
    by_migrations = [synthetic_workload(runner, 1, history, depth, long_app, reference=everywhere)
                     for depth in sizes["growth_depths"]]
    by_apps = [synthetic_workload(runner, apps, sizes["apps_migrations"], sizes["apps_depth"],
                                  reference=everywhere or apps == max(sizes["growth_apps"]))
               for apps in sizes["growth_apps"]]
    for size in extra_sizes:  # --size: synthetic sizes between the quick ones and the large one
        runner.results["large"] = synthetic_workload(runner, *size)
    if sizes["large"]:
        runner.results["large"] = synthetic_workload(runner, *sizes["large"])
    runner.startup(long_app, sizes["startup_repeat"])
    runner.growth("migrations", *by_migrations)
    runner.growth("apps", *by_apps)
    runner.traffic(sizes["traffic_volume"])
    return runner.results


def check_counts(results: dict, failures: list[str], log) -> None:
    """Steps and processes are exact (timings are only reported): a count that differs from its
    formula (benchmarks/counts.py) is a failure."""
    log("deterministic: steps = 5 + templates + sum over apps of (1 x chains + 3 x tested migrations), --jobs 2 "
        "(templates: the root when (chains - 1) x migrations below the windows >= 100, then one per half of the "
        "apps alike); processes = steps (--isolation process), 1 + templates + min(chains, jobs + 1) "
        "(--isolation fork: a step server per slot)")
    for m in results["tool"]:
        if m["project"] not in ("synthetic", "upstream"):
            # installed apps depend on each other and fail: the formula's premises do not hold
            log(f"not checked: {m['id']}: {m['steps']} steps, {m['processes']} processes")
            continue
        log(f"deterministic: {m['id']}: {m['steps']} steps (expected {m['expected_steps']}), "
            f"{m['processes']} processes (expected {m['expected_processes']})")
        for key in ("steps", "processes"):
            if m[key] != m[f"expected_{key}"]:
                failures.append(f"{m['id']}: {m[key]} {key}, expected {m[f'expected_{key}']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, upstream default depth only (CI)")
    parser.add_argument("--traffic-only", action="store_true",
                        help="measure only the cost of --traffic (upstream, depth 5, with --volume)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="rounds: each measurement once per round, alternated; the median run kept (default 1)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results (default: %(default)s)")
    parser.add_argument("--summary", type=Path, help="append a Markdown table to this file ($GITHUB_STEP_SUMMARY)")
    parser.add_argument("--size", type=parse_size, action="append", default=[], metavar="AxM[-dD]",
                        help="also measure a synthetic project of A apps x M migrations at depth D (default 5), "
                             "e.g. --size 10x20; repeatable; the last one is the 'large' size of the targets")
    project = parser.add_argument_group("a project of your own (instead of upstream and the synthetic sizes)")
    project.add_argument("--project", type=Path, metavar="PATH/manage.py",
                         help="measure floor, plain loop and tool (fork, all proofs) on this project only")
    project.add_argument("--settings", metavar="MODULE", help="its settings module (DATABASES from DATABASE_URL)")
    project.add_argument("--app", dest="apps", action="append", default=[], metavar="LABEL",
                         help="an app label to test (repeatable; the tool's --app)")
    project.add_argument("--depth", type=parse_depth, metavar="N|all",
                         help=f"newest migrations tested per app (default: {DEFAULT_PROJECT_DEPTH}, the tool's)")
    project.add_argument("--python", metavar="PATH",
                         help="the interpreter with the project's Django and apps (default: this one)")
    project.add_argument("--label", help="the workload's name in the tables (default: project-FOLDER)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    spec = project_spec(args, parser)
    repeat = max(1, args.repeat or 1)

    def log(text: str) -> None:
        print(text, flush=True)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    cluster = None
    server = None
    bench = None
    tmp = Path(tempfile.mkdtemp(prefix="tm-bench-"))
    try:
        url = os.environ.get("DATABASE_URL")
        if not (url and url.split(":", 1)[0] in ("postgres", "postgresql", "pgsql")):
            bindir = tm.find_postgres_bindir()
            if bindir is None:
                print("benchmarks: no PostgreSQL binaries found and no postgres $DATABASE_URL", file=sys.stderr)
                return 1
            log(f"Starting a throwaway PostgreSQL cluster ({bindir}) ...")
            cluster = tm.EphemeralCluster(bindir).start()
            url = cluster.url
        server = tm.Server(tm.ServerAddress.from_url(url), ephemeral=cluster is not None)
        import django

        meta = {"schema": RESULT_SCHEMA, "quick": args.quick, "repeat": repeat,
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "django": django.get_version(), "postgres": str(server.server_version).split()[0],
                            "load_average": [round(x, 2) for x in os.getloadavg()]},
                "formula": {**formula(), "tool_splits_windows": True}}
        if spec is not None:
            meta["machine"]["django"] = run_checked([spec.python, "-c", "import django; print(django.get_version())"],
                                                    cwd=spec.manage.parent).stdout.strip()
            meta["project"] = {**dataclasses.asdict(spec), "manage": str(spec.manage)}
        bench = Bench(server, tmp, repeat, log, spec.python if spec else sys.executable)
        bench.compile_bytecode(REPO / "migration_check")  # the tool's own modules
        meta["machine"]["bytecode"] = "compiled before measuring"
        results = run_benchmarks(bench, args.quick, log, tuple(args.size), args.traffic_only, spec)
        results["sizes"] = sizes(results)  # none with --traffic-only
        results["growth_exponents"] = growth_exponents(results["sizes"])
        check_counts(results, bench.failures, log)
        target_rows = targets(results)
        rows = table(results)
        meta["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        document = {**meta, **results, "targets": target_rows, "failures": bench.failures,
                    "duration_s": round(time.monotonic() - started, 1)}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(document, indent=2) + "\n")
        log("")
        log(render_text(size_rows(results["sizes"])))
        log(exponent_line(results["growth_exponents"]))
        log("")
        log(render_text(rows))
        log("")
        for t in target_rows:
            log(f"target: {t['target']}: {t['value']} (CPU {t['cpu_value']}; limit {t['limit']}) "
                + ("reported" if t["limit"] is None else "met" if t["met"] else "NOT met"))
        if args.summary:
            with open(args.summary, "a", encoding="utf-8") as summary:
                summary.write(render_markdown(rows, target_rows, meta, results["sizes"], results["growth_exponents"]))
        log(f"results: {args.output} ({document['duration_s']}s)")
        for failure in bench.failures:
            print(f"benchmarks: failed: {failure}", file=sys.stderr)
        return 1 if bench.failures else 0
    except (Failure, tm.UsageError) as error:
        print(f"benchmarks: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmarks: interrupted; databases and servers removed", file=sys.stderr)
        return 130
    finally:
        if bench is not None:
            bench.drop_dbs()
        if server is not None:
            server.close()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
