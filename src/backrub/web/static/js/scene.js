// @ts-check
// The player's back diagram and breathing ring: the step's region lit, the routes its motion
// takes, the hands moving along them (motion.js, driven by the technique's motion data), and the
// ring that swells in for 4 s and out for 6 s. Drawing only: player.js says what to draw.
import { hands, route, leadRun } from "./motion.js";
import { readRegions, light, pathData, mapSize, setAvoided } from "./backmap.js";
import * as T from "./timeline.js";

/** @import { Motion, Point } from "./motion.js" */
/** @import { Step } from "./timeline.js" */
/** @typedef {{name: string, motion: Motion | null}} Technique */
/** @typedef {{side: string | undefined, el: SVGElement, glow: SVGElement, core: SVGElement}} HandEl */

/**
 * @param {readonly Point[]} poly
 * @param {number} x
 * @param {number} y
 */
function pointIn(poly, x, y) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export class Scene {
  /**
   * @param {SVGElement} svg
   * @param {Map<string, Technique>} techniques
   */
  constructor(svg, techniques) {
    this.svg = svg;
    this.techniques = techniques;
    this.regions = readRegions(svg);
    const { W, H } = mapSize(svg);
    this.W = W;
    this.H = H;
    /** @type {HandEl[]} */
    this.handEls = [.../** @type {NodeListOf<SVGElement>} */ (svg.querySelectorAll(".hand"))].map((el) => ({
      side: el.dataset.side,
      el,
      glow: /** @type {SVGElement} */ (el.querySelector(".hand-glow")),
      core: /** @type {SVGElement} */ (el.querySelector(".hand-core")),
    }));
    this.routeEls = [.../** @type {NodeListOf<SVGElement>} */ (svg.querySelectorAll(".route"))];
    this.leadEls = [.../** @type {NodeListOf<SVGElement>} */ (svg.querySelectorAll(".lead"))];
  }

  /**
   * @param {string} id
   * @returns {Technique}
   */
  technique(id) {
    return this.techniques.get(id) || { name: id, motion: null };
  }

  /** @param {string} id */
  regionName(id) {
    const region = this.regions.get(id);
    return (region && region.name) || id;
  }

  // A new step: its region lit, the areas it skips marked, the routes of its motion drawn.
  /** @param {Step} step */
  show(step) {
    const { motion } = this.technique(step.technique);
    const region = this.regions.get(step.region);
    light(this.svg, step.region);
    setAvoided(this.svg, step.avoid || []);
    /**
     * @param {SVGElement[]} els
     * @param {Motion | null} shape
     */
    const draw = (els, shape) => {
      for (const el of els) {
        const d = shape && region ? pathData(this.svg, route(shape, region.box, el.dataset.side === "r")) : "";
        el.setAttribute("d", d);
      }
    };
    draw(this.routeEls, motion);
    draw(this.leadEls, motion && { ...motion, path: leadRun(motion) });
  }

  // Over an area the step skips (a sunburn, an injury), the hands lift: they fade almost away.
  /**
   * @param {Step} step
   * @param {number} x
   * @param {number} y
   */
  overAvoided(step, x, y) {
    for (const id of step.avoid || []) {
      const region = this.regions.get(id);
      if (region && region.shapes.some((poly) => pointIn(poly, x, y))) return true;
    }
    return false;
  }

  // The hands where the motion has them `stepElapsed` seconds into the step.
  /**
   * @param {Step} step
   * @param {number} stepElapsed
   */
  drawHands(step, stepElapsed) {
    const technique = this.techniques.get(step.technique);
    const region = this.regions.get(step.region);
    if (!technique || !region) return;
    // Every technique on the page has its motion (play.html).
    const now = hands(/** @type {Motion} */ (technique.motion), region.box, {
      pressure: step.pressure,
      tool: step.tool,
      t: stepElapsed,
      single: step.tool === "massage-ball",
    });
    const { W, H } = this;
    for (const hand of now) {
      const el = this.handEls.find((x) => x.side === hand.side);
      if (!el) continue;
      const opacity = this.overAvoided(step, hand.x, hand.y) ? hand.opacity * 0.15 : hand.opacity;
      el.el.setAttribute("transform", `translate(${(hand.x * W).toFixed(2)} ${(hand.y * H).toFixed(2)})`);
      el.el.setAttribute("opacity", opacity.toFixed(3));
      el.glow.setAttribute("r", (hand.r * W * 2.4).toFixed(2));
      el.core.setAttribute("r", (hand.r * W * 0.85).toFixed(2));
    }
  }
}

// The breathing pacer: a ring that swells and shrinks, or (reduced motion) a still ring with an
// arc filling through each breath; the word changes with the phase.
export class BreathRing {
  /** @param {{ring: SVGElement, arc: SVGElement, word: HTMLElement}} parts */
  constructor({ ring, arc, word }) {
    this.ring = ring;
    this.arc = arc;
    this.word = word;
    this.phase = "";
  }

  /**
   * @param {number} t
   * @param {boolean} reduced
   */
  draw(t, reduced) {
    const b = T.breath(t);
    if (reduced) {
      this.ring.setAttribute("r", b.phase === "in" ? "30" : "22");
      this.arc.setAttribute("visibility", "visible");
      this.arc.setAttribute("stroke-dasharray", `${(b.progress * 100).toFixed(1)} 100`);
    } else {
      this.ring.setAttribute("r", (16 + 26 * T.breathLevel(t)).toFixed(2));
      this.arc.setAttribute("visibility", "hidden");
    }
    if (b.phase !== this.phase) {
      this.phase = b.phase;
      this.word.textContent = b.phase === "in" ? "breathe in" : "breathe out";
    }
  }
}
