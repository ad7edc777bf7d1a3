// Coordinates for the pages: MGRS through the vendored `mgrs` library, typed positions (MGRS, DMS, decimal
// "lat, lon") parsed client-side, UTM for drawing the MGRS grid, and the geodesic-enough distance for ETAs.
import { forward, toPoint } from "/assets/vendor/mgrs/mgrs.esm.js";

/** "34NCJ1234567890" -> "34N CJ 12345 67890" (the way it is read over a radio). */
export function spaced(mgrs) {
  const m = /^(\d{1,2}[C-HJ-NP-X])([A-HJ-NP-Z]{2})(\d*)$/.exec(String(mgrs).replace(/\s+/g, "").toUpperCase());
  if (!m) return mgrs;
  const half = m[3].length / 2;
  return [m[1], m[2], m[3].slice(0, half), m[3].slice(half)].filter(Boolean).join(" ");
}

export function toMgrs(lat, lon, digits = 5) {
  try {
    return spaced(forward([lon, lat], digits));
  } catch (e) {
    return null;
  }
}

const DMS = /^\s*(\d{1,3})[°\s]\s*(\d{1,2})['’′\s]\s*(\d{1,2}(?:\.\d+)?)\s*(?:["”″]|'')?\s*([NSEW])\s*[,;\s]\s*(\d{1,3})[°\s]\s*(\d{1,2})['’′\s]\s*(\d{1,2}(?:\.\d+)?)\s*(?:["”″]|'')?\s*([NSEW])\s*$/i;

/**
 * A typed position -> {lat, lon, mgrs, kind} or throws Error with a message for the medic.
 * Accepts MGRS ("34N CJ 12345 67890"), DMS ("4°21'40"N 18°33'18"E") and decimal "4.3612, 18.5550".
 */
export function parsePosition(text) {
  const raw = String(text || "").trim();
  if (!raw) throw new Error("type a position, or use the GPS");
  const compact = raw.replace(/\s+/g, "").toUpperCase();
  if (/^\d{1,2}[C-HJ-NP-X][A-HJ-NP-Z]{2}(\d{2}|\d{4}|\d{6}|\d{8}|\d{10})$/.test(compact)) {
    const [lon, lat] = toPoint(compact);
    return { lat, lon, mgrs: spaced(compact), kind: "mgrs" };
  }
  const dms = DMS.exec(raw);
  if (dms) {
    const part = (d, m, s, h) => (Number(d) + Number(m) / 60 + Number(s) / 3600) * (/[SW]/i.test(h) ? -1 : 1);
    let a = part(dms[1], dms[2], dms[3], dms[4]);
    let b = part(dms[5], dms[6], dms[7], dms[8]);
    if (/[EW]/i.test(dms[4])) [a, b] = [b, a];
    return checked(a, b, "dms");
  }
  const dec = /^\s*(-?\d{1,2}(?:\.\d+)?)\s*[,;\s]\s*(-?\d{1,3}(?:\.\d+)?)\s*$/.exec(raw);
  if (dec) return checked(Number(dec[1]), Number(dec[2]), "latlon");
  throw new Error("not a position: type MGRS (34N CJ 12345 67890), DMS (4°21'40\"N 18°33'18\"E) or lat, lon");
}

function checked(lat, lon, kind) {
  if (!(lat >= -80 && lat <= 84) || !(lon >= -180 && lon <= 180)) {
    throw new Error("latitude must be from -80 to 84 and longitude from -180 to 180");
  }
  return { lat, lon, mgrs: toMgrs(lat, lon), kind };
}

export function distanceKm(a, b) {
  const r = (d) => (d * Math.PI) / 180;
  const h = Math.sin(r(b.lat - a.lat) / 2) ** 2 +
    Math.cos(r(a.lat)) * Math.cos(r(b.lat)) * Math.sin(r(b.lon - a.lon) / 2) ** 2;
  return 6371.0088 * 2 * Math.asin(Math.sqrt(h));
}

// ---- UTM (WGS-84), for the grid lines: Snyder's series, well under a metre in a zone.
const A = 6378137, F = 1 / 298.257223563, K0 = 0.9996;
const E2 = F * (2 - F), EP2 = E2 / (1 - E2);

export function utmInverse(zone, north, easting, northing) {
  const x = easting - 500000, y = north ? northing : northing - 10000000;
  const lon0 = ((zone - 1) * 6 - 180 + 3) * Math.PI / 180;
  const m = y / K0;
  const mu = m / (A * (1 - E2 / 4 - 3 * E2 * E2 / 64 - 5 * E2 ** 3 / 256));
  const e1 = (1 - Math.sqrt(1 - E2)) / (1 + Math.sqrt(1 - E2));
  const phi1 = mu + (3 * e1 / 2 - 27 * e1 ** 3 / 32) * Math.sin(2 * mu) + (21 * e1 ** 2 / 16 - 55 * e1 ** 4 / 32) *
    Math.sin(4 * mu) + (151 * e1 ** 3 / 96) * Math.sin(6 * mu);
  const n1 = A / Math.sqrt(1 - E2 * Math.sin(phi1) ** 2), t1 = Math.tan(phi1) ** 2, c1 = EP2 * Math.cos(phi1) ** 2;
  const r1 = A * (1 - E2) / (1 - E2 * Math.sin(phi1) ** 2) ** 1.5, d = x / (n1 * K0);
  const lat = phi1 - (n1 * Math.tan(phi1) / r1) * (d * d / 2 - (5 + 3 * t1 + 10 * c1 - 4 * c1 * c1 - 9 * EP2) *
    d ** 4 / 24 + (61 + 90 * t1 + 298 * c1 + 45 * t1 * t1 - 252 * EP2 - 3 * c1 * c1) * d ** 6 / 720);
  const lon = lon0 + (d - (1 + 2 * t1 + c1) * d ** 3 / 6 + (5 - 2 * c1 + 28 * t1 - 3 * c1 * c1 + 8 * EP2 + 24 * t1 * t1) *
    d ** 5 / 120) / Math.cos(phi1);
  return { lat: lat * 180 / Math.PI, lon: lon * 180 / Math.PI };
}

export function utmForward(lat, lon, zone) {
  const phi = lat * Math.PI / 180, lon0 = ((zone - 1) * 6 - 180 + 3) * Math.PI / 180;
  const n = A / Math.sqrt(1 - E2 * Math.sin(phi) ** 2), t = Math.tan(phi) ** 2, c = EP2 * Math.cos(phi) ** 2;
  const a = Math.cos(phi) * (lon * Math.PI / 180 - lon0);
  const m = A * ((1 - E2 / 4 - 3 * E2 * E2 / 64 - 5 * E2 ** 3 / 256) * phi - (3 * E2 / 8 + 3 * E2 * E2 / 32 +
    45 * E2 ** 3 / 1024) * Math.sin(2 * phi) + (15 * E2 * E2 / 256 + 45 * E2 ** 3 / 1024) * Math.sin(4 * phi) -
    (35 * E2 ** 3 / 3072) * Math.sin(6 * phi));
  const easting = K0 * n * (a + (1 - t + c) * a ** 3 / 6 + (5 - 18 * t + t * t + 72 * c - 58 * EP2) * a ** 5 / 120) + 500000;
  let northing = K0 * (m + n * Math.tan(phi) * (a * a / 2 + (5 - t + 9 * c + 4 * c * c) * a ** 4 / 24 +
    (61 - 58 * t + t * t + 600 * c - 330 * EP2) * a ** 6 / 720));
  if (lat < 0) northing += 10000000;
  return { easting, northing };
}
