// `make vendor`: copy the pinned npm packages' built files and licences into web/static/vendor/.
// Run after `npm ci --ignore-scripts` in this directory. Node.js is needed for this step only.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { feature } from "topojson-client";

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(here, "node_modules");
const out = path.resolve(here, "..", "static", "vendor");

const FILES = {
  "leaflet": ["dist/leaflet.js", "dist/leaflet.css", "dist/images/marker-icon.png",
              "dist/images/marker-icon-2x.png", "dist/images/marker-shadow.png", "dist/images/layers.png",
              "dist/images/layers-2x.png", "LICENSE"],
  "mgrs": ["dist/mgrs.esm.js", "license.md"],
  "pmtiles": ["dist/pmtiles.js"],
  "socket.io-client": ["dist/socket.io.esm.min.js", "LICENSE"],
  "swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"],
  "world-atlas": ["LICENSE"],
};

fs.rmSync(out, { recursive: true, force: true });
const versions = [];
for (const [name, files] of Object.entries(FILES)) {
  const pkg = JSON.parse(fs.readFileSync(path.join(modules, name, "package.json"), "utf8"));
  versions.push(`${name} ${pkg.version} (${pkg.license})`);
  for (const file of files) {
    const target = path.join(out, name, file.replace(/^dist\//, ""));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(modules, name, file), target);
  }
}
// pmtiles ships no licence file in its npm package: ours (licenses/) is its repository's BSD-3-Clause text.
fs.copyFileSync(path.join(here, "licenses", "pmtiles.LICENSE"), path.join(out, "pmtiles", "LICENSE"));

// The default basemap: Natural Earth 1:110m admin-0 countries (public domain), via world-atlas, as GeoJSON
// with coordinates rounded to 0.01 degree (about 1 km, well below the 1:110m data's own accuracy).
const topo = JSON.parse(fs.readFileSync(path.join(modules, "world-atlas", "countries-110m.json"), "utf8"));
const world = feature(topo, topo.objects.countries);
const round = (c) => Array.isArray(c[0]) ? c.map(round) : [Math.round(c[0] * 100) / 100, Math.round(c[1] * 100) / 100];
for (const f of world.features) {
  f.geometry.coordinates = round(f.geometry.coordinates);
  f.properties = { name: f.properties.name };
}
fs.writeFileSync(path.join(out, "world-atlas", "countries-110m.geojson"), JSON.stringify(world));
const topoPkg = JSON.parse(fs.readFileSync(path.join(modules, "topojson-client", "package.json"), "utf8"));
versions.push(`topojson-client ${topoPkg.version} (${topoPkg.license}; build time only, to convert world-atlas)`);

fs.writeFileSync(path.join(out, "VERSIONS"),
  "Vendored by `make vendor` from web/vendor-src/package-lock.json (npm ci --ignore-scripts, node build.mjs).\n" +
  "Do not edit by hand. Licences are beside each package's files.\n" +
  "world-atlas/countries-110m.geojson: Natural Earth 1:110m admin-0 countries (public domain),\n" +
  "converted from world-atlas's TopoJSON, coordinates rounded to 0.01 degree.\n\n" +
  versions.sort().join("\n") + "\n");
console.log(versions.join("\n"));
