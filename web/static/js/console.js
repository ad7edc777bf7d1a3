// The operations console (/console, coordinators and admins): ../shared/design/CONSOLE.md.
import { api, ApiError, el, hhmm, requireSession, signOut } from "./api.js";
import { Live } from "./live.js";
import { Tone } from "./tone.js";
import { ConsoleMap } from "./map.js";
import { spaced, toMgrs } from "./geo.js";

const PRECEDENCES = ["urgent", "urgent_surgical", "priority", "routine", "convenience"];
const PRECEDENCE_NAMES = { urgent: "Urgent", urgent_surgical: "Urgent surgical", priority: "Priority",
                           routine: "Routine", convenience: "Convenience" };
const SHORT = { urgent: "U", urgent_surgical: "US", priority: "P", routine: "R", convenience: "C" };
const FINAL = ["delivered", "cancelled"];
// The lifecycle (API.md); `dispatched` only through Dispatch. A 409's `allowed` list replaces this guess.
const NEXT = { requested: ["acknowledged", "cancelled"], acknowledged: ["cancelled"],
               dispatched: ["at_pickup", "cancelled"], at_pickup: ["in_transit", "cancelled"],
               in_transit: ["delivered", "cancelled"] };
const MOVE_LABELS = { acknowledged: "Acknowledge", at_pickup: "At pickup", in_transit: "In transit",
                      delivered: "Delivered", cancelled: "Cancel request" };
const LEGS = ["first_aid", "resuscitation", "surgery"];
const LEG_NAMES = { first_aid: "first aid (10 min)", resuscitation: "resuscitation (1 h)", surgery: "surgery (2 h)" };
const STATE_RANK = { breached: 3, at_risk: 2, pending: 1, met: 0 };
const PAGE_LOADED = Date.now();

const state = {
  queue: new Map(),      // id -> summary (RequestSummaryOut)
  details: new Map(),    // id -> full request (RequestOut)
  assets: new Map(),
  facilities: new Map(),
  selected: null,
  alerts: new Map(),     // key -> {key, requestId, text, kind, silenced}
  plan: null,
};

const current = requireSession(["coordinator", "admin"]);
document.getElementById("signout").addEventListener("click", signOut);
if (current && current.refused) {
  refuse(`Signed in as ${current.user.username} (${current.user.role}): the operations console is for ` +
         "coordinators and admins.");
} else if (current) {
  document.getElementById("who").textContent = `${current.user.username} (${current.user.role})`;
  start();
}

function refuse(message) {
  const box = document.getElementById("refused");
  box.textContent = message;
  box.hidden = false;
  document.getElementById("main").hidden = true;
}

async function start() {
  window.consoleState = state; // for the browser tests and the curious operator
  const map = new ConsoleMap(document.getElementById("map"), document.getElementById("map-cursor"), select);
  state.map = map;
  bindFilters();
  document.getElementById("plan-run").addEventListener("click", runPlan);
  document.getElementById("plan-dispatch").addEventListener("click", dispatchPlan);
  document.getElementById("metrics-refresh").addEventListener("click", loadMetrics);
  try {
    await loadQueue();
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      refuse("The API refused the queue: " + e.message);
      return;
    }
    if (e instanceof ApiError && e.status === 401) return; // back to sign-in, with the message
    throw e;
  }
  state.live = new Live({ storageKey: "medevac.console.seq", onEvent, onState: showConnection,
                          onFresh: () => loadQueue({ alertNew: true }).catch(console.error) });
  Promise.all([loadAssets(), loadFacilities()]).then(() => map.draw(state)).catch(console.error);
  loadMetrics().catch(console.error);
  setInterval(tick, 1000);
  setupSound();
}

function showConnection(text, status) {
  const node = document.getElementById("connection");
  node.textContent = text;
  node.dataset.state = status;
  if (state.live) node.dataset.transport = state.live.transport || "";
  else setTimeout(() => { if (state.live) node.dataset.transport = state.live.transport || ""; }, 0);
}

// ---------------------------------------------------------------- queue

function filters() {
  return { status: document.getElementById("filter-status").value,
           precedence: document.getElementById("filter-precedence").value };
}

function bindFilters() {
  for (const id of ["filter-status", "filter-precedence"]) {
    document.getElementById(id).addEventListener("change", () => loadQueue().catch(console.error));
  }
}

async function loadQueue({ alertNew = false } = {}) {
  const { status, precedence } = filters();
  const params = new URLSearchParams({ limit: "500" });
  if (status) params.set("status", status); else params.set("active", "true");
  if (precedence) params.set("precedence", precedence);
  const items = [];
  let cursor = null;
  do {
    if (cursor) params.set("cursor", cursor);
    const page = await api("/casevac/requests?" + params);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  if (alertNew) {
    // After a fresh tab's watermark search: a request filed since the first load (whose event fell below
    // the watermark, e.g. when the search had to start again after a disconnect) still rings.
    for (const r of items) {
      if (!state.queue.has(r.id) && r.status === "requested") {
        raise(`new:${r.id}`, r.id, "new", `New ${PRECEDENCE_NAMES[r.precedence] || r.precedence} request`);
      }
    }
  }
  state.queue = new Map(items.map((r) => [r.id, r]));
  state.order = items.map((r) => r.id);
  renderQueue();
  state.map && state.map.draw(state);
  loadDetails(items.map((r) => r.id));
}

let queueReload = null;
function reloadQueueSoon() {
  clearTimeout(queueReload);
  queueReload = setTimeout(() => loadQueue().catch(console.error), 150);
}

const detailLoads = new Map();
function loadDetails(ids) {
  // The 10-1-2 columns need the casualties: fetched beside the queue, four at a time, after the first paint.
  const queue = ids.filter((id) => !detailLoads.has(id));
  const worker = async () => {
    while (queue.length) {
      const id = queue.shift();
      await fetchDetail(id).catch(() => {});
    }
  };
  for (let i = 0; i < 4; i += 1) worker();
}

function fetchDetail(id) {
  const pending = api(`/casevac/requests/${id}`).then((request) => {
    state.details.set(id, request);
    if (state.queue.has(id)) state.queue.set(id, { ...state.queue.get(id), ...summaryOf(request) });
    renderQueue();
    if ([...state.alerts.values()].some((a) => a.requestId === id)) renderAlerts();
    if (state.selected === id) renderDetail();
    return request;
  }).finally(() => detailLoads.delete(id));
  detailLoads.set(id, pending);
  return pending;
}

function summaryOf(request) {
  const { history, casualties, ...rest } = request;
  return { ...rest, casualties_count: (casualties || []).length };
}

function matchesFilters(request) {
  const { status, precedence } = filters();
  if (status ? request.status !== status : FINAL.includes(request.status)) return false;
  return !precedence || request.precedence === precedence;
}

function sortedQueue() {
  const rank = (p) => PRECEDENCES.indexOf(p);
  return [...state.queue.values()].sort((a, b) =>
    rank(a.precedence) - rank(b.precedence) || Date.parse(a.created_at) - Date.parse(b.created_at));
}

function patientsText(r) {
  const parts = PRECEDENCES.filter((p) => r.patients && r.patients[p]).map((p) => `${r.patients[p]} ${SHORT[p]}`);
  const total = PRECEDENCES.reduce((sum, p) => sum + ((r.patients && r.patients[p]) || 0), 0);
  return `${total} (${parts.join(", ")}) L${r.litter} A${r.ambulatory}`;
}

function linesText(r) {
  if (r.lines_complete) return "complete";
  return "missing " + (r.missing_lines && r.missing_lines.length ? r.missing_lines.join(", ") : "6-9");
}

function age(created) {
  const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(created)) / 60000));
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function countdown(ms) {
  const negative = ms < 0;
  const s = Math.floor(Math.abs(ms) / 1000);
  const text = `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}:` +
    String(s % 60).padStart(2, "0");
  return negative ? `-${text}` : text;
}

/** The worst 10-1-2 state over the casualties and the next leg due (still open) with its time. */
function worstTenOneTwo(request) {
  if (!request || !request.casualties) return null;
  let worst = null;
  let next = null;
  for (const casualty of request.casualties) {
    for (const leg of LEGS) {
      const value = casualty.timeline && casualty.timeline[leg];
      if (!value) continue;
      if (!worst || STATE_RANK[value.state] > STATE_RANK[worst.state]) worst = { ...value, leg };
      if (!value.met_at && value.due && (!next || Date.parse(value.due) < Date.parse(next.due))) {
        next = { ...value, leg };
      }
    }
  }
  return worst ? { worst, next } : { worst: null, next: null, none: true };
}

function tenOneTwoCell(id) {
  const info = worstTenOneTwo(state.details.get(id));
  const cell = el("td", { class: "ten-one-two" });
  if (!info) {
    cell.textContent = "...";
  } else if (info.none) {
    cell.textContent = "no casualty yet";
  } else {
    cell.append(el("span", { class: `state state-${info.worst.state}`, text: info.worst.state.replace("_", " ") }));
    if (info.next) {
      cell.append(" ", el("span", { class: "countdown", "data-due": info.next.due, title: LEG_NAMES[info.next.leg],
                                    text: `${info.next.leg.replace("_", " ")} ${countdown(Date.parse(info.next.due) - Date.now())}` }));
    }
  }
  return cell;
}

function renderQueue() {
  const body = document.querySelector("#queue tbody");
  const rows = sortedQueue().filter(matchesFilters);
  body.replaceChildren(...rows.map((r) => el("tr", {
    class: `precedence-${r.precedence}${state.selected === r.id ? " selected" : ""}`, "data-id": r.id,
    onclick: () => select(r.id),
  },
    el("td", {}, el("span", { class: `badge precedence-${r.precedence}`, text: PRECEDENCE_NAMES[r.precedence] })),
    el("td", {}, el("button", { type: "button", class: "link", text: r.callsign,
                                onclick: (event) => { event.stopPropagation(); select(r.id); } })),
    el("td", { class: "age", "data-created": r.created_at, text: age(r.created_at) }),
    el("td", { class: "mgrs", text: spaced(r.location && r.location.mgrs) || "" }),
    el("td", { text: patientsText(r) }),
    el("td", { class: r.lines_complete ? "complete" : "incomplete", text: linesText(r) }),
    tenOneTwoCell(r.id),
    el("td", { class: `status status-${r.status}`, text: r.status.replace("_", " ") }),
  )));
  document.getElementById("queue-empty").hidden = rows.length > 0;
}

function tick() {
  for (const node of document.querySelectorAll(".countdown[data-due]")) {
    const leg = node.textContent.split(" ").slice(0, -1).join(" ");
    node.textContent = `${leg} ${countdown(Date.parse(node.dataset.due) - Date.now())}`;
    node.classList.toggle("overdue", Date.parse(node.dataset.due) < Date.now());
  }
  for (const node of document.querySelectorAll(".age[data-created]")) node.textContent = age(node.dataset.created);
}

// ---------------------------------------------------------------- live events

function onEvent(envelope, { replayed }) {
  const { type, data } = envelope;
  const fresh = !replayed || Date.parse(envelope.at) >= PAGE_LOADED - 2000;
  if (type.startsWith("casevac.") && data && data.id) {
    const known = state.queue.get(data.id) || {};
    state.queue.set(data.id, { ...known, ...pickSummary(data), id: data.id });
    if (!known.callsign) {
      // A request this page has not loaded yet: its summary comes with its detail.
      fetchDetail(data.id).catch(console.error);
    } else {
      renderQueue();
      fetchDetail(data.id).catch(console.error);
    }
    if (type === "casevac.created" && fresh && data.status === "requested") {
      raise(`new:${data.id}`, data.id, "new", `New ${PRECEDENCE_NAMES[data.precedence] || data.precedence} request`);
    }
    if (type === "casevac.escalated" && fresh) {
      // Not acknowledged in time (raised while requested), or a dispatched request about to miss its
      // 10-1-2 surgery leg: the first ends with the acknowledgement, the second with delivery.
      const late = data.reason === "surgery_deadline";
      raise(`escalated:${data.id}:${envelope.seq}`, data.id, late ? "escalated-late" : "escalated",
            late ? "Escalated: will miss the 10-1-2 surgery deadline" : "Escalated: not acknowledged in time");
    }
    if (data.status && data.status !== "requested") clearAlerts(data.id, ["new", "escalated"]);
    if (data.status && FINAL.includes(data.status)) clearAlerts(data.id, ["new", "escalated", "escalated-late"]);
    state.map && state.map.draw(state);
  } else if (type === "asset.updated" && data && data.id) {
    state.assets.set(data.id, data);
    state.map && state.map.draw(state);
  } else if (type === "asset.position" && data) {
    const id = data.asset_id || data.id;
    const asset = state.assets.get(id);
    if (asset) {
      asset.position = { ...(asset.position || {}), ...data };
      state.map && state.map.moveAsset(asset);
    }
  } else if (type === "facility.updated" && data && data.id) {
    state.facilities.set(data.id, data);
    state.map && state.map.draw(state);
  } else if (type === "emergency" && fresh) {
    raise(`emergency:${envelope.seq}`, null, "emergency",
          `EMERGENCY ${data.kind || ""} from ${data.callsign || "unknown"} at ${toMgrs(data.lat, data.lon) || ""}`,
          { callsign: data.callsign });
  } else if (type === "emergency.cancelled") {
    for (const alert of [...state.alerts.values()]) {
      if (alert.kind === "emergency" && alert.callsign === data.callsign) state.alerts.delete(alert.key);
    }
    renderAlerts();
  }
}

function pickSummary(data) {
  const out = { status: data.status, precedence: data.precedence, lines_complete: data.lines_complete,
                asset_id: data.asset_id, facility_id: data.facility_id, updated_at: data.updated_at,
                deadline: data.deadline };
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
  return out;
}

// ---------------------------------------------------------------- alerts and the tone

function raise(key, requestId, kind, text, extra = {}) {
  if (state.alerts.has(key)) return;
  state.alerts.set(key, { key, requestId, kind, text, silenced: false, at: new Date(), ...extra });
  renderAlerts();
}

function clearAlerts(requestId, kinds) {
  let changed = false;
  for (const alert of [...state.alerts.values()]) {
    if (alert.requestId === requestId && kinds.includes(alert.kind)) {
      state.alerts.delete(alert.key);
      changed = true;
    }
  }
  if (changed) renderAlerts();
}

function renderAlerts() {
  const box = document.getElementById("alerts");
  box.replaceChildren(...[...state.alerts.values()].map((alert) => {
    const request = alert.requestId && (state.queue.get(alert.requestId) || {});
    const where = request && request.location ? ` at ${spaced(request.location.mgrs)}` : "";
    const who = request && request.callsign ? ` ${request.callsign}` : "";
    return el("div", { class: `alert alert-${alert.kind}${alert.silenced ? " silenced" : ""}`, role: "alert",
                       "data-key": alert.key },
      el("strong", { text: `${alert.text}${who}${where}` }), ` (${hhmm(alert.at)})`,
      alert.requestId ? el("button", { type: "button", text: "Show", onclick: () => select(alert.requestId) }) : null,
      el("button", { type: "button", text: alert.silenced ? "Dismiss" : "Silence",
                     onclick: () => {
                       if (alert.silenced || !alert.requestId) state.alerts.delete(alert.key);
                       else alert.silenced = true;
                       renderAlerts();
                     } }));
  }));
  updateTone();
}

let tone = null;

function setupSound() {
  tone = new Tone(document.getElementById("sound"), document.getElementById("alerts"));
}

function updateTone() {
  const ringing = [...state.alerts.values()].some((a) => !a.silenced);
  if (tone) tone.set(ringing);
  else document.getElementById("alerts").dataset.tone = ringing ? "on" : "off";
}

// ---------------------------------------------------------------- detail

async function select(id) {
  state.selected = id;
  state.recommendations = null;
  renderQueue();
  renderDetail();
  await fetchDetail(id).catch(console.error);
  const request = state.details.get(id);
  if (request && ["requested", "acknowledged"].includes(request.status)) {
    try {
      state.recommendations = { id, ...(await api(`/casevac/requests/${id}/recommendations`)) };
    } catch (e) {
      state.recommendations = { id, error: e.message };
    }
    renderDetail();
  }
  state.map && state.map.draw(state);
}

function dl(pairs) {
  return el("dl", { class: "lines" }, pairs.flatMap(([term, value]) => [el("dt", { text: term }),
                                                                          el("dd", { text: value ?? "-" })]));
}

function renderDetail() {
  const box = document.getElementById("detail");
  const request = state.details.get(state.selected) || state.queue.get(state.selected);
  if (!request) {
    box.replaceChildren(el("h2", { text: "Request detail" }), el("p", { class: "muted", text: "Select a request in the queue." }));
    return;
  }
  const message = state.message && state.message.id === request.id ? state.message : null;
  const asset = request.asset_id && state.assets.get(request.asset_id);
  const facility = request.facility_id && state.facilities.get(request.facility_id);
  const nationality = request.nationality ? Object.entries(request.nationality).map(([k, v]) => `${v} ${k}`).join(", ") : null;
  const children = [
    el("h2", { text: `Request detail: ${request.callsign}` }),
    el("p", {}, el("span", { class: `badge precedence-${request.precedence}`, text: PRECEDENCE_NAMES[request.precedence] }),
       " ", el("span", { class: `status status-${request.status}`, text: request.status.replace("_", " ") }),
       request.deadline ? ` deadline ${hhmm(request.deadline)}` : ""),
    dl([
      ["1 Location", `${spaced(request.location && request.location.mgrs)} (${request.location ? request.location.lat.toFixed(4) + ", " + request.location.lon.toFixed(4) : ""})`],
      ["2 Frequency / callsign", `${request.frequency || "-"} / ${request.callsign}`],
      ["3 Patients", patientsText(request)],
      ["4 Equipment", (request.equipment || []).join(", ") || "none"],
      ["5 Litter / ambulatory", `${request.litter} litter, ${request.ambulatory} ambulatory`],
      ["6 Security", request.security],
      ["7 Marking", [request.marking, request.marking_detail].filter(Boolean).join(": ") || null],
      ["8 Nationality", nationality],
      ["9 Terrain / CBRN", [request.terrain, (request.cbrn || []).join(", ")].filter(Boolean).join("; ") || null],
      ["Remarks", request.remarks],
      ["Asset / facility", [asset ? asset.callsign : request.asset_id, facility ? facility.name : request.facility_id].filter(Boolean).join(" to ") || null],
    ]),
    moveButtons(request),
    el("p", { id: "detail-message", class: `message${message && message.bad ? " error" : ""}`, role: "status",
              text: message ? message.text : "" }),
    recommendationsView(request),
    casualtiesView(request),
    historyView(request),
  ];
  box.replaceChildren(...children.filter(Boolean));
}

function moveButtons(request, allowed) {
  const moves = allowed || NEXT[request.status] || [];
  const box = el("div", { class: "moves", id: "moves" });
  for (const move of moves) {
    if (move === "dispatched") continue;
    box.append(el("button", { type: "button", class: move === "cancelled" ? "danger" : "",
                              text: MOVE_LABELS[move] || move, onclick: () => moveTo(request, move) }));
  }
  if (move_note_needed(moves)) {
    box.append(el("label", { class: "note" }, "Note ", el("input", { id: "move-note", type: "text", maxlength: "500" })));
  }
  return box;
}

function move_note_needed(moves) {
  return moves.includes("cancelled");
}

function say(text, bad = false) {
  state.message = { id: state.selected, text, bad };
  const node = document.getElementById("detail-message");
  if (node) {
    node.textContent = text;
    node.classList.toggle("error", bad);
  }
}

async function moveTo(request, status) {
  const noteInput = document.getElementById("move-note");
  const note = noteInput && noteInput.value.trim();
  if (status === "cancelled" && !note) {
    say("A cancellation needs a note: type the reason, then Cancel request.", true);
    noteInput && noteInput.focus();
    return;
  }
  try {
    const updated = await api(`/casevac/requests/${request.id}/status`, {
      method: "POST", body: note ? { status, note } : { status } });
    state.details.set(updated.id, updated);
    state.queue.set(updated.id, { ...(state.queue.get(updated.id) || {}), ...summaryOf(updated) });
    if (status !== "requested") clearAlerts(updated.id, ["new", "escalated"]);
    renderQueue();
    renderDetail();
    say(`Now ${updated.status.replace("_", " ")}.`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 409 && e.body && e.body.allowed) {
      renderDetail();
      document.getElementById("moves").replaceWith(moveButtons(request, e.body.allowed));
    }
    say(e.message, true);
  }
}

function recommendationsView(request) {
  if (!["requested", "acknowledged"].includes(request.status)) return null;
  const recs = state.recommendations && state.recommendations.id === request.id ? state.recommendations : null;
  const box = el("section", { class: "recommendations", "aria-label": "Recommendations" }, el("h3", { text: "Recommendations" }));
  if (!recs) {
    box.append(el("p", { class: "muted", text: "computing..." }));
  } else if (recs.error) {
    box.append(el("p", { class: "error", text: recs.error }));
  } else if (!recs.options.length) {
    box.append(el("p", { class: "muted", text: "No asset and facility can serve this request now." }));
    for (const ex of recs.excluded_assets || []) box.append(el("p", { class: "small", text: `${ex.callsign}: ${ex.reasons.join("; ")}` }));
  } else {
    box.append(el("ol", {}, recs.options.map((option) => el("li", { class: option.meets_deadline && option.meets_ten_one_two ? "feasible" : "late" },
      el("strong", { text: `${option.callsign} to ${option.facility_name}` }),
      ` pickup ETA ${Math.round(option.pickup_eta_minutes)} min, delivery ETA ${Math.round(option.delivery_eta_minutes)} min, ` +
      `${Math.round(option.distance_km)} km; ${option.meets_deadline ? "meets" : "misses"} the deadline, ` +
      `${option.meets_ten_one_two ? "meets" : "misses"} 10-1-2${option.ground_leg ? ", ground leg" : ""}`,
      el("button", { type: "button", text: "Dispatch", onclick: () => dispatch(request.id, option.asset_id, option.facility_id) }),
      el("ul", { class: "reasons" }, (option.reasons || []).map((reason) => el("li", { text: reason })))))));
  }
  return box;
}

async function dispatch(requestId, assetId, facilityId) {
  try {
    const updated = await api(`/casevac/requests/${requestId}/dispatch`, {
      method: "POST", body: { asset_id: assetId, facility_id: facilityId } });
    state.details.set(updated.id, updated);
    state.queue.set(updated.id, { ...(state.queue.get(updated.id) || {}), ...summaryOf(updated) });
    clearAlerts(updated.id, ["new", "escalated"]);
    renderQueue();
    renderDetail();
    const asset = state.assets.get(assetId);
    say(`Dispatched ${asset ? asset.callsign : assetId}.`);
    loadAssets().then(() => state.map.draw(state)).catch(console.error);
    return updated;
  } catch (e) {
    say(e.message, true);
    if (e instanceof ApiError && e.status === 409) select(requestId);
    throw e;
  }
}

function casualtiesView(request) {
  if (!request.casualties) return null;
  const box = el("section", { class: "casualties", "aria-label": "Casualties" },
                 el("h3", { text: `Casualties (MIST-AT): ${request.casualties.length}` }));
  for (const casualty of request.casualties) {
    const item = el("article", { class: "casualty" },
      el("h4", { text: `${casualty.zap || "casualty"}: ${PRECEDENCE_NAMES[casualty.precedence] || casualty.precedence || ""}` }),
      dl([
        ["M Mechanism", [casualty.mechanism, casualty.mechanism_detail].filter(Boolean).join(": ") || null],
        ["I Injuries", (casualty.injuries || []).join(", ") || null],
        ["T Treatments", (casualty.treatments || []).map((t) => `${t.code}${t.at ? " " + hhmm(t.at) : ""}`).join(", ") || null],
        ["A Age", casualty.age],
        ["T Time of injury", casualty.time_of_injury ? hhmm(casualty.time_of_injury) : "unknown (from filing)"],
      ]),
      el("p", { class: "timeline" }, LEGS.map((leg) => {
        const value = casualty.timeline && casualty.timeline[leg];
        return value ? el("span", { class: `state state-${value.state}`, text: `${LEG_NAMES[leg]}: ${value.state.replace("_", " ")}` }) : null;
      })));
    const vitals = el("table", { class: "vitals", "aria-label": `Vitals ${casualty.zap || casualty.id}` },
      el("thead", {}, el("tr", {}, ["time", "pulse", "resp", "SpO2", "BP", "GCS", "AVPU", "temp"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}));
    item.append(vitals);
    box.append(item);
    loadVitals(casualty, vitals.querySelector("tbody"));
  }
  return box;
}

const vitalsCache = new Map();
async function loadVitals(casualty, body) {
  const fill = (history) => body.replaceChildren(...history.map((s) => el("tr", {},
    [s.taken_at ? hhmm(s.taken_at) : "", s.pulse, s.resp_rate, s.spo2, s.sbp ? `${s.sbp}/${s.dbp ?? ""}` : "", s.gcs, s.avpu, s.temp_c]
      .map((v) => el("td", { text: v ?? "" })))));
  const cached = vitalsCache.get(casualty.id);
  if (cached && cached.count === casualty.signs_count) { fill(cached.history); return; }
  if (!casualty.signs_count) { fill([]); return; }
  try {
    const detail = await api(`/casevac/casualties/${casualty.id}`);
    const history = detail.signs_history || [];
    vitalsCache.set(casualty.id, { count: casualty.signs_count, history });
    fill(history);
  } catch (e) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "8", text: e.message })));
  }
}

function historyView(request) {
  if (!request.history) return null;
  return el("section", { class: "history", "aria-label": "Status history" }, el("h3", { text: "Status history" }),
    el("table", {}, el("tbody", {}, request.history.map((h) => el("tr", {},
      el("td", { text: hhmm(h.at) }), el("td", { text: h.status.replace("_", " ") }), el("td", { text: h.note || "" }))))));
}

// ---------------------------------------------------------------- assets, facilities

async function loadAll(path) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(`${path}${path.includes("?") ? "&" : "?"}limit=500${cursor ? "&cursor=" + encodeURIComponent(cursor) : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

async function loadAssets() {
  state.assets = new Map((await loadAll("/assets")).map((a) => [a.id, a]));
}

async function loadFacilities() {
  state.facilities = new Map((await loadAll("/facilities")).map((f) => [f.id, f]));
}

// ---------------------------------------------------------------- mass casualty

async function runPlan() {
  const box = document.getElementById("plan");
  box.replaceChildren(el("p", { class: "muted", text: "planning..." }));
  try {
    state.plan = await api("/casevac/plan", { method: "POST", body: {} });
  } catch (e) {
    box.replaceChildren(el("p", { class: "error", text: e.message }));
    return;
  }
  if (!state.assets.size) await loadAssets();
  if (!state.facilities.size) await loadFacilities();
  renderPlan();
}

function callsignOf(requestId) {
  const r = state.queue.get(requestId) || state.details.get(requestId);
  return r ? r.callsign : requestId;
}

function renderPlan() {
  const plan = state.plan;
  const box = document.getElementById("plan");
  const table = el("table", { "aria-label": "Assignments" },
    el("thead", {}, el("tr", {}, ["Accept", "Request", "Asset", "Facility", "Delivery ETA", "Reasons", "Result"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, plan.assignments.map((a, i) => el("tr", { "data-index": i },
      el("td", {}, el("input", { type: "checkbox", checked: true, "aria-label": `Accept ${callsignOf(a.request_id)}`, "data-index": i })),
      el("td", { text: callsignOf(a.request_id) }),
      el("td", { text: (state.assets.get(a.asset_id) || {}).callsign || a.asset_id }),
      el("td", { text: (state.facilities.get(a.facility_id) || {}).name || a.facility_id }),
      el("td", { text: `${Math.round(a.delivery_eta_minutes)} min` }),
      el("td", { class: "small", text: (a.reasons || []).join("; ") }),
      el("td", { class: "result", text: "" })))));
  const unserved = el("ul", { "aria-label": "Unserved" }, plan.unserved.map((u) => el("li", { text: `${callsignOf(u.request_id)}: ${u.reason}` })));
  box.replaceChildren(plan.assignments.length ? table : el("p", { class: "muted", text: "No assignment." }),
                      el("h3", { text: `Unserved: ${plan.unserved.length}` }), unserved);
  document.getElementById("plan-dispatch").disabled = !plan.assignments.length;
}

async function dispatchPlan() {
  const plan = state.plan;
  if (!plan) return;
  for (const box of document.querySelectorAll("#plan input[type=checkbox]")) {
    if (!box.checked) continue;
    const a = plan.assignments[Number(box.dataset.index)];
    const result = box.closest("tr").querySelector(".result");
    try {
      await dispatch(a.request_id, a.asset_id, a.facility_id);
      result.textContent = "dispatched";
    } catch (e) {
      result.textContent = e.message;
    }
    box.checked = false;
  }
}

// ---------------------------------------------------------------- metrics (SVG chart)

async function loadMetrics() {
  const metrics = await api("/casevac/metrics");
  renderMetrics(metrics);
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function renderMetrics(m) {
  const box = document.getElementById("metrics-chart");
  const stages = ["acknowledged", "dispatched", "at_pickup", "delivered"];
  const medians = stages.map((s) => (m.median_minutes || {})[s]);
  const maxMinutes = Math.max(10, ...medians.filter((v) => v != null));
  const width = 560, row = 22, left = 130, barMax = 290;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${row * 9 + 30}`, role: "img", class: "chart",
                             "aria-label": "Median minutes from filing to each stage, and 10-1-2 compliance per leg" });
  chart.append(svg("text", { x: 0, y: 14, class: "chart-title" }, `Median minutes from filing (${m.total} requests)`));
  stages.forEach((stage, i) => {
    const y = 22 + i * row;
    const value = medians[i];
    chart.append(svg("text", { x: 0, y: y + 14 }, stage.replace("_", " ")));
    chart.append(svg("rect", { x: left, y: y + 3, width: value == null ? 0 : Math.max(1, (value / maxMinutes) * barMax), height: row - 8, class: "bar" }));
    chart.append(svg("text", { x: left + (value == null ? 0 : (value / maxMinutes) * barMax) + 6, y: y + 14 }, value == null ? "no data" : `${value.toFixed(1)} min`));
  });
  const y0 = 22 + 4 * row + 14;
  chart.append(svg("text", { x: 0, y: y0, class: "chart-title" }, "10-1-2 compliance (share of legs met)"));
  LEGS.forEach((leg, i) => {
    const y = y0 + 8 + i * row;
    const c = (m.ten_one_two || {})[leg] || {};
    chart.append(svg("text", { x: 0, y: y + 14 }, leg.replace("_", " ")));
    chart.append(svg("rect", { x: left, y: y + 3, width: barMax, height: row - 8, class: "bar-bg" }));
    chart.append(svg("rect", { x: left, y: y + 3, width: c.share == null ? 0 : c.share * barMax, height: row - 8, class: "bar-ok" }));
    chart.append(svg("text", { x: left + barMax + 6, y: y + 14 }, c.share == null ? "none counted" : `${Math.round(c.share * 100)}% of ${c.counted}`));
  });
  const deadline = m.within_deadline || {};
  box.replaceChildren(chart, el("p", { class: "small", text:
    `Delivered within the precedence deadline: ${deadline.share == null ? "none counted" : Math.round(deadline.share * 100) + "% of " + deadline.counted}. ` +
    `By precedence: ${Object.entries(m.by_precedence || {}).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(", ") || "none"}.` }));
}
