// The in-browser consultation call (telemed/scheduling/video.py): WebRTC between the participants, signalled over
// the page's own Socket.IO connection with the consultation's join token. One RTCPeerConnection per peer,
// each with an audio and a video transceiver from the start, so switching between video, audio only and
// chat only during the call is a replaceTrack, never a renegotiation. The chat works in every mode.
// A few participants (clinician, patient, interpreter) make a mesh: one peer connection and one tile each.
import { el } from "./api.js";

const MODE_LABELS = { video: "Video", audio: "Audio only", chat: "Chat only" };
const PART_LABELS = { clinician: "clinician", interpreter: "interpreter", second_clinician: "second clinician" };

export class Call {
  /** socket: the page's Socket.IO socket; ticket: GET .../join's answer; box: where the call is drawn. */
  constructor({ socket, consultationId, ticket, modality, box, onEnd }) {
    this.socket = socket;
    this.consultationId = consultationId;
    this.ticket = ticket;
    this.mode = modality === "audio" || modality === "chat" ? modality : "video";
    this.box = box;
    this.onEnd = onEnd || (() => {});
    this.peers = new Map(); // sid -> {pc, name, part, tile, video, pending: [candidates]}
    this.known = new Map(); // sid -> {name, part}: who is in the call, from join, admission and call.peer
    this.stream = new MediaStream();
    this.handlers = {
      "call.peer": (m) => this._mine(m) && this._know([m]) && this._call(m.sid),
      "call.left": (m) => this._mine(m) && this._drop(m.sid),
      "call.waiting": (m) => this._mine(m) && this._showWaiting(m.waiting),
      "call.admitted": (m) => this._mine(m) && this._know(m.peers) && this._admitted(),
      "call.removed": (m) => this._mine(m) && this._removed(m.reason),
      "call.signal": (m) => this._mine(m) && this._signal(m.from, m.data).catch((e) => this._say(`Call error: ${e}`)),
      "call.mode": (m) => this._mine(m) && this._chatLine("", `switched to ${MODE_LABELS[m.mode] || m.mode}`),
      "call.chat": (m) => this._mine(m) && this._chatLine(m.name, m.text),
    };
    for (const [name, handler] of Object.entries(this.handlers)) socket.on(name, handler);
    this._draw();
    window.callState = this; // for the browser tests and the curious
  }

  _mine(message) {
    return message && message.consultation_id === this.consultationId;
  }

  _know(people) {
    for (const p of people || []) this.known.set(p.sid, { name: p.name, part: p.part });
    return true;
  }

  _draw() {
    this.status = el("p", { class: "call-status", role: "status", text: "joining the call" });
    this.tiles = el("div", { class: "tiles", role: "group", "aria-label": "Participants" });
    this.localVideo = el("video", { autoplay: true, playsinline: true, muted: true, "aria-label": "You" });
    this.localVideo.muted = true;
    this.waitingList = el("ul", { "aria-label": "Waiting room" });
    this.chatList = el("ul", { class: "chat", "aria-label": "Chat" });
    const input = el("input", { "aria-label": "Message", maxlength: "2000", autocomplete: "off" });
    const chatForm = el("form", { class: "chat-form", onsubmit: (e) => { e.preventDefault(); this.chat(input); } },
      input, el("button", { type: "submit", text: "Send message" }));
    const modes = el("div", { role: "group", "aria-label": "Call mode" },
      Object.entries(MODE_LABELS).map(([mode, label]) =>
        el("button", { type: "button", text: label, onclick: () => this.setMode(mode) })),
      el("button", { type: "button", text: "Leave", onclick: () => this.leave() }));
    this.waitingBox = el("div", { hidden: true }, el("h4", { text: "Waiting room" }), this.waitingList);
    this.box.replaceChildren(el("section", { class: "call", "aria-label": "Call" },
      this.status, this.tiles, this.localVideo, modes, this.waitingBox, this.chatList, chatForm));
  }

  _say(text) {
    this.status.textContent = text;
  }

  async start() {
    const ack = await this.socket.timeout(15000).emitWithAck("call.join",
      { consultation_id: this.consultationId, token: this.ticket.token });
    if (!ack || !ack.ok) {
      this._say(`Refused: ${(ack && ack.message) || "no answer"}`);
      this.refused = ack;
      return ack;
    }
    this.sid = ack.sid;
    this.role = ack.role;
    this._know(ack.peers);
    await this._media(this.mode);
    if (ack.role === "clinician") {
      this.waitingBox.hidden = false;
      this._showWaiting(ack.waiting);
      this._say(ack.peers.length ? "in the call" : "in the call: waiting for the patient");
      for (const peer of ack.peers) this._call(peer.sid);
    } else if (ack.admitted) {
      this._say("in the call: connecting");
    } else {
      this._say("You are in the waiting room: the clinician will admit you.");
    }
    return ack;
  }

  _admitted() {
    this._say("admitted: connecting");
  }

  _removed(reason) {
    this._end();
    this._say(`You were removed from the call: ${reason || "your invitation ended"}.`);
  }

  _label(who) {
    const part = PART_LABELS[who.part];
    return part && who.part !== "clinician" ? `${who.name} (${part})` : who.name;
  }

  _showWaiting(waiting) {
    this.waitingList.replaceChildren(...(waiting.length ? waiting.map((w) =>
      el("li", {}, `${this._label(w)} `, el("button", { type: "button", text: "Admit", "aria-label": `Admit ${w.name}`,
        onclick: () => this.socket.emitWithAck("call.admit", { consultation_id: this.consultationId, sid: w.sid }) })))
      : [el("li", { class: "muted", text: "nobody waiting" })]));
  }

  /** Make sure the local stream has the tracks `mode` needs (asking for the device once). */
  async _media(mode) {
    const want = { audio: mode !== "chat", video: mode === "video" };
    const missing = {
      audio: want.audio && !this.stream.getAudioTracks().length,
      video: want.video && !this.stream.getVideoTracks().length,
    };
    if (missing.audio || missing.video) {
      try {
        const got = await navigator.mediaDevices.getUserMedia(missing);
        for (const track of got.getTracks()) this.stream.addTrack(track);
      } catch (e) {
        this._chatLine("", `no ${missing.video ? "camera" : "microphone"}: ${e.name}; the chat still works`);
      }
    }
    this.localVideo.srcObject = this.stream;
  }

  _track(kind) {
    const wanted = kind === "audio" ? this.mode !== "chat" : this.mode === "video";
    return wanted ? (kind === "audio" ? this.stream.getAudioTracks()[0] : this.stream.getVideoTracks()[0]) || null : null;
  }

  _peer(sid) {
    let peer = this.peers.get(sid);
    if (peer) return peer;
    const pc = new RTCPeerConnection({ iceServers: this.ticket.ice_servers || [],
                                       iceTransportPolicy: this.ticket.ice_transport_policy || "all" });
    const who = this.known.get(sid) || { name: "participant" };
    const video = el("video", { autoplay: true, playsinline: true, "aria-label": this._label(who) });
    const tile = el("figure", { class: "tile" }, video, el("figcaption", { text: this._label(who) }));
    this.tiles.append(tile);
    peer = { pc, name: who.name, part: who.part, tile, video, pending: [] };
    this.peers.set(sid, peer);
    pc.onicecandidate = (event) => {
      if (event.candidate) this._send(sid, { candidate: event.candidate.toJSON() });
    };
    pc.ontrack = (event) => {
      const remote = video.srcObject || new MediaStream();
      if (!remote.getTracks().includes(event.track)) remote.addTrack(event.track);
      video.srcObject = remote;
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") this._say(`connected with ${peer.name || "the other participant"}`);
      if (pc.connectionState === "failed") this._say("the connection failed: try audio only or chat");
    };
    return peer;
  }

  /** An existing member calls each newcomer: two transceivers, then the offer. */
  async _call(sid) {
    const { pc } = this._peer(sid);
    for (const kind of ["audio", "video"]) {
      pc.addTransceiver(this._track(kind) || kind, { direction: "sendrecv", streams: [this.stream] });
    }
    await pc.setLocalDescription(await pc.createOffer());
    this._send(sid, { description: pc.localDescription.toJSON() });
  }

  async _signal(from, data) {
    const peer = this._peer(from);
    const { pc } = peer;
    if (data.description) {
      await pc.setRemoteDescription(data.description);
      for (const candidate of peer.pending.splice(0)) await pc.addIceCandidate(candidate);
      if (data.description.type === "offer") {
        for (const transceiver of pc.getTransceivers()) {
          transceiver.direction = "sendrecv";
          await transceiver.sender.replaceTrack(this._track(transceiver.receiver.track.kind));
          transceiver.sender.setStreams && transceiver.sender.setStreams(this.stream);
        }
        await pc.setLocalDescription(await pc.createAnswer());
        this._send(from, { description: pc.localDescription.toJSON() });
      }
    } else if (data.candidate) {
      if (pc.remoteDescription) await pc.addIceCandidate(data.candidate);
      else peer.pending.push(data.candidate);
    }
  }

  _send(to, data) {
    this.socket.emit("call.signal", { consultation_id: this.consultationId, to, data });
  }

  async setMode(mode) {
    this.mode = mode;
    await this._media(mode);
    for (const { pc } of this.peers.values()) {
      for (const transceiver of pc.getTransceivers()) {
        const kind = transceiver.receiver.track.kind;
        await transceiver.sender.replaceTrack(this._track(kind));
      }
    }
    // A camera not sent is also switched off locally.
    for (const track of this.stream.getVideoTracks()) track.enabled = mode === "video";
    for (const track of this.stream.getAudioTracks()) track.enabled = mode !== "chat";
    this.socket.emit("call.mode", { consultation_id: this.consultationId, mode });
    this._chatLine("", `you switched to ${MODE_LABELS[mode]}`);
  }

  chat(input) {
    const text = input.value.trim();
    if (!text) return;
    this.socket.emit("call.chat", { consultation_id: this.consultationId, text });
    this._chatLine("You", text);
    input.value = "";
  }

  _chatLine(name, text) {
    this.chatList.append(el("li", { class: name ? null : "muted" }, name ? el("strong", { text: `${name}: ` }) : null,
                            text));
  }

  _drop(sid) {
    const peer = this.peers.get(sid);
    if (!peer) return;
    peer.pc.close();
    peer.tile.remove();
    this.peers.delete(sid);
    this._say(`${peer.name || "the other participant"} left`);
  }

  _end() {
    for (const sid of [...this.peers.keys()]) this._drop(sid);
    for (const track of this.stream.getTracks()) track.stop();
    for (const [name, handler] of Object.entries(this.handlers)) this.socket.off(name, handler);
    this.onEnd();
  }

  leave() {
    this.socket.emit("call.leave", { consultation_id: this.consultationId });
    this._end();
    this._say("you left the call");
  }
}
