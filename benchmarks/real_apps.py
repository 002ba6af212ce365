#!/usr/bin/env python3
"""The plain loop, the tool and the floor on a project of real third-party apps (issue 20's
"real-app project" target), rebuilt from pinned PyPI packages so that anyone can repeat it.

    .venv/bin/python benchmarks/real_apps.py [--dir DIR] [--depth N|all] [--output PATH]
        [--summary PATH] [--repeat N] [--build-only]

Builds, in DIR (default: a temporary folder, removed afterwards), a virtualenv with every package
of benchmarks/real_apps.txt (pip from PyPI; eleven apps of docs/survey-2.md with their
dependencies, all pinned) and a scratch project `realapps` with those apps installed and
`DATABASES` read from `DATABASE_URL`; then runs `benchmarks/run.py --project` on it with that
virtualenv's Python: the one-process floor, the plain `manage.py migrate` loop and the tool
(`--isolation fork`, all proofs, default depth 5), and prints the size table. A DIR that already
holds a build (its stamp matches the requirements) is reused: `--dir` twice measures twice
without reinstalling.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "real_apps.txt"
PROJECT = "realapps"
LABEL = "real-apps"
PIP_TIMEOUT_S = 1800

# The apps tested (app labels, the tool's --app), each with migrations of its own (two_factor's history
# lives in its phonenumber plugin's squash: the label `two_factor` has no migration left).
TESTED = ("admin_interface", "organizations", "push_notifications", "flags", "invitations", "defender",
          "cookie_consent", "robots", "mailer", "user_sessions", "phonenumber")

# INSTALLED_APPS: the tested apps' modules and what they need beside them.
INSTALLED_APPS = (
    "admin_interface", "colorfield",
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "django.contrib.sites",
    "organizations", "push_notifications", "flags", "invitations", "defender", "cookie_consent", "robots",
    "mailer", "user_sessions",
    "django_otp", "django_otp.plugins.otp_static", "django_otp.plugins.otp_totp", "two_factor",
    "two_factor.plugins.phonenumber",
)

MANAGE_PY = '''#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{project}.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''

SETTINGS_PY = '''"""Written by benchmarks/real_apps.py: a scratch project of third-party apps."""

import dj_database_url

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost"]
INSTALLED_APPS = {installed_apps!r}
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "{project}.urls"
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
DATABASES = {{"default": dj_database_url.config()}}  # the tool and the benchmark set DATABASE_URL
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
SITE_ID = 1
PUSH_NOTIFICATIONS_SETTINGS = {{}}
'''


def write_project(root: Path) -> Path:
    """The scratch project's files under `root`; returns its manage.py."""
    package = root / PROJECT
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(SETTINGS_PY.format(installed_apps=list(INSTALLED_APPS), project=PROJECT))
    (package / "urls.py").write_text("urlpatterns = []\n")
    manage = root / "manage.py"
    manage.write_text(MANAGE_PY.format(project=PROJECT))
    return manage


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def requirements_stamp(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def build_venv(venv: Path, base_python: str, requirements: Path, log) -> Path:
    """A virtualenv with every pinned package; reused when its stamp matches the requirements."""
    stamp = venv / "real_apps.stamp"
    if stamp.is_file() and stamp.read_text() == requirements_stamp(requirements):
        log(f"Reusing {venv} (requirements unchanged)")
        return venv_python(venv)
    log(f"Creating {venv} and installing {requirements.name} from PyPI ...")
    run([base_python, "-m", "venv", "--clear", str(venv)])
    run([str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(requirements)])
    stamp.write_text(requirements_stamp(requirements))
    return venv_python(venv)


def check_project(python: Path, manage: Path) -> None:
    """`manage.py check`: every app imports beside the others (no database is opened)."""
    run([str(python), str(manage), "check"], env={**os.environ, "DATABASE_URL": "postgres://localhost/unused"},
        cwd=manage.parent)


def run(argv: list[str], **kwargs) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"Error: {' '.join(argv[:4])} ... exited {done.returncode}: "
                         f"{(done.stderr or done.stdout)[-800:]}")


def run_argv(manage: Path, python: Path, args: argparse.Namespace) -> list[str]:
    """benchmarks/run.py's arguments for the built project."""
    argv = ["--project", str(manage), "--settings", f"{PROJECT}.settings", "--python", str(python),
            "--label", LABEL, "--depth", args.depth, *(f"--app={app}" for app in TESTED)]
    if args.output:
        argv += ["--output", str(args.output)]
    if args.summary:
        argv += ["--summary", str(args.summary)]
    if args.repeat:
        argv += ["--repeat", str(args.repeat)]
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="build (or reuse) the venv and project here, and keep them")
    parser.add_argument("--base-python", default=sys.executable,
                        help="the interpreter the venv is made from (default: this one)")
    parser.add_argument("--depth", default="5", metavar="N|all", help="the tool's --depth (default: %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON results (default: run.py's)")
    parser.add_argument("--summary", type=Path, help="append the Markdown tables to this file")
    parser.add_argument("--repeat", type=int,
                        help="rounds of floor, loop and tool, alternated; the median run kept (default 1)")
    parser.add_argument("--build-only", action="store_true", help="build the venv and project, measure nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def log(text: str) -> None:
        print(text, flush=True)

    root = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="tm-real-apps-"))
    try:
        python = build_venv(root / "venv", args.base_python, REQUIREMENTS, log)
        manage = write_project(root / "project")
        check_project(python, manage)
        log(f"Project: {manage} ({len(TESTED)} apps tested), Python: {python}")
        if args.build_only:
            return 0
        sys.path.insert(0, str(HERE))
        import run as bench_run  # benchmarks/run.py, beside this file

        return bench_run.main(run_argv(manage, python, args))
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
