// Socket.IO with the access token (auth.token), and `sync` from the last seq after every (re)connect, so
// nothing is missed; every event is handled once (dedupe by seq). See docs/realtime.md "For clients".
import { io } from "/assets/vendor/socket.io-client/socket.io.esm.min.js";
import { expired, hhmm, session } from "./api.js";

const OFFLINE_AFTER_MS = 10000;

export class Live {
  /**
   * onEvent(envelope, {replayed}) for each new event; onState(text, state) when the connection changes.
   * storageKey keeps the last seq across reloads of this tab (sessionStorage), so a reload resumes;
   * onFresh() once a fresh tab knows the log's watermark (what happened before it is the HTTP state's).
   */
  constructor({ onEvent, onState, onFresh, storageKey }) {
    this.onEvent = onEvent;
    this.onFresh = onFresh; // after a fresh tab's first connect: reload the state over HTTP
    this.onState = onState || (() => {});
    this.storageKey = storageKey;
    this.lastSeq = Number(sessionStorage.getItem(storageKey) || 0);
    this.seen = new Set();
    this.syncing = false;
    this.buffer = [];
    this.syncs = 0;
    this.downSince = null;
    this.offlineTimer = null;
    this.socket = io({
      auth: (cb) => cb({ token: (session() || {}).token || "" }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
    });
    this.socket.on("connect", () => this._connected());
    this.socket.on("disconnect", (reason) => this._down(reason));
    this.socket.on("connect_error", (error) => {
      if (/token|authentication/i.test(error.message || "")) {
        expired("1");
        return;
      }
      this._down(error.message);
    });
    this.socket.onAny((name, envelope) => this._live(envelope));
    // Polling first, then the upgrade to a websocket (same origin: CSP connect-src 'self' allows ws/wss).
    this.socket.io.on("open", () => this.socket.io.engine.on("upgrade", () => this._state()));
    window.addEventListener("offline", () => this._state());
    window.addEventListener("online", () => {
      this._state();
      if (!this.socket.connected) this.socket.connect();
    });
    this._state();
  }

  get transport() {
    return this.socket.io.engine ? this.socket.io.engine.transport.name : null;
  }

  _remember(seq) {
    if (seq > this.lastSeq) {
      this.lastSeq = seq;
      sessionStorage.setItem(this.storageKey, String(seq));
    }
  }

  _handle(envelope, replayed, belowWatermarkIsNew = false) {
    if (!envelope || typeof envelope !== "object") return;
    if (envelope.seq !== null && envelope.seq !== undefined) {
      // At-least-once delivery: a seq at or below the watermark, or seen already, was handled before.
      if (this.seen.has(envelope.seq) || (envelope.seq <= this.lastSeq && !belowWatermarkIsNew)) return;
      this.seen.add(envelope.seq);
      if (this.seen.size > 5000) this.seen.delete(this.seen.values().next().value);
    }
    try {
      this.onEvent(envelope, { replayed });
    } catch (e) {
      console.error("event handler failed", e);
    }
  }

  _live(envelope) {
    if (this.syncing && envelope && envelope.seq != null) {
      this.buffer.push(envelope);
      return;
    }
    this._handle(envelope, false);
    if (envelope && envelope.seq != null) this._remember(envelope.seq);
  }

  async _sync(since, limit) {
    this.calls = (this.calls || 0) + 1;
    const ack = await this.socket.timeout(15000).emitWithAck("sync", { since, limit });
    if (!ack || ack.code) throw new Error((ack && ack.message) || "sync refused");
    return ack;
  }

  /**
   * A fresh tab (no seq kept) needs the log's watermark, not its history: the page loads the current state
   * over HTTP. One page of up to 1,000 events answers it for a short log; otherwise probes of one event
   * each find it (the ack's last_seq is max(since, watermark) whenever `more` is false), about 2 log2(N)
   * round trips instead of replaying N events.
   */
  async _watermark() {
    let ack = await this._sync(0, 1000);
    if (!ack.more) return ack.last_seq;
    let lo = ack.last_seq; // more above it: the watermark is higher
    let hi = null;
    for (let x = lo * 2; hi === null; x *= 2) {
      ack = await this._sync(x, 1);
      if (ack.more) lo = x;
      else if (ack.last_seq > x) return ack.last_seq;
      else hi = x;
    }
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      ack = await this._sync(mid, 1);
      if (ack.more) lo = mid;
      else if (ack.last_seq > mid) return ack.last_seq;
      else hi = mid;
    }
    return hi;
  }

  async _connected() {
    clearTimeout(this.offlineTimer);
    this.syncing = true;
    this._state("syncing");
    const fresh = this.lastSeq === 0 && this.syncs === 0;
    try {
      if (fresh) {
        this._remember(await this._watermark());
      } else {
        let more = true;
        while (more && this.socket.connected) {
          const ack = await this._sync(this.lastSeq, 1000);
          for (const envelope of ack.events) this._handle(envelope, true);
          this._remember(ack.last_seq);
          more = ack.more;
        }
      }
      this.syncs += 1;
    } catch (e) {
      console.warn("sync failed", e);
    } finally {
      this.syncing = false;
      const buffered = this.buffer.splice(0);
      for (const envelope of buffered) {
        // Arrived live while the watermark was looked for: new to this page even at or below it.
        this._handle(envelope, false, fresh);
        this._remember(envelope.seq);
      }
    }
    if (fresh && this.onFresh) this.onFresh();
    this.downSince = null;
    this._state();
  }

  _down(reason) {
    if (this.downSince === null) this.downSince = new Date();
    clearTimeout(this.offlineTimer);
    this.offlineTimer = setTimeout(() => this._state(), OFFLINE_AFTER_MS);
    this._state();
  }

  _state(hint) {
    let text, state;
    if (this.socket.connected && hint === "syncing") {
      state = "syncing";
      text = "live (syncing)";
    } else if (this.socket.connected) {
      state = "live";
      text = "live";
    } else if (this.downSince === null) {
      state = "connecting";
      text = navigator.onLine ? "reconnecting (connecting)" : "offline";
    } else if (!navigator.onLine || Date.now() - this.downSince.getTime() >= OFFLINE_AFTER_MS) {
      state = "offline";
      text = `offline since ${hhmm(this.downSince)}`;
    } else {
      state = "reconnecting";
      text = `reconnecting since ${hhmm(this.downSince)}`;
    }
    this.state = state;
    this.onState(text, state);
  }
}
