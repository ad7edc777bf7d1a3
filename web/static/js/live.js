// Socket.IO with the access token (auth.token), and `sync` from the last seq after every (re)connect, so
// nothing is missed; every event is handled once (dedupe by seq). See docs/realtime.md "For clients".
import { io } from "/assets/vendor/socket.io-client/socket.io.esm.min.js";
import { expired, hhmm, session } from "./api.js";

const OFFLINE_AFTER_MS = 10000;

export class Live {
  /**
   * onEvent(envelope, {replayed}) for each new event; onState(text, state) when the connection changes.
   * storageKey keeps the last seq across reloads of this tab (sessionStorage), so a reload resumes.
   */
  constructor({ onEvent, onState, storageKey }) {
    this.onEvent = onEvent;
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

  _handle(envelope, replayed) {
    if (!envelope || typeof envelope !== "object") return;
    if (envelope.seq !== null && envelope.seq !== undefined) {
      // At-least-once delivery: a seq at or below the watermark, or seen already, was handled before.
      if (this.seen.has(envelope.seq) || envelope.seq <= this.lastSeq) return;
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

  async _connected() {
    clearTimeout(this.offlineTimer);
    this.syncing = true;
    this._state("syncing");
    try {
      let more = true;
      while (more && this.socket.connected) {
        const ack = await this.socket.timeout(15000).emitWithAck("sync", { since: this.lastSeq, limit: 1000 });
        if (!ack || ack.code) throw new Error((ack && ack.message) || "sync refused");
        for (const envelope of ack.events) this._handle(envelope, true);
        this._remember(ack.last_seq);
        more = ack.more;
      }
      this.syncs += 1;
    } catch (e) {
      console.warn("sync failed", e);
    } finally {
      this.syncing = false;
      const buffered = this.buffer.splice(0);
      for (const envelope of buffered) {
        this._handle(envelope, false);
        this._remember(envelope.seq);
      }
    }
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
