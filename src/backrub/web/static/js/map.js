// @ts-check
// The body map: tense areas (tap the back or the list, then a 0–10 slider each), whose back,
// how long, how firm, oil. Choices live in sessionStorage and go to /plan.

import { store, registerServiceWorker } from "./api.js";
import { bindPicker, setPressed, setAvoided } from "./backmap.js";

registerServiceWorker();

/** @param {string} id an element the map page has */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id));
/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ ($(id));
/** @param {string} name */
const radios = (name) => /** @type {NodeListOf<HTMLInputElement>} */ (form.querySelectorAll(`input[name='${name}']`));
const form = /** @type {HTMLFormElement} */ ($("choices"));
const map = /** @type {SVGElement} */ (/** @type {unknown} */ ($("map")));
/** @type {Record<string, number>} */
const CEILINGS = { light: 2, medium: 3, firm: 4, deep: 5 };

const safety = store.get("safety", {});
if (!safety.verdict || safety.verdict.verdict === "stop") {
  // The safety check comes first, and a stop has no way on.
  window.location.replace("/safety");
}
const verdict = safety.verdict || { avoid_regions: [], reasons: [] };
/** @type {string[]} */
const avoided = verdict.avoid_regions || [];

const min = Number(form.dataset.min);
const max = Number(form.dataset.max);
const chips = [.../** @type {NodeListOf<HTMLButtonElement>} */ (form.querySelectorAll(".chip[data-region]"))];
/** @type {Map<string, HTMLElement>} */
const rows = new Map(
  [.../** @type {NodeListOf<HTMLElement>} */ (form.querySelectorAll(".tension[data-region]"))].map((el) => [
    /** @type {string} */ (el.dataset.region),
    el,
  ]),
);

/** @typedef {{region: string, tension: number}} Focus */

const saved = store.get("choices", {});
/** @type {{mode: string, minutes: number, pressure: string, oil: boolean, focus: Focus[]}} */
const choices = {
  mode: saved.mode || "self",
  minutes: Number(saved.minutes) || Number(form.dataset.default),
  pressure: saved.pressure || "medium",
  oil: saved.oil !== undefined ? Boolean(saved.oil) : true,
  focus: (saved.focus || []).filter((/** @type {Focus} */ f) => rows.has(f.region) && !avoided.includes(f.region)),
};

function save() {
  store.set("choices", choices);
}

/** @param {string} id */
function tensionOf(id) {
  const f = choices.focus.find((x) => x.region === id);
  return f ? f.tension : null;
}

function render() {
  for (const chip of chips) {
    const id = /** @type {string} */ (chip.dataset.region);
    const t = tensionOf(id);
    chip.setAttribute("aria-pressed", String(t !== null));
    setPressed(map, id, t !== null, (t ?? 0) / 10);
    // Every chip has its row.
    const row = /** @type {HTMLElement} */ (rows.get(id));
    row.hidden = t === null;
    if (t !== null) {
      const slider = /** @type {HTMLInputElement} */ (row.querySelector("input"));
      slider.value = String(t);
      slider.setAttribute("aria-valuetext", `${t} of 10`);
      /** @type {HTMLOutputElement} */ (row.querySelector("output")).textContent = String(t);
    }
  }
  $("default-note").hidden = choices.focus.length > 0;
  for (const hint of /** @type {NodeListOf<HTMLElement>} */ (form.querySelectorAll("[data-self-only]"))) hint.hidden = choices.mode !== "self";
  const minutes = input("minutes");
  minutes.value = String(choices.minutes);
  minutes.setAttribute("aria-valuetext", `${choices.minutes} minutes`);
  $("minutes-out").textContent = `${choices.minutes} minutes`;
  button("minutes-less").disabled = choices.minutes <= min;
  button("minutes-more").disabled = choices.minutes >= max;
  for (const radio of radios("mode")) radio.checked = radio.value === choices.mode;
  for (const radio of radios("pressure")) radio.checked = radio.value === choices.pressure;
  input("oil").checked = choices.oil;
}

/** @param {string} id */
function toggle(id) {
  if (avoided.includes(id)) return;
  if (tensionOf(id) === null) choices.focus.push({ region: id, tension: 7 });
  else choices.focus = choices.focus.filter((f) => f.region !== id);
  save();
  render();
}

// Areas the safety check skips, and a pressure ceiling it imposes.
function applySafety() {
  setAvoided(map, avoided, "skipped today");
  for (const chip of chips) {
    if (avoided.includes(/** @type {string} */ (chip.dataset.region))) {
      chip.disabled = true;
      chip.setAttribute("aria-label", `${/** @type {string} */ (chip.textContent).trim()}, skipped today`);
    }
  }
  /** @type {{region?: string, change: string, label: string, effect?: string}[]} */
  const reasons = verdict.reasons || [];
  const skipped = reasons.filter((r) => r.region && avoided.includes(r.region));
  if (skipped.length) {
    const note = $("avoid-note");
    note.textContent = `Skipped today: ${skipped.map((r) => `${r.change.replace(/^Skips the /, "").replace(/\.$/, "")} (${r.label.toLowerCase()})`).join("; ")}.`;
    note.hidden = false;
  }
  const cap = verdict.pressure_cap;
  if (cap) {
    for (const radio of radios("pressure")) {
      const over = CEILINGS[radio.value] > Math.max(cap, CEILINGS.light);
      radio.disabled = over;
      if (over && radio.value === choices.pressure) choices.pressure = "light";
    }
    const why = reasons.filter((r) => r.effect === "cap").map((r) => r.label.toLowerCase());
    $("cap-note").textContent = `Light pressure only today${why.length ? ` (${why.join(", ")})` : ""}.`;
    $("cap-note").hidden = false;
  }
}

bindPicker(map, toggle);
for (const chip of chips) chip.addEventListener("click", () => toggle(/** @type {string} */ (chip.dataset.region)));
for (const [id, row] of rows) {
  const slider = /** @type {HTMLInputElement} */ (row.querySelector("input"));
  slider.addEventListener("input", () => {
    const f = choices.focus.find((x) => x.region === id);
    if (f) f.tension = Number(slider.value);
    save();
    render();
  });
}
input("minutes").addEventListener("input", () => {
  choices.minutes = Number(input("minutes").value);
  save();
  render();
});
/** @param {number} delta */
const stepMinutes = (delta) => {
  choices.minutes = Math.min(max, Math.max(min, choices.minutes + delta));
  save();
  render();
};
$("minutes-less").addEventListener("click", () => stepMinutes(-5));
$("minutes-more").addEventListener("click", () => stepMinutes(5));
form.addEventListener("change", (event) => {
  const t = /** @type {HTMLInputElement} */ (event.target);
  if (t.name === "mode") choices.mode = t.value;
  else if (t.name === "pressure") choices.pressure = t.value;
  else if (t.name === "oil") choices.oil = t.checked;
  else return;
  save();
  render();
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  save();
  window.location.assign("/plan");
});

applySafety();
render();
save();
