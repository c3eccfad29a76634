// What the player takes from the server and from the events an earlier page kept
// (static/js/adopt.js): a reload resumes, paused, where the person was, with the cue line in the
// words the steps now have.
import assert from "node:assert/strict";
import test from "node:test";

import { adopt, adoptSaved, cueWords, replay } from "../../src/backrub/web/static/js/adopt.js";
import { Clock } from "../../src/backrub/web/static/js/timeline.js";

const step = (/** @type {number} */ i, seconds = 120) => ({
  index: i,
  phase: "focus",
  region: "shoulders",
  technique: "knead",
  pressure: 3,
  seconds,
  cue: `Step ${i}.`,
  halfway: `Half-way through ${i}.`,
  check_in: i === 1,
});

/** The player's view of a session before anything is known. */
function freshLive() {
  return {
    steps: [], durations: [], cues: [], mode: "self", stopped: false, fired: new Set(), seq: 0,
    started: false, status: "active", shownStep: -1, cueOnLine: "step:0", ended: false,
    endedEarly: false, lastProgress: 0, checkinUntil: -1,
  };
}

/** The session as GET /api/v1/sessions/{id} answers, saved at `active` seconds. */
const view = (active = 100, seq = 4) => ({
  plan: { mode: "partner" },
  state: { rules: { mode: "partner" }, steps: [step(0), step(1), step(2)], durations: [120, 120, 120], fired: ["step:0"], seq, started: true, active },
  record: { status: "active" },
  active,
});

test("a reload takes the saved session: its steps, timeline, cues given and moment", () => {
  const live = freshLive();
  const clock = new Clock(1, () => 0);
  adopt(live, clock, view(), { initial: true });
  assert.equal(live.mode, "partner");
  assert.deepEqual(live.durations, [120, 120, 120]);
  assert.deepEqual(live.steps.map((s) => s.position), [0, 1, 2]);
  assert.ok(live.cues.some((c) => c.id === "check:1"), "the partner's check-in is on the timeline");
  assert.equal(clock.now(), 100);
  assert.equal(clock.running, false, "a reload continues paused");
  assert.deepEqual([live.seq, live.started, [...live.fired]], [4, true, ["step:0"]]);
});

test("events kept from before the reload are applied where they happened", () => {
  const live = freshLive();
  const clock = new Clock(1, () => 0);
  adopt(live, clock, view(100, 4), { initial: true });
  replay(live, clock, [
    { body: { kind: "extend", active: 110, seq: 5, fired: ["step:0"] } },
    { body: { kind: "skip", active: 200, seq: 6, fired: ["step:0", "half:0", "step:1"] } },
  ]);
  assert.deepEqual(live.durations, [180, 20, 120], "a minute more on step 0, then step 1 ended 20 s in");
  assert.equal(clock.now(), 200);
  assert.equal(live.seq, 6);
  assert.ok(live.fired.has("half:1") && live.fired.has("check:1"), "the skipped step's cues are not said after all");
  assert.equal(live.cues.find((c) => c.id === "step:2")?.at, 200);
  assert.equal(live.cues.at(-1)?.at, 320);
});

test("a small answer (a pause saved) never moves a paused page back", () => {
  const live = freshLive();
  const clock = new Clock(1, () => 0);
  adopt(live, clock, view(100), { initial: true });
  adoptSaved(live, clock, { seq: 7, active: 90, fired: ["half:0"] });
  assert.equal(clock.now(), 100);
  adoptSaved(live, clock, { seq: 8, active: 104.5, fired: [] });
  assert.equal(clock.now(), 104.5, "another tab went on: its later moment is taken");
  assert.equal(live.seq, 8);
  assert.ok(live.fired.has("half:0"));
});

test("the cue line shows a cue in the words its step has now", () => {
  const steps = [step(0), { ...step(1), cue: "Lighter now: step 1." }];
  assert.equal(cueWords(steps, "step:1"), "Lighter now: step 1.");
  assert.equal(cueWords(steps, "half:0"), "Half-way through 0.");
  assert.equal(cueWords(steps, "check:1"), null);
  assert.equal(cueWords(steps, "step:9"), null);
});
