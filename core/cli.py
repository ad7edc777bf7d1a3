"""Operator commands: flask --app wsgi seed-demo | create-user."""

from __future__ import annotations

import click
from flask import Flask, current_app

from config.extensions import db
from core import seed, service
from core.errors import ApiError
from core.models import ROLES, Mission


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo mission, users, assets, facilities and clinicians (idempotent)."""
        settings = current_app.extensions["settings"]
        if settings.ENV == "production":
            raise click.ClickException(
                "seed-demo refused with APP_ENV=production: the demo users have known "
                "passwords (create real users with create-user)"
            )
        mission, users, generated = seed.seed_demo(db.session, password=settings.DEMO_PASSWORD)
        click.echo(f"demo mission {mission.code} ({mission.id}) with users: {', '.join(sorted(users))}")
        if generated:
            click.echo(f"demo password (shown once, set DEMO_PASSWORD to choose it): {generated}")

    @app.cli.command("create-user")
    @click.option("--username", required=True)
    @click.option("--role", required=True, type=click.Choice(ROLES))
    @click.option("--mission", "mission_code", required=True, help="mission code, e.g. DEMO")
    @click.option("--display-name", default=None)
    @click.option("--email", default=None, help="where reminders and invitations are mailed")
    @click.option("--superadmin", is_flag=True, default=False)
    @click.option(
        "--password", prompt=True, hide_input=True, confirmation_prompt=True, help="prompted for when not given"
    )
    def create_user_command(username, role, mission_code, display_name, email, superadmin, password):
        """Create a user (the first admin of a mission, for instance)."""
        mission = db.session.execute(db.select(Mission).where(Mission.code == mission_code)).scalar_one_or_none()
        if mission is None:
            mission = service.create_mission(db.session, actor=None, code=mission_code, name=mission_code)
            click.echo(f"created mission {mission_code}")
        try:
            user = service.create_user(
                db.session,
                actor=None,
                username=username,
                password=password,
                role=role,
                mission_id=mission.id,
                display_name=display_name,
                superadmin=superadmin,
                email=email,
            )
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"created user {user.username} ({user.role}) id {user.id}")
