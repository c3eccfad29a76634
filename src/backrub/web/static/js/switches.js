// @ts-check
// The player's switches that outlast a session: sound (ambient and chimes), voice and volume,
// remembered on this device; and the screen kept awake while a session runs.
import { store } from "./api.js";

/** @import { Sound } from "./audio.js" */
/** @import { Voice } from "./voice.js" */

/** @param {string} id an element the player page has */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ ($(id));

export class Switches {
  /** @param {{sound: Sound, voice: Voice}} parts */
  constructor({ sound, voice }) {
    this.sound = sound;
    this.voice = voice;
    /** @type {{voice?: boolean, sound?: boolean, volume?: number}} */
    this.prefs = store.get("player", { voice: true, sound: false, volume: 60 });
    /** @type {WakeLockSentinel | null} */
    this.wakeLock = null;
    const volume = /** @type {HTMLInputElement} */ ($("volume"));
    volume.value = String(this.prefs.volume ?? 60);
    sound.setVolume(Number(volume.value) / 100);
    volume.addEventListener("input", () => {
      this.prefs.volume = Number(volume.value);
      this.save();
      sound.setVolume(this.prefs.volume / 100);
    });
    // Sound needs a tap to start: the wish is remembered, and the next tap (Begin or resume) starts it.
    this.soundButton(false);
    voice.ready.then(() => this.setVoice(this.prefs.voice !== false));
  }

  save() {
    store.set("player", this.prefs);
  }

  // On a tap that starts or resumes the session: the sound the person left on comes back.
  async soundIfWanted() {
    if (this.prefs.sound && !this.sound.on) await this.setSound(true);
  }

  toggleSound() {
    return this.setSound(!(this.sound.on && this.prefs.sound));
  }

  /** @param {boolean} on */
  async setSound(on) {
    this.prefs.sound = on;
    this.save();
    const ok = on ? await this.sound.enable() : (this.sound.disable(), true);
    this.soundButton(on && ok);
  }

  /** @param {boolean} active */
  soundButton(active) {
    $("sound-btn").setAttribute("aria-pressed", String(active));
    $("sound-btn").title = active ? "Sound is on" : "Sound is off";
  }

  toggleVoice() {
    this.setVoice(!this.voice.on);
  }

  /** @param {boolean} on */
  setVoice(on) {
    const voice = this.voice;
    voice.on = on && voice.available;
    this.prefs.voice = on;
    this.save();
    if (!voice.on) voice.stop();
    $("voice-btn").setAttribute("aria-pressed", String(voice.on));
    button("voice-btn").disabled = !voice.available;
    $("voice-label").textContent = voice.available ? "Voice" : "No voice";
    $("voice-btn").title = voice.available ? (voice.on ? "Voice is on" : "Voice is off") : "This device has no voice";
  }

  // The Wake Lock API where the browser has it; elsewhere the screen sleeps as it always does.
  async keepAwake() {
    if (!("wakeLock" in navigator) || this.wakeLock) return;
    try {
      this.wakeLock = await navigator.wakeLock.request("screen");
      this.wakeLock.addEventListener("release", () => (this.wakeLock = null));
    } catch {
      this.wakeLock = null;
    }
  }

  letSleep() {
    if (this.wakeLock) this.wakeLock.release().catch(() => {});
    this.wakeLock = null;
  }
}
