"""CASEVAC: 9-line requests (requests/), the fleet of assets and facilities (fleet/), dispatch and the
mass-casualty plan (dispatch/), field links for thin links (links/), the TAK gateway (tak/). init_app wires
the domain into an app; importing a module registers nothing."""

from __future__ import annotations

from flask import Flask

from casevac import codes, links, seed, tak
from casevac.dispatch import service as dispatch_service
from casevac.dispatch.views import blp as dispatch_blp
from casevac.fleet import positions, versions
from casevac.fleet.views import blp as fleet_blp
from casevac.requests import lifecycle
from casevac.requests.views import blp as requests_blp
from config.extensions import api
from core.seed import register_seeder
from realtime import sweeper


def init_app(app: Flask) -> None:
    # Line 8 categories come from the app's settings.
    codes.configure(app.extensions["settings"])
    # The live-position store: one object per app, handed to the fleet's and dispatch's services.
    positions.bind(app)
    # Every committed write to assets or facilities moves the fleet's version (what processes keep is checked
    # against it).
    versions.register()
    for blueprint in (requests_blp, fleet_blp, dispatch_blp):
        api.register_blueprint(blueprint)
    sweeper.register("casevac.escalate", lifecycle.escalate)
    sweeper.register("fleet.track_flush", positions.track_flush_task)
    # Cancelling or delivering a request frees its asset (in the transaction that ends the request).
    lifecycle.add_release_hook(dispatch_service.release_asset)
    register_seeder(app, seed.seed_demo)
    # Field links (SMS and satellite intake, small answers) and the TAK gateway (models, `flask tak-gateway`,
    # its /readyz line).
    links.init_app(app)
    tak.init_app(app)
