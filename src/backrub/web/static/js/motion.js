// @ts-check
// Where the hands are at a moment of a step, from the technique's motion data alone (kind, path,
// direction, tempo) — nothing is drawn per technique by hand. Pure functions of active time, so a
// pause freezes the hands and a reload puts them back where they were.
//
// Paths are [x, y] points relative to the target region's bounding box (x 0 left → 1 right,
// y 0 neck → 1 hips) and trace the left side; the right hand follows the same route mirrored.
// Results are in the back map's unit box.

/** @typedef {[number, number]} Point x, y */
/** @typedef {{x0: number, y0: number, x1: number, y1: number}} Box */
/**
 * A technique's motion data (the catalogue's `motion`): tempo is cycles a minute at medium pressure.
 * @typedef {object} Motion
 * @property {string} kind glide, circles, knead, press or rake
 * @property {Point[]} path
 * @property {string} direction up, down, out, in or any other (no way)
 * @property {number} tempo
 */
/** @typedef {{points: Point[], cum: number[], length: number}} Polyline */
/** @typedef {{side: "l" | "r", x: number, y: number, r: number, opacity: number}} Hand */

// Hand sizes by tool, as a share of the back map's width, at medium pressure.
/** @type {Record<string, number>} */
const TOOL_SIZE = {
  palms: 0.05,
  "heel-of-hand": 0.044,
  forearm: 0.056,
  fingertips: 0.03,
  thumbs: 0.026,
  knuckles: 0.032,
  "massage-ball": 0.036,
};
const DEFAULT_SIZE = 0.035;
const FADE_IN = 0.8; // seconds of active time for the hands to appear at a step's start

/** @param {number} u */
export function ease(u) {
  return 0.5 - 0.5 * Math.cos(Math.PI * Math.min(1, Math.max(0, u)));
}

/** @param {number} v */
function frac(v) {
  return v - Math.floor(v);
}

// Cycles per minute at this pressure: the data's tempo is for medium (3); firmer is slower.
/**
 * @param {Motion} motion
 * @param {number | null | undefined} pressure
 */
export function tempoAt(motion, pressure) {
  return Math.max(1, motion.tempo * (1 - 0.08 * ((pressure || 3) - 3)));
}

/**
 * @param {Iterable<Iterable<Point>>} shapes
 * @returns {Box}
 */
export function boxOf(shapes) {
  let x0 = 1;
  let y0 = 1;
  let x1 = 0;
  let y1 = 0;
  for (const shape of shapes) {
    for (const [x, y] of shape) {
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  return { x0, y0, x1, y1 };
}

/**
 * @param {Point} point
 * @param {Box} box
 * @returns {Point}
 */
export function mapPoint([px, py], box, mirror = false) {
  const x = mirror ? 1 - px : px;
  return [box.x0 + x * (box.x1 - box.x0), box.y0 + py * (box.y1 - box.y0)];
}

/**
 * @param {Motion} motion
 * @param {Box} box
 */
export function route(motion, box, mirror = false) {
  return motion.path.map((p) => mapPoint(p, box, mirror));
}

// The first stretch of the path that goes the technique's way: where the direction arrow is
// drawn (the warm-up's circles climb, then come back down; the arrow says "up").
/** @param {Motion} motion */
export function leadRun(motion) {
  const path = motion.path;
  let start = 0;
  while (start < path.length - 1 && !withDirection(motion.direction, path[start], path[start + 1])) start++;
  let end = start;
  while (end < path.length - 1 && withDirection(motion.direction, path[end], path[end + 1])) end++;
  return end > start ? path.slice(start, end + 1) : path;
}

/**
 * @param {Point[]} points
 * @returns {Polyline}
 */
function polyline(points) {
  const cum = [0];
  for (let i = 1; i < points.length; i++) {
    const [ax, ay] = points[i - 1];
    const [bx, by] = points[i];
    cum.push(cum[i - 1] + Math.hypot(bx - ax, by - ay));
  }
  return { points, cum, length: cum[cum.length - 1] };
}

// The point at share s (0–1) of the way along, and the index of the segment it is on.
/**
 * @param {Polyline} poly
 * @param {number} s
 */
function along(poly, s) {
  const { points, cum, length } = poly;
  if (points.length === 1 || length === 0) return { x: points[0][0], y: points[0][1], seg: 0 };
  const d = Math.min(Math.max(0, s), 1) * length;
  let i = 1;
  while (i < cum.length - 1 && cum[i] < d) i++;
  const span = cum[i] - cum[i - 1] || 1;
  const u = (d - cum[i - 1]) / span;
  const [ax, ay] = points[i - 1];
  const [bx, by] = points[i];
  return { x: ax + (bx - ax) * u, y: ay + (by - ay) * u, seg: i - 1 };
}

// Does the segment a → b (in path coordinates, left side) go the technique's way? A stroke
// against it is the light return ("lightly down the sides") or, for a rake, the hand lifted.
/**
 * @param {string} direction
 * @param {Point} a
 * @param {Point} b
 */
export function withDirection(direction, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  switch (direction) {
    case "up":
      return dy <= 0.001;
    case "down":
      return dy >= -0.001;
    case "out":
      return dx <= 0.001;
    case "in":
      return dx >= -0.001;
    default:
      return true;
  }
}

/** @param {Point[]} points */
function closed(points) {
  const a = points[0];
  const b = points[points.length - 1];
  return Math.hypot(a[0] - b[0], a[1] - b[1]) < 0.02;
}

// One hand's position on `poly` (unit box) for the technique's kind at `t` seconds.
/**
 * @param {string} kind
 * @param {Motion} motion
 * @param {Point[]} path
 * @param {Polyline} poly
 * @param {number} t
 * @param {number} period
 * @param {number} size
 * @param {number} sideSign
 */
function handOn(kind, motion, path, poly, t, period, size, sideSign) {
  const n = path.length;
  let x;
  let y;
  let grow = 1;
  let strength = 1;
  let visible = 1;
  if (kind === "glide") {
    const u = frac(t / period);
    const STROKE = 0.82;
    if (u < STROKE) {
      const p = along(poly, ease(u / STROKE));
      ({ x, y } = p);
      strength = withDirection(motion.direction, path[p.seg], path[p.seg + 1] || path[p.seg]) ? 1 : 0.5;
      const v = u / STROKE;
      visible = Math.min(1, v / 0.07, (1 - v) / 0.07);
    } else {
      ({ x, y } = along(poly, 0));
      visible = 0;
    }
  } else if (kind === "circles" || kind === "knead") {
    const radius = kind === "circles" ? size * 1.15 : size * 0.45;
    const perPass = Math.min(24, Math.max(3, Math.round(poly.length / (kind === "circles" ? radius * 1.7 : 0.03))));
    const pass = frac(t / (period * perPass));
    let s = pass;
    if (!closed(path)) {
      const TRAVEL = 0.92;
      s = pass < TRAVEL ? pass / TRAVEL : 1;
      visible = pass < TRAVEL ? Math.min(1, s / 0.04, (1 - s) / 0.04 + 0.0001) : 0;
      visible = Math.min(1, Math.max(0, visible));
    }
    const centre = along(poly, s);
    strength = withDirection(motion.direction, path[centre.seg], path[centre.seg + 1] || path[centre.seg]) ? 1 : 0.7;
    const u = frac(t / period);
    if (kind === "circles") {
      const angle = 2 * Math.PI * u;
      x = centre.x + sideSign * radius * Math.cos(angle);
      y = centre.y - radius * Math.sin(angle) * 1.1;
    } else {
      const squeeze = Math.sin(Math.PI * u) ** 2;
      x = centre.x + sideSign * radius * squeeze; // toward the spine and back
      y = centre.y;
      grow = 1 + 0.45 * squeeze;
      strength *= 0.6 + 0.4 * squeeze;
    }
  } else if (kind === "press") {
    const beat = t / period;
    const i = Math.floor(beat) % n;
    const u = frac(beat);
    const from = path[(i - 1 + n) % n];
    const MOVE = 0.22;
    if (u < MOVE) {
      const v = ease(u / MOVE);
      const a = poly.points[(i - 1 + n) % n];
      const b = poly.points[i];
      x = a[0] + (b[0] - a[0]) * v;
      y = a[1] + (b[1] - a[1]) * v;
      strength = 0.35;
      grow = 0.85;
      if (from === path[i]) visible = 1;
    } else {
      const press = Math.sin((Math.PI * (u - MOVE)) / (1 - MOVE));
      [x, y] = poly.points[i];
      grow = 0.85 + 0.5 * press;
      strength = 0.35 + 0.65 * press;
    }
  } else {
    // rake (and any kind not known yet): one stroke per segment, the way back lifted.
    const segments = [];
    for (let i = 1; i < n; i++) segments.push([i - 1, i]);
    if (!closed(path)) segments.push([n - 1, 0]);
    const beat = t / period;
    const [ai, bi] = segments[Math.floor(beat) % segments.length];
    const v = ease(frac(beat));
    const a = poly.points[ai];
    const b = poly.points[bi];
    x = a[0] + (b[0] - a[0]) * v;
    y = a[1] + (b[1] - a[1]) * v;
    const returning = !closed(path) && ai === n - 1 && bi === 0;
    if (returning || !withDirection(motion.direction, path[ai], path[bi])) {
      visible = 0.12;
      grow = 0.7;
    } else {
      visible = Math.min(1, Math.sin(Math.PI * frac(beat)) * 3);
    }
  }
  return { x, y, r: size * grow, opacity: visible * (0.35 + 0.65 * strength) };
}

// The hands at `t` seconds into a step: [{side, x, y, r, opacity}] in the unit box.
//   motion: {kind, path, direction, tempo}; box: the region's bounding box;
//   pressure: 1–5 (faster and smaller when light, slower, bigger and brighter when firm);
//   single: one hand at a time, changing sides every pass (a ball against a wall).
/**
 * @param {Motion} motion
 * @param {Box} box
 * @param {{pressure?: number, tool?: string | undefined, t?: number, single?: boolean}} [options]
 * @returns {Hand[]}
 */
export function hands(motion, box, { pressure = 3, tool = "palms", t = 0, single = false } = {}) {
  const period = 60 / tempoAt(motion, pressure);
  const size = (TOOL_SIZE[tool] || DEFAULT_SIZE) * (0.8 + 0.08 * pressure);
  const brightness = 0.55 + 0.09 * pressure;
  const fade = Math.min(1, Math.max(0, t / FADE_IN));
  /** @type {Hand[]} */
  const out = [];
  for (const side of /** @type {const} */ (["l", "r"])) {
    const mirror = side === "r";
    const poly = polyline(route(motion, box, mirror));
    // The hands alternate in kneading and raking (hand over hand); they mirror each other otherwise.
    const offset = mirror && (motion.kind === "knead" || motion.kind === "rake") ? period / 2 : 0;
    const hand = handOn(motion.kind, motion, motion.path, poly, t + offset, period, size, mirror ? -1 : 1);
    let opacity = hand.opacity * brightness * fade;
    if (single) {
      const passes = Math.floor(t / (period * Math.max(2, motion.path.length)));
      if ((passes % 2 === 0) === mirror) opacity = 0;
    }
    out.push({ side, x: hand.x, y: hand.y, r: hand.r, opacity: Math.min(1, Math.max(0, opacity)) });
  }
  return out;
}
