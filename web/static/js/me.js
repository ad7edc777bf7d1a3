// The member's page (/me): self-screening, confidential self-referral and booking, the own access log.
import { api, ApiError, el, requireSession, signOut } from "./api.js";
import { Call } from "./call.js";
import { FORMS, itemsOf } from "./instruments.js";
import { Live } from "./live.js";

const SEVERITY_WORDS = { minimal: "minimal", mild: "mild", moderate: "moderate",
                         moderately_severe: "moderately severe", severe: "severe" };
const state = { instruments: new Map(), chosen: null, logCursor: null, config: {} };

const current = requireSession(["member"]);
document.getElementById("signout").addEventListener("click", signOut);
if (current && current.refused) {
  const box = document.getElementById("refused");
  box.textContent = `Signed in as ${current.user.username} (${current.user.role}): this page is for members.`;
  box.hidden = false;
  document.getElementById("main").hidden = true;
} else if (current) {
  document.getElementById("who").textContent = `${current.user.username} (${current.user.role})`;
  start().catch((e) => console.error(e));
}

async function start() {
  window.meState = state;
  const [instruments, config] = await Promise.all([
    api("/telemed/screening-instruments"),
    fetch("/me/config.json", { cache: "no-store" }).then((r) => r.json()),
  ]);
  state.config = config;
  const choice = document.getElementById("instrument-choice");
  for (const instrument of instruments.items) {
    if (!FORMS[instrument.code] || itemsOf(instrument.code).length !== instrument.items) continue;
    state.instruments.set(instrument.code, instrument);
    choice.append(el("button", { type: "button", text: FORMS[instrument.code].label,
                                 onclick: () => choose(instrument.code) }));
  }
  document.getElementById("screening").addEventListener("submit", submitScreening);
  document.getElementById("referral").addEventListener("submit", submitReferral);
  document.getElementById("log-more").addEventListener("click", () => loadLog(false));
  state.live = new Live({ storageKey: "medevac.me.seq", onEvent: (envelope) => {
    if (typeof envelope.type !== "string" || !envelope.type.startsWith("consult.")) return;
    loadConsultations().catch(console.error);
    loadInvitations().catch(console.error);
  } });
  await Promise.all([loadLog(true), loadConsultations(), loadInvitations(), loadConsents()]);
}

function choose(code) {
  state.chosen = code;
  const form = FORMS[code];
  const instrument = state.instruments.get(code);
  document.getElementById("form-title").textContent = instrument.name || form.label;
  document.getElementById("form-intro").textContent = form.intro;
  document.getElementById("form-items").replaceChildren(...itemsOf(code).map((item, index) =>
    el("fieldset", { class: "item" },
      el("legend", { text: `${index + 1}. ${item.text}` }),
      item.options.map((label, value) =>
        el("label", {}, el("input", { type: "radio", name: `item-${index}`, value: String(value) }), ` ${label}`)))));
  document.getElementById("sex-field").hidden = !form.asksSex;
  document.getElementById("form-error").hidden = true;
  document.getElementById("result").hidden = true;
  const screening = document.getElementById("screening");
  screening.reset();
  screening.hidden = false;
}

async function submitScreening(event) {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("form-error");
  const items = itemsOf(state.chosen);
  const answers = items.map((_, index) => {
    const picked = form.querySelector(`input[name="item-${index}"]:checked`);
    return picked ? Number(picked.value) : null;
  });
  const missing = answers.map((a, i) => (a === null ? i + 1 : null)).filter((i) => i !== null);
  if (missing.length) {
    error.textContent = `Please answer question${missing.length > 1 ? "s" : ""} ${missing.join(", ")}.`;
    error.hidden = false;
    return;
  }
  error.hidden = true;
  const body = { instrument: state.chosen, answers };
  const sex = form.querySelector('input[name="sex"]:checked');
  if (FORMS[state.chosen].asksSex && sex) body.sex = sex.value;
  try {
    const result = await api("/telemed/screenings", { method: "POST", body });
    showResult(result, answers);
    loadLog(true).catch(console.error);
  } catch (e) {
    error.textContent = e instanceof ApiError ? `Your answers could not be saved: ${e.message}` : String(e);
    error.hidden = false;
  }
}

function crisisBox(notified) {
  return el("div", { class: "crisis", role: "alert" },
    el("strong", { text: "You do not have to face this alone." }),
    el("p", { text: "If you are thinking about hurting yourself, or feel you are in danger now, reach out at once: " }),
    el("p", { class: "crisis-line", text: `Crisis line: ${state.config.crisis_line}` }),
    notified ? el("p", { text: "A mental-health clinician has been told and will contact you today." })
      : el("p", { text: "Please also tell your medical officer today." }));
}

function showResult(result, answers) {
  const box = document.getElementById("result");
  const instrument = state.instruments.get(result.instrument);
  const itemNine = result.instrument === "phq9" && answers[8] > 0;
  const severity = result.severity ? `, in the ${SEVERITY_WORDS[result.severity] || result.severity} range` : "";
  box.replaceChildren(...[
    el("h3", { text: "Thank you for answering" }),
    itemNine || result.flags.includes("suicidal_ideation") ? crisisBox(result.clinician_notified) : null,
    el("p", { class: "score", text: `Your score is ${result.score} out of ${instrument.max_score}${severity}.` }),
    el("p", { class: "action", text: result.recommended_action_text }),
    result.offered_slots && result.offered_slots.length
      ? el("div", {}, el("p", { text: "You can book a time with a mental-health clinician now:" }),
           slotList(result.offered_slots, (slot) => bookDirect(slot)))
      : null,
  ].filter(Boolean));
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

function localTime(iso) {
  return new Date(iso).toLocaleString([], { weekday: "short", day: "numeric", month: "short",
                                            hour: "2-digit", minute: "2-digit", hour12: false });
}

function slotList(slots, book) {
  return el("ul", { class: "slots", "aria-label": "Offered times" }, slots.map((slot) =>
    el("li", {}, `${localTime(slot.start)} with ${slot.display_name || "a clinician"} `,
      el("button", { type: "button", text: "Book", onclick: (e) => book(slot, e.target) }))));
}

async function bookDirect(slot) {
  await book(() => api("/telemed/consultations", { method: "POST", body: {
    kind: "mental_health", clinician_id: slot.clinician_id, start: slot.start,
    duration_minutes: Math.round((Date.parse(slot.end) - Date.parse(slot.start)) / 60000),
    modality: "video", reason: "Follow-up of my self-screening", patient: {} } }));
}

async function book(call) {
  const out = document.getElementById("referral-result");
  try {
    const made = await call();
    const consultation = made.consultation || made;
    out.replaceChildren(el("p", { class: "ok", role: "status",
                                  text: `Booked: ${localTime(consultation.start)}. You will get a reminder.` }));
    await loadConsultations();
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", role: "alert",
                                  text: e instanceof ApiError && e.status === 409
                                    ? "That time has just been taken: please pick another one."
                                    : `Booking failed: ${e.message}` }));
  }
}

async function submitReferral(event) {
  event.preventDefault();
  const form = event.target;
  const out = document.getElementById("referral-result");
  const body = { reason: form.reason.value.trim() };
  if (form.preferred_language.value) body.preferred_language = form.preferred_language.value;
  if (form.contact.value.trim()) body.contact = form.contact.value.trim();
  try {
    const referral = await api("/telemed/self-referrals", { method: "POST", body });
    form.reset();
    out.replaceChildren(...[
      el("p", { role: "status", text: "Your request was sent in confidence. A clinician will contact you." }),
      referral.offered_slots.length ? slotList(referral.offered_slots, (slot) => book(() =>
        api(`/telemed/self-referrals/${referral.id}/book`, { method: "POST",
                                                             body: { clinician_id: slot.clinician_id, start: slot.start } })))
        : null].filter(Boolean));
    loadLog(true).catch(console.error);
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", role: "alert", text: `Not sent: ${e.message}` }));
  }
}

async function loadConsultations() {
  const page = await api("/telemed/consultations?limit=50");
  const list = document.getElementById("consultations");
  const upcoming = page.items.filter((c) => !["cancelled", "noshow", "fulfilled"].includes(c.status));
  list.replaceChildren(...(upcoming.length ? upcoming.map((c) =>
    el("li", {}, `${c.modality !== "async" ? localTime(c.start) : "written consultation"}: ` +
                 `${c.kind.replace("_", " ")}, ${c.modality}, ${c.status.replace("_", " ")} `,
       c.modality === "async" ? null : el("button", { type: "button", text: "Join",
         "aria-label": `Join the consultation of ${localTime(c.start)}`, onclick: () => join(c) })))
    : [el("li", { class: "muted", text: "none booked" })]));
}

const PARTS = { interpreter: "interpreter", clinician: "second clinician" };

/** Consultations the member is invited into (as interpreter, say): join like their own. */
async function loadInvitations() {
  const page = await api("/telemed/invitations");
  document.getElementById("invitations").replaceChildren(...(page.items.length ? page.items.map((i) =>
    el("li", {}, `${localTime(i.consultation.start)}: ${i.consultation.modality}, as ${PARTS[i.part]}` +
                 `${i.language ? ` (${i.language})` : ""} with ${i.consultation.clinician_name || "a clinician"} `,
       el("button", { type: "button", text: "Join", "aria-label": `Join as ${PARTS[i.part]}`,
                      onclick: () => join(i.consultation) })))
    : [el("li", { class: "muted", text: "none" })]));
}

async function join(consultation) {
  const box = document.getElementById("call-box");
  try {
    const ticket = await api(`/telemed/consultations/${consultation.id}/join`);
    if (state.call) state.call.leave();
    state.call = new Call({ socket: state.live.socket, consultationId: consultation.id, ticket,
                            modality: consultation.modality, box, onEnd: () => { state.call = null; } });
    await state.call.start();
  } catch (e) {
    if (e instanceof ApiError && e.status === 409 && e.body && e.body.missing) {
      await askConsent(e.body.missing, () => join(consultation));
      return;
    }
    box.replaceChildren(el("p", { class: "error", role: "status",
      text: e instanceof ApiError && e.status === 409 ? "The call opens 15 minutes before the start."
        : `Cannot join: ${e.message}` }));
  }
}

/** The consent text in force for `missing.kind`, with "I agree": recorded (append-only), then `next()`. */
async function askConsent(missing, next) {
  const box = document.getElementById("call-box");
  const texts = await api("/telemed/consent-texts");
  const wording = texts.items.find((t) => t.kind === missing.kind);
  box.replaceChildren(el("section", { class: "consent", "aria-label": "Consent" },
    el("h4", { text: `Before your first ${missing.kind.replace("_", "-")} consultation` }),
    el("p", { text: wording.text }),
    el("p", { class: "muted", text: `Consent text version ${wording.version}` }),
    el("button", { type: "button", text: "I agree", onclick: async (event) => {
      event.target.disabled = true;
      await api("/telemed/consents", { method: "POST", body: { kind: wording.kind, version: wording.version } });
      await loadConsents();
      next();
    } })));
}

async function loadConsents() {
  const page = await api("/telemed/consents");
  document.getElementById("consents").replaceChildren(...(page.items.length ? page.items.map((c) =>
    el("li", { text: `${c.kind.replace("_", " ")} consultations, text version ${c.version}: agreed ` +
                     localTime(c.recorded_at) }))
    : [el("li", { class: "muted", text: "none yet" })]));
}

const ACTIONS = {
  "screening.create": "saved a screening", "screening.read": "read a screening",
  "screening.alert_read": "read a screening alert", "screening.acknowledge": "acknowledged a screening alert",
  "screening.escalate": "escalated a screening alert", "telemed.consultation.read": "read a consultation",
};

async function loadLog(reset) {
  if (reset) state.logCursor = null;
  const query = new URLSearchParams({ limit: "20" });
  if (state.logCursor) query.set("cursor", state.logCursor);
  const page = await api("/telemed/me/access-log?" + query);
  const body = document.querySelector("#access-log tbody");
  const rows = page.items.map((entry) => el("tr", {},
    el("td", { text: localTime(entry.at) }),
    el("td", { text: !entry.actor ? "the system" : entry.actor.you ? "you"
                     : `${entry.actor.display_name || "someone"} (${entry.actor.role})` }),
    el("td", { text: ACTIONS[entry.action] || entry.action.replaceAll(".", " ").replaceAll("_", " ") })));
  if (reset) body.replaceChildren(...rows);
  else body.append(...rows);
  state.logCursor = page.next_cursor;
  document.getElementById("log-more").hidden = !page.next_cursor;
}
