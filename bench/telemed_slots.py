"""Telemedicine benchmark (issue 6): slot search across 500 clinicians over 14 days with 20 % of their time
booked, on PostgreSQL, against a naive minute-by-minute baseline measured in the same run; then booking
throughput under contention.

    PYTHONPATH=. .venv/bin/python bench/telemed_slots.py [--pg postgresql://postgres@127.0.0.1:5432/test]

Creates a scratch database next to the given one and drops it at the end. Prints figures and ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import percentile, reference

UTC = timezone.utc
ZONES = [
    "Africa/Bangui",
    "Europe/Oslo",
    "Asia/Kathmandu",
    "America/New_York",
    "Pacific/Auckland",
    "Africa/Nairobi",
    "Asia/Tokyo",
    "America/Los_Angeles",
]
SPECIALTIES = ["general_medicine", "radiology", "trauma_surgery", "dermatology", "psychiatry", "paediatrics"]


def timed(fn, runs):
    """Wall-clock and this process's CPU time (the latter is what a loaded shared machine disturbs least;
    it leaves out the database server's own time)."""
    times, cpu = [], []
    result = None
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return (times, cpu), result


def fmt(measured):
    times, cpu = measured
    return (
        f"wall p50 {percentile(times, 50):7.1f} ms  p99 {percentile(times, 99):7.1f} ms | "
        f"cpu p50 {percentile(cpu, 50):7.1f} ms  p99 {percentile(cpu, 99):7.1f} ms  (n={len(times)})"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--pg", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--clinicians", type=int, default=500)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--booked", type=float, default=0.20)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    name = f"bench_telemed_{uuid.uuid4().hex[:8]}"
    admin_url = args.pg.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        run(url, args)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(url, args):
    from flask_migrate import upgrade

    from config.app import create_app
    from config.extensions import db
    from config.settings import Settings
    from core import clock
    from core.auth import hash_password, issue_token
    from core.models import Mission, User
    from telemed.scheduling import availability, slots
    from telemed.scheduling.models import Clinician, Consultation

    app = create_app(
        Settings.from_env(
            ENV="test", DATABASE_URL=url, REDIS_URL=None, LOG_LEVEL="ERROR", SWEEPER_INTERVAL_SECONDS=3600.0
        )
    )
    ctx = app.app_context()
    ctx.push()
    upgrade()
    rng = random.Random(42)
    now = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday
    clock.freeze(now)
    range_start, range_end = now, now + timedelta(days=args.days)

    # --- data: 500 clinicians in 8 zones, Mon-Fri 08:00-12:00 and 13:00-17:00, 30-minute slots
    t0 = time.perf_counter()
    mission = Mission(code="BENCH", name="bench", timezone="Africa/Bangui")
    db.session.add(mission)
    db.session.flush()
    pw = hash_password("bench-password-123")
    medic = User(username="bench-medic", password_hash=pw, role="medic", mission_id=mission.id)
    db.session.add(medic)
    weekly = [
        w
        for d in ("mon", "tue", "wed", "thu", "fri")
        for w in ({"day": d, "start": "08:00", "end": "12:00"}, {"day": d, "start": "13:00", "end": "17:00"})
    ]
    users, clinicians = [], []
    for i in range(args.clinicians):
        uid = str(uuid.uuid4())
        users.append(
            {
                "id": uid,
                "username": f"doc{i:04d}",
                "password_hash": pw,
                "role": "clinician",
                "mission_id": mission.id,
                "superadmin": False,
                "active": True,
                "created_at": now,
            }
        )
        clinicians.append(
            {
                "id": str(uuid.uuid4()),
                "user_id": uid,
                "mission_id": mission.id,
                "specialties": [SPECIALTIES[i % len(SPECIALTIES)]],
                "languages": ["en", "fr"][: 1 + i % 2],
                "kinds": ["diagnostic"],
                "timezone": ZONES[i % len(ZONES)],
                "weekly": weekly,
                "overrides": [],
                "slot_minutes": 30,
                "buffer_minutes": 0,
                "min_notice_minutes": 60,
                "horizon_days": 60,
                "active": True,
                "booking_seq": 0,
                "created_at": now,
                "updated_at": now,
                "display_name": f"Doc {i}",
            }
        )
    db.session.execute(db.insert(User), users)
    db.session.execute(db.insert(Clinician), clinicians)
    db.session.commit()

    bookings = []
    available_slots = 0
    profiles = db.session.execute(db.select(Clinician)).unique().scalars().all()
    s0, s1 = availability.to_epoch(range_start), availability.to_epoch(range_end)
    for profile in profiles:
        plan = availability.Plan.of(profile)
        for start in availability.clinician_slots(plan, [], start=s0, end=s1, now=s0 - 86400):
            available_slots += 1
            if rng.random() < args.booked:
                begin = availability.from_epoch(start)
                end = begin + timedelta(minutes=30)
                bookings.append(
                    {
                        "id": str(uuid.uuid4()),
                        "mission_id": mission.id,
                        "clinician_id": profile.id,
                        "kind": "diagnostic",
                        "modality": "video",
                        "status": "booked",
                        "start": begin,
                        "end": end,
                        "duration_minutes": 30,
                        "block_start": begin,
                        "block_end": end,
                        "reason": "bench",
                        "patient_name": "x",
                        "booked_by": medic.id,
                        "room": uuid.uuid4().hex,
                        "history": [],
                        "created_at": now,
                        "updated_at": now,
                    }
                )
    for i in range(0, len(bookings), 5000):
        db.session.execute(db.insert(Consultation), bookings[i : i + 5000])
    db.session.commit()
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
    print(
        f"data: {args.clinicians} clinicians, {args.days} days, {available_slots} slots, {len(bookings)} booked "
        f"({len(bookings) / available_slots:.0%}), built in {time.perf_counter() - t0:.1f} s"
    )

    # --- slot search
    def engine(limit):
        return lambda: slots.find_slots(
            db.session, mission_id=mission.id, start=range_start, end=range_end, limit=limit
        )

    def naive(limit):
        """The baseline: every clinician's windows expanded minute by minute, then sorted."""

        def search():
            profiles_ = (
                db.session.execute(
                    db.select(Clinician).where(Clinician.mission_id == mission.id, Clinician.active.is_(True))
                )
                .unique()
                .scalars()
                .all()
            )
            busy = availability.load_busy(db.session, [p.id for p in profiles_], s0 - 3600, s1 + 3600)
            out = []
            t_now = availability.to_epoch(clock.now())
            for p in profiles_:
                plan = availability.Plan.of(p)
                earliest, latest = plan.bounds(t_now)
                windows = [(a, min(b, s1)) for a, b in plan.windows(s0, s1)]
                for s in reference.naive_free_starts(
                    windows,
                    busy[p.id],
                    duration=plan.slot_seconds,
                    step=plan.slot_seconds,
                    buffer=plan.buffer_seconds,
                    earliest=max(earliest, s0),
                    latest=min(latest, s1 - plan.slot_seconds),
                ):
                    out.append((s, p.id))
            out.sort()
            return out[:limit] if limit else out

        return search

    client = app.test_client()
    token = {"Authorization": f"Bearer {issue_token(medic, 600)}"}
    query = {"from": range_start.isoformat(), "to": range_end.isoformat()}

    def http(limit):
        def call():
            resp = client.get("/api/v1/telemed/slots", query_string={**query, "limit": limit}, headers=token)
            assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
            return resp.get_json()["items"]

        return call

    # Same answers first.
    full_engine = engine(None)()
    full_naive = naive(None)()
    assert [(availability.to_epoch(s["start"]), s["clinician_id"]) for s in full_engine] == full_naive, (
        "engine and baseline disagree"
    )
    print(f"check: engine and minute-by-minute baseline return the same {len(full_engine)} free slots")

    for _ in range(5):
        engine(50)()
        http(50)()
    results = {}
    results["engine limit=50"] = timed(engine(50), args.runs)[0]
    results["HTTP GET /slots limit=50"] = timed(http(50), args.runs)[0]
    results["HTTP GET /slots limit=500"] = timed(http(500), max(20, args.runs // 4))[0]
    results["engine, whole range (no limit)"] = timed(engine(None), 10)[0]
    results["baseline limit=50 (minute by minute)"] = timed(naive(50), 3)[0]
    results["baseline whole range"] = timed(naive(None), 3)[0]
    print("\nslot search, 500 clinicians x 14 days, 20 % booked, PostgreSQL:")
    for label, times in results.items():
        print(f"  {label:40s} {fmt(times)}")
    for label, base, ours in (
        ("limit=50", "baseline limit=50 (minute by minute)", "engine limit=50"),
        ("whole range", "baseline whole range", "engine, whole range (no limit)"),
    ):
        wall = percentile(results[base][0], 50) / percentile(results[ours][0], 50)
        cpu = percentile(results[base][1], 50) / percentile(results[ours][1], 50)
        print(f"  ratio baseline/engine, {label:12s} wall {wall:6.1f}x  cpu {cpu:6.1f}x (p50)")
    print(f"  load average: {os.getloadavg()}")

    # --- booking throughput under contention
    db.session.remove()
    free = [(s["clinician_id"], s["start"]) for s in full_engine]
    rng.shuffle(free)

    def contention(label, requests_, threads=16):
        """requests_: (clinician_id, start) per request; thread k sends requests_[k::threads]."""
        lock = threading.Lock()
        codes = {}
        barrier = threading.Barrier(threads)

        def worker(k):
            c = app.test_client()
            barrier.wait()
            for cid, start in requests_[k::threads]:
                body = {
                    "kind": "diagnostic",
                    "clinician_id": cid,
                    "modality": "video",
                    "reason": "bench",
                    "start": start.isoformat(),
                    "patient": {"name": "x"},
                }
                code = c.post("/api/v1/telemed/consultations", json=body, headers=token).status_code
                with lock:
                    codes[code] = codes.get(code, 0) + 1

        t_start = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - t_start
        total = sum(codes.values())
        print(
            f"  {label:52s} {total / elapsed:6.1f} req/s, {codes.get(201, 0) / elapsed:6.1f} bookings/s, "
            f"codes {dict(sorted(codes.items()))}"
        )

    print("\nbooking throughput (16 threads, in-process WSGI client, PostgreSQL):")
    one = free[0][0]
    one_clinician = [(cid, s) for cid, s in free if cid == one]
    others = [(cid, s) for cid, s in free if cid != one]
    contention("one slot, 50 racing requests", [one_clinician[0]] * 50)
    contention(f"one clinician, {len(one_clinician) - 1} distinct free slots", one_clinician[1:])
    contention("400 distinct free slots across all clinicians", others[:400])
    contention("50 hot slots x 8 requests each", [slot for slot in others[400:450] for _ in range(8)])
    clock.freeze(None)
    ctx.pop()


if __name__ == "__main__":
    main()
