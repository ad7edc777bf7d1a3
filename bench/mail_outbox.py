"""Mail outbox benchmark (issue 14): what mailing costs a booking, and how fast the sender drains the outbox to a
local SMTP server (aiosmtpd), on a scratch SQLite database.

    PYTHONPATH=. .venv/bin/python bench/mail_outbox.py [--bookings 200] [--rows 500]

Prints per-booking wall and CPU time without and with participants' addresses (the latter writes two outbox
rows and builds the iTIP object in the booking transaction), and the sender's messages per second.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import percentile

UTC = timezone.utc


def fmt(times, cpu):
    return (
        f"wall p50 {percentile(times, 50):6.2f} ms  p99 {percentile(times, 99):6.2f} ms | "
        f"cpu p50 {percentile(cpu, 50):6.2f} ms  (n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookings", type=int, default=200)
    parser.add_argument("--rows", type=int, default=500)
    args = parser.parse_args()

    from aiosmtpd.controller import Controller
    from flask_migrate import upgrade

    from config.app import create_app
    from config.extensions import db
    from config.settings import Settings
    from core import clock, mail
    from core.models import Mission, OutgoingMail, User
    from telemed.scheduling import booking
    from telemed.scheduling.models import Clinician

    tmp = tempfile.mkdtemp(prefix="bench-mail-")
    app = create_app(Settings.from_env(ENV="test", DATABASE_URL=f"sqlite:///{tmp}/bench.db", LOG_LEVEL="WARNING"))
    with app.app_context():
        upgrade()
        session = db.session
        mission = Mission(code="BENCH", name="bench", timezone="Africa/Bangui")
        session.add(mission)
        session.flush()

        def person(name, role, email=None):
            user = User(username=name, password_hash="x", role=role, mission_id=mission.id, email=email)
            session.add(user)
            session.flush()
            return user

        clock.freeze(datetime(2026, 11, 30, 6, tzinfo=UTC))
        figures = {}
        for label, with_email in (("no addresses", False), ("two addresses", True)):
            suffix = "m" if with_email else "n"
            doctor = person(f"doc-{suffix}", "clinician", "doc@bench.example" if with_email else None)
            medic = person(f"medic-{suffix}", "medic", "medic@bench.example" if with_email else None)
            week = [
                {"day": d, "start": "00:00", "end": "24:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            ]
            clinician = Clinician(
                user_id=doctor.id,
                mission_id=mission.id,
                display_name="Dr Bench",
                specialties=["general_medicine"],
                languages=["en"],
                kinds=["diagnostic"],
                timezone="Europe/Oslo",
                weekly=week,
                min_notice_minutes=0,
            )
            session.add(clinician)
            session.commit()
            times, cpu = [], []
            for i in range(args.bookings):
                start = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=30 * i)
                c0, t0 = time.process_time(), time.perf_counter()
                booking.book(
                    session,
                    actor=medic,
                    kind="diagnostic",
                    clinician_id=clinician.id,
                    start=start,
                    modality="video",
                    reason="bench",
                    patient={"name": "x"},
                )
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            figures[label] = (times, cpu)
            print(f"booking, {label:14}: {fmt(times, cpu)}")
        ratio = percentile(figures["two addresses"][0], 50) / percentile(figures["no addresses"][0], 50)
        print(f"booking with mail / without: {ratio:.2f}x (p50 wall)")

        rows = session.execute(db.select(db.func.count()).select_from(OutgoingMail)).scalar()
        extra = max(0, args.rows - rows)
        sample = session.execute(db.select(OutgoingMail).limit(1)).scalar_one()
        for _ in range(extra):
            session.add(
                OutgoingMail(
                    mission_id=mission.id,
                    kind="reminder",
                    subject_type="consultation",
                    subject_id=sample.subject_id,
                    recipient_id=sample.recipient_id,
                    to_address=sample.to_address,
                    subject="Reminder",
                    body="bench",
                    status="pending",
                    attempts=0,
                    next_attempt_at=clock.now(),
                )
            )
        session.commit()
        total = session.execute(db.select(db.func.count()).select_from(OutgoingMail)).scalar()

        class Sink:
            count = 0

            async def handle_DATA(self, server, smtp_session, envelope):  # noqa: N802 - the name aiosmtpd calls
                Sink.count += 1
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        controller = Controller(Sink(), hostname="127.0.0.1", port=port)
        controller.start()
        settings = app.extensions["settings"].with_(
            SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False, MAIL_FROM="bench@bench.example"
        )
        try:
            t0 = time.perf_counter()
            sent = 0
            while True:
                n = mail.deliver(session, now=clock.now(), settings=settings)
                sent += n
                if n == 0:
                    break
            elapsed = time.perf_counter() - t0
        finally:
            controller.stop()
        print(
            f"sender: {sent} of {total} rows delivered in {elapsed:.2f} s = {sent / elapsed:.0f} messages/s "
            f"(batches of {mail.BATCH}, one SMTP connection per batch); server received {Sink.count}"
        )


if __name__ == "__main__":
    main()
