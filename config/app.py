"""create_app: the table of contents of the application."""

from __future__ import annotations

import gc

from flask import Flask
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

import casevac
import telemed
import web
from config import logging as app_logging
from config.extensions import api, db, jwt, limiter, migrate, socketio
from config.settings import ROOT, Settings
from core import auth, cli, errors, http
from core.views import blp as accounts_blp
from core.views import health as health_blp
from realtime import setup as realtime_setup


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app_logging.configure(settings)
    app = Flask(__name__, instance_path=str(ROOT / "instance"))
    app.extensions["settings"] = settings
    app.config.update(_flask_config(settings))

    db.init_app(app)
    _sqlite_pragmas(settings)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    jwt.init_app(app)
    limiter.init_app(app)
    api.init_app(app)
    app.extensions["redis"] = _redis_client(settings)
    socketio.init_app(
        app,
        message_queue=settings.REDIS_URL,
        channel=f"{settings.REDIS_PREFIX}-socketio",
        async_mode=settings.SOCKETIO_ASYNC_MODE,
        # None = same origin only. An empty list would switch engine.io's Origin check off entirely and let
        # any web page open a socket: CORS stays closed unless CORS_ORIGINS names origins.
        cors_allowed_origins=[o.strip() for o in settings.CORS_ORIGINS.split(",") if o.strip()] or None,
        logger=False,
        engineio_logger=False,
    )

    errors.register(app)
    auth.register(app)
    http.register(app, settings)
    cli.register(app)
    api.register_blueprint(health_blp)
    api.register_blueprint(accounts_blp)
    # One init_app per domain: blueprints, sweeper tasks, hooks and demo data (nothing registers on import).
    casevac.init_app(app)
    telemed.init_app(app)
    web.init_app(app)  # the pages (/, /console, /field, /docs): ../shared/design/CONSOLE.md
    realtime_setup.init_app(app)
    return app


def freeze_heap() -> None:
    """Called once the app is built (wsgi.py, in the server's worker): every object alive now (modules, the
    app, SQLAlchemy's and marshmallow's metadata: most of the heap) leaves the garbage collector's
    generations, so a collection during a request scans only what requests allocate. Without it a full
    collection, due every few recommendations, scans the whole heap: most of their p99 (docs/benchmarks.md).
    Cyclic garbage made after this point is still collected."""
    gc.collect()
    gc.freeze()


def _flask_config(settings: Settings) -> dict:
    engine_options = {"pool_pre_ping": True}
    if settings.DATABASE_URL.startswith("sqlite"):
        engine_options = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    else:
        engine_options.update(
            {"pool_size": 10, "max_overflow": 20, "pool_timeout": 10, "connect_args": {"connect_timeout": 5}}
        )
    return {
        "SECRET_KEY": settings.SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": _normalise_db_url(settings.DATABASE_URL),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "JWT_SECRET_KEY": settings.SECRET_KEY,
        # Pinned: a token signed with any other algorithm (or "none") is refused.
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "JWT_TOKEN_LOCATION": ["headers"],
        "MAX_CONTENT_LENGTH": max(settings.MAX_UPLOAD_MB * 1024 * 1024, settings.MAX_BODY_KB * 1024) + 64 * 1024,
        "RATELIMIT_STORAGE_URI": settings.REDIS_URL or "memory://",
        "RATELIMIT_KEY_PREFIX": settings.REDIS_PREFIX,
        "RATELIMIT_HEADERS_ENABLED": True,
        # An unreachable Redis must not stop logins: fall back to per-process memory limits.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "API_TITLE": "Field medical coordination (CASEVAC and telemedicine)",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
            "security": [{"bearerAuth": []}],
        },
    }


def _normalise_db_url(url: str) -> str:
    # psycopg 3 is the driver: accept the usual postgres:// and postgresql:// spellings.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _redis_client(settings: Settings):
    if not settings.REDIS_URL:
        return None
    from config.extensions import redis_client

    return redis_client(settings.REDIS_URL)


_pragmas_installed = False


def _sqlite_pragmas(settings: Settings) -> None:
    global _pragmas_installed
    if _pragmas_installed:
        return
    _pragmas_installed = True

    @sa_event.listens_for(Engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        module = type(dbapi_connection).__module__
        if "sqlite" not in module:
            return
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
