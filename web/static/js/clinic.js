// The clinic page (/clinic, clinicians): today's and this week's consultations in the clinician's own
// time zone (from the profile), check-in state, join, notes, the store-and-forward inbox with replies and
// attachments, and for mental-health clinicians the screening alerts (banner + tone until acknowledged).
import { api, ApiError, el, requireSession, signOut } from "./api.js";
import { Call } from "./call.js";
import { Live } from "./live.js";
import { Tone } from "./tone.js";

const MENTAL = ["psychiatry", "psychology"];
const ENDED = ["cancelled", "noshow", "fulfilled"];
const CHECK_IN = { booked: "not checked in", checked_in: "checked in", in_progress: "in progress",
                   fulfilled: "done", cancelled: "cancelled", noshow: "no-show" };
const state = { profile: null, consultations: new Map(), alerts: new Map(), selected: null, tone: null };

const current = requireSession(["clinician"]);
document.getElementById("signout").addEventListener("click", signOut);
if (current && current.refused) {
  const box = document.getElementById("refused");
  box.textContent = `Signed in as ${current.user.username} (${current.user.role}): the clinic is for clinicians.`;
  box.hidden = false;
  document.getElementById("main").hidden = true;
} else if (current) {
  document.getElementById("who").textContent = `${current.user.username} (${current.user.role})`;
  start().catch((e) => console.error(e));
}

function mental() {
  return state.profile && state.profile.specialties.some((s) => MENTAL.includes(s));
}

async function start() {
  window.clinicState = state;
  state.profile = await findProfile();
  if (!state.profile) {
    const box = document.getElementById("refused");
    box.textContent = "You have no clinician profile yet: an admin of your mission creates it.";
    box.hidden = false;
    document.getElementById("main").hidden = true;
    return;
  }
  document.getElementById("zone").textContent = `times in ${state.profile.timezone}`;
  if (!mental()) document.querySelector('#note-form option[value="psychotherapy"]').remove();
  document.getElementById("note-form").addEventListener("submit", saveNote);
  document.getElementById("reply-form").addEventListener("submit", sendReply);
  document.getElementById("invite-form").addEventListener("submit", invite);
  state.tone = new Tone(document.getElementById("sound"), document.getElementById("alerts"));
  await Promise.all([loadSchedule(), loadInvitations()]);
  if (mental()) await loadAlerts();
  state.live = new Live({ storageKey: "medevac.clinic.seq", onEvent, onState: showConnection,
                          onFresh: () => refresh() });
  setInterval(() => renderSchedule(), 60000);
}

function refresh() {
  loadSchedule().catch(console.error);
  loadInvitations().catch(console.error);
  if (mental()) loadAlerts().catch(console.error);
}

async function findProfile() {
  let cursor = null;
  do {
    const page = await api("/telemed/clinicians?limit=100" + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
    const mine = page.items.find((c) => c.user_id === current.user.id);
    if (mine) return mine;
    cursor = page.next_cursor;
  } while (cursor);
  return null;
}

function showConnection(text) {
  document.getElementById("connection").textContent = text;
}

function onEvent(envelope) {
  const { type } = envelope;
  if (typeof type !== "string") return; // the call's live messages (call.*) are the call's own
  if (type === "consult.booked" || type === "consult.updated") loadSchedule().catch(console.error);
  if (type === "consult.updated" && envelope.data && envelope.data.change === "participants") {
    loadInvitations().catch(console.error);
    if (state.selected === envelope.data.id) loadParticipants(state.selected).catch(console.error);
  }
  if (type.startsWith("screening.") && mental()) loadAlerts().catch(console.error);
}

// ---------------------------------------------------------------- time in the clinician's zone

function zoned(iso, options) {
  return new Intl.DateTimeFormat("en-GB", { timeZone: state.profile.timezone, ...options }).format(new Date(iso));
}

/** YYYY-MM-DD of an instant in the clinician's zone. */
function localDate(instant) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: state.profile.timezone, year: "numeric", month: "2-digit",
                                            day: "2-digit" }).format(instant);
}

/** The seven local dates (Monday first) of the week holding `today` (YYYY-MM-DD). */
function weekOf(today) {
  const [y, m, d] = today.split("-").map(Number);
  const noon = Date.UTC(y, m - 1, d, 12);
  const monday = noon - ((new Date(noon).getUTCDay() + 6) % 7) * 86400000;
  return Array.from({ length: 7 }, (_, i) => new Date(monday + i * 86400000).toISOString().slice(0, 10));
}

async function loadSchedule() {
  const now = Date.now();
  const from = new Date(now - 8 * 86400000).toISOString();
  const to = new Date(now + 8 * 86400000).toISOString();
  const found = new Map();
  for (const query of [`from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, "status=booked",
                       "status=checked_in", "status=in_progress"]) {
    let cursor = null;
    do {
      const page = await api(`/telemed/consultations?clinician_id=${state.profile.id}&limit=100&${query}` +
                             (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
      for (const c of page.items) found.set(c.id, c);
      cursor = page.next_cursor;
    } while (cursor);
  }
  state.consultations = found;
  renderSchedule();
}

function patientOf(c) {
  return (c.patient && c.patient.name) || (c.patient && c.patient.user_id ? "member" : "patient");
}

function row(c, withDay) {
  const cells = [];
  if (withDay) cells.push(el("td", { text: zoned(c.start, { weekday: "short", day: "numeric", month: "short" }) }));
  cells.push(el("td", { text: `${zoned(c.start, { hour: "2-digit", minute: "2-digit", hour12: false })}-` +
                              zoned(c.end, { hour: "2-digit", minute: "2-digit", hour12: false }) }));
  cells.push(el("td", { text: patientOf(c) }));
  cells.push(el("td", { text: c.kind.replace("_", " ") }));
  if (!withDay) cells.push(el("td", { text: c.modality }));
  cells.push(el("td", { class: `checkin checkin-${c.status}`, text: CHECK_IN[c.status] || c.status }));
  cells.push(el("td", {},
    el("button", { type: "button", text: "Open", "aria-label": `Open ${patientOf(c)}`, onclick: () => select(c.id) }),
    ENDED.includes(c.status) ? null
      : el("button", { type: "button", text: "Join", "aria-label": `Join ${patientOf(c)}`, onclick: () => join(c.id) })));
  return el("tr", { "data-id": c.id, class: state.selected === c.id ? "selected" : null }, cells);
}

function renderSchedule() {
  if (!state.profile) return;
  const today = localDate(new Date());
  const week = weekOf(today);
  const timed = [...state.consultations.values()].filter((c) => c.start && c.modality !== "async").sort((a, b) => a.start.localeCompare(b.start));
  const todays = timed.filter((c) => localDate(new Date(c.start)) === today);
  const weeks = timed.filter((c) => week.includes(localDate(new Date(c.start))));
  document.querySelector("#today tbody").replaceChildren(...todays.map((c) => row(c, false)));
  document.getElementById("today-empty").hidden = todays.length > 0;
  document.getElementById("today-title").textContent = `Today (${zoned(new Date().toISOString(),
    { weekday: "long", day: "numeric", month: "long" })})`;
  document.querySelector("#week tbody").replaceChildren(...weeks.map((c) => row(c, true)));
  const inbox = [...state.consultations.values()].filter((c) => c.modality === "async" && !ENDED.includes(c.status))
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
  document.getElementById("inbox").replaceChildren(...(inbox.length ? inbox.map((c) =>
    el("li", { "data-id": c.id },
      `${patientOf(c)}: ${c.reason} (${c.first_reply_at ? "replied" : "awaiting reply"}) `,
      el("button", { type: "button", text: "Open", "aria-label": `Open ${patientOf(c)}`, onclick: () => select(c.id) })))
    : [el("li", { class: "muted", text: "No written consultation waiting." })]));
}

// ---------------------------------------------------------------- one consultation

function say(text, bad = false) {
  const box = document.getElementById("detail-message");
  box.textContent = text;
  box.className = bad ? "error" : "ok";
}

async function select(id) {
  state.selected = id;
  renderSchedule();
  const c = await api(`/telemed/consultations/${id}`);
  state.consultations.set(id, c);
  const mine = c.clinician_id === state.profile.id;
  for (const form of ["note-form", "reply-form", "invite-form"]) document.getElementById(form).hidden = !mine;
  const detail = document.getElementById("detail");
  detail.hidden = false;
  document.getElementById("detail-title").textContent = `${patientOf(c)}: ${c.kind.replace("_", " ")}`;
  const facts = [["Reason", c.reason], ["Modality", c.modality], ["Check-in", CHECK_IN[c.status] || c.status],
                 ["When", c.start && c.modality !== "async" ? `${zoned(c.start, { dateStyle: "medium", timeStyle: "short" })} ` +
                                    `(${state.profile.timezone})` : "written (store-and-forward)"]];
  document.getElementById("detail-facts").replaceChildren(...facts.flatMap(([k, v]) =>
    [el("dt", { text: k }), el("dd", { text: v })]));
  document.getElementById("join-box").replaceChildren();
  const kind = document.querySelector('#note-form select[name="kind"]');
  const psycho = kind.querySelector('option[value="psychotherapy"]');
  if (psycho) psycho.disabled = c.kind !== "mental_health";
  kind.value = "clinical";
  say("");
  await Promise.all([loadNotes(id), loadReplies(id), loadAttachments(id), loadParticipants(id)]);
}

// ---------------------------------------------------------------- invited participants

const PARTS = { interpreter: "interpreter", clinician: "second clinician" };

async function loadParticipants(id) {
  const page = await api(`/telemed/consultations/${id}/participants`);
  const shown = state.consultations.get(id);
  const mine = Boolean(shown) && shown.clinician_id === state.profile.id;
  document.getElementById("participants").replaceChildren(...(page.items.length ? page.items.map((p) =>
    el("li", { class: p.active ? null : "muted" },
      `${p.name}: ${PARTS[p.part]}${p.language ? ` (${p.language})` : ""}${p.active ? "" : ", revoked"} `,
      p.active && mine ? el("button", { type: "button", text: "Revoke", "aria-label": `Revoke ${p.name}`,
                                        onclick: () => revoke(id, p) }) : null))
    : [el("li", { class: "muted", text: "Nobody invited." })]));
}

async function invite(event) {
  event.preventDefault();
  const form = event.target;
  const body = { username: form.username.value.trim(), part: form.part.value };
  if (body.part === "interpreter") body.language = form.language.value.trim().toLowerCase();
  try {
    const made = await api(`/telemed/consultations/${state.selected}/participants`, { method: "POST", body });
    form.username.value = "";
    say(`${made.name} is invited as ${PARTS[made.part]} until the end of the consultation.`);
    await loadParticipants(state.selected);
  } catch (e) {
    say(`Not invited: ${e.message}`, true);
  }
}

async function revoke(id, participant) {
  try {
    await api(`/telemed/consultations/${id}/participants/${participant.id}`, { method: "DELETE" });
    say(`${participant.name} is no longer invited.`);
    await loadParticipants(id);
  } catch (e) {
    say(`Not revoked: ${e.message}`, true);
  }
}

async function loadInvitations() {
  const page = await api("/telemed/invitations");
  document.getElementById("invited").replaceChildren(...(page.items.length ? page.items.map((i) =>
    el("li", {}, `${zoned(i.consultation.start, { weekday: "short", hour: "2-digit", minute: "2-digit", hour12: false })}` +
                 ` with ${i.consultation.clinician_name || "a clinician"}, as ${PARTS[i.part]} `,
      el("button", { type: "button", text: "Open", onclick: () => select(i.consultation.id) }),
      el("button", { type: "button", text: "Join", onclick: () => join(i.consultation.id) })))
    : [el("li", { class: "muted", text: "No invitation." })]));
}

async function loadNotes(id) {
  const notes = await api(`/telemed/consultations/${id}/notes`);
  document.getElementById("notes").replaceChildren(...(notes.items.length ? notes.items.map((n) =>
    el("li", { class: `note-${n.kind}` },
      el("strong", { text: n.kind === "psychotherapy" ? "Psychotherapy note (only you can see it)" : "Clinical note" }),
      ` ${zoned(n.created_at, { dateStyle: "short", timeStyle: "short" })}: `, n.text))
    : [el("li", { class: "muted", text: "No note yet." })]));
}

async function loadReplies(id) {
  const replies = await api(`/telemed/consultations/${id}/replies`);
  document.getElementById("replies").replaceChildren(...replies.items.map((r) =>
    el("li", {}, el("strong", { text: r.author_id === current.user.id ? "You" : "Patient side" }),
       ` ${zoned(r.created_at, { dateStyle: "short", timeStyle: "short" })}: `, r.text)));
}

async function loadAttachments(id) {
  const files = await api(`/telemed/consultations/${id}/attachments`);
  document.getElementById("attachments").replaceChildren(...(files.items.length ? files.items.map((a) =>
    el("li", {}, `${a.filename || "file"} (${a.content_type}, ${Math.ceil(a.size_bytes / 1024)} kB) `,
       el("button", { type: "button", text: "Download", "aria-label": `Download ${a.filename || "file"}`,
                      onclick: () => download(id, a) })))
    : [el("li", { class: "muted", text: "No attachment." })]));
}

async function download(id, attachment) {
  // The file needs the bearer token, so it is fetched here and handed to the browser as a blob.
  const response = await fetch(`/api/v1/telemed/consultations/${id}/attachments/${attachment.id}`,
                               { headers: { Authorization: "Bearer " + current.token }, cache: "no-store" });
  if (!response.ok) { say(`Download failed (HTTP ${response.status}).`, true); return; }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: attachment.filename || "attachment" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function saveNote(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await api(`/telemed/consultations/${state.selected}/notes`, { method: "POST",
      body: { kind: form.kind.value, text: form.text.value } });
    form.text.value = "";
    say("Note saved.");
    await loadNotes(state.selected);
  } catch (e) {
    say(`The note was not saved: ${e.message}`, true);
  }
}

async function sendReply(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await api(`/telemed/consultations/${state.selected}/replies`, { method: "POST", body: { text: form.text.value } });
    form.text.value = "";
    say("Reply sent.");
    await Promise.all([loadReplies(state.selected), loadSchedule()]);
  } catch (e) {
    say(`The reply was not sent: ${e.message}`, true);
  }
}

async function join(id) {
  if (state.selected !== id) await select(id);
  const box = document.getElementById("join-box");
  try {
    const ticket = await api(`/telemed/consultations/${id}/join`);
    state.ticket = { id, ...ticket };
    const opened = el("p", { class: "ok", role: "status",
      text: `Room open until ${zoned(ticket.valid_until, { hour: "2-digit", minute: "2-digit", hour12: false })}.` });
    if (ticket.url) opened.append(" ", el("a", { href: ticket.url, target: "_blank", rel: "noopener",
                                                 text: "Open the video bridge" }));
    const callBox = el("div");
    box.replaceChildren(opened, callBox);
    if (state.call) state.call.leave();
    const c = state.consultations.get(id);
    state.call = new Call({ socket: state.live.socket, consultationId: id, ticket, modality: c.modality, box: callBox,
                            onEnd: () => { state.call = null; } });
    await state.call.start();
  } catch (e) {
    const text = e instanceof ApiError && e.status === 409
      ? `The room opens at ${zoned(e.body.valid_from || new Date().toISOString(),
                                   { hour: "2-digit", minute: "2-digit", hour12: false })}.`
      : `Cannot join: ${e.message}`;
    box.replaceChildren(el("p", { class: "error", role: "status", text }));
  }
}

// ---------------------------------------------------------------- screening alerts (mental health)

async function loadAlerts() {
  const page = await api("/telemed/screening-alerts?state=open&limit=100");
  state.alerts = new Map(page.items.map((a) => [a.screening_id, a]));
  renderAlerts();
}

const FLAG_WORDS = { suicidal_ideation: "suicidal ideation", severe_symptoms: "severe symptoms" };

function renderAlerts() {
  const box = document.getElementById("alerts");
  box.replaceChildren(...[...state.alerts.values()].map((a) =>
    el("div", { class: "alert", role: "alert", "data-screening": a.screening_id },
      el("strong", { text: `Screening alert: ${(a.member && a.member.display_name) || "a member"}, ` +
                           a.flags.map((f) => FLAG_WORDS[f] || f).join(", ") }),
      ` (acknowledge by ${zoned(a.ack_due_at, { hour: "2-digit", minute: "2-digit", hour12: false })})`,
      el("button", { type: "button", text: "Acknowledge", onclick: (e) => acknowledge(a, e.target) }))));
  state.tone.set(state.alerts.size > 0);
}

async function acknowledge(alert, button) {
  button.disabled = true;
  try {
    await api(`/telemed/screenings/${alert.screening_id}/acknowledge`, { method: "POST" });
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 409)) { button.disabled = false; throw e; }
    // 409: a colleague acknowledged it first; it is no longer ours to ring for.
  }
  state.alerts.delete(alert.screening_id);
  renderAlerts();
}
