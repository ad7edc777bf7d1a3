"""One Settings object, read from the environment once (ARCHITECTURE.md, Configuration)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


class ConfigError(RuntimeError):
    """A setting is missing or invalid: start-up stops with this message."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true or false), got {raw!r}")


def _str(name: str, default: str | None = None) -> str | None:
    raw = os.environ.get(name)
    return default if raw in (None, "") else raw


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _str(name, default)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    ENV: str = "development"  # development | production | test
    DATABASE_URL: str = f"sqlite:///{INSTANCE / 'medevac.db'}"
    REDIS_URL: str | None = None
    # Namespaces every Redis key and channel, so several deployments (or test runs) share one Redis.
    REDIS_PREFIX: str = "medevac"
    SECRET_KEY: str = ""
    JWT_EXPIRES_MINUTES: int = 12 * 60
    PORT: int = 5000
    LOG_LEVEL: str = "INFO"
    DEMO_PASSWORD: str | None = None
    ESCALATE_AFTER_SECONDS: int = 120
    REMINDER_MINUTES_BEFORE: int = 15
    MAX_UPLOAD_MB: int = 10
    # Largest JSON body accepted (after gzip decompression), in kilobytes.
    MAX_BODY_KB: int = 512
    UPLOAD_DIR: str = str(INSTANCE / "uploads")
    LOGIN_LIMIT_PER_ADDRESS: str = "30 per minute"
    LOGIN_LIMIT_PER_ACCOUNT: str = "10 per minute"
    CORS_ORIGINS: str = ""  # comma separated; empty: CORS closed
    SWEEPER_INTERVAL_SECONDS: float = 5.0
    # Each process's relay polls the event log this often even without a wake-up (Redis down, crash).
    RELAY_POLL_SECONDS: float = 1.0
    # "threading" (gunicorn gthread worker, the default) or "gevent" (WORKER_CLASS=gevent): see bench/.
    SOCKETIO_ASYNC_MODE: str = "threading"
    ROAD_FACTOR: float = 1.4
    # 9-line line 8 categories (comma separated); empty: casevac.requests.schemas.DEFAULT_NATIONALITY_CATEGORIES.
    NATIONALITY_CATEGORIES: str = ""
    # Telemedicine video bridge (Jitsi token auth): app id, shared secret (default: derived from SECRET_KEY),
    # domain (e.g. meet.example.org; empty: no URL in join responses).
    VIDEO_APP_ID: str = "medevac"
    VIDEO_APP_SECRET: str = ""
    VIDEO_DOMAIN: str = ""
    # The in-browser video (WebRTC, telemed/scheduling/video.py): TURN server URLs (comma separated, e.g.
    # turn:turn.example.org:3478?transport=udp) and coturn's static-auth-secret (REST-API credentials).
    TURN_URLS: str = ""
    TURN_SECRET: str = ""
    # "relay": browsers use the TURN server only (iceTransportPolicy relay: no host or reflexive address of
    # a participant reaches the others); "all" (default): direct paths first, TURN when they fail.
    TURN_POLICY: str = "all"
    # A flagged screening not acknowledged by a mental-health clinician within this is escalated (once).
    SCREENING_ACK_MINUTES: int = 15
    # Per-socket limit on the events a client emits (token bucket, realtime/limits.py).
    SOCKET_EVENTS_PER_SECOND: float = 5.0
    SOCKET_EVENTS_BURST: int = 20
    # Events older than this are deleted from the event log (realtime/retention.py); 0 keeps everything.
    EVENTS_RETENTION_DAYS: float = 30.0
    # The TAK gateway (docs/tak.md): server (tcp://host:8087 or tls://host:8089), the mission's code, for
    # tls:// the client certificate, its key and the CA that signed the server's certificate (PEM paths),
    # the gateway's callsign and uid on the TAK network (default: MEDEVAC-<mission>, medevac-gateway-<mission>).
    TAK_URL: str = ""
    TAK_MISSION: str = ""
    TAK_CERT: str = ""
    TAK_KEY: str = ""
    TAK_CA: str = ""
    TAK_CALLSIGN: str = ""
    TAK_UID: str = ""
    # Longest wait between reconnection attempts (the backoff doubles from 1 s up to this).
    TAK_RECONNECT_MAX_SECONDS: float = 30.0
    # Texts pushed back to medics who filed by SMS or satellite (casevac.links.outbound): Twilio's REST API
    # and RockBLOCK's MT endpoint (bases configurable, e.g. a test server); SMSSync phones pull theirs.
    TWILIO_API_BASE: str = "https://api.twilio.com"
    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_FROM: str = ""
    ROCKBLOCK_API_BASE: str = "https://rockblock.rock7.com"
    ROCKBLOCK_USERNAME: str = ""
    ROCKBLOCK_PASSWORD: str = ""
    OUTBOUND_MAX_ATTEMPTS: int = 8
    # Mail (core.mail): reminders and invitations. No SMTP_HOST: nothing is sent (the socket events still are).
    # SMTP_STARTTLS upgrades the connection before any login; MAIL_FROM is required with SMTP_HOST.
    SMTP_HOST: str = ""
    SMTP_PORT: int = 587
    SMTP_USER: str = ""
    SMTP_PASSWORD: str = ""
    SMTP_STARTTLS: bool = True
    SMTP_TIMEOUT_SECONDS: float = 10.0
    MAIL_FROM: str = ""
    # The address users open the app at (https://medevac.mission.example): links in mail. Empty: no link.
    PUBLIC_URL: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = _str("APP_ENV", _str("FLASK_ENV", "development"))
        values = dict(
            ENV=env,
            DATABASE_URL=_str("DATABASE_URL", cls.DATABASE_URL),
            REDIS_URL=_str("REDIS_URL"),
            REDIS_PREFIX=_str("REDIS_PREFIX", cls.REDIS_PREFIX),
            SECRET_KEY=_str("SECRET_KEY", ""),
            JWT_EXPIRES_MINUTES=_int("JWT_EXPIRES_MINUTES", cls.JWT_EXPIRES_MINUTES),
            PORT=_int("PORT", cls.PORT),
            LOG_LEVEL=_str("LOG_LEVEL", cls.LOG_LEVEL).upper(),
            DEMO_PASSWORD=_str("DEMO_PASSWORD"),
            ESCALATE_AFTER_SECONDS=_int("ESCALATE_AFTER_SECONDS", cls.ESCALATE_AFTER_SECONDS),
            REMINDER_MINUTES_BEFORE=_int("REMINDER_MINUTES_BEFORE", cls.REMINDER_MINUTES_BEFORE),
            MAX_UPLOAD_MB=_int("MAX_UPLOAD_MB", cls.MAX_UPLOAD_MB),
            MAX_BODY_KB=_int("MAX_BODY_KB", cls.MAX_BODY_KB),
            UPLOAD_DIR=_str("UPLOAD_DIR", cls.UPLOAD_DIR),
            LOGIN_LIMIT_PER_ADDRESS=_str("LOGIN_LIMIT_PER_ADDRESS", cls.LOGIN_LIMIT_PER_ADDRESS),
            LOGIN_LIMIT_PER_ACCOUNT=_str("LOGIN_LIMIT_PER_ACCOUNT", cls.LOGIN_LIMIT_PER_ACCOUNT),
            CORS_ORIGINS=_str("CORS_ORIGINS", ""),
            SWEEPER_INTERVAL_SECONDS=float(_str("SWEEPER_INTERVAL_SECONDS", "5")),
            RELAY_POLL_SECONDS=float(_str("RELAY_POLL_SECONDS", "1")),
            SOCKETIO_ASYNC_MODE=_str("SOCKETIO_ASYNC_MODE", "threading"),
            ROAD_FACTOR=float(_str("ROAD_FACTOR", "1.4")),
            NATIONALITY_CATEGORIES=_str("NATIONALITY_CATEGORIES", ""),
            VIDEO_APP_ID=_str("VIDEO_APP_ID", cls.VIDEO_APP_ID),
            VIDEO_APP_SECRET=_str("VIDEO_APP_SECRET", ""),
            VIDEO_DOMAIN=_str("VIDEO_DOMAIN", ""),
            TURN_URLS=_str("TURN_URLS", ""),
            TURN_SECRET=_str("TURN_SECRET", ""),
            TURN_POLICY=_choice("TURN_POLICY", ("all", "relay"), cls.TURN_POLICY),
            SCREENING_ACK_MINUTES=_int("SCREENING_ACK_MINUTES", cls.SCREENING_ACK_MINUTES),
            SOCKET_EVENTS_PER_SECOND=float(_str("SOCKET_EVENTS_PER_SECOND", "5")),
            SOCKET_EVENTS_BURST=_int("SOCKET_EVENTS_BURST", cls.SOCKET_EVENTS_BURST),
            EVENTS_RETENTION_DAYS=float(_str("EVENTS_RETENTION_DAYS", "30")),
            **{
                name: _str(name, "")
                for name in ("TAK_URL", "TAK_MISSION", "TAK_CERT", "TAK_KEY", "TAK_CA", "TAK_CALLSIGN", "TAK_UID")
            },
            TAK_RECONNECT_MAX_SECONDS=float(_str("TAK_RECONNECT_MAX_SECONDS", "30")),
            TWILIO_API_BASE=_str("TWILIO_API_BASE", cls.TWILIO_API_BASE),
            ROCKBLOCK_API_BASE=_str("ROCKBLOCK_API_BASE", cls.ROCKBLOCK_API_BASE),
            **{
                name: _str(name, "")
                for name in (
                    "TWILIO_ACCOUNT_SID",
                    "TWILIO_AUTH_TOKEN",
                    "TWILIO_FROM",
                    "ROCKBLOCK_USERNAME",
                    "ROCKBLOCK_PASSWORD",
                )
            },
            OUTBOUND_MAX_ATTEMPTS=_int("OUTBOUND_MAX_ATTEMPTS", cls.OUTBOUND_MAX_ATTEMPTS),
            **{name: _str(name, "") for name in ("SMTP_HOST", "SMTP_USER", "SMTP_PASSWORD", "MAIL_FROM", "PUBLIC_URL")},
            SMTP_PORT=_int("SMTP_PORT", cls.SMTP_PORT),
            SMTP_STARTTLS=_bool("SMTP_STARTTLS", cls.SMTP_STARTTLS),
            SMTP_TIMEOUT_SECONDS=float(_str("SMTP_TIMEOUT_SECONDS", "10")),
        )
        values.update(overrides)
        return cls(**values).resolved()

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def is_development(self) -> bool:
        return self.ENV == "development"

    def resolved(self) -> "Settings":
        """Fill the secret key: required outside development, generated and kept under instance/ in it."""
        if self.SMTP_HOST and "@" not in self.MAIL_FROM:
            raise ConfigError("MAIL_FROM (the sender address, e.g. medevac@mission.example) is required with SMTP_HOST")
        if self.SECRET_KEY:
            if len(self.SECRET_KEY) < 32:
                raise ConfigError("SECRET_KEY must be at least 32 characters long")
            return self
        if not self.is_development and self.ENV != "test":
            raise ConfigError(
                "SECRET_KEY is not set. Outside development the service refuses to start without one: "
                "set SECRET_KEY to a random string of at least 32 characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')."
            )
        if self.ENV == "test":
            return replace(self, SECRET_KEY=secrets.token_urlsafe(48))
        INSTANCE.mkdir(parents=True, exist_ok=True)
        key_file = INSTANCE / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return replace(self, SECRET_KEY=key_file.read_text().strip())

    def public(self) -> dict:
        """Settings safe to show (no secrets)."""
        hidden = {
            "SECRET_KEY",
            "DEMO_PASSWORD",
            "VIDEO_APP_SECRET",
            "TURN_SECRET",
            "SMTP_PASSWORD",
            "TWILIO_AUTH_TOKEN",
            "ROCKBLOCK_PASSWORD",
        }
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}
