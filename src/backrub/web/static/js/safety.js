// @ts-check
// The safety check: one question at a time, Back to change an answer, a back map for the
// "which area?" questions, then POST /api/v1/safety. A stop shows why, with sources, and offers
// no way on. Answers live in sessionStorage only.

import { postJSON, store, registerServiceWorker } from "./api.js";
import { bindPicker, setPressed } from "./backmap.js";
import { h, clear, reasonItem, focusHeading } from "./dom.js";

/** @import { Reason } from "./dom.js" */

registerServiceWorker();

/** @param {string} id an element the safety page has */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const questions = [.../** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(".question[data-condition]"))];
const total = questions.length;
const map = /** @type {SVGElement} */ (/** @type {unknown} */ ($("area-map")));
const boxes = [.../** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll("input[name='area']"))];

/** @typedef {{yes: boolean, regions?: string[]}} Answer */

// answers: {conditionId: {yes: bool, regions: [ids]}}; index: the question on screen.
const saved = store.get("safety", {});
/** @type {Record<string, Answer>} */
let answers = saved.answers || {};
let index = Math.min(saved.index || 0, total - 1);

/** @param {object} [extra] */
function save(extra = {}) {
  store.set("safety", { ...store.get("safety", {}), answers, index, ...extra });
}

function findings() {
  /** @type {{condition: string, region?: string}[]} */
  const out = [];
  for (const q of questions) {
    const id = /** @type {string} */ (q.dataset.condition);
    const a = answers[id];
    if (!a || !a.yes) continue;
    if (q.dataset.effect === "avoid") for (const region of a.regions || []) out.push({ condition: id, region });
    else out.push({ condition: id });
  }
  return out;
}

/** @param {string} section */
function show(section) {
  for (const id of ["intro", "questions", "checking", "result"]) $(id).hidden = id !== section;
}

/**
 * @param {number} i
 * @param {{focus?: boolean}} [options]
 */
function showQuestion(i, { focus = true } = {}) {
  index = i;
  save();
  show("questions");
  questions.forEach((q, n) => (q.hidden = n !== i));
  const q = questions[i];
  const a = answers[/** @type {string} */ (q.dataset.condition)];
  // Every question has its heading.
  const heading = /** @type {HTMLElement} */ (q.querySelector("h2"));
  $("progress-text").textContent = `${i + 1} of ${total}`;
  $("progress-fill").style.width = `${((i + 1) / total) * 100}%`;
  $("yes").setAttribute("aria-pressed", String(Boolean(a && a.yes)));
  $("no").setAttribute("aria-pressed", String(Boolean(a && !a.yes)));
  $("yes").setAttribute("aria-describedby", heading.id);
  $("no").setAttribute("aria-describedby", heading.id);
  $("back").hidden = false;
  $("area").hidden = true;
  $("area-error").textContent = "";
  if (focus) heading.focus();
}

function askArea() {
  const q = questions[index];
  const chosen = (answers[/** @type {string} */ (q.dataset.condition)] || {}).regions || [];
  for (const box of boxes) box.checked = chosen.includes(box.value);
  syncMap();
  $("area-title").textContent = `${q.dataset.label}: which area? Tap every one it affects.`;
  $("area").hidden = false;
  $("area-title").focus();
}

function syncMap() {
  for (const box of boxes) setPressed(map, box.value, box.checked, 0.7);
}

/** @param {boolean} yes */
function answer(yes) {
  const q = questions[index];
  const id = /** @type {string} */ (q.dataset.condition);
  const before = answers[id] || {};
  answers[id] = { yes, regions: yes ? before.regions || [] : [] };
  save();
  $("yes").setAttribute("aria-pressed", String(yes));
  $("no").setAttribute("aria-pressed", String(!yes));
  if (yes && q.dataset.effect === "avoid") {
    askArea();
    return;
  }
  advance();
}

function advance() {
  if (index + 1 < total) showQuestion(index + 1);
  else check();
}

async function check() {
  show("checking");
  const body = { findings: findings() };
  let verdict;
  try {
    verdict = await postJSON("/api/v1/safety", body);
  } catch (error) {
    showError(/** @type {Error} */ (error).message);
    return;
  }
  save({ findings: body.findings, verdict, done: true });
  showResult(verdict);
}

/** @param {string} message */
function showError(message) {
  const result = clear($("result"));
  result.append(
    h("div", { class: "note note--stop" }, h("h2", { text: "The answers could not be checked." }), h("p", { text: message })),
    h("div", { class: "actions" }, h("button", { class: "btn btn-primary btn-big", type: "button", onclick: check }, "Try again")),
  );
  show("result");
  focusHeading(result);
}

/** @param {any} verdict the answer of POST /api/v1/safety */
function showResult(verdict) {
  const result = clear($("result"));
  /** @type {(Reason & {effect?: string})[]} */
  const reasons = verdict.reasons || [];
  if (verdict.verdict === "stop") {
    const stops = reasons.filter((r) => /^Stops/.test(r.change || "") || r.effect === "stop");
    result.append(
      h(
        "div",
        { class: "note note--stop" },
        h("h1", { text: "Please don't massage today." }),
        verdict.see_doctor
          ? h("p", {}, h("strong", { text: "See a doctor first." }), " These signs need a doctor's look before any massage.")
          : h("p", { text: "A massage could do harm right now. Here is why, and what to do instead." }),
      ),
      h("ul", { class: "reasons" }, (stops.length ? stops : reasons).map((r) => reasonItem(r, { level: 2, change: /^Stops the session: no|every part/.test(r.change || "") }))),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "btn btn-big", href: "/" }, "Back to the start"),
        h("button", { class: "btn btn-big", type: "button", onclick: restart }, "Answer again"),
      ),
    );
  } else {
    const caution = verdict.verdict === "caution";
    const parts = [
      h(
        "div",
        { class: `note ${caution ? "note--caution" : "note--clear"}` },
        h("h1", { text: caution ? "You can go ahead, with care." : "Nothing stands in the way." }),
        h("p", { text: caution ? "The plan will keep to these:" : "Enjoy it — and stop at once if anything hurts." }),
        caution ? h("ul", {}, reasons.map((r) => h("li", {}, h("strong", { text: `${r.label}: ` }), r.change))) : null,
      ),
      caution ? h("details", {}, h("summary", { text: "Why, and sources" }), h("ul", { class: "reasons" }, reasons.map((r) => reasonItem(r, { level: 2 })))) : null,
      h(
        "div",
        { class: "actions" },
        h("a", { class: "btn btn-primary btn-big btn-wide", href: "/map" }, "Continue: where is it tense?"),
        h("button", { class: "btn", type: "button", onclick: restart }, "Change the answers"),
      ),
    ];
    // Element.append would write a leftover null as the text "null".
    result.append(.../** @type {HTMLElement[]} */ (parts.filter(Boolean)));
  }
  show("result");
  focusHeading(result);
}

function restart() {
  store.remove("safety");
  answers = {};
  showQuestion(0);
}

$("begin").addEventListener("click", () => showQuestion(index));
$("yes").addEventListener("click", () => answer(true));
$("no").addEventListener("click", () => answer(false));
$("back").addEventListener("click", () => {
  if (!$("area").hidden) {
    $("area").hidden = true;
    $("yes").focus();
    return;
  }
  if (index > 0) showQuestion(index - 1);
  else {
    show("intro");
    $("begin").focus();
  }
});

bindPicker(map, (id) => {
  const box = boxes.find((b) => b.value === id);
  if (!box) return;
  box.checked = !box.checked;
  syncMap();
});
for (const box of boxes) box.addEventListener("change", syncMap);

$("area-next").addEventListener("click", () => {
  const regions = boxes.filter((b) => b.checked).map((b) => b.value);
  if (!regions.length) {
    $("area-error").textContent = "Choose at least one area, or go Back and answer No.";
    return;
  }
  answers[/** @type {string} */ (questions[index].dataset.condition)] = { yes: true, regions };
  save();
  advance();
});

// Y and N answer the question on screen.
document.addEventListener("keydown", (event) => {
  if ($("questions").hidden || !$("area").hidden || event.altKey || event.ctrlKey || event.metaKey) return;
  if (/** @type {Element} */ (event.target).closest("input, textarea, select")) return;
  if (event.key === "y" || event.key === "Y") answer(true);
  else if (event.key === "n" || event.key === "N") answer(false);
});

// Coming back to the page: the verdict already given, or the question reached.
if (saved.done && saved.verdict) showResult(saved.verdict);
else if (saved.answers && Object.keys(saved.answers).length) showQuestion(index, { focus: false });
