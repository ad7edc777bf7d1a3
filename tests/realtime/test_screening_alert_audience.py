"""screening.alert over the socket: to the mission's mental-health clinicians only (the room set by
telemed's check at connect), live and replayed, never with the answers (API.md, Audience)."""

from __future__ import annotations

from realtime.relay import relay
from tests.factories import MissionFactory
from tests.realtime.conftest import received
from tests.telemed.conftest import book, make_clinician  # noqa: F401 - fixtures
from tests.telemed.mental.fixtures import PHQ9_ITEM9, make_mh_clinician, member, screen  # noqa: F401 - fixtures


def test_screening_alert_reaches_mental_health_clinicians_only_without_answers(
    app, make_user, make_clinician, make_mh_clinician, member, screen, connect, fresh_relay
):
    psychiatrist = make_mh_clinician()
    general = make_clinician().user  # a clinician, not a mental-health one
    foreign_psychiatrist = make_mh_clinician(MissionFactory())
    coordinator = make_user("coordinator")
    listeners = {
        name: connect(user)
        for name, user in [
            ("psychiatrist", psychiatrist),
            ("general", general),
            ("foreign", foreign_psychiatrist),
            ("coordinator", coordinator),
            ("member", member),
        ]
    }
    response = screen(member, "phq9", PHQ9_ITEM9)
    assert response.status_code == 201, response.get_data(as_text=True)
    relay.run_once()

    [alert] = received(listeners["psychiatrist"], "screening.alert")
    assert "answers" not in alert["data"] and "score" not in alert["data"]
    assert str(PHQ9_ITEM9) not in str(alert["data"])
    for name in ("general", "foreign", "coordinator", "member"):
        assert received(listeners[name], "screening.alert") == [], name
        ack = listeners[name].emit("sync", {"since": 0}, callback=True)
        assert [e for e in ack["events"] if e["type"] == "screening.alert"] == [], name
    replayed = listeners["psychiatrist"].emit("sync", {"since": 0}, callback=True)["events"]
    assert [e["data"] for e in replayed if e["type"] == "screening.alert"] == [alert["data"]]
