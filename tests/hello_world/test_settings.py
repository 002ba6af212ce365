"""hello_world.settings read from the environment, checked in fresh `manage.py` processes.

Each test runs a copy of the project (manage.py + hello_world/, upstream/ linked) in a temporary
folder, so that it can have its own `.env` next to it without touching the repository's.
"""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables the settings read: removed from the inherited environment so tests control them.
SETTINGS_VARS = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "CONN_MAX_AGE",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "TIME_ZONE",
    "STATIC_ROOT",
    "LOG_LEVEL",
    "INVOICE_ISSUER_NAME",
    "INVOICE_ISSUER_ADDRESS",
    "DJANGO_SETTINGS_MODULE",
}

PRODUCTION = {
    "DEBUG": "False",
    "SECRET_KEY": secrets.token_hex(32),
    "ALLOWED_HOSTS": "invoices.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://invoices.example.com",
}


@pytest.fixture
def project(tmp_path) -> Path:
    shutil.copy2(REPO_ROOT / "manage.py", tmp_path / "manage.py")
    shutil.copytree(
        REPO_ROOT / "hello_world",
        tmp_path / "hello_world",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (tmp_path / "upstream").symlink_to(REPO_ROOT / "upstream", target_is_directory=True)
    return tmp_path


def run(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def show(project: Path, expression: str, env: dict[str, str] | None = None) -> str:
    """The value of a Python expression over `settings`, as printed by a fresh process."""
    code = (
        "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'hello_world.settings'); "
        f"from django.conf import settings; print(repr({expression}))"
    )
    result = run(project, "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_secret_key_required_when_debug_is_off(project):
    result = run(project, "manage.py", "check", env={"DEBUG": "False"})
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is required"
    )
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in last_line


def test_debug_defaults_to_true_with_an_insecure_dev_key(project):
    result = run(project, "manage.py", "check")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert show(
        project, "(settings.DEBUG, settings.SECRET_KEY.startswith('django-insecure-'))"
    ) == ("(True, True)")


def test_database_defaults_to_sqlite_in_the_project_root(project):
    expected = repr((str(project / "db.sqlite3"), "django.db.backends.sqlite3"))
    expression = (
        "(str(settings.DATABASES['default']['NAME']), settings.DATABASES['default']['ENGINE'])"
    )
    assert show(project, expression) == expected
    assert show(project, expression, env={"DATABASE_URL": ""}) == expected  # empty counts as unset
    pg = show(project, expression, env={"DATABASE_URL": "postgres://u:p@db.example:5432/invoices"})
    assert pg == repr(("invoices", "django.db.backends.postgresql"))


def test_dotenv_is_loaded_but_real_environment_wins(project):
    (project / ".env").write_text(
        "DEBUG=False\n"
        "SECRET_KEY=from-dotenv-" + "x" * 50 + "\n"
        "ALLOWED_HOSTS=dotenv.example.com,www.dotenv.example.com\n"
        "INVOICE_ISSUER_NAME=Dotenv Agency\n"
    )
    expression = (
        "(settings.DEBUG, settings.SECRET_KEY[:12], settings.ALLOWED_HOSTS, "
        "settings.INVOICE_ISSUER_NAME)"
    )
    assert show(project, expression) == repr(
        (False, "from-dotenv-", ["dotenv.example.com", "www.dotenv.example.com"], "Dotenv Agency")
    )
    env = {
        "SECRET_KEY": "from-environment-" + "y" * 50,
        "ALLOWED_HOSTS": "env.example.com",
        "DEBUG": "1",
    }
    assert show(project, expression, env=env) == repr(
        (True, "from-environ", ["env.example.com"], "Dotenv Agency")
    )


def test_invalid_boolean_is_rejected(project):
    result = run(project, "manage.py", "check", env={"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_check_deploy_has_no_warnings_in_production(project):
    result = run(project, "manage.py", "check", "--deploy", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert "WARNING" not in result.stderr and "security.W" not in result.stderr
    hardened = (
        "(settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, "
        "settings.CSRF_COOKIE_SECURE, "
        "settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "settings.SECURE_HSTS_PRELOAD, settings.CSRF_TRUSTED_ORIGINS)"
    )
    assert show(project, hardened, env=PRODUCTION) == repr(
        (True, True, True, 31536000, True, True, ["https://invoices.example.com"])
    )


def test_security_switches_can_be_overridden(project):
    env = {
        **PRODUCTION,
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "60",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    }
    expression = (
        "(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, "
        "settings.SECURE_PROXY_SSL_HEADER)"
    )
    assert show(project, expression, env=env) == repr(
        (False, 60, ("HTTP_X_FORWARDED_PROTO", "https"))
    )
    result = run(project, "manage.py", "check", "--deploy", env=env)
    assert "security.W008" in result.stderr  # SSL redirect off is reported again


def test_check_deploy_exits_zero_in_the_ci_environment(project):
    """CI: .env copied from .env.example, DEBUG=True and a generated secret."""
    shutil.copy2(REPO_ROOT / ".env.example", project / ".env")
    env = {"DEBUG": "True", "SECRET_KEY": secrets.token_hex(32)}
    result = run(project, "manage.py", "check", "--deploy", env=env)
    assert result.returncode == 0, result.stderr
    assert "security.W018" in result.stderr  # DEBUG on is reported, as a warning only
