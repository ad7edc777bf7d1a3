// The field app (/field, medics): lines 1-5 first, into the outbox, sent when there is a connection.
import { el, session, signOut, hhmm } from "./api.js";
import { parsePosition, spaced, toMgrs } from "./geo.js";
import { Live } from "./live.js";
import { Outbox, newRef } from "./outbox.js";

const PRECEDENCES = ["urgent", "urgent_surgical", "priority", "routine", "convenience"];
const $ = (id) => document.getElementById(id);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/field-sw.js", { scope: "/field" }).catch((e) => console.warn("no service worker", e));
}

const current = session();
$("signout").addEventListener("click", signOut);
if (current && !["medic", "coordinator", "admin"].includes(current.user.role)) {
  $("refused").textContent = `Signed in as ${current.user.username} (${current.user.role}): the field app is for medics.`;
  $("refused").hidden = false;
  $("main").hidden = true;
}
if (current) $("who").textContent = `${current.user.username} (${current.user.role})`;
else {
  $("signed-out").hidden = false;
  $("signout").hidden = true;
}

const outbox = new Outbox(() => render().catch(console.error));
let gpsFix = null;
let editing = null;

// ---------------------------------------------------------------- location: GPS or typed, echoed as MGRS

function echoLocation() {
  const text = $("location").value;
  const echo = $("location-echo");
  if (!text.trim()) {
    echo.textContent = "";
    return null;
  }
  if (gpsFix && text === gpsFix.text) {
    echo.textContent = `MGRS ${gpsFix.mgrs} (GPS ±${Math.round(gpsFix.accuracy)} m)`;
    return gpsFix;
  }
  try {
    const position = parsePosition(text);
    echo.textContent = `MGRS ${position.mgrs}`;
    echo.classList.remove("error");
    return position;
  } catch (e) {
    echo.textContent = e.message;
    echo.classList.add("error");
    return null;
  }
}

$("location").addEventListener("input", echoLocation);
$("gps").addEventListener("click", () => {
  if (!navigator.geolocation) {
    $("location-echo").textContent = "no GPS on this device: type the position";
    return;
  }
  $("location-echo").textContent = "waiting for the GPS...";
  navigator.geolocation.getCurrentPosition((fix) => {
    const { latitude: lat, longitude: lon, accuracy } = fix.coords;
    const text = `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
    gpsFix = { lat, lon, mgrs: toMgrs(lat, lon), accuracy, kind: "gps", text };
    $("location").value = text;
    echoLocation();
  }, (error) => {
    $("location-echo").textContent = `GPS: ${error.message}; type the position`;
  }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
});

// ---------------------------------------------------------------- lines 1-5

function count(id) {
  const value = $(id).value.trim();
  return value === "" ? 0 : Number(value);
}

function formError(message) {
  $("form-error").textContent = message;
  $("form-error").hidden = !message;
}

$("lines").addEventListener("submit", async (event) => {
  event.preventDefault();
  const position = echoLocation();
  if (!position) return formError("Line 1: type a position (MGRS, DMS or lat, lon) or use the GPS.");
  const callsign = $("callsign").value.trim();
  const frequency = $("frequency").value.trim();
  if (!frequency) return formError("Line 2: the frequency is required.");
  if (!callsign) return formError("Line 2: the callsign is required.");
  const patients = Object.fromEntries(PRECEDENCES.map((p) => [p, count(`p-${p}`)]));
  const litter = count("litter");
  const ambulatory = count("ambulatory");
  const numbers = [...Object.values(patients), litter, ambulatory];
  if (numbers.some((n) => !Number.isInteger(n) || n < 0)) return formError("Counts are whole numbers, 0 or more.");
  const total = Object.values(patients).reduce((a, b) => a + b, 0);
  if (total < 1) return formError("Line 3: at least one patient.");
  if (total !== litter + ambulatory) {
    return formError(`Line 5: litter + ambulatory (${litter + ambulatory}) must equal the patients of line 3 (${total}).`);
  }
  formError("");
  const equipment = [...document.querySelectorAll("input[name=equipment]:checked")].map((c) => c.value);
  const body = {
    client_ref: newRef(),
    location: position.kind === "mgrs" ? { mgrs: position.mgrs.replace(/\s+/g, "") }
      : { lat: Number(position.lat.toFixed(6)), lon: Number(position.lon.toFixed(6)) },
    callsign, frequency, patients, equipment, litter, ambulatory,
  };
  await outbox.file(body, { lat: position.lat, lon: position.lon });
  $("lines").reset();
  gpsFix = null;
  echoLocation();
});

// ---------------------------------------------------------------- the outbox

function statusLine(item) {
  if (item.status === "dispatched") {
    const stage = item.server_status && item.server_status !== "dispatched" ? ` (${item.server_status.replace("_", " ")})` : "";
    const asset = item.asset_callsign || "asset";
    const eta = item.eta_minutes != null && ["dispatched", "at_pickup"].includes(item.server_status)
      ? `, ETA ~${item.eta_minutes} min (from ${hhmm(item.eta_at)})` : "";
    return `dispatched${stage}: ${asset}${eta}`;
  }
  return item.status;
}

async function render() {
  const items = await outbox.all();
  $("outbox").replaceChildren(...items.slice().reverse().map((item) => {
    const pending = item.ops.filter((o) => o.state === "queued").length;
    const rejected = item.ops.filter((o) => o.state === "rejected");
    const detail = [
      `filed ${hhmm(item.created_at)}`,
      item.body.location.mgrs ? `MGRS ${spaced(item.body.location.mgrs)}` : `MGRS ${toMgrs(item.body.location.lat, item.body.location.lon) || ""}`,
      item.status === "queued" && item.next_try > Date.now() ? `retry at ${hhmm(item.next_try)}` : null,
      item.error, pending ? `${pending} update(s) queued` : null,
      ...rejected.map((o) => `update refused: ${o.error}`),
    ].filter(Boolean).join(" · ");
    return el("li", { "data-ref": item.client_ref, "data-status": item.status },
      el("strong", { text: item.callsign }),
      el("span", { class: `status status-${item.status}`, text: statusLine(item) }),
      item.status !== "rejected" ? el("button", { type: "button", text: "Lines 6-9 and casualties",
                                                 "aria-label": `Update ${item.callsign}`,
                                                 onclick: () => openUpdate(item) }) : null,
      el("span", { class: "detail", text: detail }));
  }));
  $("outbox-empty").hidden = items.length > 0;
}

// ---------------------------------------------------------------- lines 6-9, casualties (later updates)

function openUpdate(item) {
  editing = item.client_ref;
  $("update").hidden = false;
  $("update-title").textContent = `Lines 6-9 and casualties: ${item.callsign}`;
  $("update").scrollIntoView({ behavior: "smooth" });
}

function updateError(message) {
  $("update-error").textContent = message;
  $("update-error").hidden = !message;
}

$("update-close").addEventListener("click", () => { $("update").hidden = true; editing = null; });

$("send-lines").addEventListener("click", async () => {
  const body = {};
  if ($("security").value) body.security = $("security").value;
  if ($("marking").value) body.marking = $("marking").value;
  if ($("nat-un_military").value !== "") body.nationality = { un_military: Number($("nat-un_military").value) };
  if ($("terrain").value.trim()) body.terrain = $("terrain").value.trim();
  if (!Object.keys(body).length) return updateError("Fill at least one of lines 6-9.");
  updateError("");
  await outbox.addOp(editing, "lines", body);
});

$("send-casualty").addEventListener("click", async () => {
  const number = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  const signs = { pulse: number("c-pulse"), resp_rate: number("c-resp"), spo2: number("c-spo2"), sbp: number("c-sbp") };
  for (const key of Object.keys(signs)) if (signs[key] === undefined) delete signs[key];
  const body = {
    zap: $("c-zap").value.trim() || undefined, age: number("c-age"),
    mechanism: $("c-mechanism").value || undefined, precedence: $("c-precedence").value || undefined,
    injuries: $("c-injuries").value.split(",").map((s) => s.trim()).filter(Boolean),
    signs: Object.keys(signs).length ? signs : undefined,
  };
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  updateError("");
  await outbox.addOp(editing, "casualty", body);
  for (const id of ["c-zap", "c-age", "c-injuries", "c-pulse", "c-resp", "c-spo2", "c-sbp"]) $(id).value = "";
});

// ---------------------------------------------------------------- connection: outbox retries, status push

window.addEventListener("online", () => outbox.kick());
render().then(() => outbox.kick());
if (current) {
  const live = new Live({
    storageKey: `medevac.field.seq.${current.user.id}`,
    onState: (text, state) => { $("connection").textContent = text; $("connection").dataset.state = state; },
    onEvent: (envelope) => {
      if (envelope.type && envelope.type.startsWith("casevac.") && envelope.data && envelope.data.id) {
        outbox.apply(envelope.data.id, envelope.data).catch(console.error);
      }
    },
  });
  live.socket.on("connect", () => { outbox.kick(); outbox.poll().catch(() => {}); });
  window.fieldLive = live;
  setInterval(() => outbox.poll().catch(() => {}), 30000);
}
setInterval(() => render().catch(console.error), 15000);
window.fieldOutbox = outbox;
