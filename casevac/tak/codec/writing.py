"""Writing events: `medevac()` (the marker of a request), `delete()` (t-x-d-d), `chat()` (GeoChat b-t-f to
one contact), `asset()`, `facility()` and `presence()` (the gateway's own SA, so the TAK server routes direct
messages to it), `ping()`. Every event carries our flow tag, so an echo of it is not news."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - builds XML only; parsing goes through defusedxml
from datetime import datetime, timedelta

from casevac.codes import NATIONALITY_TO_ATAK
from casevac.precedence import precedence_of
from casevac.tak.codec import mist
from casevac.tak.codec.vocabulary import (
    CHAT,
    DELETE,
    FLOW_TAG,
    MARKING,
    MEDEVAC,
    PRECEDENCES,
    SECURITY,
    UNKNOWN,
    cot_time,
    xml_text,
)


def _root(
    *,
    uid: str,
    type_: str,
    time: datetime,
    stale: datetime,
    lat: float,
    lon: float,
    how: str = "h-g-i-g-o",
    hae: str = UNKNOWN,
    start: datetime | None = None,
    ce: str = UNKNOWN,
) -> tuple[ET.Element, ET.Element]:
    root = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": xml_text(uid),
            "type": type_,
            "how": how,
            "time": cot_time(time),
            "start": cot_time(start or time),
            "stale": cot_time(stale),
        },
    )
    ET.SubElement(
        root, "point", {"lat": repr(float(lat)), "lon": repr(float(lon)), "hae": hae, "ce": ce, "le": UNKNOWN}
    )
    detail = ET.SubElement(root, "detail")
    return root, detail


def _done(root: ET.Element, detail: ET.Element, flow_time: datetime) -> bytes:
    ET.SubElement(detail, "_flow-tags_", {FLOW_TAG: cot_time(flow_time)})
    return ET.tostring(root, encoding="utf-8")


def medevac(
    lines: dict,
    *,
    uid: str,
    time: datetime,
    stale: datetime,
    start: datetime | None = None,
    circular_error_m: float | None = None,
    status_text: str | None = None,
    sender_uid: str | None = None,
) -> bytes:
    """The MEDEVAC marker of a 9-line (a dict shaped like the API's request: location lat/lon, callsign,
    frequency, patients, equipment, litter, ambulatory, lines 6-9, remarks, casualties): the one writer of
    it, for the gateway's marker and the `.cot` export (casevac.requests.cot). `start` defaults to `time`;
    `circular_error_m` is the point's ce (unknown when None). `status_text` goes in <remarks> (status,
    asset, ETA), so medline_remarks stays the medic's own remarks."""
    location = lines["location"]
    root, detail = _root(
        uid=uid,
        type_=MEDEVAC,
        time=time,
        start=start,
        stale=stale,
        lat=location["lat"],
        lon=location["lon"],
        ce=f"{circular_error_m:.1f}" if circular_error_m is not None else UNKNOWN,
    )
    ET.SubElement(detail, "contact", {"callsign": xml_text(lines["callsign"])})
    if sender_uid:
        ET.SubElement(
            detail,
            "link",
            {
                "uid": xml_text(sender_uid),
                "relation": "p-p",
                "type": "a-f-G-U-C",
                "parent_callsign": xml_text(lines["callsign"]),
            },
        )
    patients = lines["patients"]
    equipment = set(lines.get("equipment") or [])
    precedence = precedence_of(patients) or "urgent"
    a = {
        "title": xml_text(f"{lines['callsign']} {precedence}"),
        "casevac": "false",
        "freq": xml_text(lines["frequency"]),
        "zone_prot_selection": "0",
        **{name: str(patients.get(name, 0)) for name in PRECEDENCES},
        "equipment_none": _bool(not equipment),
        "hoist": _bool("hoist" in equipment),
        "extraction_equipment": _bool("extraction" in equipment),
        "ventilator": _bool("ventilator" in equipment),
        "litter": str(lines["litter"]),
        "ambulatory": str(lines["ambulatory"]),
    }
    if lines.get("security"):
        a["security"] = str(SECURITY.index(lines["security"]))
    if lines.get("marking"):
        a["hlz_marking"] = str(MARKING.index(lines["marking"]))
    if lines.get("marking_detail") is not None:
        a["hlz_other"] = xml_text(lines["marking_detail"])
    counts: dict[str, int] = {}
    for category, count in (lines.get("nationality") or {}).items():
        target = NATIONALITY_TO_ATAK.get(category)
        if target:
            counts[target] = counts.get(target, 0) + count
    a.update({name: str(count) for name, count in counts.items()})
    if lines.get("terrain"):
        a.update({"terrain_other": "true", "terrain_other_detail": xml_text(lines["terrain"])})
    elif lines.get("cbrn") is not None:
        a["terrain_none"] = "true"
    if lines.get("remarks") is not None:
        a["medline_remarks"] = xml_text(lines["remarks"])
    med = ET.SubElement(detail, "_medevac_", a)
    if lines.get("casualties"):
        mists = ET.SubElement(med, "zMistsMap")
        for position, casualty in enumerate(lines["casualties"]):
            ET.SubElement(mists, "zMist", mist.write(casualty, position))
    ext = {}
    if len(equipment) > 1:
        ext["equipment"] = ",".join(lines["equipment"])
    for name in ("suffix", "wounds", "terrain", "marking_detail"):
        if lines.get(name) is not None:
            ext[name] = xml_text(lines[name])
    if "cbrn" in lines:
        ext["cbrn"] = ",".join(lines["cbrn"]) if lines["cbrn"] is not None else "-"
    if "nationality" in lines:
        ext["nationality"] = (
            ",".join(f"{k}:{v}" for k, v in lines["nationality"].items()) if lines["nationality"] is not None else "-"
        )
    if ext:
        ET.SubElement(detail, "__medevac_un", ext)
    summary = [status_text] if status_text else []
    if lines.get("wounds"):
        summary.append(f"Line 6 wounds: {lines['wounds']}")
    if lines.get("cbrn"):
        summary.append("Line 9 CBRN: " + ", ".join(lines["cbrn"]))
    if summary:
        ET.SubElement(detail, "remarks").text = xml_text("\n".join(summary))
    return _done(root, detail, time)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def delete(uid: str, *, time: datetime) -> bytes:
    """t-x-d-d: the marker `uid` is gone (ATAK's own form: a link to it and a forced delete)."""
    root, detail = _root(
        uid=f"{uid}-delete",
        type_=DELETE,
        time=time,
        stale=time + timedelta(minutes=5),
        lat=0.0,
        lon=0.0,
        how="h-g-i-g-o",
    )
    ET.SubElement(detail, "link", {"uid": xml_text(uid), "relation": "none", "type": "none"})
    ET.SubElement(detail, "__forcedelete")
    return _done(root, detail, time)


def chat(
    *,
    sender_uid: str,
    sender_callsign: str,
    to_uid: str,
    to_callsign: str,
    message_id: str,
    text: str,
    time: datetime,
    lat: float = 0.0,
    lon: float = 0.0,
) -> bytes:
    """A direct GeoChat message, as ATAK's GeoChatService writes one. The uid is deterministic
    (GeoChat.<sender>.<recipient>.<message id>), so a message re-sent after a crash is the same message."""
    root, detail = _root(
        uid=f"GeoChat.{sender_uid}.{to_uid}.{message_id}",
        type_=CHAT,
        time=time,
        stale=time + timedelta(days=1),
        lat=lat,
        lon=lon,
    )
    chat_el = ET.SubElement(
        detail,
        "__chat",
        {
            "parent": "RootContactGroup",
            "groupOwner": "false",
            "messageId": xml_text(message_id),
            "chatroom": xml_text(to_callsign),
            "id": xml_text(to_uid),
            "senderCallsign": xml_text(sender_callsign),
        },
    )
    ET.SubElement(chat_el, "chatgrp", {"uid0": xml_text(sender_uid), "uid1": xml_text(to_uid), "id": xml_text(to_uid)})
    ET.SubElement(detail, "link", {"uid": xml_text(sender_uid), "type": "a-f-G-U-C", "relation": "p-p"})
    remarks = ET.SubElement(
        detail,
        "remarks",
        {"source": xml_text(f"BAO.F.ATAK.{sender_uid}"), "to": xml_text(to_uid), "time": cot_time(time)},
    )
    remarks.text = xml_text(text)
    ET.SubElement(ET.SubElement(detail, "marti"), "dest", {"callsign": xml_text(to_callsign)})
    return _done(root, detail, time)


# MIL-STD-2525 air/ground medevac types, as ATAK's point dropper names them.
ASSET_TYPES = {"rotary_wing": "a-f-A-M-H-H", "fixed_wing": "a-f-A-M-F-Q", "ground_ambulance": "a-f-G-E-V-m"}
FACILITY_TYPE = "a-f-G-U-i-m-etf"  # friendly medical treatment facility


def asset(
    *,
    uid: str,
    callsign: str,
    kind: str,
    status: str,
    lat: float,
    lon: float,
    time: datetime,
    stale: datetime,
    heading: float | None = None,
    speed_kmh: float | None = None,
    remarks: str | None = None,
) -> bytes:
    root, detail = _root(
        uid=uid, type_=ASSET_TYPES.get(kind, "a-f-G"), time=time, stale=stale, lat=lat, lon=lon, how="m-g"
    )
    ET.SubElement(detail, "contact", {"callsign": xml_text(callsign)})
    if heading is not None or speed_kmh is not None:
        ET.SubElement(
            detail,
            "track",
            {"course": repr(float(heading or 0.0)), "speed": repr(round(float(speed_kmh or 0.0) / 3.6, 3))},
        )
    ET.SubElement(detail, "status", {"readiness": _bool(status == "available")})
    ET.SubElement(detail, "remarks").text = xml_text(remarks or f"{kind}, {status}")
    return _done(root, detail, time)


def facility(
    *,
    uid: str,
    name: str,
    level: str,
    status: str,
    beds: int,
    lat: float,
    lon: float,
    time: datetime,
    stale: datetime,
    capabilities=(),
) -> bytes:
    root, detail = _root(uid=uid, type_=FACILITY_TYPE, time=time, stale=stale, lat=lat, lon=lon, how="h-e")
    ET.SubElement(detail, "contact", {"callsign": xml_text(name)})
    text = f"Level {level}, {status}, beds available {beds}"
    if capabilities:
        text += "; " + ", ".join(capabilities)
    ET.SubElement(detail, "remarks").text = xml_text(text)
    return _done(root, detail, time)


def presence(*, uid: str, callsign: str, time: datetime, stale: datetime, lat: float = 0.0, lon: float = 0.0) -> bytes:
    """The gateway's own SA: TAK servers (taky, FreeTAKServer) route direct messages to a client only once it
    has described itself with takv, contact and __group."""
    root, detail = _root(uid=uid, type_="a-f-G-U-C", time=time, stale=stale, lat=lat, lon=lon, how="h-e")
    ET.SubElement(detail, "takv", {"os": "linux", "device": "server", "version": "1", "platform": "medevac"})
    ET.SubElement(detail, "contact", {"callsign": xml_text(callsign), "endpoint": "*:-1:stcp"})
    ET.SubElement(detail, "__group", {"name": "Cyan", "role": "HQ"})
    return _done(root, detail, time)


def ping(*, uid: str, time: datetime) -> bytes:
    root, detail = _root(
        uid=f"{uid}-ping",
        type_="t-x-c-t",
        time=time,
        stale=time + timedelta(seconds=20),
        lat=0.0,
        lon=0.0,
        how="h-g-i-g-o",
    )
    return ET.tostring(root, encoding="utf-8")
