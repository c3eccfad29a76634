// @ts-check
// The session player. The browser is the session's clock: it runs the timeline locally from the
// server's durations and steps (timeline.js mirrors the engine, cues included), on absolute
// deadlines of active time, and tells the server what happened and when (POST …/events). The
// server answers a skip, extend or feedback with the state, the steps it changed and the
// durations (an event it turned down: all of the state), which the page adopts; a progress save,
// pause or resume with what it saved (seq, active time, cues given), the timeline being as the
// page has it. Events wait in an outbox (outbox.js) while offline and go in order when the
// network returns; it keeps them across a reload or a closed tab, and the next page applies them
// to what the server last saved. A reload continues, paused, where the person was.

import { getJSON, ApiError, minutesSeconds, store, registerServiceWorker, PHASE_NAMES } from "./api.js";
import { Outbox } from "./outbox.js";
import * as T from "./timeline.js";
import { Scene, BreathRing } from "./scene.js";
import { showHowto } from "./howto.js";
import { bindKeys } from "./keys.js";
import { adopt, adoptSaved, adoptSteps, cueWords, replay } from "./adopt.js";
import { Sound } from "./audio.js";
import { Voice } from "./voice.js";
import { ReceiverRemote } from "./remote.js";
import { Switches } from "./switches.js";

/** @import { Cue, Position } from "./timeline.js" */
/** @import { Live } from "./adopt.js" */
/** @import { Item } from "./outbox.js" */
/** @import { Technique } from "./scene.js" */
/** @import { Fresher } from "./voice.js" */

registerServiceWorker();

/** @param {string} id an element the player page has */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ ($(id));
/** @param {string} id */
const dialog = (id) => /** @type {HTMLDialogElement} */ ($(id));
/** @param {string} id an SVG element of the page */
const svg = (id) => /** @type {SVGElement} */ (/** @type {unknown} */ ($(id)));
const main = $("main");
const data = $("player-data");
const sessionId = /** @type {string} */ (data.dataset.sessionId);
const base = `/api/v1/sessions/${encodeURIComponent(sessionId)}`;
const speed = Number(document.body.dataset.speed) || 1;
/** @type {Record<string, string>} */
const words = JSON.parse(data.dataset.pressureWords || "{}");
/** @type {Map<string, Technique>} */
const techniques = new Map(
  [.../** @type {NodeListOf<HTMLElement>} */ (data.querySelectorAll("[data-technique]"))].map((el) => [
    /** @type {string} */ (el.dataset.technique),
    { name: /** @type {string} */ (el.dataset.name), motion: JSON.parse(/** @type {string} */ (el.dataset.motion)) },
  ]),
);
const scene = new Scene(svg("player-map"), techniques);
const breathRing = new BreathRing({ ring: svg("breath-ring"), arc: svg("breath-arc"), word: $("breath-word") });
const PROGRESS_EVERY_MS = 15000;

/** @type {Live} */
const live = {
  steps: [],
  durations: [],
  cues: [],
  mode: "self",
  stopped: false,
  fired: new Set(),
  seq: 0,
  started: false,
  status: "active",
  shownStep: -1,
  cueOnLine: "step:0", // the id of the cue the cue line shows (a re-plan may change its words)
  ended: false, // the finish form is showing (or the session was over on load)
  endedEarly: false,
  lastProgress: 0,
  checkinUntil: -1,
};
const clock = new T.Clock(speed);
const sound = new Sound();
const voice = new Voice({ sessionId }); // no browser voice: backrub's own clips of this session
const switches = new Switches({ sound, voice });
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

const outbox = new Outbox({
  key: sessionId,
  status: $("net-status"),
  onResult: handleResult,
  onError: handleError,
});

// ---- the server's view of the session -----------------------------------------------------------

// `t`: the moment a control changed the timeline, so the server applies it where the page did
// (at accelerated speed even a few milliseconds of work between would move a skip's boundary).
/** @param {number} [t] */
function activeNow(t = clock.now()) {
  const end = T.total(live.durations);
  return Math.round(Math.min(t, end) * 1000) / 1000;
}

/**
 * @param {string} kind
 * @param {object} [extra]
 * @param {number} [at]
 */
function send(kind, extra = {}, at = undefined) {
  live.seq += 1;
  const body = { kind, active: activeNow(at), seq: live.seq, fired: [...live.fired], ...extra };
  if (kind === "progress") live.lastProgress = performance.now();
  outbox.push(`${base}/events`, body, { kind });
}

/**
 * @param {any} view the server's answer
 * @param {Item} item
 * @param {boolean} last
 */
function handleResult(view, item, last) {
  if (item.meta.kind === "finish") {
    // The next session asks the safety questions afresh; the map choices stay as a start.
    store.remove("safety");
    window.location.assign("/history");
    return;
  }
  if (!view) return;
  if (view.message) say(view.message, { kind: "message" });
  // Every answer's steps, in turn (adopt.js): an accepted one carries only those it changed.
  if (view.state && !live.ended) {
    adoptSteps(live, view);
    live.shownStep = -1;
  }
  // (Not for an event kept from an earlier page: the server most likely has it already.)
  if (view.accepted === false && item.meta.kind !== "progress" && !item.meta.retried && !item.meta.restored) {
    // The server had already seen this sequence number (another tab, or a save it kept from
    // before a reload): send the control again, numbered after what it knows.
    live.seq = Math.max(live.seq, Number(view.state && view.state.seq) || 0, Number(view.seq) || 0);
    live.seq += 1;
    outbox.push(item.url, { ...item.body, seq: live.seq }, { ...item.meta, retried: true });
    return;
  }
  // Adopt only the answer to the newest event: earlier answers do not yet know about the
  // controls still waiting in the outbox.
  if (last && !live.ended) {
    if (view.state) adopt(live, clock, view);
    else adoptSaved(live, clock, view);
    tick();
  }
}

/**
 * @param {Error} error
 * @param {Item} item
 */
function handleError(error, item) {
  if (item.meta.kind === "finish") {
    button("finish-btn").disabled = false;
    $("finish-error").textContent = error.message;
    return;
  }
  if (error instanceof ApiError && error.status === 404) {
    showEnded("This session can no longer be found.");
    return;
  }
  showMessage(error.message);
}

// ---- speaking, showing, announcing -------------------------------------------------------------

/** @param {string} text */
function announce(text) {
  const region = $("announce");
  region.textContent = "";
  // A fresh text node a moment later makes screen readers read it even when it repeats.
  setTimeout(() => (region.textContent = text), 60);
}

/** @type {ReturnType<typeof setTimeout> | 0} */
let messageTimer = 0;
/** @param {string} text */
function showMessage(text) {
  const el = $("message");
  el.textContent = text;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => (el.textContent = ""), 9000);
}

/**
 * @param {string} text
 * @param {{kind?: string, interrupt?: boolean, fresher?: Fresher | null}} [options]
 */
function say(text, { kind = "cue", interrupt = false, fresher = null } = {}) {
  if (kind === "message") showMessage(text);
  announce(text);
  voice.say(text, { interrupt, fresher });
}

voice.onSpeaking = (speaking) => sound.duck(speaking);

// ---- cues ----------------------------------------------------------------------------------------

/** @param {Cue[]} ready */
function fire(ready) {
  for (const cue of ready) live.fired.add(cue.id);
  // After a long gap (the screen was off) only the newest cues are worth saying.
  const toSay = ready.length > 2 ? ready.slice(-1) : ready;
  const latest = ready[ready.length - 1];
  if (latest.kind !== "check-in") [live.cueOnLine, $("cue").textContent] = [latest.id, latest.text];
  // (`fresher`: the cue's words once a re-plan that overtook them is in, for backrub's voice.)
  /** @param {Cue} cue */
  const now = (cue) => (live.cues.find((c) => c.id === cue.id) || /** @type {Partial<Cue>} */ ({})).text;
  /** @param {Cue} cue */
  const fresher = (cue) => () => outbox.settled(5000).then(() => now(cue));
  toSay.forEach((cue, i) => say(cue.text, { interrupt: i === 0 && ready.length > 2, fresher: fresher(cue) }));
  sound.chime(latest.kind);
  if (latest.kind === "check-in") openCheckin(latest.text);
  if (latest.kind === "step") closeCheckin();
}

/** @param {string} text */
function openCheckin(text) {
  $("checkin-text").textContent = text;
  $("checkin").hidden = false;
  main.classList.add("checkin-open");
  live.checkinUntil = clock.now() + 45;
}

function closeCheckin() {
  $("checkin").hidden = true;
  main.classList.remove("checkin-open");
  live.checkinUntil = -1;
}

// The newest cue already given at time t (shown, not spoken, after a reload).
/** @param {number} t */
function lastCueBefore(t) {
  /** @type {Cue | null} */
  let found = null;
  for (const cue of live.cues) if (cue.at <= t && cue.kind !== "check-in" && cue.kind !== "finish") found = cue;
  return found;
}

// ---- drawing -------------------------------------------------------------------------------------

/**
 * @param {string} id
 * @param {string | null} text
 */
function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

/** @param {Position} pos */
function showStep(pos) {
  const step = live.steps[pos.step];
  if (!step) return;
  const technique = scene.technique(step.technique);
  const region = scene.regions.get(step.region);
  const regionName = (region && region.name) || step.region_name || step.region;
  setText("step-count", `Step ${pos.step + 1} of ${live.steps.length}`);
  const doing = $("doing");
  doing.textContent = "";
  const phase = document.createElement("span");
  phase.className = `phase-tag ph-${step.phase}`;
  phase.textContent = PHASE_NAMES[step.phase] || step.phase;
  const name = document.createElement("strong");
  name.textContent = technique.name;
  doing.append(phase, document.createElement("br"), name, ` · ${regionName} · ${words[String(step.pressure)] || step.pressure} pressure`);
  const next = live.steps[pos.step + 1];
  if (next) {
    setText("next", `Next: ${scene.technique(next.technique).name} — ${scene.regionName(next.region)}`);
  } else setText("next", "Next: the end — rest a moment.");
  $("self-help").hidden = !step.self_help;
  $("self-help").textContent = step.self_help || "";
  scene.show(step);
  setText("cue", cueWords(live.steps, live.cueOnLine) ?? $("cue").textContent); // as re-planned
  live.shownStep = pos.step;
  if (/** @type {HTMLDetailsElement} */ ($("howto")).open) howto();
}

function howto() {
  showHowto($("howto-body"), live.steps[live.shownStep], live.mode);
}

/** @param {Position} pos */
function drawClock(pos) {
  setText("countdown", minutesSeconds(pos.stepRemaining));
  setText("session-left", `${minutesSeconds(pos.remaining)} left`);
  const running = clock.running;
  setText("pause-btn", running ? "Pause" : "Resume");
  $("veil").hidden = running || !live.started || live.ended;
}

// ---- the loop ------------------------------------------------------------------------------------

function tick() {
  if (!live.steps.length) return;
  const t = clock.now();
  const pos = T.position(live.durations, t, live.stopped);
  if (live.started && !live.ended) {
    const ready = T.due(live.cues, Math.min(t, pos.total), live.fired);
    if (ready.length) fire(ready);
  }
  if (pos.step !== live.shownStep) {
    const boundary = live.shownStep !== -1 && clock.running;
    showStep(pos);
    if (boundary) send("progress");
  }
  if (live.checkinUntil >= 0 && t > live.checkinUntil) closeCheckin();
  if (clock.running) sound.breathe(T.breathLevel(t));
  if (live.started && !live.ended && pos.finished) reachEnd();
  else if (clock.running && performance.now() - live.lastProgress > PROGRESS_EVERY_MS) send("progress");
  drawClock(pos);
}

function frame() {
  if (live.steps.length) {
    const t = clock.now();
    const pos = T.position(live.durations, t, live.stopped);
    const step = live.steps[pos.step];
    if (step && !reducedMotion.matches) scene.drawHands(step, pos.stepElapsed);
    breathRing.draw(t, reducedMotion.matches);
  }
  requestAnimationFrame(frame);
}

// ---- controls ------------------------------------------------------------------------------------

function resume() {
  if (live.ended || clock.running) return;
  switches.soundIfWanted();
  clock.start();
  send("resume");
  switches.keepAwake();
  tick();
}

function pause() {
  if (!clock.running) return;
  clock.stop();
  clock.set(activeNow()); // the saved moment (to the millisecond), so a reload shows the same
  send("pause");
  switches.letSleep();
  voice.stop();
  tick();
}

function togglePause() {
  if (live.ended) return;
  if (!live.started) {
    begin();
    return;
  }
  if (clock.running) pause();
  else resume();
}

function skip() {
  if (!live.started || live.ended) return;
  const at = activeNow();
  const result = T.skip(live.durations, at);
  live.durations = result.durations;
  for (const id of result.dropped) live.fired.add(id);
  live.cues = T.schedule(live.steps, live.durations, live.mode);
  send("skip", {}, at);
  tick();
}

function extend() {
  if (!live.started || live.ended) return;
  const at = activeNow();
  live.durations = T.extend(live.durations, at);
  live.cues = T.schedule(live.steps, live.durations, live.mode);
  send("extend", {}, at);
  showMessage("One more minute on this step.");
  tick();
}

/** @type {Record<string, string>} */
const FEEDBACK_WORDS = { good: "Good", softer: "Softer", firmer: "Firmer", tender: "Tender spot" };
/** @param {string} kind good, softer, firmer or tender */
function feedback(kind) {
  if (!live.started || live.ended) return;
  closeCheckin();
  send("feedback", { feedback: kind });
  showMessage(navigator.onLine ? `${FEEDBACK_WORDS[kind]}…` : `${FEEDBACK_WORDS[kind]}: noted — the plan changes when the connection is back.`);
}

let starting = false;
async function begin() {
  if (live.started || starting) return;
  starting = true;
  button("start-btn").disabled = true;
  await switches.soundIfWanted();
  // Speaking inside the tap lets the browser's voice speak later cues on its own.
  say("Get ready.", { interrupt: true });
  const beat = Math.max(120, 1000 / speed);
  for (const n of [3, 2, 1]) {
    $("get-ready").textContent = String(n);
    await new Promise((resolve) => setTimeout(resolve, beat));
  }
  $("get-ready").textContent = "";
  live.started = true;
  starting = false;
  main.classList.remove("is-waiting");
  $("start-panel").hidden = true;
  clock.start();
  send("resume");
  switches.keepAwake();
  tick();
}

function reachEnd() {
  live.ended = true;
  clock.stop();
  clock.set(T.total(live.durations));
  switches.letSleep();
  send("progress");
  showFinish("Well done. Rest a moment.");
}

function endEarly() {
  dialog("end-dialog").close();
  if (live.ended) return;
  live.ended = true;
  live.endedEarly = true;
  clock.stop();
  switches.letSleep();
  voice.stop();
  send("progress");
  showFinish("Ended. Rest a moment.");
}

/** @param {string} title */
function showFinish(title) {
  $("finish-title").textContent = title;
  main.classList.add("is-finished");
  $("finish-panel").hidden = false;
  $("finish-title").focus();
}

/** @param {string} text */
function showEnded(text) {
  live.ended = true;
  clock.stop();
  switches.letSleep();
  main.classList.remove("is-loading", "is-waiting", "is-finished");
  main.classList.add("is-ended");
  $("ended-text").textContent = text;
  $("ended-panel").hidden = false;
  $("ended-title").focus();
}

/** @param {Event} event */
function finish(event) {
  event.preventDefault();
  button("finish-btn").disabled = true;
  $("finish-error").textContent = "";
  const note = /** @type {HTMLTextAreaElement} */ ($("note")).value.trim();
  outbox.push(
    `${base}/finish`,
    {
      active: activeNow(),
      tension_after: Number(/** @type {HTMLInputElement} */ ($("tension-after")).value),
      note: note || null,
      stopped: live.endedEarly,
    },
    { kind: "finish" },
  );
  // How tense and the note are health data: the outbox keeps them in memory only, not across a reload.
  if (!navigator.onLine) $("finish-error").textContent = "Offline — it will be saved when the connection is back; keep this page open.";
}

// ---- wiring --------------------------------------------------------------------------------------

// A pointer click leaves no focus behind, so Space keeps meaning pause/resume; keyboard
// activation keeps the focus where the person put it.
/**
 * @param {string} id
 * @param {(event: MouseEvent) => void} handler
 */
function onButton(id, handler) {
  $(id).addEventListener("click", (event) => {
    handler(event);
    if (event.detail > 0) /** @type {HTMLElement} */ (event.currentTarget).blur();
  });
}

for (const el of document.querySelectorAll("[data-tap]")) {
  el.addEventListener("click", (event) => {
    if (/** @type {Element} */ (event.target).closest("button, a, input, select, textarea, summary, label")) return;
    togglePause();
  });
}
onButton("pause-btn", togglePause);
onButton("skip-btn", skip);
onButton("extend-btn", extend);
for (const el of /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll("[data-feedback]"))) {
  el.addEventListener("click", (event) => {
    feedback(/** @type {string} */ (el.dataset.feedback));
    if (event.detail > 0) el.blur();
  });
}
onButton("start-btn", begin);
onButton("sound-btn", () => switches.toggleSound());
onButton("voice-btn", () => switches.toggleVoice());
onButton("help-btn", () => dialog("help").showModal());
$("help-close").addEventListener("click", () => dialog("help").close());
onButton("end-btn", () => dialog("end-dialog").showModal());
$("end-cancel").addEventListener("click", () => dialog("end-dialog").close());
$("end-go").addEventListener("click", endEarly);
$("finish-form").addEventListener("submit", finish);
$("howto").addEventListener("toggle", () => {
  if (/** @type {HTMLDetailsElement} */ ($("howto")).open) howto();
});
$("tension-after").addEventListener("input", (event) => {
  const slider = /** @type {HTMLInputElement} */ (event.target);
  $("tension-after-out").textContent = slider.value;
  slider.setAttribute("aria-valuetext", `${slider.value} of 10`);
});
bindKeys({ help: dialog("help"), ended: () => live.ended, togglePause, skip, extend, feedback });

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") {
    if (clock.running) switches.keepAwake();
    tick();
  } else if (live.started && !live.ended) {
    send("progress");
  }
});

window.addEventListener("pagehide", () => {
  if (live.started && !live.ended && clock.running) send("progress");
  outbox.sendOnUnload();
});

function applyMotionPreference() {
  document.documentElement.classList.toggle("reduced-motion", reducedMotion.matches);
}
reducedMotion.addEventListener("change", applyMotionPreference);
applyMotionPreference();

// ---- start ---------------------------------------------------------------------------------------

async function load() {
  let view;
  const kept = outbox.restore();
  try {
    view = await getJSON(base);
  } catch (error) {
    const gone = error instanceof ApiError && error.status === 404;
    const text = gone
      ? "There is no such session. Start a new one from the beginning."
      : `The session could not be loaded: ${/** @type {Error} */ (error).message} Reload when the connection is back.`;
    showEnded(text);
    $("ended-title").textContent = "The session is not here.";
    await kept;
    if (gone) outbox.clear();
    else outbox.start(); // what was kept still goes when the connection is back
    return;
  }
  adopt(live, clock, view, { initial: true });
  const restored = await kept;
  main.classList.remove("is-loading");
  if (live.status !== "active") {
    outbox.clear();
    showEnded(live.status === "stopped" ? "It was ended early; it is saved in your history." : "It is saved in your history.");
    return;
  }
  // The server has every event up to the seq it saved; the kept ones after it are applied here.
  const saved = live.seq;
  outbox.confirmed(saved);
  replay(live, clock, restored.filter((item) => item.body.seq > saved));
  outbox.start();
  const t = clock.now();
  const pos = T.position(live.durations, t, live.stopped);
  showStep(pos);
  live.cueOnLine = (lastCueBefore(t) || { id: "step:0" }).id;
  $("cue").textContent = cueWords(live.steps, live.cueOnLine);
  if (!live.started) {
    main.classList.add("is-waiting");
    $("start-panel").hidden = false;
    const minutes = Math.round(T.total(live.durations) / 60);
    $("start-text").textContent = `${minutes} minutes, ${live.steps.length} steps. Set the space, warm your hands, and breathe slowly.`;
    $("start-btn").focus();
  } else if (pos.finished || live.stopped) {
    live.ended = true;
    live.endedEarly = live.stopped;
    showFinish(live.stopped ? "Ended. Rest a moment." : "Well done. Rest a moment.");
  } else {
    $("veil-title").textContent = "Paused";
    $("veil-hint").textContent = `Step ${pos.step + 1} of ${live.steps.length} — tap to continue`;
  }
  live.lastProgress = performance.now();
  tick();
  setInterval(tick, 200);
  requestAnimationFrame(frame);
}

load().then(() => {
  // Partner mode: the receiver's remote (remote.js) shows what the receiver taps, says it, and
  // hands it to `feedback`, as if the giver had tapped it here.
  if (live.mode !== "partner" || live.ended) return;
  new ReceiverRemote({
    sessionId,
    say: (text) => say(text, { interrupt: true }),
    chime: () => sound.chime("check-in"),
    feedback,
    over: () => live.ended,
  });
});
