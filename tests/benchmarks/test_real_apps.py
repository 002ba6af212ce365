"""benchmarks/real_apps.py without building anything: the scratch project it writes, the pinned
requirements, the reuse of a build, and the arguments it hands to benchmarks/run.py."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import real_apps  # noqa: E402

# Each tested label's app module, as the apps' own AppConfig declare them (read from the packages
# by hand: two_factor's phonenumber plugin has the label `phonenumber`).
MODULE_OF = {"admin_interface": "admin_interface", "organizations": "organizations",
             "push_notifications": "push_notifications", "flags": "flags", "invitations": "invitations",
             "defender": "defender", "cookie_consent": "cookie_consent", "robots": "robots", "mailer": "mailer",
             "user_sessions": "user_sessions", "phonenumber": "two_factor.plugins.phonenumber"}


def assigned(source: str, name: str):
    """The literal value assigned to `name` at the top of a settings file."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not assigned")


def test_the_project_installs_every_tested_app(tmp_path):
    manage = real_apps.write_project(tmp_path)
    assert manage == tmp_path / "manage.py"
    assert 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realapps.settings")' in manage.read_text()
    settings = (tmp_path / "realapps" / "settings.py").read_text()
    installed = assigned(settings, "INSTALLED_APPS")
    assert set(real_apps.TESTED) == set(MODULE_OF)
    assert {MODULE_OF[label] for label in real_apps.TESTED} <= set(installed)
    assert "dj_database_url.config()" in settings  # the tool points every command at its scratch databases
    assert assigned((tmp_path / "realapps" / "urls.py").read_text(), "urlpatterns") == []
    compile(settings, "settings.py", "exec")


def test_every_requirement_is_pinned():
    lines = [line.split("#")[0].strip() for line in real_apps.REQUIREMENTS.read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.]*", pin) for pin in pins), pins
    names = {pin.split("==")[0].lower() for pin in pins}
    assert {"django", "psycopg2-binary", "dj-database-url", "django-two-factor-auth", "phonenumbers"} <= names


def test_a_build_with_the_same_requirements_is_reused(tmp_path):
    requirements = tmp_path / "req.txt"
    requirements.write_text("Django==5.2.19\n")
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "real_apps.stamp").write_text(real_apps.requirements_stamp(requirements))
    logged: list[str] = []
    # A base interpreter that cannot run: reaching `python -m venv` would fail the test.
    python = real_apps.build_venv(venv, str(tmp_path / "no-python"), requirements, logged.append)
    assert python == venv / "bin" / "python"
    assert logged == [f"Reusing {venv} (requirements unchanged)"]


def test_a_changed_requirements_file_rebuilds(tmp_path):
    requirements = tmp_path / "req.txt"
    requirements.write_text("Django==5.2.19\n")
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "real_apps.stamp").write_text(real_apps.requirements_stamp(requirements))
    requirements.write_text("Django==5.2.20\n")
    try:
        real_apps.build_venv(venv, str(tmp_path / "no-python"), requirements, lambda text: None)
    except (SystemExit, FileNotFoundError) as error:  # it tried to create the venv anew
        assert "no-python" in str(error)
    else:
        raise AssertionError("a changed requirements file was not rebuilt")


def test_run_py_gets_the_project_its_python_and_every_app(tmp_path):
    args = real_apps.build_parser().parse_args(["--depth", "3", "--output", str(tmp_path / "r.json"), "--repeat", "2"])
    argv = real_apps.run_argv(tmp_path / "manage.py", tmp_path / "venv/bin/python", args)
    assert argv[:8] == ["--project", str(tmp_path / "manage.py"), "--settings", "realapps.settings",
                        "--python", str(tmp_path / "venv/bin/python"), "--label", "real-apps"]
    assert argv[8:10] == ["--depth", "3"]
    assert [a.removeprefix("--app=") for a in argv if a.startswith("--app=")] == list(MODULE_OF)
    assert argv[-4:] == ["--output", str(tmp_path / "r.json"), "--repeat", "2"]
