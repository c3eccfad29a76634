// @ts-check
// Cues spoken with the browser's own speech synthesis, where the device has a voice; otherwise
// with backrub's own voice: each phrase fetched as a short clip from the server
// (POST /api/v1/sessions/{id}/voice {text}, made once there and kept) and played in an <audio>
// element. The server speaks only the session's own words.

import { csrfToken } from "./api.js";

/** @typedef {() => Promise<string | null | undefined>} Fresher a cue's words as the page has them now */
/** @typedef {{text: string, url: Promise<string | null>, controller: AbortController}} Phrase */

export class Voice {
  /** @param {{sessionId?: string | null}} [options] */
  constructor({ sessionId = null } = {}) {
    this.synth = "speechSynthesis" in window ? window.speechSynthesis : null;
    /** @type {SpeechSynthesisVoice | null} */
    this.voice = null;
    this.sessionId = sessionId;
    /** @type {HTMLAudioElement | null} */
    this.audio = null; // the clip being played (backrub's voice)
    /** @type {Phrase[]} */
    this.queue = []; // phrases waiting their turn: { text, url: Promise of a blob URL, controller }
    /** @type {Phrase | null} */
    this.waiting = null; // the phrase next to play, while its clip is still coming
    this.on = false;
    /** @type {(speaking: boolean) => void} */
    this.onSpeaking = () => {};
    this.ready = this.findVoice();
  }

  // Resolves to true when a voice exists. Some browsers list voices only after "voiceschanged".
  /** @returns {Promise<boolean>} */
  findVoice() {
    const synth = this.synth;
    if (!synth) return Promise.resolve(false);
    const pick = () => {
      const voices = synth.getVoices();
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
      synth.addEventListener("voiceschanged", done, { once: true });
      setTimeout(done, 1500);
    });
  }

  // The browser's voice, else backrub's clips (a session to ask them for and a way to play them).
  get clips() {
    return !(this.synth && this.voice) && Boolean(this.sessionId) && "Audio" in window;
  }

  get available() {
    return Boolean(this.synth && this.voice) || this.clips;
  }

  // `fresher`: for a cue, a promise of its words as the page will have them (see `sayClip`).
  /**
   * @param {string} text
   * @param {{interrupt?: boolean, fresher?: Fresher | null}} [options]
   */
  say(text, { interrupt = false, fresher = null } = {}) {
    if (!this.on || !this.available || !text) return;
    if (this.clips) {
      this.sayClip(text, interrupt, fresher);
      return;
    }
    // Not clips: the browser has a voice.
    const synth = /** @type {SpeechSynthesis} */ (this.synth);
    const voice = /** @type {SpeechSynthesisVoice} */ (this.voice);
    if (interrupt) synth.cancel();
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.voice = voice;
    utterance.lang = voice.lang;
    utterance.rate = 0.92;
    utterance.pitch = 0.95;
    utterance.addEventListener("start", () => this.onSpeaking(true));
    const end = () => {
      if (!synth.speaking) this.onSpeaking(false);
    };
    utterance.addEventListener("end", end);
    utterance.addEventListener("error", end);
    synth.speak(utterance);
  }

  // ---- backrub's clips: fetched as soon as they are due, played one at a time, in order, as
  // speech synthesis queues utterances ----

  /**
   * @param {string} text
   * @param {boolean} interrupt
   * @param {Fresher | null} fresher
   */
  sayClip(text, interrupt, fresher) {
    if (interrupt) this.cancelClips();
    // Offline, a fetch could only fail (and the browser reports each failure); the words are
    // on the screen and announced to screen readers anyway.
    if (!navigator.onLine) return;
    const controller = new AbortController();
    // A POST: the words (a tender spot, say) stay out of the address, and nothing is cached.
    /** @param {string} words */
    const ask = (words) =>
      fetch(this.clipUrl(), {
        method: "POST",
        signal: controller.signal,
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ text: words }),
      });
    const url = ask(text)
      .then(async (response) => {
        // The server says only the saved session's words: a cue re-planned by a feedback
        // while it was on its way is refused (422) — asked again as the page has it once the
        // re-plan is in (`fresher`).
        const now = response.status === 422 && fresher ? await fresher() : null;
        return now && now !== text ? ask(now) : response;
      })
      .then((response) => (response.ok ? response.blob() : null))
      .then((blob) => (blob ? URL.createObjectURL(blob) : null))
      // Offline, or a phrase the server will not say: the words are on the screen anyway.
      .catch(() => null);
    this.queue.push({ text, url, controller });
    if (!this.audio && !this.waiting) this.next();
  }

  clipUrl() {
    return `/api/v1/sessions/${encodeURIComponent(/** @type {string} */ (this.sessionId))}/voice`;
  }

  async next() {
    const item = this.queue.shift();
    if (!item) {
      this.onSpeaking(false);
      return;
    }
    this.waiting = item;
    const url = await item.url;
    if (this.waiting !== item) {
      if (url) URL.revokeObjectURL(url); // cancelled while it came
      return;
    }
    this.waiting = null;
    if (!url) {
      this.next();
      return;
    }
    const audio = new Audio(url);
    audio.title = item.text; // what it says (the element is never shown)
    this.audio = audio;
    const done = () => {
      URL.revokeObjectURL(url);
      if (this.audio !== audio) return;
      this.audio = null;
      this.next();
    };
    audio.addEventListener("playing", () => this.onSpeaking(true), { once: true });
    audio.addEventListener("ended", done, { once: true });
    audio.addEventListener("error", done, { once: true });
    audio.play().catch(done);
  }

  cancelClips() {
    for (const item of this.queue) {
      item.controller.abort();
      item.url.then((url) => url && URL.revokeObjectURL(url));
    }
    this.queue = [];
    if (this.waiting) this.waiting.controller.abort();
    this.waiting = null;
    if (this.audio) {
      const audio = this.audio;
      this.audio = null;
      audio.pause();
      URL.revokeObjectURL(audio.src);
      audio.removeAttribute("src");
      audio.load();
    }
  }

  stop() {
    if (this.synth) this.synth.cancel();
    this.cancelClips();
    this.onSpeaking(false);
  }
}
