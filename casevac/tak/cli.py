"""`flask --app wsgi tak-gateway`: run the gateway for TAK_MISSION against TAK_URL until stopped."""

from __future__ import annotations

import click
from flask import Flask


def register(app: Flask) -> None:
    @app.cli.command("tak-gateway")
    @click.option(
        "--once",
        is_flag=True,
        default=False,
        help="connect, send the current picture and what the event log holds, then exit",
    )
    def tak_gateway_command(once):
        """Connect this mission to its TAK server (TAK_URL, TAK_MISSION, TAK_CERT/TAK_KEY/TAK_CA for tls://)."""
        from casevac.tak.gateway import Gateway, GatewayConfigError

        try:
            Gateway.from_app(app).run(once=once)
        except GatewayConfigError as exc:
            raise click.ClickException(str(exc)) from None
