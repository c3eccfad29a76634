// Cues spoken with the browser's own speech synthesis, where the device has a voice.

export class Voice {
  constructor() {
    this.synth = "speechSynthesis" in window ? window.speechSynthesis : null;
    this.voice = null;
    this.on = false;
    this.onSpeaking = () => {};
    this.ready = this.findVoice();
  }

  // Resolves to true when a voice exists. Some browsers list voices only after "voiceschanged".
  findVoice() {
    if (!this.synth) return Promise.resolve(false);
    const pick = () => {
      const voices = this.synth.getVoices();
      if (!voices.length) return false;
      const lang = (document.documentElement.lang || "en").toLowerCase();
      this.voice =
        voices.find((v) => v.lang.toLowerCase().startsWith(lang) && v.localService) ||
        voices.find((v) => v.lang.toLowerCase().startsWith(lang)) ||
        voices[0];
      return true;
    };
    if (pick()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => resolve(pick());
      this.synth.addEventListener("voiceschanged", done, { once: true });
      setTimeout(done, 1500);
    });
  }

  get available() {
    return Boolean(this.synth && this.voice);
  }

  say(text, { interrupt = false } = {}) {
    if (!this.on || !this.available || !text) return;
    if (interrupt) this.synth.cancel();
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.voice = this.voice;
    utterance.lang = this.voice.lang;
    utterance.rate = 0.92;
    utterance.pitch = 0.95;
    utterance.addEventListener("start", () => this.onSpeaking(true));
    const end = () => {
      if (!this.synth.speaking) this.onSpeaking(false);
    };
    utterance.addEventListener("end", end);
    utterance.addEventListener("error", end);
    this.synth.speak(utterance);
  }

  stop() {
    if (this.synth) this.synth.cancel();
    this.onSpeaking(false);
  }
}
