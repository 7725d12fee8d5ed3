"""The factory and configuration classes."""
import pytest

import config
from app import create_app


def test_database_url_normalisation_picks_psycopg3():
    assert config.normalize_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert config.normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert config.normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_production_refuses_to_start_without_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("ARBILL_ENV", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        config.config_from_env()


GOOD_KEY = "Vq3h0Jm9ZkP2sXc7Rt4Lw8Ny1Bd6Fg5Ua0Ee3Ii9Oo2"


@pytest.mark.parametrize("key", [
    " ", "   ", "a", "short-but-not-blank", config.DEVELOPMENT_SECRET_KEY, "change-me-before-production",
    "testing", "a" * 64, " " + GOOD_KEY, GOOD_KEY + "\n",
])
def test_production_refuses_default_blank_and_short_secret_keys(monkeypatch, key):
    """A key anyone can read or guess lets anyone sign an admin session cookie."""
    monkeypatch.setenv("ARBILL_ENV", "production")
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    monkeypatch.setenv("BASE_URL", "https://billing.example.com")
    monkeypatch.setenv("SECRET_KEY", key)
    with pytest.raises(RuntimeError, match="SECRET_KEY") as refused:
        config.config_from_env()
    assert "secrets.token_urlsafe" in str(refused.value), "the message says how to make a key"


def test_production_refuses_to_start_without_a_real_mail_server(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.delenv("MAIL_SERVER", raising=False)
    with pytest.raises(RuntimeError, match="MAIL_SERVER"):
        config.ProductionConfig()
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    monkeypatch.setenv("BASE_URL", "https://billing.example.com")
    assert config.ProductionConfig().MAIL_REFUSE_DEVELOPMENT_SINK is True


def test_production_uses_secure_cookies(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    monkeypatch.setenv("BASE_URL", "https://billing.example.com")
    production = config.ProductionConfig()
    assert production.SECRET_KEY == GOOD_KEY
    assert production.SESSION_COOKIE_SECURE and production.SESSION_COOKIE_HTTPONLY
    assert production.SESSION_COOKIE_SAMESITE == "Lax"
    assert production.HSTS_SECONDS == 365 * 24 * 3600
    assert config.DevelopmentConfig().HSTS_SECONDS == 0  # plain HTTP on localhost


def test_unknown_environment_name_is_refused(monkeypatch):
    monkeypatch.setenv("ARBILL_ENV", "staging")
    with pytest.raises(RuntimeError, match="staging"):
        config.config_from_env()


def test_create_app_binds_without_touching_the_database(tmp_path):
    cfg = config.TestingConfig()
    cfg.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'never-created.db'}"
    app = create_app(cfg)
    assert app.config["TESTING"]
    assert {"auth", "main"} <= set(app.blueprints)
    assert {"users", "entities", "contracts", "demo", "db"} <= set(app.cli.commands)
    assert not (tmp_path / "never-created.db").exists()


def test_upload_limits_come_from_the_environment():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(config.__file__).resolve().parent
    show = "import config; print(config.Config.MAX_CONTENT_LENGTH, config.Config.IMPORT_MAX_ROWS)"
    env = {k: v for k, v in os.environ.items() if k not in ("MAX_CONTENT_LENGTH", "IMPORT_MAX_ROWS")}
    default = subprocess.run([sys.executable, "-c", show], cwd=root, env=env, capture_output=True, text=True)
    assert default.stdout.split() == [str(8 * 1024 * 1024), "10000"]
    env.update(MAX_CONTENT_LENGTH="1048576", IMPORT_MAX_ROWS="500")
    chosen = subprocess.run([sys.executable, "-c", show], cwd=root, env=env, capture_output=True, text=True)
    assert chosen.stdout.split() == ["1048576", "500"]


def test_production_refuses_to_start_without_an_https_base_url(monkeypatch):
    """A reset link built from the request's Host header could point at whoever asked for it."""
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    monkeypatch.delenv("BASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="BASE_URL is not set"):
        config.ProductionConfig()
    monkeypatch.setenv("BASE_URL", "http://billing.example.com")
    with pytest.raises(RuntimeError, match="must be an https:// address"):
        config.ProductionConfig()
    monkeypatch.setenv("BASE_URL", "https://billing.example.com/")
    assert config.ProductionConfig().BASE_URL == "https://billing.example.com"
