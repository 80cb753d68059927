"""The settings' defaults: safe for development, loud in production."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _settings(env: dict[str, str], expr: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "MT5_"))
    }
    code = f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings.base'; django.setup(); from django.conf import settings as s; print({expr})"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_development_defaults_need_only_debug_on():
    out = _settings(
        {"DJANGO_DEBUG": "true"},
        "s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CELERY_BEAT_SCHEDULER",
    )
    assert out.returncode == 0, out.stderr
    assert "True" in out.stdout
    assert "sqlite3" in out.stdout
    assert "redis://127.0.0.1:6379/0" in out.stdout
    assert "django_celery_beat.schedulers:DatabaseScheduler" in out.stdout


def test_debug_is_off_unless_asked_for():
    out = _settings({}, "s.DEBUG")
    assert out.returncode != 0  # production behaviour: no development secret key to fall back on
    assert "DJANGO_SECRET_KEY must be set" in out.stderr


def test_database_url_selects_postgresql():
    out = _settings(
        {"DJANGO_DEBUG": "true", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"},
        "s.DATABASES['default']['ENGINE']",
    )
    assert "postgresql" in out.stdout, out.stderr


def test_redis_url_drives_cache_broker_and_channel_layer():
    out = _settings(
        {"DJANGO_DEBUG": "true", "REDIS_URL": "redis://10.0.0.9:6379/3"},
        "s.CACHES['default']['LOCATION'], s.CELERY_BROKER_URL, s.CHANNEL_LAYERS['default']['CONFIG']['hosts']",
    )
    assert out.stdout.count("redis://10.0.0.9:6379/3") == 3, out.stderr


def test_debug_off_without_secret_key_fails_loudly():
    out = _settings({"DJANGO_DEBUG": "false"}, "s.SECRET_KEY")
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in out.stderr


def test_debug_off_without_credentials_key_fails_at_startup():
    out = _settings({"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 60}, "1")
    assert out.returncode != 0
    assert "MT5_CREDENTIALS_KEYS is not set" in out.stderr


@pytest.mark.parametrize("key", ["MT5_CREDENTIALS_KEYS"])
def test_production_settings_pass_the_deploy_check(key):
    env = {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "p" * 30 + "Q9!x" * 10,
        key: "kXq2d6o3b4JQm3Zq3v6Rr0Yc1rS9a3pJb8f5n2H7w0E=",
        "MT5_BRIDGE_SECRET": "s" * 32,
        "DJANGO_ALLOWED_HOSTS": "ops.example.com",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "MT5_"))}
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings.base"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout
