// @ts-check
// What the page takes from the server and from its own kept events: `live` (the player's view
// of the session) and its `clock` brought up to date. The player (player.js) owns both.
import * as T from "./timeline.js";

/** @import { Cue, Step } from "./timeline.js" */

/**
 * The player's view of the session.
 * @typedef {object} Live
 * @property {Step[]} steps
 * @property {number[]} durations
 * @property {Cue[]} cues
 * @property {string} mode self or partner
 * @property {boolean} stopped
 * @property {Set<string>} fired the ids of the cues given
 * @property {number} seq the last event's number
 * @property {boolean} started
 * @property {string} status active, finished or stopped
 * @property {number} shownStep
 * @property {string} cueOnLine the id of the cue the cue line shows
 * @property {boolean} ended
 * @property {boolean} endedEarly
 * @property {number} lastProgress
 * @property {number} checkinUntil
 */

/**
 * @param {any} step
 * @param {number} i
 * @returns {Step}
 */
function normaliseStep(step, i) {
  return { ...step, position: step.position ?? step.index ?? i };
}

// The steps an answer brings: all of them (the session's view, a refused event's answer), or
// only the fields an accepted event changed, written into the page's. Taken from every answer in
// turn, not only the newest: the page never changes the steps itself, so an answer's steps are
// never behind it, and each answer's changes are made on top of the one before.
/**
 * @param {Live} live
 * @param {any} view the server's answer
 */
export function adoptSteps(live, view) {
  if (!view) return;
  const state = view.state || {};
  if (Array.isArray(state.steps)) {
    live.steps = state.steps.map(normaliseStep);
  } else if (Array.isArray(view.changed_steps)) {
    const steps = live.steps.slice();
    for (const [i, fields] of view.changed_steps) steps[i] = normaliseStep({ ...steps[i], ...fields }, i);
    live.steps = steps;
  } else if (view.plan && Array.isArray(view.plan.steps) && !live.steps.length) {
    live.steps = view.plan.steps.map(normaliseStep);
  }
}

// The words of cue `id` ("step:3", "half:3") as the steps now have them: a feedback re-plans a
// step's pressure, and so its cue, after the cue was shown. Null for any other cue.
/**
 * @param {readonly Step[]} steps
 * @param {string} id
 * @returns {string | null}
 */
export function cueWords(steps, id) {
  const [kind, i] = String(id).split(":");
  const step = steps[Number(i)];
  if (!step) return null;
  return kind === "step" ? step.cue : kind === "half" ? step.halfway : null;
}

/**
 * @param {Live} live
 * @param {T.Clock} clock
 * @param {any} view the session, or the answer to an event
 * @param {{initial?: boolean}} [options]
 */
export function adopt(live, clock, view, { initial = false } = {}) {
  if (!view) return;
  const state = view.state || {};
  live.mode = (state.rules && state.rules.mode) || (view.plan && view.plan.mode) || live.mode;
  adoptSteps(live, view);
  live.durations = (view.durations || state.durations || live.steps.map((s) => s.seconds)).map(Number);
  live.cues = Array.isArray(view.cues) && view.cues.length ? view.cues : T.schedule(live.steps, live.durations, live.mode);
  live.stopped = Boolean(state.stopped);
  for (const id of state.fired || []) live.fired.add(id);
  live.seq = Math.max(live.seq, Number(state.seq) || 0, Number(view.seq) || 0);
  live.started = live.started || Boolean(state.started);
  live.status = (view.record && view.record.status) || live.status;
  const active = Number(view.active ?? state.active ?? 0);
  if (initial) {
    clock.set(Number.isFinite(active) ? active : 0);
  } else if (!clock.running && Number.isFinite(active) && active > clock.now()) {
    // Paused: the server applied the event at a later moment (a rounding, another tab); take
    // its time, or a skip's new step boundary would sit just ahead of the page's clock.
    clock.set(active);
  }
  live.shownStep = -1; // redraw the step: its pressure or technique may have changed
}

// The small answer to a progress save, pause or resume: the timeline has not changed; take what
// the server saved that the page may not know (cues another tab gave, a later active time).
/**
 * @param {Live} live
 * @param {T.Clock} clock
 * @param {any} answer
 */
export function adoptSaved(live, clock, answer) {
  for (const id of answer.fired || []) live.fired.add(id);
  live.seq = Math.max(live.seq, Number(answer.seq) || 0);
  live.started = true;
  const active = Number(answer.active);
  // As in adopt: paused, a later time from the server is taken.
  if (!clock.running && Number.isFinite(active) && active > clock.now()) clock.set(active);
}

// Events an earlier page for this session could not send (offline, then a reload or a closed
// tab): applied as they were when they happened — on top of what the server last saved, which
// may be the service worker's older copy — so the page resumes where the person was.
/**
 * @param {Live} live
 * @param {T.Clock} clock
 * @param {readonly {body: any}[]} items
 */
export function replay(live, clock, items) {
  let retimed = false;
  for (const { body } of items) {
    const at = Math.max(clock.now(), Number(body.active) || 0);
    clock.set(at);
    if (body.kind === "skip") {
      const result = T.skip(live.durations, at);
      live.durations = result.durations;
      for (const id of result.dropped) live.fired.add(id);
      retimed = true;
    } else if (body.kind === "extend") {
      live.durations = T.extend(live.durations, at);
      retimed = true;
    }
    // Feedback re-plans on the server: the new pressures come with its answer.
    for (const id of body.fired || []) live.fired.add(id);
    live.seq = Math.max(live.seq, body.seq);
    live.started = true;
  }
  if (retimed) live.cues = T.schedule(live.steps, live.durations, live.mode);
}
