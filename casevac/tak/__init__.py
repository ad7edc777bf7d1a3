"""The TAK gateway (docs/tak.md): this backend as a member of the mission's TAK network, both ways."""

from __future__ import annotations


def init_app(app) -> None:
    """Models (for Alembic and create_all), the `flask tak-gateway` command and the /readyz line."""
    from casevac.tak import cli, models  # noqa: F401

    cli.register(app)
    from casevac.tak.context import readiness
    from core.views import READINESS_EXTRAS

    if readiness not in READINESS_EXTRAS:
        READINESS_EXTRAS.append(readiness)
