"""Telemedicine: clinicians, availability, booking and consultation records (scheduling/), mental-health
screening, alerts and confidential self-referral (mental/). init_app wires the domain into an app; importing
a module registers nothing."""

from __future__ import annotations

from flask import Flask

from config.extensions import api, db
from core import audit, mail
from core.seed import register_seeder
from realtime import sockets, sweeper
from telemed import seed
from telemed.consent.views import blp as consent_blp
from telemed.mental import alerts as mental_alerts
from telemed.mental.views import blp as mental_blp
from telemed.scheduling import booking, clinicians, consultations, video
from telemed.scheduling.views import blp as scheduling_blp


def init_app(app: Flask) -> None:
    # The domain's endpoints, all under one prefix (API.md "Telemedicine").
    for blueprint in (scheduling_blp, mental_blp, consent_blp):
        api.register_blueprint(blueprint, url_prefix="/api/v1/telemed")
    sweeper.register("telemed.reminders", booking.send_reminders)
    sweeper.register("mail.deliver", mail.deliver)  # after the reminders: a reminder's mail leaves in the same run
    sweeper.register("mental.escalate_alerts", mental_alerts.escalate_alerts)
    # The mental-health room of a mission: clinicians with specialty psychiatry or psychology.
    sockets.set_mental_health_check(lambda user: clinicians.is_mental_health_clinician(db.session, user))
    audit.register_confidential("consultation", consultations.mental_health_ids)
    register_seeder(app, seed.seed_demo)
    video.register()  # the in-browser call's signalling over Socket.IO (telemed/scheduling/video.py)
