// The console's map (Leaflet, vendored): the bundled Natural Earth outline as the basemap, the mission's own
// tiles when MAP_TILES is set (PMTiles read with range requests, or MBTiles served tile by tile), an MGRS
// grid overlay, requests (precedence colours), assets (live positions, heading), facilities.
import { el } from "./api.js";
import { spaced, toMgrs, utmForward, utmInverse } from "./geo.js";

const COLOURS = { urgent: "#d7191c", urgent_surgical: "#8b0000", priority: "#f28c28", routine: "#2b83ba",
                  convenience: "#6a9f58" };
const ASSET_COLOURS = { available: "#1a9641", tasked: "#7b3294", maintenance: "#888888", offline: "#444444" };
const FACILITY_COLOURS = { normal: "#1f78b4", diverting: "#e6a700", closed: "#555555" };

function label(lines) {
  return el("div", {}, lines.map((line, i) => (i === 0 ? el("strong", { text: line }) : el("div", { text: line }))));
}

export class ConsoleMap {
  constructor(node, cursorNode, onSelect) {
    const L = window.L;
    this.L = L;
    this.onSelect = onSelect;
    this.map = L.map(node, { zoomControl: true, attributionControl: true, worldCopyJump: true, preferCanvas: false })
      .setView([5.5, 19.5], 6);
    this.map.attributionControl.setPrefix("");
    this.layers = {
      requests: L.layerGroup().addTo(this.map),
      assets: L.layerGroup().addTo(this.map),
      facilities: L.layerGroup().addTo(this.map),
      route: L.layerGroup().addTo(this.map),
      grid: L.layerGroup().addTo(this.map),
    };
    this.assetMarkers = new Map();
    this.fitted = false;
    this.map.on("mousemove", (e) => {
      cursorNode.textContent = `MGRS ${toMgrs(e.latlng.lat, e.latlng.lng, 4) || "-"}`;
    });
    this.map.on("moveend zoomend", () => this.drawGrid());
    new ResizeObserver(() => this.map.invalidateSize()).observe(node);
    this._basemap();
    L.control.layers(null, { "MGRS grid": this.layers.grid, Requests: this.layers.requests,
                             Assets: this.layers.assets, Facilities: this.layers.facilities }).addTo(this.map);
    this.drawGrid();
  }

  async _basemap() {
    const L = this.L;
    const config = await fetch("/map/config.json").then((r) => r.json());
    const outline = await fetch(config.outline).then((r) => r.json());
    this.outline = L.geoJSON(outline, { interactive: false,
      style: { color: "#6b7a5a", weight: 1, fillColor: "#e9eddc", fillOpacity: 1 } });
    this.map.getPane("tilePane").classList.add("basemap");
    const tiles = config.tiles;
    if (tiles && tiles.kind === "mbtiles") {
      this.tiles = L.tileLayer(tiles.url, { minZoom: 0, maxNativeZoom: tiles.maxzoom, maxZoom: 18,
                                            attribution: tiles.attribution || "mission tiles" });
    } else if (tiles && tiles.kind === "pmtiles" && window.pmtiles) {
      const source = new window.pmtiles.PMTiles(tiles.url);
      const header = await source.getHeader();
      this.tiles = window.pmtiles.leafletRasterLayer(source, { maxNativeZoom: header.maxZoom, maxZoom: 18,
                                                               attribution: "mission tiles" });
    }
    this.outline.addTo(this.map);
    if (this.tiles) this.tiles.addTo(this.map);
    this.map.attributionControl.addAttribution("Natural Earth (public domain)");
    const base = { "World outline (Natural Earth)": this.outline };
    if (this.tiles) base["Mission tiles"] = this.tiles;
    this.basemapState = this.tiles ? `mission tiles (${tiles.kind})` : "world outline";
    this.map.getContainer().dataset.basemap = this.basemapState;
    this.layers.grid.bringToFront && this.layers.grid.bringToFront();
  }

  draw(state) {
    const L = this.L;
    this.layers.requests.clearLayers();
    this.layers.facilities.clearLayers();
    this.layers.route.clearLayers();
    const points = [];
    for (const r of state.queue.values()) {
      if (!r.location || ["delivered", "cancelled"].includes(r.status)) continue;
      const selected = state.selected === r.id;
      const marker = L.circleMarker([r.location.lat, r.location.lon], {
        radius: selected ? 11 : 8, color: selected ? "#000" : "#fff", weight: selected ? 3 : 2,
        fillColor: COLOURS[r.precedence] || "#999", fillOpacity: 0.95 });
      // The callsign always shown beside the marker; precedence, status and MGRS in the title on hover.
      marker.bindTooltip(el("span", { text: r.callsign || "request" }), { permanent: true, direction: "right",
                                                                        className: "request-label", offset: [8, 0] });
      marker.on("add", () => {
        const path = marker.getElement && marker.getElement();
        if (path) path.append(Object.assign(document.createElementNS("http://www.w3.org/2000/svg", "title"), {
          textContent: `${r.callsign}: ${(r.precedence || "").replace("_", " ")}, ${r.status}, ${spaced(r.location.mgrs)}` }));
      });
      marker.on("click", () => this.onSelect(r.id));
      marker.addTo(this.layers.requests);
      points.push([r.location.lat, r.location.lon]);
    }
    for (const f of state.facilities.values()) {
      if (!f.location) continue;
      const marker = L.circleMarker([f.location.lat, f.location.lon], {
        radius: 6, color: FACILITY_COLOURS[f.status] || "#1f78b4", weight: 3, fillColor: "#fff", fillOpacity: 1 });
      marker.bindTooltip(label([f.name, `level ${f.level}, ${f.status}, ${f.beds_available} beds${f.helipad ? ", helipad" : ""}`,
                                toMgrs(f.location.lat, f.location.lon, 4)]));
      marker.addTo(this.layers.facilities);
      points.push([f.location.lat, f.location.lon]);
    }
    for (const a of state.assets.values()) this.moveAsset(a);
    this._route(state);
    this.layers.requests.eachLayer((layer) => layer.bringToFront());
    if (!this.fitted && points.length) {
      this.fitted = true;
      this.map.fitBounds(points, { padding: [30, 30], maxZoom: 9 });
    }
  }

  _assetPoint(a) {
    const p = a.position && a.position.lat != null ? a.position : a.base;
    return p && p.lat != null ? p : null;
  }

  moveAsset(a) {
    const L = this.L;
    const p = this._assetPoint(a);
    if (!p) return;
    let entry = this.assetMarkers.get(a.id);
    if (!entry) {
      entry = {
        marker: L.circleMarker([p.lat, p.lon], { radius: 7, weight: 2, color: "#000", fillOpacity: 1 }),
        heading: L.polyline([], { weight: 2, color: "#000" }),
      };
      entry.marker.addTo(this.layers.assets);
      entry.heading.addTo(this.layers.assets);
      this.assetMarkers.set(a.id, entry);
    }
    entry.marker.setLatLng([p.lat, p.lon]);
    entry.marker.setStyle({ fillColor: ASSET_COLOURS[a.status] || "#999" });
    entry.marker.unbindTooltip();
    entry.marker.bindTooltip(label([a.callsign, `${a.kind.replace("_", " ")}, ${a.status}`,
                                    a.position && a.position.reported_at ? `fix ${new Date(a.position.reported_at).toLocaleTimeString()}` : `at base ${a.base ? a.base.name : ""}`,
                                    toMgrs(p.lat, p.lon, 4)]));
    const heading = a.position && a.position.heading;
    if (heading != null) {
      const rad = heading * Math.PI / 180, d = 0.08;
      entry.heading.setLatLngs([[p.lat, p.lon], [p.lat + d * Math.cos(rad), p.lon + d * Math.sin(rad) / Math.cos(p.lat * Math.PI / 180)]]);
    } else {
      entry.heading.setLatLngs([]);
    }
  }

  _route(state) {
    const L = this.L;
    const r = state.details.get(state.selected) || state.queue.get(state.selected);
    if (!r || !r.location) return;
    let assetId = r.asset_id, facilityId = r.facility_id;
    const recs = state.recommendations;
    if (!assetId && recs && recs.id === r.id && recs.options && recs.options.length) {
      assetId = recs.options[0].asset_id;
      facilityId = recs.options[0].facility_id;
    }
    const asset = assetId && state.assets.get(assetId);
    const facility = facilityId && state.facilities.get(facilityId);
    const pickup = [r.location.lat, r.location.lon];
    const p = asset && this._assetPoint(asset);
    if (p) L.polyline([[p.lat, p.lon], pickup], { color: "#7b3294", weight: 3, dashArray: "6 6" }).addTo(this.layers.route);
    if (facility && facility.location) {
      L.polyline([pickup, [facility.location.lat, facility.location.lon]], { color: "#1f78b4", weight: 3 }).addTo(this.layers.route);
    }
  }

  /** Grid zone lines always; 100 km lines from zoom 7, 10 km lines from zoom 10 (drawn for the view only). */
  drawGrid() {
    const L = this.L;
    const layer = this.layers.grid;
    layer.clearLayers();
    const b = this.map.getBounds();
    const south = Math.max(-80, b.getSouth()), north = Math.min(84, b.getNorth());
    const west = Math.max(-180, b.getWest()), east = Math.min(180, b.getEast());
    const zone = { color: "#333", weight: 1.2, opacity: 0.7, interactive: false };
    for (let lon = Math.ceil(west / 6) * 6; lon <= east; lon += 6) L.polyline([[south, lon], [north, lon]], zone).addTo(layer);
    for (let lat = Math.ceil((south + 80) / 8) * 8 - 80; lat <= north; lat += 8) L.polyline([[lat, west], [lat, east]], zone).addTo(layer);
    const z = this.map.getZoom();
    if (z < 7) return;
    const step = z >= 10 ? 10000 : 100000;
    const line = { color: "#555", weight: step === 10000 ? 0.6 : 0.9, opacity: 0.6, interactive: false };
    const firstZone = Math.floor((west + 180) / 6) + 1, lastZone = Math.floor((Math.min(east, 179.999) + 180) / 6) + 1;
    for (let zn = firstZone; zn <= lastZone; zn += 1) {
      const zWest = Math.max(west, (zn - 1) * 6 - 180), zEast = Math.min(east, zn * 6 - 180);
      const hemisphereNorth = (south + north) / 2 >= 0;
      const corners = [[south, zWest], [south, zEast], [north, zWest], [north, zEast], [(south + north) / 2, (zWest + zEast) / 2]]
        .map(([la, lo]) => utmForward(la, lo, zn));
      const eMin = Math.floor(Math.min(...corners.map((c) => c.easting)) / step) * step;
      const eMax = Math.ceil(Math.max(...corners.map((c) => c.easting)) / step) * step;
      const nMin = Math.floor(Math.min(...corners.map((c) => c.northing)) / step) * step;
      const nMax = Math.ceil(Math.max(...corners.map((c) => c.northing)) / step) * step;
      if ((eMax - eMin) / step > 80 || (nMax - nMin) / step > 80) continue;
      const clip = (pts) => pts.filter((p) => p.lon >= zWest - 1e-9 && p.lon <= zEast + 1e-9).map((p) => [p.lat, p.lon]);
      for (let e = eMin; e <= eMax; e += step) {
        const pts = [];
        for (let n = nMin; n <= nMax; n += (nMax - nMin) / 20 || step) pts.push(utmInverse(zn, hemisphereNorth, e, n));
        const kept = clip(pts);
        if (kept.length > 1) L.polyline(kept, line).addTo(layer);
      }
      for (let n = nMin; n <= nMax; n += step) {
        const pts = [];
        for (let e = eMin; e <= eMax; e += (eMax - eMin) / 20 || step) pts.push(utmInverse(zn, hemisphereNorth, e, n));
        const kept = clip(pts);
        if (kept.length > 1) L.polyline(kept, line).addTo(layer);
      }
    }
  }
}
