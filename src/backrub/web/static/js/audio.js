// @ts-check
// Sound made in the page with Web Audio — nothing is downloaded: a soft ambient bed (filtered
// brown noise that swells gently with the breath, under a quiet low pad) and a chime at each
// step. Off until the person taps "Sound on" (browsers only start audio after a gesture); the
// ambient dips under the voice.

const AMBIENT_LEVEL = 0.5;
const DUCKED_LEVEL = 0.18;

/** @returns {typeof AudioContext | undefined} the browser's, under either of its names */
const audioContextClass = () => window.AudioContext || /** @type {any} */ (window).webkitAudioContext;

export class Sound {
  constructor() {
    /** @type {AudioContext | null} */
    this.ctx = null;
    // The nodes below exist once build() has made `ctx`: every use is behind a check of `ctx`.
    /** @type {GainNode} */
    this.master = /** @type {any} */ (null);
    /** @type {GainNode} */
    this.ambient = /** @type {any} */ (null);
    /** @type {BiquadFilterNode} */
    this.swell = /** @type {any} */ (null);
    /** @type {GainNode} */
    this.chimeBus = /** @type {any} */ (null);
    /** @type {GainNode} */
    this.noiseGain = /** @type {any} */ (null);
    this.on = false;
    this.volume = 0.6;
    this.ducked = false;
  }

  get available() {
    return Boolean(audioContextClass());
  }

  // Call from a click or key handler.
  async enable() {
    if (!this.available) return false;
    const ctx = this.ctx || this.build();
    try {
      await ctx.resume();
    } catch {
      return false;
    }
    this.on = true;
    this.master.gain.setTargetAtTime(this.volume, ctx.currentTime, 0.6);
    return true;
  }

  disable() {
    this.on = false;
    if (!this.ctx) return;
    const now = this.ctx.currentTime;
    this.master.gain.cancelScheduledValues(now);
    this.master.gain.setTargetAtTime(0, now, 0.25);
    setTimeout(() => {
      if (!this.on && this.ctx) this.ctx.suspend().catch(() => {});
    }, 1500);
  }

  /** @param {number} value 0–1 */
  setVolume(value) {
    this.volume = Math.min(1, Math.max(0, value));
    if (this.ctx && this.on) this.master.gain.setTargetAtTime(this.volume, this.ctx.currentTime, 0.2);
  }

  // The voice is speaking: the ambient steps back, and comes back when it is done.
  /** @param {boolean} speaking */
  duck(speaking) {
    this.ducked = speaking;
    if (!this.ctx) return;
    const level = speaking ? DUCKED_LEVEL : AMBIENT_LEVEL;
    this.ambient.gain.setTargetAtTime(level, this.ctx.currentTime, speaking ? 0.15 : 0.8);
  }

  // 0 (empty lungs) → 1 (full): the noise opens a little on the in-breath, like a slow wave.
  /** @param {number} level */
  breathe(level) {
    if (!this.ctx || !this.on) return;
    const now = this.ctx.currentTime;
    this.swell.frequency.setTargetAtTime(260 + 420 * level, now, 0.3);
    this.noiseGain.gain.setTargetAtTime(0.55 + 0.45 * level, now, 0.3);
  }

  // kind: "step" (two soft notes), "check-in" (one higher note), "finish" (three falling notes).
  chime(kind = "step") {
    if (!this.ctx || !this.on) return;
    const t = this.ctx.currentTime + 0.05;
    /** @type {Record<string, [number, number][]>} */
    const noteSets = {
      step: [[523.25, 0], [783.99, 0.32]],
      "check-in": [[880, 0]],
      halfway: [[659.25, 0]],
      finish: [[783.99, 0], [659.25, 0.5], [523.25, 1.0]],
    };
    const notes = noteSets[kind] || [[523.25, 0]];
    const quiet = kind === "halfway" ? 0.5 : 1;
    for (const [freq, at] of notes) this.bell(freq, t + at, quiet);
  }

  /**
   * @param {number} freq
   * @param {number} when
   */
  bell(freq, when, quiet = 1) {
    const ctx = /** @type {AudioContext} */ (this.ctx);
    const out = ctx.createGain();
    out.gain.setValueAtTime(0, when);
    out.gain.linearRampToValueAtTime(0.22 * quiet, when + 0.015);
    out.gain.exponentialRampToValueAtTime(0.0008, when + 3.2);
    out.connect(this.chimeBus);
    // A few inharmonic partials make a soft bell rather than a beep.
    for (const [ratio, level] of [[1, 1], [2.76, 0.22], [5.4, 0.06]]) {
      const osc = ctx.createOscillator();
      const g = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq * ratio;
      g.gain.value = level;
      osc.connect(g).connect(out);
      osc.start(when);
      osc.stop(when + 3.3);
    }
  }

  /** @returns {AudioContext} */
  build() {
    const Ctx = /** @type {typeof AudioContext} */ (audioContextClass());
    const ctx = new Ctx();
    this.ctx = ctx;
    this.master = ctx.createGain();
    this.master.gain.value = 0;
    this.master.connect(ctx.destination);

    this.chimeBus = ctx.createGain();
    this.chimeBus.gain.value = 0.8;
    this.chimeBus.connect(this.master);

    this.ambient = ctx.createGain();
    this.ambient.gain.value = AMBIENT_LEVEL;
    this.ambient.connect(this.master);

    // Brown noise, a few seconds looped, through a low-pass that follows the breath.
    const seconds = 6;
    const buffer = ctx.createBuffer(1, ctx.sampleRate * seconds, ctx.sampleRate);
    const data = buffer.getChannelData(0);
    let last = 0;
    for (let i = 0; i < data.length; i++) {
      last = (last + 0.02 * (Math.random() * 2 - 1)) / 1.02;
      data[i] = last * 3.2;
    }
    // Cross-fade the loop's ends so it does not click.
    const edge = Math.floor(ctx.sampleRate * 0.25);
    for (let i = 0; i < edge; i++) {
      const k = i / edge;
      data[i] = data[i] * k + data[data.length - edge + i] * (1 - k);
    }
    const noise = ctx.createBufferSource();
    noise.buffer = buffer;
    noise.loop = true;
    noise.loopEnd = seconds - 0.25;
    this.swell = ctx.createBiquadFilter();
    this.swell.type = "lowpass";
    this.swell.frequency.value = 400;
    this.swell.Q.value = 0.4;
    this.noiseGain = ctx.createGain();
    this.noiseGain.gain.value = 0.7;
    noise.connect(this.swell).connect(this.noiseGain).connect(this.ambient);
    noise.start();

    // A quiet, slowly breathing pad: a low fifth, slightly detuned.
    const pad = ctx.createGain();
    pad.gain.value = 0.035;
    const lfo = ctx.createOscillator();
    const lfoDepth = ctx.createGain();
    lfo.frequency.value = 0.06;
    lfoDepth.gain.value = 0.015;
    lfo.connect(lfoDepth).connect(pad.gain);
    lfo.start();
    for (const [freq, detune] of [[110, -4], [164.81, 3], [220, 6]]) {
      const osc = ctx.createOscillator();
      osc.type = "sine";
      osc.frequency.value = freq;
      osc.detune.value = detune;
      osc.connect(pad);
      osc.start();
    }
    const padFilter = ctx.createBiquadFilter();
    padFilter.type = "lowpass";
    padFilter.frequency.value = 600;
    pad.connect(padFilter).connect(this.ambient);
    return ctx;
  }
}
