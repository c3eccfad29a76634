// @ts-check
// The session's position logic, mirroring backrub.core.engine so the page can run a session on
// its own clock (and offline): deadlines are offsets of active time from the start, computed from
// the live step durations every time — never accumulated — so nothing drifts, and a pause shifts
// everything after it by exactly its length.

/**
 * A step of the plan as the server sends it (core.models.Step; "index" is its position).
 * @typedef {object} Step
 * @property {number} [position]
 * @property {number} [index]
 * @property {string} phase
 * @property {string} region
 * @property {string} [region_name]
 * @property {string} technique
 * @property {string} [tool]
 * @property {number} pressure
 * @property {number} seconds
 * @property {number} [start]
 * @property {string} cue
 * @property {boolean} check_in
 * @property {string} [breath]
 * @property {string} halfway
 * @property {string | null} [self_help]
 * @property {string[]} [avoid]
 */

/** @typedef {"step" | "halfway" | "check-in" | "finish"} CueKind */

/**
 * A cue on the timeline: said at `at` seconds of active time.
 * @typedef {object} Cue
 * @property {string} id
 * @property {CueKind} kind
 * @property {number} at
 * @property {number} step
 * @property {string} text
 */

/**
 * Where active time falls in the session.
 * @typedef {object} Position
 * @property {number} step
 * @property {number} stepElapsed
 * @property {number} stepRemaining
 * @property {number} stepLength
 * @property {number} elapsed
 * @property {number} remaining
 * @property {number} total
 * @property {boolean} finished
 */

export const CHECK_IN_AFTER = 20;
export const EXTEND_SECONDS = 60;
export const BREATH_IN = 4;
export const BREATH_OUT = 6;
export const CHECK_IN_TEXT = "Ask: is the pressure right?";
export const FINISH_TEXT = "That's the end. Rest a moment.";

/**
 * @param {readonly number[]} durations
 * @returns {number[]}
 */
export function starts(durations) {
  const out = [];
  let t = 0;
  for (const d of durations) {
    out.push(t);
    t += d;
  }
  return out;
}

/** @param {readonly number[]} durations */
export function total(durations) {
  let t = 0;
  for (const d of durations) t += d;
  return t;
}

// Where active time `t` falls: engine.position.
const EPSILON = 1e-6;

/**
 * @param {readonly number[]} durations
 * @param {number} t
 * @returns {Position}
 */
export function position(durations, t, stopped = false) {
  const begin = starts(durations);
  const end = total(durations);
  const finished = stopped || t >= end;
  let index = durations.length - 1;
  for (let i = 0; i < durations.length; i++) {
    // A boundary within a microsecond counts as reached: the page's and the server's sums of
    // the same durations may differ by a rounding error.
    if (t < begin[i] + durations[i] - EPSILON) {
      index = i;
      break;
    }
  }
  const elapsedIn = Math.min(Math.max(0, t - begin[index]), durations[index]);
  return {
    step: index,
    stepElapsed: elapsedIn,
    stepRemaining: durations[index] - elapsedIn,
    stepLength: durations[index],
    elapsed: Math.min(t, end),
    remaining: Math.max(0, end - t),
    total: end,
    finished,
  };
}

// Every cue of the session in time order: engine.schedule, for when the page changed the
// durations itself (offline) and has no fresh schedule from the server.
/**
 * @param {readonly Step[]} steps
 * @param {readonly number[]} durations
 * @param {string} mode
 * @returns {Cue[]}
 */
export function schedule(steps, durations, mode) {
  /** @type {Cue[]} */
  const cues = [];
  const begin = starts(durations);
  steps.forEach((step, i) => {
    const length = durations[i];
    cues.push({ id: `step:${i}`, kind: "step", at: begin[i], step: i, text: step.cue });
    if (step.check_in && mode === "partner") {
      const at = begin[i] + Math.min(CHECK_IN_AFTER, length / 4);
      cues.push({ id: `check:${i}`, kind: "check-in", at, step: i, text: CHECK_IN_TEXT });
    }
    cues.push({ id: `half:${i}`, kind: "halfway", at: begin[i] + length / 2, step: i, text: step.halfway });
  });
  cues.sort((a, b) => a.at - b.at || a.step - b.step);
  cues.push({ id: "finish", kind: "finish", at: total(durations), step: steps.length - 1, text: FINISH_TEXT });
  return cues;
}

// The cues whose deadline has come and that have not been given yet, oldest first.
/**
 * @param {readonly Cue[]} cues
 * @param {number} t
 * @param {ReadonlySet<string>} fired
 */
export function due(cues, t, fired) {
  return cues.filter((c) => c.at <= t && !fired.has(c.id));
}

// engine.skip: the current step ends now; its unsaid cues are dropped.
/**
 * @param {number[]} durations
 * @param {number} t
 * @returns {{durations: number[], dropped: string[]}}
 */
export function skip(durations, t) {
  const pos = position(durations, t);
  if (pos.finished) return { durations, dropped: [] };
  const next = durations.slice();
  next[pos.step] = pos.stepElapsed;
  return { durations: next, dropped: [`half:${pos.step}`, `check:${pos.step}`] };
}

// engine.extend: more time for the current step; everything after it moves later.
/**
 * @param {number[]} durations
 * @param {number} t
 */
export function extend(durations, t, seconds = EXTEND_SECONDS) {
  const pos = position(durations, t);
  if (pos.finished) return durations;
  const next = durations.slice();
  next[pos.step] += seconds;
  return next;
}

// engine.breath: in for 4 s, out for 6 s, in step with active time.
/**
 * @param {number} t
 * @returns {{phase: "in" | "out", progress: number}}
 */
export function breath(t) {
  const cycle = BREATH_IN + BREATH_OUT;
  const u = ((t % cycle) + cycle) % cycle;
  if (u < BREATH_IN) return { phase: "in", progress: u / BREATH_IN };
  return { phase: "out", progress: (u - BREATH_IN) / BREATH_OUT };
}

// How full the lungs are, 0 → 1 → 0, eased so the ring never jumps: continuous at both turns.
/** @param {number} t */
export function breathLevel(t) {
  const b = breath(t);
  const eased = 0.5 - 0.5 * Math.cos(Math.PI * b.progress);
  return b.phase === "in" ? eased : 1 - eased;
}

// The page's clock: active seconds, scaled by the page's speed, from performance.now().
export class Clock {
  constructor(speed = 1, now = () => performance.now()) {
    this.speed = speed > 0 ? speed : 1;
    this.nowMs = now;
    this.base = 0;
    /** @type {number | null} */
    this.anchor = null;
  }

  get running() {
    return this.anchor !== null;
  }

  now() {
    if (this.anchor === null) return this.base;
    return this.base + ((this.nowMs() - this.anchor) / 1000) * this.speed;
  }

  start() {
    if (this.anchor === null) this.anchor = this.nowMs();
  }

  stop() {
    if (this.anchor !== null) {
      this.base = this.now();
      this.anchor = null;
    }
  }

  /** @param {number} seconds */
  set(seconds) {
    this.base = seconds;
    if (this.anchor !== null) this.anchor = this.nowMs();
  }
}
