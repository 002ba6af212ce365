"""How many Django commands (steps) and Python processes one tool run must start: the formulas
the benchmarks check the report against, written from the design, not taken from the tool.

Steps are the same in both isolations: 5 fixed (the probe `shell -c`, `migrate` on the head
database, `showmigrations --plan`, `makemigrations --check`, `check --deploy`); per chain 1
(`shell -c` that builds the chain's database up to the state before its migrations); per tested
migration 3 (`migrate APP M` over pre-release data, `migrate APP PREVIOUS`, `migrate APP M`);
per template the run builds 1 (`shell -c` that builds a state chains' databases are cloned
from): by default the root when it saves at least TEMPLATE_MIN_SAVED migration builds, i.e.
(chains - 1) x (migrations below every window) >= 100, and below it a template per half of the
apps when (its chains - 1) x (the other half's window migrations) >= 200, and so on (`templates_of`).

Processes: `--isolation process` starts one per step. `--isolation fork` starts one step server
per scratch database name (the head database, the template when there is one, then one per
slot: the chains' databases take turns under as many names as chains run side by side, the run's
JOBS + 1 workers, and never more names than chains) and forks every step from it.
"""

from __future__ import annotations

FIXED_STEPS = 5
PER_CHAIN_STEPS = 1
PER_MIGRATION_STEPS = 3
FORK_FIXED_PROCESSES = 1  # the head database's step server
FORK_PER_CHAIN_PROCESSES = 1  # each slot's step server: one per chain, at most WORKERS
TEMPLATE_STEPS = 1  # each template's build, in runs of two chains or more
FORK_TEMPLATE_PROCESSES = 1  # each template's step server, stopped before it is cloned
TEMPLATE_MIN_SAVED = 100  # migration builds a template must save (the tool's default, --clone auto)
CHILD_TEMPLATE_MIN_SAVED = 200  # the same for a template cloned from another (a half's, a quarter's)
# Passed explicitly, so that the number of chains (hence steps) does not depend on the CPUs.
JOBS = 2
WORKERS = JOBS + 1  # the run's threads side by side (the project checks run beside the chains)


def chains_of(tested: int, apps: int) -> int:
    """Chains the tool runs for one app's window of `tested` migrations, `apps` apps tested.

    The design rule, restated here rather than taken from the tool (so that a change in the
    tool's splitting shows up as a count that differs): with fewer apps than jobs, a window is
    split into `jobs // apps` runs side by side, never into runs shorter than two migrations.
    """
    if tested == 0:  # nothing testable (all behind an irreversible migration): no chain at all
        return 0
    return max(1, min(JOBS // max(apps, 1), tested // 2))


def worth(chains: int, added: int, least: int = TEMPLATE_MIN_SAVED) -> bool:
    """The tool's default rule for a template: two chains or more, and (chains - 1) x the
    migrations it adds >= TEMPLATE_MIN_SAVED (the root) or CHILD_TEMPLATE_MIN_SAVED (the others)."""
    return chains >= 2 and added > 0 and (chains - 1) * added >= least


def templates_of(tested_per_app: list[int], base: int) -> int:
    """Templates the run builds: the root (the `base` migrations below every window) when
    worth it, then, the apps split in halves in order (the first half the larger), a template
    per half holding the other half's windows, when worth it, and so on down each half built.
    Independent apps: a half's template adds exactly the other half's windows."""
    chains = [chains_of(n, len(tested_per_app)) for n in tested_per_app]
    if not worth(sum(chains), base):
        return 0

    def below(members: list[int]) -> int:
        if len(members) < 2:
            return 0
        half = (len(members) + 1) // 2
        built = 0
        for group, other in ((members[:half], members[half:]), (members[half:], members[:half])):
            if worth(sum(chains[i] for i in group), sum(tested_per_app[i] for i in other), CHILD_TEMPLATE_MIN_SAVED):
                built += 1 + below(group)
        return built

    return 1 + below(list(range(len(tested_per_app))))


def expected_steps(tested_per_app: list[int], base: int) -> int:
    """Django commands of a tool run whose apps are independent and fully reversible.

    5 + the template's build + sum over apps of (chains + 3 x tested migrations): no app depends
    on another, so no migrations of other apps are missing before a step and none needs
    restoring afterwards.
    """
    return FIXED_STEPS + TEMPLATE_STEPS * templates_of(tested_per_app, base) + sum(
        PER_CHAIN_STEPS * chains_of(n, len(tested_per_app)) + PER_MIGRATION_STEPS * n for n in tested_per_app)


def expected_processes(tested_per_app: list[int], base: int, isolation: str) -> int:
    """Python processes of the same run: one per step, or one step server per database."""
    if isolation == "process":
        return expected_steps(tested_per_app, base)
    chains = sum(chains_of(n, len(tested_per_app)) for n in tested_per_app)
    return FORK_FIXED_PROCESSES + FORK_TEMPLATE_PROCESSES * templates_of(tested_per_app, base) + \
        FORK_PER_CHAIN_PROCESSES * min(chains, WORKERS)


def formula() -> dict[str, int]:
    """The constants, for the results file (the benchmark test checks them)."""
    return {"fixed_steps": FIXED_STEPS, "per_chain_steps": PER_CHAIN_STEPS,
            "per_migration_steps": PER_MIGRATION_STEPS, "fork_fixed_processes": FORK_FIXED_PROCESSES,
            "fork_per_chain_processes": FORK_PER_CHAIN_PROCESSES, "template_steps": TEMPLATE_STEPS,
            "fork_template_processes": FORK_TEMPLATE_PROCESSES, "template_min_saved": TEMPLATE_MIN_SAVED,
            "jobs": JOBS, "workers": WORKERS}
