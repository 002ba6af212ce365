"""Which migrations a run tests when it is not the newest `--depth` of every app.

- `--since REF`: the migrations added or modified since REF (`git diff REF...HEAD`, in the
  project's git repository), nothing older. A migration file that existed at the merge base and
  was changed since is also a finding of its own (check `edited_migrations`): databases that
  already applied it never run the new version. Changes to formatting and comments only (the
  same syntax tree) are not.
- `--shard I/N`: a share of the windows, balanced by migration count: the windows, largest
  first (ties by app label), each go to the shard with the fewest migrations so far (ties to
  the lowest index). The same project always gives the same shards.

Owns: `parse_shard`, `parse_revision`, `GitChanges` and `git_changes` (the one place git is run),
`since_windows`, `edited_migrations` and `edited_check`, `shard_windows`, and `choose`, which
puts them together into a `Choice`.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import MARKER_ALLOW_EDITED, Config, MigrationKey
from ..errors import UsageError
from ..results import CheckResult, Selection
from ..verdicts import CheckStatus
from .discovery import MigrationInfo, Project, window_of

Windows = dict[str, list[MigrationInfo]]  # app label -> its window, in plan order
GIT_TIMEOUT_S = 60


def parse_shard(value: str) -> tuple[int, int]:
    """`--shard I/N`: shard I of N, 1 <= I <= N."""
    index, slash, count = value.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = (0, 0)
    if not slash or not 1 <= shard[0] <= shard[1]:
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N (e.g. 2/4), got {value!r}")
    return shard


def parse_revision(value: str) -> str:
    """`--since REF`: a git revision (a leading dash would be read by git as an option)."""
    if not value or value.startswith("-"):
        raise argparse.ArgumentTypeError(f"expected a git revision such as origin/main, got {value!r}")
    return value


def git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError("--since needs git, which is not installed (or not on PATH)") from None


@dataclass(frozen=True)
class GitChanges:
    """Migration candidates changed between the merge base of `ref` and HEAD (absolute paths)."""

    ref: str
    base: str  # the merge base's commit
    top: Path  # the repository's top folder
    added: frozenset[Path]
    modified: frozenset[Path]

    def old_source(self, path: Path) -> str | None:
        """`path` as it was at the merge base (None when git cannot show it)."""
        shown = git(["show", f"{self.base}:{path.relative_to(self.top).as_posix()}"], self.top)
        return shown.stdout if shown.returncode == 0 else None


def parse_name_status(output: str, top: Path) -> tuple[frozenset[Path], frozenset[Path]]:
    """`git diff --name-status -z` output as (added, modified) paths under `top`."""
    words = output.split("\0")
    added, modified = set(), set()
    for status, name in zip(words[0::2], words[1::2], strict=False):
        if status == "A":
            added.add((top / name).resolve())
        elif status == "M":
            modified.add((top / name).resolve())
    return frozenset(added), frozenset(modified)


def git_changes(project_dir: Path, ref: str) -> GitChanges:
    """What `git diff REF...HEAD` says changed, in the repository that holds `project_dir`.

    Renames count as a file removed and one added (Django sees a new migration name).
    """
    shown = git(["rev-parse", "--show-toplevel"], project_dir)
    if shown.returncode != 0:
        raise UsageError(f"--since needs a git repository, and {project_dir} is not in one")
    top = Path(shown.stdout.strip()).resolve()
    if git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top).returncode != 0:
        raise UsageError(f"--since {ref}: no such revision in the git repository at {top} (fetch it first, "
                         "e.g. git fetch origin main; on GitHub Actions check out with fetch-depth: 0)")
    base = git(["merge-base", ref, "HEAD"], top)
    if base.returncode != 0:
        raise UsageError(f"--since {ref}: it has no history in common with HEAD")
    diff = git(["diff", "--name-status", "--no-renames", "-z", f"{ref}...HEAD"], top)
    if diff.returncode != 0:
        raise UsageError(f"--since {ref}: git diff failed: {(diff.stderr.strip().splitlines() or ['?'])[-1]}")
    added, modified = parse_name_status(diff.stdout, top)
    return GitChanges(ref, base.stdout.strip(), top, added, modified)


def file_of(migration: MigrationInfo) -> Path | None:
    return migration.file.resolve() if migration.file is not None else None


def since_windows(project: Project, apps: Sequence[str], changes: GitChanges) -> Windows:
    """Each app's migrations whose file was added or modified since the revision, in plan order."""
    touched = changes.added | changes.modified
    return {app: [m for m in project.migrations_of(app) if file_of(m) in touched] for app in apps}


def same_code(old: str, new: str) -> bool:
    """True when two versions of a file differ only in formatting and comments."""
    try:
        return ast.dump(ast.parse(old)) == ast.dump(ast.parse(new))
    except (SyntaxError, ValueError):
        return False


def edited_migrations(windows: Windows, changes: GitChanges) -> list[MigrationInfo]:
    """Migrations of the windows that existed at the merge base and whose code changed since."""
    edited = []
    for window in windows.values():
        for migration in window:
            path = file_of(migration)
            if path is None or path not in changes.modified:
                continue
            old = changes.old_source(path)
            if old is None or not same_code(old, path.read_text(encoding="utf-8", errors="replace")):
                edited.append(migration)
    return edited


def edited_check(edited: Sequence[MigrationInfo], changes: GitChanges, allowed: frozenset[MigrationKey],
                 project_dir: Path) -> CheckResult:
    """`edited_migrations`: failed while an edited migration is not acknowledged."""
    accepted = [m for m in edited if m.key in allowed or m.marker_present(MARKER_ALLOW_EDITED)]
    refused = [m for m in edited if m not in accepted]
    notes = [f"acknowledged: {', '.join(relative_files(accepted, project_dir))}"] if accepted else []
    if not refused:
        return CheckResult("edited_migrations", CheckStatus.PASSED, 0.0, "; ".join(notes) or None)
    detail = (f"{', '.join(relative_files(refused, project_dir))} changed since {changes.ref} although already "
              "merged: databases that applied the old version never run the new one (put the change in a new "
              f"migration, or accept it with --allow-edited {refused[0].label} or the comment "
              f"'# {MARKER_ALLOW_EDITED}')")
    return CheckResult("edited_migrations", CheckStatus.FAILED, 0.0, "; ".join([detail, *notes]))


def shard_windows(windows: Windows, shard: tuple[int, int]) -> Windows:
    """The windows of shard `shard` = (I, N), balanced by migration count (see the docstring)."""
    index, count = shard
    loads = [0] * count
    owner: dict[str, int] = {}
    for app in sorted(windows, key=lambda label: (-len(windows[label]), label)):
        target = min(range(count), key=lambda i: (loads[i], i))
        owner[app] = target
        loads[target] += len(windows[app])
    return {app: window for app, window in windows.items() if owner[app] == index - 1}


def default_windows(project: Project, apps: Sequence[str], depth: int | None) -> Windows:
    return {app: window_of(project.migrations_of(app), depth) for app in apps}


def runs_project_checks(config: Config) -> bool:
    """The project checks run once: in shard 1, or in a run that is not sharded."""
    return config.shard is None or config.shard[0] == 1


@dataclass
class Choice:
    """What a run tests: the windows (none empty), what --since and --shard chose, and the
    check of edited migrations (with --since, where the project checks run)."""

    windows: Windows
    selection: Selection
    checks: list[CheckResult]

    def describe(self) -> list[str]:
        """Console lines saying what was chosen and why (an empty window is said so)."""
        lines = []
        since, shard = self.selection.since, self.selection.shard
        tested = sum(len(window) for window in self.windows.values())
        if since is not None:
            lines.append(f"--since {since}: {len(self.selection.changed)} migration(s) added or modified"
                         + (f": {', '.join(self.selection.changed)}" if self.selection.changed else
                            "; the window is empty, only the project checks run"))
        if shard is not None:
            lines.append(f"--shard {shard[0]}/{shard[1]}: {len(self.windows)} app window(s), {tested} migration(s)"
                         + ("" if shard[0] == 1 else "; the project checks run in shard 1"))
        return lines


def choose(project: Project, apps: Sequence[str], config: Config, changes: GitChanges | None) -> Choice:
    """The windows to test: --since's or the newest --depth, then --shard's share."""
    since = since_windows(project, apps, changes) if changes is not None else None
    chosen = since if since is not None else default_windows(project, apps, config.depth)
    windows = {app: window for app, window in chosen.items() if window}
    edited: list[MigrationInfo] = []
    checks = []
    if since is not None and changes is not None and runs_project_checks(config):
        edited = edited_migrations(since, changes)
        checks.append(edited_check(edited, changes, config.allow_edited, config.project_dir))
    changed = [m for window in windows.values() for m in window]
    selection = Selection(since=config.since, changed=relative_files(changed, config.project_dir) if since else [],
                          edited=relative_files(edited, config.project_dir), shard=config.shard)
    return Choice(shard_windows(windows, config.shard) if config.shard else windows, selection, checks)


def relative_files(migrations: Sequence[MigrationInfo], project_dir: Path) -> list[str]:
    """The migrations' files relative to the project folder (as in the report's `file`)."""
    files = []
    for migration in migrations:
        path = file_of(migration)
        if path is not None:
            files.append(str(path.relative_to(project_dir)) if path.is_relative_to(project_dir) else str(path))
    return files
