"""Fuzzing by attack class (issue 17): against a real server on PostgreSQL, every operation of its own
/openapi.json, as every role, gets requests built from the operation's schema with one part replaced by a
member of a class that once produced a 500 somewhere:

- nesting depth (a body, or one field, nested 40 to 5,000 deep),
- NUL bytes and lone surrogates (in any string field, any key, any query value, any path id),
- extreme times (0001-01-01T00:00:00+05:00, 9999-12-31T23:59:59-05:00, ... in every date-time field and
  query parameter),
- forged pagination cursors (wrong shape, size, types, bigints, extreme times, deep, long),
- bodies sent chunked (no Content-Length), gzip-compressed and chunked, or with an unknown Content-Encoding.

Every answer must be below 500, in the API.md error format when it is an error, and the server's log must
show no 5xx. Bounded in time (FUZZ_CLASSES_SECONDS, default 45); the cases are drawn with a seed
(FUZZ_SEED, as tests/security/test_fuzz.py; "random" for a new one, printed on failure). schemathesis
(tests/security/test_fuzz.py) fuzzes the schemas themselves; this one aims the known classes at every place.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import re
import time
from urllib.parse import quote

import pytest
import requests

from tests.e2e.conftest import ROOT, Server, free_port, login, pg_database_url

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("FUZZ_CLASSES_SECONDS", "45"))
SEED = os.environ.get("FUZZ_SEED", "20261201")
DEMO_PASSWORD = "demo-password-123"

EXTREME_TIMES = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59+14:00",
    "1899-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
]
BAD_TEXT = ["a\x00b", "\x00", "\ud800", "x\udfffy", "\udbff\udbff"]


def _b64(document) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


FORGED_CURSORS = [
    _b64([2**70]),
    _b64(["x", 2**64]),
    _b64(["a\u0000b"]),
    _b64(["\ud800", "x"]),
    _b64([{"t": "0001-01-01T00:00:00+05:00"}, "x"]),
    _b64([{"t": "9999-12-31T23:59:59-05:00"}]),
    _b64([{"t": 5}]),
    _b64([True, None]),
    _b64([1e308, "x"]),
    _b64([]),
    _b64({"a": 1}),
    _b64(["x"] * 50),
    base64.urlsafe_b64encode(("[" * 3000 + "]" * 3000).encode()).decode(),
    "A" * 5000,
    "%%%",
    "\u00e9t\u00e9",
    "==",
]


class Deep:
    """A JSON array nested `depth` deep (around `leaf`), spliced in as text: too deep for json.dumps itself."""

    def __init__(self, depth: int, leaf=None):
        self.depth, self.leaf = depth, leaf


def _deep(depth: int, leaf=None) -> Deep:
    return Deep(depth, leaf)


def _encode(document) -> bytes:
    spliced: dict[str, str] = {}

    def _default(value):
        if isinstance(value, Deep):
            marker = f"@@deep{len(spliced)}@@"
            spliced[marker] = "[" * value.depth + json.dumps(value.leaf, default=_default) + "]" * value.depth
            return marker
        raise TypeError(type(value))

    text = json.dumps(document, default=_default)
    for marker, deep in spliced.items():
        text = text.replace(json.dumps(marker), deep)
    return text.encode()


def _deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-classes")
    db_gen = pg_database_url()
    database_url = next(db_gen)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        {
            # APP_ENV=test: as production, with the demo seeded (which bin/serve refuses in production).
            "PORT": str(free_port()),
            "BIND": "127.0.0.1",
            "APP_ENV": "test",
            "SECRET_KEY": "e2e-secret-key-that-is-long-enough-0123456789",
            "DATABASE_URL": database_url,
            "DEMO_PASSWORD": DEMO_PASSWORD,
            "VENV": str(ROOT / ".venv"),
            "THREADS": "8",
            "LOG_LEVEL": "INFO",
            "LOGIN_LIMIT_PER_ADDRESS": "100000 per minute",
            "LOGIN_LIMIT_PER_ACCOUNT": "100000 per minute",
            "SOCKET_EVENTS_BURST": "100000",
        }
    )
    server = Server(env, tmp / "fuzz-classes-server.log").start(timeout=180)
    try:
        yield server
    finally:
        server.stop()
        db_gen.close()


@pytest.fixture(scope="module")
def tokens(server):
    superadmin = login(server, "demo-admin")
    me = requests.get(
        server.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {superadmin}"}, timeout=10
    ).json()
    created = requests.post(
        server.url + "/api/v1/users",
        headers={"Authorization": f"Bearer {superadmin}"},
        json={"username": "classes-admin", "password": DEMO_PASSWORD, "role": "admin", "mission_id": me["mission_id"]},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return [
        superadmin,
        login(server, "classes-admin"),
        login(server, "demo-coordinator"),
        login(server, "demo-medic"),
        login(server, "demo-clinician"),
        login(server, "demo-psychiatrist"),
        login(server, "demo-member"),
    ]


class Document:
    """The operations of the server's OpenAPI document, with skeleton values built from their schemas."""

    def __init__(self, spec: dict):
        self.spec = spec

    def resolve(self, schema: dict | None) -> dict:
        seen = 0
        while schema and "$ref" in schema and seen < 20:
            name = schema["$ref"].rsplit("/", 1)[1]
            schema = self.spec["components"]["schemas"][name]
            seen += 1
        return schema or {}

    def operations(self):
        for path, item in self.spec["paths"].items():
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    yield method.upper(), path, operation

    def skeleton(self, schema: dict, depth: int = 0):
        """A plausible value for schema, with (path, kind) of every leaf: kind is "string", "date-time", ..."""
        schema = self.resolve(schema)
        for key in ("oneOf", "anyOf", "allOf"):
            if key in schema and schema[key]:
                return self.skeleton(schema[key][0], depth)
        kind = schema.get("type")
        if depth > 6:
            return None
        if kind == "object" or "properties" in schema:
            return {name: self.skeleton(sub, depth + 1) for name, sub in (schema.get("properties") or {}).items()}
        if kind == "array":
            return [self.skeleton(schema.get("items") or {}, depth + 1)]
        if "enum" in schema and schema["enum"]:
            return schema["enum"][0]
        if kind == "string":
            return {"date-time": "2026-12-01T10:00:00+00:00", "date": "2026-12-01"}.get(schema.get("format"), "x")
        if kind == "integer":
            return 1
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return True
        return None

    def leaves(self, schema: dict, path=(), depth: int = 0):
        """(path, schema) of every scalar in schema (objects and the first array item)."""
        schema = self.resolve(schema)
        for key in ("oneOf", "anyOf", "allOf"):
            if key in schema and schema[key]:
                yield from self.leaves(schema[key][0], path, depth)
                return
        if depth > 6:
            return
        if schema.get("type") == "object" or "properties" in schema:
            for name, sub in (schema.get("properties") or {}).items():
                yield from self.leaves(sub, path + (name,), depth + 1)
        elif schema.get("type") == "array":
            yield from self.leaves(schema.get("items") or {}, path + (0,), depth + 1)
        else:
            yield path, schema


def _set(document, path, value):
    if not path:
        return value
    node = document
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not node:
                return document
            node = node[0]
        else:
            if not isinstance(node, dict) or not isinstance(node.get(part), (dict, list)):
                return document
            node = node[part]
    last = path[-1]
    if isinstance(last, int) and isinstance(node, list) and node:
        node[0] = value
    elif isinstance(node, dict):
        node[last] = value
    return document


def _body_cases(doc: Document, schema: dict, rng: random.Random):
    """(description, document) pairs: one part of a plausible body replaced by an attack-class member."""
    base = doc.skeleton(schema)
    yield "deep body", _deep(rng.choice([40, 1000, 5000]), base)
    leaves = list(doc.leaves(schema))
    rng.shuffle(leaves)
    for path, leaf in leaves[:12]:
        leaf_type = leaf.get("type")
        candidates = [("deep field", _deep(rng.choice([40, 2000])))]
        if leaf_type == "string" or leaf_type is None:
            candidates.append(("NUL/surrogate", rng.choice(BAD_TEXT)))
        if leaf.get("format") in ("date-time", "date") or leaf_type == "string":
            candidates.append(("extreme time", rng.choice(EXTREME_TIMES)))
        if leaf_type in ("integer", "number"):
            candidates.append(("huge number", rng.choice([2**70, -(2**70), 1e308, "1e999"])))
        label, value = rng.choice(candidates)
        yield f"{label} at {'.'.join(map(str, path))}", _set(json.loads(_encode(base)), path, value)
    if isinstance(base, dict):
        key = rng.choice(BAD_TEXT)
        yield "NUL/surrogate key", {**base, key: "x"}


def _query_cases(doc: Document, operation: dict, rng: random.Random):
    for parameter in operation.get("parameters") or []:
        if parameter.get("in") != "query":
            continue
        name = parameter["name"]
        schema = doc.resolve(parameter.get("schema") or {})
        if name == "cursor":
            yield "forged cursor", {name: rng.choice(FORGED_CURSORS)}
        elif schema.get("format") in ("date-time", "date"):
            yield f"extreme time in {name}", {name: rng.choice(EXTREME_TIMES)}
        elif schema.get("type") in ("integer", "number"):
            yield f"huge number in {name}", {name: str(rng.choice([2**70, -(2**70), "1e999", "nan"]))}
        else:
            yield f"NUL/surrogate in {name}", {name: rng.choice(["a\x00b", "\x00", _deep_text(500)])}


def _path_of(path: str, rng: random.Random) -> str:
    def _fill(match):
        return rng.choice(
            [
                quote("a\x00b"),
                "%ED%A0%80",
                "x" * 300,
                quote("00000000-0000-0000-0000-00000000000\x00"),
                "00000000-0000-0000-0000-000000000000",
            ]
        )

    return re.sub(r"\{[^}]+\}", _fill, path)


def _send(server, method, path, token, *, query=None, document=None, mode="plain"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if document is not None:
        raw = _encode(document)
        headers["Content-Type"] = "application/json"
        if mode == "gzip-chunked":
            compressed = gzip.compress(raw)
            headers["Content-Encoding"] = "gzip"
            data = (compressed[i : i + 1024] for i in range(0, len(compressed), 1024))
        elif mode == "chunked":
            data = (raw[i : i + 4096] for i in range(0, len(raw), 4096))  # a generator: Transfer-Encoding: chunked
        elif mode == "br":
            headers["Content-Encoding"] = "br"
            data = raw
        else:
            data = raw
    return requests.request(
        method, server.url + path, params=query, data=data, headers=headers, timeout=30, allow_redirects=False
    )


def test_every_operation_against_every_class(server, tokens):
    seed = random.SystemRandom().randrange(1, 2**31) if SEED == "random" else int(SEED)
    rng = random.Random(seed)
    doc = Document(requests.get(server.url + "/openapi.json", timeout=10).json())
    operations = list(doc.operations())
    assert len(operations) > 50
    deadline = time.monotonic() + SECONDS
    failures, sent, rounds = [], 0, 0
    covered: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        rounds += 1
        for method, path, operation in operations:
            if time.monotonic() >= deadline:
                break
            token = rng.choice(tokens + [None])
            url_path = _path_of(path, rng)
            cases: list[tuple[str, dict | None, object, str]] = [
                ("NUL in an undeclared query parameter", {rng.choice(["x", "q\x00"]): "a\x00b"}, None, "plain")
            ]
            for label, query in _query_cases(doc, operation, rng):
                cases.append((label, query, None, "plain"))
            content = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
            if content:
                for label, document in _body_cases(doc, content.get("schema") or {}, rng):
                    mode = rng.choice(["plain", "plain", "chunked", "gzip-chunked", "br"])
                    cases.append((f"{label} ({mode})", None, document, mode))
            if "{" in path:
                cases.append(("forged path id", None, None, "plain"))
            for label, query, document, mode in cases:
                try:
                    response = _send(server, method, url_path, token, query=query, document=document, mode=mode)
                except requests.RequestException as exc:
                    failures.append(f"{method} {url_path} [{label}]: no answer ({exc})")
                    continue
                sent += 1
                covered.add((method, path))
                problem = None
                if response.status_code >= 500:
                    problem = f"{response.status_code}"
                elif response.status_code >= 400:
                    try:
                        answer = response.json()
                        if answer.get("code") != response.status_code or "message" not in answer:
                            problem = f"{response.status_code} not in the API.md error format"
                    except ValueError:
                        problem = f"{response.status_code} is not JSON"
                if mode == "br" and document is not None and response.status_code not in (401, 404, 405, 415):
                    problem = f"unknown Content-Encoding answered {response.status_code}, not 415"
                if problem:
                    failures.append(f"{method} {url_path} [{label}]: {problem}: {response.text[:200]}")
    server_errors = [
        line for line in server.logs().splitlines() if re.search(r'" 5\d\d \d', line) or "unhandled error" in line
    ]
    print(f"fuzz classes: seed {seed}, {sent} requests, {rounds} rounds over {len(operations)} operations")
    assert not failures, f"seed {seed}, {len(failures)} failures:\n" + "\n".join(failures[:40])
    assert server_errors == [], "\n".join(server_errors[:20])
    assert covered == {(m, p) for m, p, _ in operations}, "raise FUZZ_CLASSES_SECONDS: not every operation ran"
