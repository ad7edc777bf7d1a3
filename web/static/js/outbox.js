// The field app's outbox: every filing and update is stored in IndexedDB first (its client_ref made at
// creation), then sent whenever there is a connection, retried with backoff until the server answers
// 200/201. The server's client_ref idempotency makes a retry of a filing harmless (docs/casevac.md).
import { session } from "./api.js";
import { distanceKm } from "./geo.js";

const DB_NAME = "medevac-field";
const STORE = "outbox";
const MAX_DELAY_MS = 60000;

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "client_ref" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function tx(db, mode, work) {
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const store = transaction.objectStore(STORE);
    let result;
    Promise.resolve(work(store)).then((value) => { result = value; });
    transaction.oncomplete = () => resolve(result);
    transaction.onerror = () => reject(transaction.error);
  });
}

function wrap(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export function newRef() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function backoff(attempts) {
  const base = Math.min(MAX_DELAY_MS, 1000 * 2 ** Math.min(attempts, 6));
  return base * (0.5 + Math.random() / 2);
}

export class Outbox {
  constructor(onChange) {
    this.onChange = onChange;
    this.dbPromise = openDb();
    this.running = false;
    this.timer = null;
    this.chain = this.prune().catch(() => null);
  }

  /** Every change is read-modify-write of the stored item, one at a time (a send and an event may race). */
  update(ref, mutate) {
    const step = this.chain.then(async () => {
      const db = await this.dbPromise;
      const item = await tx(db, "readonly", (store) => wrap(store.get(ref)));
      if (!item) return null;
      mutate(item);
      await tx(db, "readwrite", (store) => wrap(store.put(item)));
      return item;
    });
    this.chain = step.catch(() => null);
    return step.then((item) => { this.onChange(); return item; });
  }

  async all() {
    const db = await this.dbPromise;
    const items = await tx(db, "readonly", (store) => wrap(store.getAll()));
    const me = session();
    return items.filter((i) => !i.user_id || !me || i.user_id === me.user.id)
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  /** Finished filings (delivered or cancelled) leave the phone a day after they were filed. */
  async prune(maxAgeMs = 24 * 3600 * 1000) {
    const db = await this.dbPromise;
    const items = await tx(db, "readonly", (store) => wrap(store.getAll()));
    const old = items.filter((i) => ["delivered", "cancelled"].includes(i.server_status) &&
                                    Date.now() - Date.parse(i.created_at) > maxAgeMs);
    if (old.length) await tx(db, "readwrite", (store) => Promise.all(old.map((i) => wrap(store.delete(i.client_ref)))));
  }

  async get(ref) {
    const db = await this.dbPromise;
    return tx(db, "readonly", (store) => wrap(store.get(ref)));
  }

  async put(item) {
    const step = this.chain.then(async () => {
      const db = await this.dbPromise;
      await tx(db, "readwrite", (store) => wrap(store.put(item)));
    });
    this.chain = step.catch(() => null);
    await step;
    this.onChange();
  }

  /** Store a filing (lines 1-5) first; sending comes after, from the store. */
  async file(body, pickup = null) {
    const me = session();
    const item = {
      client_ref: body.client_ref, user_id: me ? me.user.id : null, created_at: new Date().toISOString(),
      callsign: body.callsign, body, status: "queued", request_id: null, attempts: 0, next_try: 0, error: null,
      ops: [], pickup,
    };
    await this.put(item);
    this.kick();
    return item;
  }

  async addOp(ref, kind, body) {
    await this.update(ref, (item) => item.ops.push({ op_id: newRef(), kind, body, state: "queued", attempts: 0,
                                                     next_try: 0, error: null }));
    this.kick();
  }

  kick() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), 0);
  }

  async flush() {
    if (this.running) { this.again = true; return; }
    this.running = true;
    let wait = null;
    try {
      for (const item of await this.all()) {
        const next = await this.sendItem(item);
        if (next !== null && (wait === null || next < wait)) wait = next;
      }
    } finally {
      this.running = false;
    }
    if (this.again) { this.again = false; this.kick(); return; }
    if (wait !== null) this.timer = setTimeout(() => this.flush(), Math.max(200, wait - Date.now()));
  }

  /** Send what this item still owes the server; the time of its next try, or null when nothing is due. */
  async sendItem(item) {
    const me = session();
    if (!me) return null;
    if (item.status === "rejected") return null;
    if (!item.request_id) {
      if (item.next_try > Date.now()) return item.next_try;
      const outcome = await this.post("/api/v1/casevac/requests", "POST", item.body, { Prefer: "return=minimal" });
      item = await this.update(item.client_ref, (i) => {
        i.user_id = i.user_id || me.user.id;
        if (outcome.ok) {
          i.request_id = outcome.data.id;
          if (!i.server_status || i.server_status === "requested") {
            i.server_status = outcome.data.status;
            i.status = mapStatus(outcome.data.status);
          }
          i.error = null;
          i.sent_at = new Date().toISOString();
        } else if (outcome.final) {
          i.status = "rejected";
          i.error = outcome.message;
        } else {
          i.attempts += 1;
          i.next_try = Date.now() + backoff(i.attempts);
          i.error = outcome.message;
        }
      });
      if (!item || !item.request_id) return !item || item.status === "rejected" ? null : item.next_try;
    }
    let next = null;
    for (const op of item.ops) {
      if (op.state !== "queued") continue;
      if (op.next_try > Date.now()) { next = next === null ? op.next_try : Math.min(next, op.next_try); continue; }
      let outcome;
      if (op.kind === "casualty" && op.attempts > 0 && op.body.zap) {
        // A casualty has no client_ref: after an attempt whose answer was lost, look before posting again.
        const request = await this.post(`/api/v1/casevac/requests/${item.request_id}`, "GET");
        if (request.ok && (request.data.casualties || []).some((c) => c.zap === op.body.zap)) outcome = { ok: true };
      }
      if (!outcome) {
        outcome = op.kind === "lines"
          ? await this.post(`/api/v1/casevac/requests/${item.request_id}`, "PATCH", op.body)
          : await this.post(`/api/v1/casevac/requests/${item.request_id}/casualties`, "POST", op.body);
      }
      const retryAt = Date.now() + backoff(op.attempts + 1);
      await this.update(item.client_ref, (i) => {
        const o = i.ops.find((x) => x.op_id === op.op_id);
        if (outcome.ok) {
          o.state = "done";
          o.error = null;
        } else if (outcome.final) {
          o.state = "rejected";
          o.error = outcome.message;
        } else {
          o.attempts += 1;
          o.next_try = retryAt;
          o.error = outcome.message;
        }
      });
      if (!outcome.ok && !outcome.final) next = next === null ? retryAt : Math.min(next, retryAt);
    }
    return next;
  }

  async post(path, method, body, headers = {}) {
    const me = session();
    try {
      const response = await fetch(path, {
        method, cache: "no-store",
        headers: { Accept: "application/json", Authorization: `Bearer ${me.token}`,
                   ...(body ? { "Content-Type": "application/json" } : {}), ...headers },
        body: body ? JSON.stringify(body) : undefined,
      });
      const data = await response.json().catch(() => ({}));
      if (response.ok) return { ok: true, data };
      if (response.status === 401) return { ok: false, final: false, message: "signed out: sign in to send" };
      // 4xx other than 408/429 will not change by retrying: the medic must correct the filing.
      const final = response.status >= 400 && response.status < 500 && ![408, 425, 429].includes(response.status);
      return { ok: false, final, message: data.message || `HTTP ${response.status}` };
    } catch (e) {
      return { ok: false, final: false, message: "no connection: will retry" };
    }
  }

  /** A server event or a poll says the request changed: record it on the item. */
  async apply(requestId, data) {
    const found = (await this.all()).find((i) => i.request_id === requestId);
    if (!found) return;
    const item = await this.update(found.client_ref, (i) => {
      if (data.status) {
        i.server_status = data.status;
        i.status = mapStatus(data.status);
      }
      if (data.asset_id !== undefined) i.asset_id = data.asset_id;
      if (data.history) {
        const dispatched = data.history.filter((h) => h.status === "dispatched").pop();
        if (dispatched) i.dispatched_at = dispatched.at;
      }
      if (data.location) i.pickup = { lat: data.location.lat, lon: data.location.lon };
      else if (data.lat != null && data.lon != null) i.pickup = { lat: data.lat, lon: data.lon };
    });
    if (item && item.asset_id && ["dispatched", "at_pickup"].includes(item.server_status)) {
      const eta = await this.eta(item);
      if (eta) await this.update(item.client_ref, (i) => Object.assign(i, eta));
    }
  }

  async eta(item) {
    const me = session();
    try {
      const response = await fetch(`/api/v1/assets/${item.asset_id}`, {
        headers: { Accept: "application/json", Authorization: `Bearer ${me.token}` }, cache: "no-store" });
      if (!response.ok) return;
      const asset = await response.json();
      const out = { asset_callsign: asset.callsign };
      const pickup = item.pickup || { lat: item.body.location.lat, lon: item.body.location.lon };
      const fix = asset.position && asset.position.lat != null ? asset.position : null;
      const since = item.dispatched_at ? (Date.now() - Date.parse(item.dispatched_at)) / 60000 : 0;
      const launched = fix && item.dispatched_at && Date.parse(fix.reported_at) > Date.parse(item.dispatched_at);
      const from = launched ? fix : (fix || asset.base);
      if (!from || pickup.lat == null) return out;
      const travel = distanceKm(from, pickup) / (asset.cruise_speed_kmh || 100) * 60;
      out.eta_minutes = Math.max(0, Math.round(travel + (launched ? 0 : Math.max(0, asset.readiness_minutes - since))));
      out.eta_at = new Date().toISOString();
      return out;
    } catch (e) {
      return null; // offline: keep the last estimate
    }
  }

  /** Poll the requests still moving (If-None-Match: a 304 costs a few bytes); the socket usually comes first. */
  async poll() {
    const me = session();
    if (!me) return;
    for (const item of await this.all()) {
      if (!item.request_id || ["delivered", "cancelled"].includes(item.server_status)) continue;
      // Just sent: the socket pushes its changes; polling it now would only repeat the POST's answer.
      if (item.sent_at && Date.now() - Date.parse(item.sent_at) < 20000 && !item.etag) continue;
      try {
        const response = await fetch(`/api/v1/casevac/requests/${item.request_id}`, {
          cache: "no-store",
          headers: { Accept: "application/json", Authorization: `Bearer ${me.token}`,
                     ...(item.etag ? { "If-None-Match": item.etag } : {}) } });
        if (response.status === 200) {
          const data = await response.json();
          const etag = response.headers.get("ETag");
          await this.update(item.client_ref, (i) => { i.etag = etag; });
          await this.apply(item.request_id, data);
        }
      } catch (e) {
        return; // no connection
      }
    }
  }
}

export function mapStatus(status) {
  if (status === "requested") return "sent";
  if (status === "acknowledged") return "acknowledged";
  if (["dispatched", "at_pickup", "in_transit", "delivered"].includes(status)) return "dispatched";
  return status;
}
