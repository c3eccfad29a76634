// The hands on the player's back map (static/js/motion.js), for every technique backrub ships
// (its motion data read from src/backrub/data/techniques.toml): they stay on the region being
// worked, the two hands mirror each other across the spine, a pause freezes them, and firmer
// pressure is slower.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import test from "node:test";

import { boxOf, hands, leadRun, route, tempoAt, withDirection } from "../../src/backrub/web/static/js/motion.js";

/** Each technique's [technique.motion] table: kind, path, direction and tempo. */
function shippedMotions() {
  const text = readFileSync(new URL("../../src/backrub/data/techniques.toml", import.meta.url), "utf8");
  /** @type {{id: string, motion: any}[]} */
  const found = [];
  let id = "";
  let motion = null;
  for (const line of text.split("\n")) {
    const idLine = /^id = "(.+)"$/.exec(line);
    if (idLine) id = idLine[1];
    if (line.startsWith("[")) motion = null;
    if (line === "[technique.motion]") {
      motion = {};
      found.push({ id, motion });
      continue;
    }
    const field = /^(kind|path|direction|tempo) = (.+)$/.exec(line);
    if (motion && field) motion[field[1]] = JSON.parse(field[2]);
  }
  return found;
}

const MOTIONS = shippedMotions();
const TOOLS = ["palms", "thumbs", "forearm", "massage-ball", "a tool not known yet"];
// A small region beside the spine (shoulder-blade sized) and the whole back.
const BOXES = [
  { x0: 0.3, y0: 0.2, x1: 0.48, y1: 0.38 },
  { x0: 0.1, y0: 0.05, x1: 0.9, y1: 0.95 },
];

/** Moments over several cycles of the motion, the hands' first fade-in included. */
function moments(motion, pressure) {
  const period = 60 / tempoAt(motion, pressure);
  const span = period * Math.max(4, motion.path.length * 2) * 24;
  return Array.from({ length: 300 }, (_, i) => (i * span) / 300 + 0.013);
}

test("every shipped technique has motion data the page can draw", () => {
  assert.ok(MOTIONS.length >= 10, `found ${MOTIONS.length}`);
  for (const { id, motion } of MOTIONS) {
    assert.ok(["glide", "circles", "knead", "press", "rake"].includes(motion.kind), id);
    assert.ok(motion.path.length >= 2 && motion.tempo > 0, id);
    for (const [x, y] of motion.path) assert.ok(x >= 0 && x <= 1 && y >= 0 && y <= 1, `${id}: ${x},${y}`);
  }
});

test("the hands stay on the region being worked, whatever the technique, tool and pressure", () => {
  for (const { id, motion } of MOTIONS) {
    for (const box of BOXES) {
      for (const pressure of [1, 3, 5]) {
        for (const tool of TOOLS) {
          for (const t of moments(motion, pressure)) {
            for (const hand of hands(motion, box, { pressure, tool, t })) {
              // A circling or kneading hand swings a little past its route: never more than its size.
              const reach = hand.r * 1.3;
              const where = `${id} ${tool} p${pressure} t=${t.toFixed(2)} ${hand.side}: ${hand.x},${hand.y}`;
              assert.ok(Number.isFinite(hand.x) && Number.isFinite(hand.y), where);
              assert.ok(hand.x >= box.x0 - reach && hand.x <= box.x1 + reach, where);
              assert.ok(hand.y >= box.y0 - reach && hand.y <= box.y1 + reach, where);
              assert.ok(hand.opacity >= 0 && hand.opacity <= 1, where);
            }
          }
        }
      }
    }
  }
});

test("the right hand mirrors the left across the middle of the region", () => {
  const box = BOXES[0];
  for (const { id, motion } of MOTIONS.filter((m) => ["glide", "circles", "press"].includes(m.motion.kind))) {
    for (const t of moments(motion, 3).slice(0, 100)) {
      const [left, right] = hands(motion, box, { t });
      assert.equal(left.side, "l");
      assert.ok(Math.abs(left.x - box.x0 - (box.x1 - right.x)) < 1e-9, `${id} at ${t}`);
      assert.ok(Math.abs(left.y - right.y) < 1e-9, `${id} at ${t}`);
    }
  }
});

test("with a massage ball, one hand at a time", () => {
  const { motion } = MOTIONS[0];
  for (const t of moments(motion, 3)) {
    const shown = hands(motion, BOXES[0], { t, tool: "massage-ball", single: true }).filter((h) => h.opacity > 0);
    assert.ok(shown.length <= 1, `at ${t}`);
  }
});

test("the hands appear gently at a step's start and a pause freezes them", () => {
  const { motion } = MOTIONS[0];
  assert.ok(hands(motion, BOXES[0], { t: 0 }).every((h) => h.opacity === 0));
  assert.deepEqual(hands(motion, BOXES[0], { t: 12.5 }), hands(motion, BOXES[0], { t: 12.5 }));
});

test("firmer pressure is slower, lighter is quicker, never stopped", () => {
  const motion = { kind: "glide", path: [[0, 1], [0, 0]], direction: "up", tempo: 10 };
  assert.equal(tempoAt(motion, 3), 10);
  assert.ok(tempoAt(motion, 5) < tempoAt(motion, 3));
  assert.ok(tempoAt(motion, 1) > tempoAt(motion, 3));
  assert.equal(tempoAt({ ...motion, tempo: 0.5 }, 5), 1);
});

test("the direction arrow goes the technique's way", () => {
  for (const { id, motion } of MOTIONS) {
    const run = leadRun(motion);
    for (let i = 1; i < run.length && run !== motion.path; i++) {
      assert.ok(withDirection(motion.direction, run[i - 1], run[i]), id);
    }
  }
  const climb = { kind: "circles", path: [[0.4, 0.9], [0.4, 0.5], [0.4, 0.9]], direction: "up", tempo: 30 };
  assert.deepEqual(leadRun(climb), [[0.4, 0.9], [0.4, 0.5]]);
});

test("a region's box holds all of its shapes, and routes are drawn inside it", () => {
  const box = boxOf([[[0.2, 0.3], [0.4, 0.1]], [[0.35, 0.5]]]);
  assert.deepEqual(box, { x0: 0.2, y0: 0.1, x1: 0.4, y1: 0.5 });
  for (const { motion } of MOTIONS) {
    for (const mirror of [false, true]) {
      for (const [x, y] of route(motion, box, mirror)) {
        assert.ok(x >= box.x0 - 1e-12 && x <= box.x1 + 1e-12 && y >= box.y0 - 1e-12 && y <= box.y1 + 1e-12);
      }
    }
  }
});
