"""MAP_TILES: the mission's offline tiles served by the app (PMTiles with HTTP range requests, MBTiles tile
by tile), and the console's map drawing them in a real browser."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import start_servers
from tests.web.conftest import SERVER_ENV, require_browser, sign_in
from tests.web.tiles import png, write_mbtiles, write_pmtiles

RED, BLUE = png((200, 30, 30)), png((30, 30, 200))


def test_mbtiles_served_by_tile_with_xyz_rows(app, client, tmp_path):
    path = write_mbtiles(tmp_path / "mission.mbtiles", {(0, 0, 0): RED, (1, 1, 0): BLUE})
    app.config["MAP_TILES"] = str(path)
    config = client.get("/map/config.json").get_json()
    assert config["tiles"]["kind"] == "mbtiles" and config["tiles"]["url"] == "/tiles/{z}/{x}/{y}"
    assert config["tiles"]["maxzoom"] == 1
    tile = client.get("/tiles/1/1/0")  # XYZ row 0 is TMS row 1
    assert tile.status_code == 200 and tile.data == BLUE and tile.mimetype == "image/png"
    assert client.get("/tiles/1/1/0", headers={"If-None-Match": tile.headers["ETag"]}).status_code == 304
    assert client.get("/tiles/1/0/0").status_code == 204  # no tile there: an empty answer, not an error
    assert client.get("/tiles/1/2/0").status_code == 404  # outside the zoom level
    assert client.get("/tiles/mission.pmtiles").status_code == 404
    assert "script-src 'self'" in tile.headers["Content-Security-Policy"]


def test_pmtiles_served_with_range_requests(app, client, tmp_path):
    path = write_pmtiles(tmp_path / "mission.pmtiles", RED)
    app.config["MAP_TILES"] = str(path)
    assert client.get("/map/config.json").get_json()["tiles"] == {"kind": "pmtiles", "url": "/tiles/mission.pmtiles"}
    head = client.get("/tiles/mission.pmtiles", headers={"Range": "bytes=0-126"})
    assert head.status_code == 206 and head.data[:7] == b"PMTiles" and len(head.data) == 127
    assert head.headers["Content-Range"] == f"bytes 0-126/{path.stat().st_size}"
    tail = client.get("/tiles/mission.pmtiles", headers={"Range": f"bytes=-{len(RED)}"})
    assert tail.status_code == 206 and tail.data == RED


def test_without_map_tiles_the_outline_alone(app, client):
    app.config["MAP_TILES"] = ""
    config = client.get("/map/config.json").get_json()
    assert config["tiles"] is None
    outline = client.get(config["outline"], headers={"Accept-Encoding": "gzip"})
    assert outline.status_code == 200 and outline.headers["Content-Encoding"] == "gzip"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    directory = tmp_path_factory.mktemp("tiles")
    tiles = write_pmtiles(directory / "mission.pmtiles", RED)
    [server] = start_servers(directory, 1, MAP_TILES=str(tiles), **SERVER_ENV)
    yield server
    server.stop()


@pytest.mark.e2e
def test_the_console_map_draws_the_missions_pmtiles(server, new_context):
    context, _ = new_context()
    page = context.new_page()
    ranges = []
    page.on("request", lambda r: r.url.endswith("/tiles/mission.pmtiles") and ranges.append(r.headers.get("range")))
    sign_in(page, "demo-coordinator")
    page.wait_for_url("**/console")
    page.locator("#map[data-basemap='mission tiles (pmtiles)']").wait_for()
    page.get_by_role("region", name="Map").locator("img.leaflet-tile-loaded").first.wait_for()
    assert ranges and all(r and r.startswith("bytes=") for r in ranges), ranges
    # The decoded tile is the archive's red square, drawn from a blob: URL (CSP img-src blob:).
    assert (
        page.get_by_role("region", name="Map")
        .locator("img.leaflet-tile-loaded")
        .first.get_attribute("src")
        .startswith("blob:")
    )
    assert (
        requests.get(f"{server.url}/tiles/mission.pmtiles", headers={"Range": "bytes=0-6"}, timeout=10).content
        == b"PMTiles"
    )
