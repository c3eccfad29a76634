// The back map drawn by the _backmap.html macro: reading its regions back into the unit box,
// making regions toggle buttons (mouse, touch, Enter and Space), and marking them.

import { boxOf } from "./motion.js";

export function mapSize(svg) {
  return { W: Number(svg.dataset.w) || 200, H: Number(svg.dataset.h) || 280 };
}

// id → {el, id, name, paired, shapes (unit box), box}
export function readRegions(svg) {
  const { W, H } = mapSize(svg);
  const out = new Map();
  for (const el of svg.querySelectorAll(".region[data-region]")) {
    const shapes = [...el.querySelectorAll("polygon")].map((poly) =>
      poly
        .getAttribute("points")
        .trim()
        .split(/\s+/)
        .map((pair) => {
          const [x, y] = pair.split(",").map(Number);
          return [x / W, y / H];
        }),
    );
    out.set(el.dataset.region, {
      el,
      id: el.dataset.region,
      name: el.dataset.name,
      paired: el.dataset.paired === "true",
      shapes,
      box: boxOf(shapes),
    });
  }
  return out;
}

// Regions with role="button" call onToggle(id) on a click, a tap, Enter or Space.
export function bindPicker(svg, onToggle) {
  const pick = (event) => {
    const el = event.target.closest(".region[role='button']");
    if (!el || el.getAttribute("aria-disabled") === "true") return;
    event.preventDefault();
    onToggle(el.dataset.region);
  };
  svg.addEventListener("click", pick);
  svg.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") pick(event);
  });
}

// level: 0–1, how strongly the region is filled (the tension).
export function setPressed(svg, id, pressed, level = 0.55) {
  const el = svg.querySelector(`.region[data-region="${CSS.escape(id)}"]`);
  if (!el) return;
  if (el.hasAttribute("aria-pressed")) el.setAttribute("aria-pressed", String(pressed));
  el.classList.toggle("is-picked", pressed);
  el.style.setProperty("--level", String(0.2 + 0.65 * Math.min(1, Math.max(0, level))));
}

export function setAvoided(svg, ids, reason = "skipped today") {
  for (const el of svg.querySelectorAll(".region[data-region]")) {
    const avoided = ids.includes(el.dataset.region);
    el.classList.toggle("is-avoided", avoided);
    if (el.hasAttribute("role")) {
      if (avoided) {
        el.setAttribute("aria-disabled", "true");
        el.setAttribute("aria-label", `${el.dataset.name}, ${reason}`);
      } else {
        el.removeAttribute("aria-disabled");
        el.setAttribute("aria-label", el.dataset.name);
      }
    }
  }
}

export function light(svg, id) {
  for (const el of svg.querySelectorAll(".region[data-region]")) {
    el.classList.toggle("is-lit", el.dataset.region === id);
  }
}

// Unit-box points → an SVG path's d attribute in the map's coordinates.
export function pathData(svg, points) {
  const { W, H } = mapSize(svg);
  return points
    .map(([x, y], i) => `${i ? "L" : "M"}${(x * W).toFixed(1)} ${(y * H).toFixed(1)}`)
    .join(" ");
}
