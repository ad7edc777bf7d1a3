// The alert tone (Web Audio, no sound file): shared by the operations console and the clinic page.
// A browser starts audio only after a gesture: the page shows its "Enable sound" button until then.
export class Tone {
  constructor(button, indicator) {
    this.button = button;
    this.indicator = indicator; // element whose data-tone says "on" or "off" (the tests read it)
    this.timer = null;
    this.audio = null;
    try {
      this.audio = new AudioContext();
    } catch (e) {
      return;
    }
    const refresh = () => { if (this.button) this.button.hidden = this.audio.state === "running"; };
    if (this.button) this.button.addEventListener("click", () => this.audio.resume().then(refresh));
    document.addEventListener("pointerdown",
      () => this.audio.state !== "running" && this.audio.resume().then(refresh), { once: true });
    this.audio.onstatechange = refresh;
    refresh();
  }

  beep() {
    const audio = this.audio;
    if (!audio || audio.state !== "running") return;
    const now = audio.currentTime;
    for (const [offset, freq] of [[0, 880], [0.25, 660]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.24);
    }
  }

  /** Ring (every 2 s) while `ringing`, silent otherwise. */
  set(ringing) {
    if (this.indicator) this.indicator.dataset.tone = ringing ? "on" : "off";
    if (ringing && !this.timer) {
      this.beep();
      this.timer = setInterval(() => this.beep(), 2000);
    } else if (!ringing && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
