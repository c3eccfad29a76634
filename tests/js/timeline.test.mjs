// The page's own timeline (static/js/timeline.js): when the player runs a session offline it
// schedules the cues itself, so they must come in the engine's order and at its moments
// (core/engine.py: a check-in min(20 s, a quarter of the step) in, the halfway cue at half-time,
// the finish at the very end), and skip, extend and pause must move them as the engine does.
import assert from "node:assert/strict";
import test from "node:test";

import * as T from "../../src/backrub/web/static/js/timeline.js";

const STEPS = [
  { phase: "warm-up", region: "whole-back", technique: "circles", pressure: 1, seconds: 60, cue: "Warm up.", halfway: "Half-way: warm.", check_in: false },
  { phase: "focus", region: "shoulders", technique: "knead", pressure: 3, seconds: 300, cue: "Knead.", halfway: "Half-way: knead.", check_in: true },
  { phase: "finish", region: "whole-back", technique: "glide", pressure: 1, seconds: 40, cue: "Finish.", halfway: "Half-way: finish.", check_in: true },
];
const DURATIONS = STEPS.map((s) => s.seconds);

/** @param {{id: string, at: number}[]} cues */
const when = (cues) => cues.map((c) => [c.id, c.at]);

test("a partner session's cues come in the engine's order and at its moments", () => {
  const cues = T.schedule(STEPS, DURATIONS, "partner");
  assert.deepEqual(when(cues), [
    ["step:0", 0],
    ["half:0", 30],
    ["step:1", 60],
    ["check:1", 80], // 20 s into a long step
    ["half:1", 210],
    ["step:2", 360],
    ["check:2", 370], // a quarter into a short one
    ["half:2", 380],
    ["finish", 400],
  ]);
  assert.deepEqual(
    cues.map((c) => c.text),
    ["Warm up.", "Half-way: warm.", "Knead.", T.CHECK_IN_TEXT, "Half-way: knead.", "Finish.", T.CHECK_IN_TEXT, "Half-way: finish.", T.FINISH_TEXT],
  );
  assert.deepEqual(
    cues.map((c) => c.kind),
    ["step", "halfway", "step", "check-in", "halfway", "step", "check-in", "halfway", "finish"],
  );
});

test("someone massaging their own back is never asked to check in", () => {
  const cues = T.schedule(STEPS, DURATIONS, "self");
  assert.equal(cues.filter((c) => c.kind === "check-in").length, 0);
  assert.equal(cues.at(-1)?.at, 400);
});

test("cues are said once each, oldest first, when their moment comes", () => {
  const cues = T.schedule(STEPS, DURATIONS, "partner");
  const fired = new Set();
  /** @type {string[]} */
  const said = [];
  for (let tick = 0; tick <= 2000; tick++) {
    for (const cue of T.due(cues, tick / 5, fired)) {
      fired.add(cue.id);
      said.push(cue.id);
    }
  }
  assert.deepEqual(said, cues.map((c) => c.id));
});

test("a skip ends the step at once: the next step's cue is due and the skipped step's cues are never said", () => {
  const cues = T.schedule(STEPS, DURATIONS, "partner");
  const fired = new Set(["step:0", "half:0", "step:1", "check:1"]);
  const { durations, dropped } = T.skip(DURATIONS, 100);
  assert.deepEqual(durations, [60, 40, 40]);
  for (const id of dropped) fired.add(id);
  const after = T.schedule(STEPS, durations, "partner");
  assert.deepEqual(T.due(after, 100, fired).map((c) => c.id), ["step:2"]);
  assert.equal(after.at(-1)?.at, 140, "the session ends 260 s sooner");
  assert.equal(cues.at(-1)?.at, 400, "the old schedule is left as it was");
});

test("one more minute moves everything after the step a minute later", () => {
  const durations = T.extend(DURATIONS, 100);
  assert.deepEqual(durations, [60, 360, 40]);
  const at = Object.fromEntries(when(T.schedule(STEPS, durations, "partner")));
  assert.equal(at["half:1"], 240);
  assert.equal(at["step:2"], 420);
  assert.equal(at.finish, 460);
  assert.deepEqual(T.extend([60], 60), [60], "nothing to extend once the session is over");
});

test("the position says which step, how long is left in it and in the session", () => {
  const pos = T.position(DURATIONS, 100);
  assert.equal(pos.step, 1);
  assert.equal(pos.stepElapsed, 40);
  assert.equal(pos.stepRemaining, 260);
  assert.equal(pos.remaining, 300);
  assert.equal(pos.finished, false);
  // The page's and the server's sums may differ by a rounding: a hair before a boundary is on it.
  assert.equal(T.position(DURATIONS, 60 - 1e-7).step, 1);
  const end = T.position(DURATIONS, 450);
  assert.deepEqual([end.step, end.remaining, end.elapsed, end.finished], [2, 0, 400, true]);
  assert.equal(T.position(DURATIONS, 10, true).finished, true, "an ended session is finished wherever it stopped");
});

test("the breathing pacer: in for 4 s, out for 6 s, and the ring never jumps", () => {
  assert.deepEqual(T.breath(0), { phase: "in", progress: 0 });
  assert.deepEqual(T.breath(2), { phase: "in", progress: 0.5 });
  assert.equal(T.breath(4).phase, "out");
  assert.equal(T.breath(10).phase, "in");
  assert.equal(T.breath(-1).phase, "out", "before the start, the cycle runs backwards");
  assert.equal(T.breathLevel(0), 0);
  assert.ok(Math.abs(T.breathLevel(4) - 1) < 1e-9);
  for (const turn of [4, 10, 14]) {
    assert.ok(Math.abs(T.breathLevel(turn - 1e-6) - T.breathLevel(turn + 1e-6)) < 1e-4, `smooth at ${turn} s`);
  }
});

test("the page's clock counts active time only, at the page's speed", () => {
  let ms = 0;
  const clock = new T.Clock(2, () => ms);
  assert.equal(clock.running, false);
  clock.start();
  ms += 5000;
  assert.equal(clock.now(), 10, "at double speed, 5 s are 10 s of the session");
  clock.stop();
  ms += 60000; // paused: nothing moves
  assert.equal(clock.now(), 10);
  clock.start();
  ms += 1000;
  assert.equal(clock.now(), 12);
  clock.set(30);
  ms += 500;
  assert.equal(clock.now(), 31);
  assert.equal(new T.Clock(0, () => 0).speed, 1, "a speed of 0 means normal speed");
});
