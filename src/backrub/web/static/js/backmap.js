// @ts-check
// The back map drawn by the _backmap.html macro: reading its regions back into the unit box,
// making regions toggle buttons (mouse, touch, Enter and Space), and marking them.

import { boxOf } from "./motion.js";

/** @import { Box, Point } from "./motion.js" */

/**
 * A region of the back map, its shapes in the unit box.
 * @typedef {object} Region
 * @property {SVGElement} el
 * @property {string} id
 * @property {string} name
 * @property {boolean} paired
 * @property {Point[][]} shapes
 * @property {Box} box
 */

/**
 * The region elements of the map.
 * @param {Element} svg
 * @returns {NodeListOf<SVGElement>}
 */
function regionEls(svg) {
  return svg.querySelectorAll(".region[data-region]");
}

/** @param {SVGElement} svg */
export function mapSize(svg) {
  return { W: Number(svg.dataset.w) || 200, H: Number(svg.dataset.h) || 280 };
}

// id → {el, id, name, paired, shapes (unit box), box}
/**
 * @param {SVGElement} svg
 * @returns {Map<string, Region>}
 */
export function readRegions(svg) {
  const { W, H } = mapSize(svg);
  /** @type {Map<string, Region>} */
  const out = new Map();
  for (const el of regionEls(svg)) {
    const shapes = [...el.querySelectorAll("polygon")].map((poly) =>
      /** @type {string} */ (poly.getAttribute("points"))
        .trim()
        .split(/\s+/)
        .map((pair) => {
          const [x, y] = pair.split(",").map(Number);
          return /** @type {Point} */ ([x / W, y / H]);
        }),
    );
    const id = /** @type {string} */ (el.dataset.region);
    out.set(id, {
      el,
      id,
      name: /** @type {string} */ (el.dataset.name),
      paired: el.dataset.paired === "true",
      shapes,
      box: boxOf(shapes),
    });
  }
  return out;
}

// Regions with role="button" call onToggle(id) on a click, a tap, Enter or Space.
/**
 * @param {SVGElement} svg
 * @param {(id: string) => void} onToggle
 */
export function bindPicker(svg, onToggle) {
  /** @param {Event} event */
  const pick = (event) => {
    /** @type {SVGElement | null} */
    const el = /** @type {Element} */ (event.target).closest(".region[role='button']");
    if (!el || el.getAttribute("aria-disabled") === "true") return;
    event.preventDefault();
    onToggle(/** @type {string} */ (el.dataset.region));
  };
  svg.addEventListener("click", pick);
  svg.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") pick(event);
  });
}

// level: 0–1, how strongly the region is filled (the tension).
/**
 * @param {SVGElement} svg
 * @param {string} id
 * @param {boolean} pressed
 */
export function setPressed(svg, id, pressed, level = 0.55) {
  /** @type {SVGElement | null} */
  const el = svg.querySelector(`.region[data-region="${CSS.escape(id)}"]`);
  if (!el) return;
  if (el.hasAttribute("aria-pressed")) el.setAttribute("aria-pressed", String(pressed));
  el.classList.toggle("is-picked", pressed);
  el.style.setProperty("--level", String(0.2 + 0.65 * Math.min(1, Math.max(0, level))));
}

/**
 * @param {SVGElement} svg
 * @param {readonly string[]} ids
 */
export function setAvoided(svg, ids, reason = "skipped today") {
  for (const el of regionEls(svg)) {
    const avoided = ids.includes(/** @type {string} */ (el.dataset.region));
    el.classList.toggle("is-avoided", avoided);
    if (el.hasAttribute("role")) {
      if (avoided) {
        el.setAttribute("aria-disabled", "true");
        el.setAttribute("aria-label", `${el.dataset.name}, ${reason}`);
      } else {
        el.removeAttribute("aria-disabled");
        el.setAttribute("aria-label", /** @type {string} */ (el.dataset.name));
      }
    }
  }
}

/**
 * @param {SVGElement} svg
 * @param {string} id
 */
export function light(svg, id) {
  for (const el of regionEls(svg)) {
    el.classList.toggle("is-lit", el.dataset.region === id);
  }
}

// Unit-box points → an SVG path's d attribute in the map's coordinates.
/**
 * @param {SVGElement} svg
 * @param {readonly Point[]} points
 */
export function pathData(svg, points) {
  const { W, H } = mapSize(svg);
  return points
    .map(([x, y], i) => `${i ? "L" : "M"}${(x * W).toFixed(1)} ${(y * H).toFixed(1)}`)
    .join(" ");
}
