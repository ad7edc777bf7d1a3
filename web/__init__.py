"""The web front end (../shared/design/CONSOLE.md): sign-in at `/`, the operations console at `/console`, the
offline field app at `/field`, the clinic at `/clinic`, the member's page at `/me`, the browsable OpenAPI
document at `/docs`, and the mission's offline map tiles (`MAP_TILES`) at `/tiles/`.

The pages are plain API clients: static HTML shells (no inline script), ES modules under /assets/js, the
vendored libraries under /assets/vendor. Nothing here reads the database or a token: every piece of data
comes from /api/v1 with the bearer token the page keeps in sessionStorage.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import os
import sqlite3
import threading
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, request, send_file

from core.auth import public
from core.http import page

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"

blp = Blueprint("web", __name__)

# Text assets are gzipped once per file version (and kept in memory): the field app's first visit is over a
# slow link. Images and tiles are already compressed.
_COMPRESSIBLE = (
    "text/",
    "application/javascript",
    "application/json",
    "application/geo+json",
    "application/manifest+json",
    "image/svg+xml",
)
_cache: dict[tuple[str, float], tuple[bytes, bytes, str]] = {}
_cache_lock = threading.Lock()

mimetypes.add_type("application/javascript", ".js")
mimetypes.add_type("application/javascript", ".mjs")
mimetypes.add_type("application/geo+json", ".geojson")
mimetypes.add_type("application/manifest+json", ".webmanifest")

PAGES = {
    "/": "signin.html",
    "/console": "console.html",
    "/field": "field.html",
    "/clinic": "clinic.html",
    "/me": "me.html",
    "/docs": "docs.html",
}


def _file_response(path: Path, *, mimetype: str | None = None, extra_headers: dict | None = None) -> Response:
    """The file with a strong ETag (304 on If-None-Match), gzipped when the client accepts it."""
    try:
        stat = path.stat()
    except OSError:
        abort(404)
    key = (str(path), stat.st_mtime)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is None:
        raw = path.read_bytes()
        etag = hashlib.sha256(raw).hexdigest()[:32]
        cached = (raw, gzip.compress(raw, 9, mtime=0), etag)
        with _cache_lock:
            _cache[key] = cached
    raw, packed, etag = cached
    mimetype = mimetype or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    compressible = mimetype.startswith(_COMPRESSIBLE)
    use_gzip = compressible and "gzip" in request.headers.get("Accept-Encoding", "") and len(packed) < len(raw)
    tag = etag + ("-gz" if use_gzip else "")
    headers = {"ETag": f'"{tag}"', "Cache-Control": "no-cache"}
    if compressible:
        headers["Vary"] = "Accept-Encoding"
    headers.update(extra_headers or {})
    if tag in [
        t.strip().strip('"').removeprefix("W/").strip('"') for t in request.headers.get("If-None-Match", "").split(",")
    ]:
        return Response(status=304, headers=headers)
    body = packed if use_gzip else raw
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    charset = "; charset=utf-8" if mimetype.startswith("text/") or mimetype == "application/javascript" else ""
    return Response(body, status=200, headers=headers, content_type=mimetype + charset)


@public
@page
def _page():
    return _file_response(TEMPLATES / PAGES[request.url_rule.rule], mimetype="text/html")


@blp.route("/assets/<path:filename>")
@public
@page
def assets(filename):
    target = (STATIC / filename).resolve()
    if STATIC not in target.parents or not target.is_file():
        abort(404)
    return _file_response(target)


# What the field app's service worker caches: everything /field needs to open and file with no connection.
FIELD_SHELL = [
    "/field",
    "/field.webmanifest",
    "/assets/css/app.css",
    "/assets/css/field.css",
    "/assets/js/field.js",
    "/assets/js/api.js",
    "/assets/js/geo.js",
    "/assets/js/live.js",
    "/assets/js/outbox.js",
    "/assets/vendor/mgrs/mgrs.esm.js",
    "/assets/vendor/socket.io-client/socket.io.esm.min.js",
    "/assets/icons/field-192.png",
    "/assets/icons/field-512.png",
]


def _shell_file(url: str) -> Path:
    if url == "/field":
        return TEMPLATES / "field.html"
    if url == "/field.webmanifest":
        return STATIC / "field.webmanifest"
    return STATIC / url.removeprefix("/assets/")


@blp.route("/field-sw.js")
@public
@page
def field_service_worker():
    """At the root so it may control /field (a worker's scope is at most its own directory); its own CSP
    (this response's) governs what it may fetch: 'self' only. Its version is the hash of the shell, so any
    change to a shell file installs a new worker and a new cache."""
    digest = hashlib.sha256()
    for url in FIELD_SHELL:
        digest.update(url.encode() + b"\0" + _shell_file(url).read_bytes())
    source = (STATIC / "js" / "field-sw.js").read_text()
    source = source.replace("__SHELL_VERSION__", digest.hexdigest()[:16]).replace(
        "__SHELL_FILES__", json.dumps(FIELD_SHELL)
    )
    body = source.encode()
    etag = hashlib.sha256(body).hexdigest()[:32]
    headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache", "Service-Worker-Allowed": "/field"}
    if f'"{etag}"' in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(body, headers=headers, content_type="application/javascript; charset=utf-8")


@blp.route("/field.webmanifest")
@public
@page
def field_manifest():
    return _file_response(STATIC / "field.webmanifest", mimetype="application/manifest+json")


@blp.route("/me/config.json")
@public
@page
def me_config():
    """What the member's page shows that the deployment decides: the crisis line (CRISIS_LINE)."""
    response = current_app.response_class(
        json.dumps({"crisis_line": current_app.config["CRISIS_LINE"]}), mimetype="application/json"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


# ---- the mission's offline tiles (MAP_TILES)


def _tiles_path() -> Path | None:
    configured = current_app.config.get("MAP_TILES") or os.environ.get("MAP_TILES", "")
    if not configured:
        return None
    path = Path(configured)
    return path if path.is_file() and path.suffix.lower() in (".pmtiles", ".mbtiles") else None


@blp.route("/map/config.json")
@public
@page
def map_config():
    """What the console's map should draw under its layers: the bundled outline, and the mission's tiles."""
    path = _tiles_path()
    tiles = None
    if path is not None and path.suffix.lower() == ".pmtiles":
        tiles = {"kind": "pmtiles", "url": "/tiles/mission.pmtiles"}
    elif path is not None:
        meta = _mbtiles_metadata(path)
        tiles = {
            "kind": "mbtiles",
            "url": "/tiles/{z}/{x}/{y}",
            "format": meta.get("format", "png"),
            "minzoom": int(meta.get("minzoom", 0)),
            "maxzoom": int(meta.get("maxzoom", 18)),
            "attribution": meta.get("attribution", ""),
        }
    response = current_app.response_class(
        json.dumps({"outline": "/assets/vendor/world-atlas/countries-110m.geojson", "tiles": tiles}),
        mimetype="application/json",
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.route("/tiles/mission.pmtiles")
@public
@page
def pmtiles_file():
    """The PMTiles archive itself: the browser reads it with HTTP range requests (206 Partial Content)."""
    path = _tiles_path()
    if path is None or path.suffix.lower() != ".pmtiles":
        abort(404)
    response = send_file(path, mimetype="application/octet-stream", conditional=True, etag=True, max_age=None)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Accept-Ranges"] = "bytes"
    return response


def _mbtiles_metadata(path: Path) -> dict:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        try:
            return dict(conn.execute("SELECT name, value FROM metadata").fetchall())
        except sqlite3.DatabaseError:
            return {}


_TILE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


@blp.route("/tiles/<int:z>/<int:x>/<int:y>")
@public
@page
def mbtiles_tile(z, x, y):
    """One raster tile of an MBTiles file (XYZ addressing; MBTiles rows are TMS, flipped)."""
    path = _tiles_path()
    if (
        path is None
        or path.suffix.lower() != ".mbtiles"
        or not (0 <= z <= 30)
        or not (0 <= x < 2**z)
        or not (0 <= y < 2**z)
    ):
        abort(404)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?", (z, x, (2**z - 1) - y)
        ).fetchone()
    if row is None:
        return Response(status=204, headers={"Cache-Control": "no-cache"})
    data = bytes(row[0])
    kind = _TILE_TYPES.get(_mbtiles_metadata(path).get("format", "png"), "image/png")
    etag = hashlib.sha256(data).hexdigest()[:32]
    if f'"{etag}"' in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": "no-cache"})
    return Response(data, content_type=kind, headers={"ETag": f'"{etag}"', "Cache-Control": "no-cache"})


for _rule, _name in PAGES.items():
    blp.add_url_rule(_rule, endpoint=f"page_{_name.split('.')[0]}_{_rule.strip('/') or 'signin'}", view_func=_page)


def init_app(app: Flask) -> None:
    """Register the pages (one call from config/app.py)."""
    app.config.setdefault("MAP_TILES", os.environ.get("MAP_TILES", ""))
    app.config.setdefault(
        "CRISIS_LINE",
        os.environ.get("CRISIS_LINE", "") or "call your medical officer or the mission's emergency line now",
    )
    app.register_blueprint(blp)
