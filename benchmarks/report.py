"""What benchmarks/run.py prints and writes from its results: the targets, the table, Markdown.

The first table (issue 20's): per size, tested migrations, the plain loop, the tool (fork, all
proofs), the floor, the ratios and the tool's peak RSS; then growth exponents fitted over the
synthetic sizes (time ~ tested^k) for each of the three.

Targets (reported, never asserted): the tool (fork isolation, all proofs) at most 0.5x its plain
loop at every size and at most 3x the one-process floor at the largest size; doubling the tested
migrations, or the apps, at most doubles the time; manage.py start-up within 1.2x a bare project;
and the peak memory of the largest process, reported.
"""

from __future__ import annotations

import math

LOOP_LIMIT = 0.5
FLOOR_LIMIT_LARGE = 3.0
GROWTH_LIMIT = 2.0
STARTUP_LIMIT = 1.2


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def target(name: str, value: float | None, cpu_value: float | None, limit: float | None) -> dict:
    return {"target": name, "value": value, "cpu_value": cpu_value, "limit": limit,
            "met": value is not None and (limit is None or value <= limit)}


def tool_run(results: dict, wid: str, isolation: str = "fork", proofs: str = "all") -> dict | None:
    return next((m for m in results["tool"] if m["id"] == f"{wid}/{isolation}/{proofs}"), None)


def loop_targets(results: dict) -> list[dict]:
    out = []
    for wid, loop in results.get("plain_loops", {}).items():
        for isolation in ("fork", "process"):
            tool = tool_run(results, wid, isolation)
            if tool and loop:
                out.append(target(f"{wid}: tool (--isolation {isolation}) vs its plain loop"
                                  + ("" if isolation == "fork" else " (reference)"),
                                  ratio(tool["wall_s"], loop["wall_s"]), ratio(tool["cpu_s"], loop["cpu_s"]),
                                  LOOP_LIMIT if isolation == "fork" else None))
    return out


def floor_target(results: dict) -> list[dict]:
    """At the largest workload (most migrations in the project)."""
    large = results.get("large")
    tool = tool_run(results, large) if large else None
    floor = results["floors"].get(large) if large else None
    if not (tool and floor):
        return []
    return [target(f"{large}: tool within 3x the one-process floor", ratio(tool["wall_s"], floor["wall_s"]),
                   ratio(tool["cpu_s"], floor["cpu_s"]), FLOOR_LIMIT_LARGE)]


def targets(results: dict) -> list[dict]:
    out = loop_targets(results) + floor_target(results)
    for key, growth in results["growth"].items():
        if key.endswith("/all"):
            out.append(target(f"doubling {key.split('/')[0]} at most doubles time", growth["ratio"],
                              growth["cpu_ratio"], GROWTH_LIMIT))
    startup = results["startup"]
    if startup.get("upstream") and startup.get("bare_startproject"):
        out.append(target("manage.py start-up within 1.2x a bare (startproject) project",
                          ratio(startup["upstream"]["wall_s"], startup["bare_startproject"]["wall_s"]),
                          ratio(startup["upstream"]["cpu_s"], startup["bare_startproject"]["cpu_s"]), STARTUP_LIMIT))
    largest = max(results["tool"], key=lambda m: m["peak_rss_mb"], default=None)
    if largest:
        out.append(target(f"peak memory of the largest process, MB ({largest['id']}; reported)",
                          largest["peak_rss_mb"], None, None))
    return out


def f(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def workload_rows(results: dict, wid: str) -> list[list[str]]:
    rows = []
    floor = results["floors"].get(wid)
    if floor:
        rows.append([f"{wid} floor (1 process)", f(floor["wall_s"], 2), "1.00", "-", f(floor["cpu_s"], 1), "1",
                     "-", "-", f(floor["peak_rss_mb"]), "-"])
    loop = results.get("plain_loops", {}).get(wid)
    if loop:
        rows.append([f"{wid} plain loop (exit statuses)", f(loop["wall_s"], 2), f(loop["ratio_to_floor"], 2, "x"),
                     "1.00", f(loop["cpu_s"], 1), str(loop["processes"]), str(loop["processes"]), "2", "-", "-"])
    for m in results["tool"]:
        if m["workload"] == wid:
            rows.append([f"{wid} tool, {m['isolation']}, proofs {m['proofs']}", f(m["wall_s"], 2),
                         f(m["ratio_to_floor"], 2, "x"), f(m["ratio_to_loop"], 2, "x"), f(m["cpu_s"], 1),
                         f"{m['processes']} (expected {m['expected_processes']})",
                         f"{m['steps']} (expected {m['expected_steps']})", f(m["steps_per_tested_migration"], 0),
                         f(m["peak_rss_mb"]), str(m["ok"])])
    return rows


def table(results: dict) -> list[list[str]]:
    rows = [["measurement", "wall s", "x floor", "x loop", "CPU s", "processes", "steps", "steps per tested migration",
             "peak RSS MB", "ok"]]
    for wid in results["floors"]:
        rows += workload_rows(results, wid)
    for name in ("upstream", "bare_startproject", "synthetic"):
        s = results["startup"].get(name)
        if s:
            rows.append([f"start-up: {name} manage.py check", f(s["wall_s"], 2), "-", "-", f(s["cpu_s"], 2), "1",
                         "1", "-", f(s["peak_rss_mb"]), "-"])
    for key, g in results["growth"].items():
        rows.append([f"growth x2 {key} ({g['small']} -> {g['large']})", f(g["ratio"], 2, "x"),
                     f"floor {f(g['floor_ratio'], 2, 'x')}", "-", f"{f(g['cpu_ratio'], 2, 'x')}", "-", "-", "-", "-",
                     "-"])
    return rows + traffic_rows(results.get("traffic"))


def traffic_rows(traffic: dict | None) -> list[list[str]]:
    """The same run with --no-traffic and with --traffic; the second's ratio to the first."""
    if not traffic:
        return []
    rows = []
    for name, key in (("--no-traffic", "without"), ("--traffic", "with")):
        m = traffic[key]
        if m:
            what = f"{traffic['workload']} tool, fork, --volume {traffic['volume']:,} {name}"
            if key == "with":
                what += (f" ({f(traffic['ratio'], 2, 'x')} wall, {f(traffic['cpu_ratio'], 2, 'x')} CPU; "
                         f"{m['rehearsed_migrations']} migrations rehearsed, {m['traffic_queries']:,} queries)")
            rows.append([what, f(m["wall_s"], 2), "-", "-", f(m["cpu_s"], 1), "-", "-", "-", f(m["peak_rss_mb"]),
                         str(m["ok"])])
    return rows


def size_label(m: dict) -> str:
    """'20 x 50 (d5)' for a synthetic workload, its id otherwise."""
    if m.get("project") == "synthetic":
        return f"{m['apps']} x {m['migrations_per_app']} (d{m['depth']})"
    return m["workload"]


def sizes(results: dict) -> list[dict]:
    """Per workload: tested migrations, the plain loop, the tool (fork, all proofs), the floor,
    their ratios and the tool's peak RSS (issue 20's table), fewest tested first."""
    out = []
    for wid, floor in results.get("floors", {}).items():
        tool = tool_run(results, wid)
        loop = results.get("plain_loops", {}).get(wid)
        if not tool:
            continue
        loop_s, floor_s = (loop or {}).get("wall_s"), (floor or {}).get("wall_s")
        loop_cpu, floor_cpu = (loop or {}).get("cpu_s"), (floor or {}).get("cpu_s")
        out.append({"workload": wid, "size": size_label(tool), "project": tool.get("project"),
                    "tested": tool["tested_migrations"], "migrations": tool.get("migrations"),
                    "loop_s": loop_s, "tool_s": tool["wall_s"], "floor_s": floor_s,
                    "tool_per_loop": ratio(tool["wall_s"], loop_s), "tool_per_floor": ratio(tool["wall_s"], floor_s),
                    # CPU seconds (the process and its children, not PostgreSQL's): on a loaded
                    # machine they move far less than wall time
                    "loop_cpu_s": loop_cpu, "tool_cpu_s": tool["cpu_s"], "floor_cpu_s": floor_cpu,
                    "cpu_tool_per_loop": ratio(tool["cpu_s"], loop_cpu),
                    "cpu_tool_per_floor": ratio(tool["cpu_s"], floor_cpu),
                    "peak_rss_mb": tool["peak_rss_mb"]})
    return sorted(out, key=lambda row: (row["project"] != "synthetic", row["tested"], row["workload"]))


def exponent(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of log(time) over log(tested): time grows as tested^slope."""
    points = [(x, y) for x, y in points if x and y]
    if len({x for x, _ in points}) < 2:
        return None
    logs = [(math.log(x), math.log(y)) for x, y in points]
    mean_x = sum(x for x, _ in logs) / len(logs)
    mean_y = sum(y for _, y in logs) / len(logs)
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in logs)
             / sum((x - mean_x) ** 2 for x, _ in logs))
    return round(slope, 2)


def growth_exponents(size_rows: list[dict]) -> dict:
    """Over the synthetic workloads (upstream's history is another shape): the exponent of each
    of loop, tool and floor, and the points it was fitted on."""
    synthetic = [row for row in size_rows if row["project"] == "synthetic"]
    return {"over": [row["workload"] for row in synthetic],
            **{name: exponent([(row["tested"], row[f"{name}_s"]) for row in synthetic])
               for name in ("loop", "tool", "floor")},
            "cpu": {name: exponent([(row["tested"], row[f"{name}_cpu_s"]) for row in synthetic])
                    for name in ("loop", "tool", "floor")}}


SIZE_HEADER = ["size", "tested", "loop", "tool", "floor", "tool/loop", "tool/floor", "CPU tool/loop", "CPU tool/floor",
               "peak RSS MB (tool)"]


def size_rows(size_list: list[dict]) -> list[list[str]]:
    rows = [SIZE_HEADER]
    for row in size_list:
        rows.append([row["size"], str(row["tested"]), f(row["loop_s"], 2, " s"), f(row["tool_s"], 2, " s"),
                     f(row["floor_s"], 2, " s"), f(row["tool_per_loop"], 2), f(row["tool_per_floor"], 1),
                     f(row["cpu_tool_per_loop"], 2), f(row["cpu_tool_per_floor"], 1), f(row["peak_rss_mb"])])
    return rows


def exponent_line(growth: dict) -> str:
    return (f"growth exponents (time ~ tested^k, least squares over {len(growth['over'])} synthetic sizes): "
            f"loop {f(growth['loop'], 2)}, tool {f(growth['tool'], 2)}, floor {f(growth['floor'], 2)}; "
            f"by CPU seconds: loop {f(growth['cpu']['loop'], 2)}, tool {f(growth['cpu']['tool'], 2)}, "
            f"floor {f(growth['cpu']['floor'], 2)}")


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def markdown_table(rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0]),
            *("| " + " | ".join(r) + " |" for r in rows[1:])]


def render_markdown(rows: list[list[str]], target_rows: list[dict], meta: dict, size_list: list[dict] | None = None,
                    growth: dict | None = None) -> str:
    machine = meta["machine"]
    lines = [f"## Migration-test benchmarks{' (quick)' if meta['quick'] else ''}", "",
             f"{machine['cpus']} CPUs, Python {machine['python']}, Django {machine['django']}, "
             f"PostgreSQL {machine['postgres']}, load average {machine['load_average']} at the start, "
             f"{machine.get('load_average_end')} at the end", "",
             "Tool: `--isolation fork`, all proofs; loop: `manage.py migrate` per step, exit statuses only; "
             "floor: the same migrations in one process through `MigrationExecutor`.", ""]
    if size_list is not None:
        lines += [*markdown_table(size_rows(size_list)), ""]
    if growth is not None:
        lines += [exponent_line(growth), ""]
    lines += markdown_table(rows)
    lines += ["", "| target | wall-time ratio | CPU ratio | limit | met (wall) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {t['target']} | {t['value']} | {t['cpu_value']} | {t['limit'] if t['limit'] is not None else '-'} "
              f"| {'yes' if t['met'] else 'no'} |" for t in target_rows]
    return "\n".join(lines) + "\n"
