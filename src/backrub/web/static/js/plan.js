// @ts-check
// The plan: POST /api/v1/plans with the stored answers and choices, then a timeline with phase
// colours and the pressure curve, the steps, safety notes and the set-up checklist. "Begin" asks
// how tense the back is, creates the session (POST /api/v1/sessions) and opens the player.
// "Download as audio" posts the same body to POST /api/v1/audio and saves the guided track.

import { postJSON, store, minutesSeconds, ApiError, registerServiceWorker, csrfToken, PHASE_NAMES } from "./api.js";
import { h, clear, reasonItem, focusHeading } from "./dom.js";

registerServiceWorker();

/** @import { Step } from "./timeline.js" */
/** @import { Reason } from "./dom.js" */

/**
 * A step of POST /api/v1/plans' answer, with its names.
 * @typedef {Step & {start: number, tool: string, technique_name: string, region_name: string}} PlanStep
 */
/**
 * The answer of POST /api/v1/plans.
 * @typedef {object} Plan
 * @property {PlanStep[]} steps
 * @property {number} total_seconds
 * @property {string} mode
 * @property {number} pressure_ceiling
 * @property {boolean} oil
 * @property {{reasons?: Reason[]}} [safety]
 */

/** @param {string} id an element the plan page has */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ ($(id));
/** @param {string} id */
const dialog = (id) => /** @type {HTMLDialogElement} */ ($(id));
/** @type {Record<string, string>} */
const words = JSON.parse($("plan-page").dataset.pressureWords || "{}");

const safety = store.get("safety", {});
const choices = store.get("choices", {});

function body() {
  return {
    mode: choices.mode || "self",
    minutes: Number(choices.minutes) || 20,
    focus: (choices.focus || []).map((/** @type {{region: string, tension: number}} */ f) => ({ region: f.region, tension: Number(f.tension) })),
    pressure: choices.pressure || "medium",
    oil: choices.oil !== undefined ? Boolean(choices.oil) : true,
    findings: safety.findings || [],
  };
}

/** @param {any} error an ApiError (a stop carries the verdict in its data), or any other */
function showStop(error) {
  const box = clear($("plan-error"));
  const verdict = error.data && error.data.safety;
  box.className = "note note--stop";
  box.append(h("h1", { text: verdict ? "Please don't massage today." : "The plan could not be made." }), h("p", { text: error.message }));
  if (verdict) {
    if (verdict.see_doctor) box.append(h("p", {}, h("strong", { text: "See a doctor first." })));
    box.append(h("ul", { class: "reasons" }, (verdict.reasons || []).map((/** @type {Reason} */ r) => reasonItem(r, { change: false, level: 2 }))));
  } else {
    box.append(h("p", {}, h("a", { href: "/map" }, "Back to the choices")));
  }
  box.hidden = false;
  $("plan").hidden = true;
  $("plan-status").textContent = "";
  focusHeading(box);
}

// ---- drawing ---------------------------------------------------------------------------------

/** @param {Plan} plan */
function drawTimeline(plan) {
  const svg = $("timeline");
  for (const el of [...svg.children]) if (el.tagName !== "title") el.remove();
  const total = plan.total_seconds || plan.steps.reduce((a, s) => a + s.seconds, 0);
  // Drawn in the chart's own pixels, so the labels stay readable on a phone.
  const W = Math.max(300, Math.round(svg.getBoundingClientRect().width) || 640);
  svg.setAttribute("viewBox", `0 0 ${W} 150`);
  const left = 58;
  const right = 6;
  const width = W - left - right;
  const bandY = 4;
  const bandH = 22;
  const top = 40;
  const bottom = 126;
  /** @param {number} t */
  const x = (t) => left + (t / total) * width;
  /** @param {number} level */
  const y = (level) => bottom - ((level - 1) / 4) * (bottom - top);

  for (const s of plan.steps) {
    svg.append(
      h("rect", {
        class: `phase ph-${s.phase}`,
        x: x(s.start).toFixed(1),
        y: bandY,
        width: Math.max(1, x(s.start + s.seconds) - x(s.start) - 1.5).toFixed(1),
        height: bandH,
        rx: 3,
      }, h("title", { text: `${PHASE_NAMES[s.phase]}: ${s.technique_name}, ${s.region_name}` })),
    );
  }
  for (let level = 1; level <= 5; level++) {
    svg.append(h("line", { class: "axis", x1: left, x2: W - right, y1: y(level), y2: y(level), "stroke-dasharray": "2 5" }));
    svg.append(h("text", { x: left - 6, y: y(level) + 4, "text-anchor": "end", text: words[String(level)] || String(level) }));
  }
  // The pressure curve: the level through each step, eased from one step to the next.
  let d = "";
  /** @type {number | null} */
  let prevY = null;
  for (const s of plan.steps) {
    const x0 = x(s.start);
    const x1 = x(s.start + s.seconds);
    const yy = y(s.pressure);
    if (prevY === null) d = `M${x0.toFixed(1)} ${yy.toFixed(1)}`;
    else if (prevY !== yy) {
      const k = Math.min(10, (x1 - x0) / 3);
      d += ` C${(x0 + k / 2).toFixed(1)} ${prevY.toFixed(1)} ${(x0 + k / 2).toFixed(1)} ${yy.toFixed(1)} ${(x0 + k).toFixed(1)} ${yy.toFixed(1)}`;
    }
    d += ` L${x1.toFixed(1)} ${yy.toFixed(1)}`;
    prevY = yy;
  }
  const area = `${d} L${x(total).toFixed(1)} ${bottom} L${left} ${bottom} Z`;
  svg.append(h("path", { class: "curve-fill", d: area }), h("path", { class: "curve", d }));
  const minutes = Math.round(total / 60);
  const every = minutes > 30 || W < 480 ? 10 : 5;
  for (let m = 0; m <= minutes; m += every) {
    const anchor = m === 0 ? "start" : x(m * 60) > W - 30 ? "end" : "middle";
    svg.append(h("text", { x: x(m * 60), y: 144, "text-anchor": anchor, text: `${m} min` }));
  }
}

/**
 * @param {PlanStep} s
 * @param {string} mode
 */
function stepItem(s, mode) {
  const word = words[String(s.pressure)] || `level ${s.pressure}`;
  return h(
    "li",
    { class: `ph-${s.phase}` },
    h("span", { class: "when", text: `${minutesSeconds(s.start)}` }),
    h(
      "span",
      { class: "what" },
      `${s.technique_name} · ${s.region_name}`,
      s.check_in && mode === "partner" ? h("span", { class: "badge", text: "check-in" }) : null,
    ),
    h(
      "span",
      { class: "how" },
      `${PHASE_NAMES[s.phase]} · ${word} pressure · ${minutesSeconds(s.seconds)} · ${s.tool}`,
      s.self_help ? h("span", { class: "self-help-note" }, h("br"), s.self_help) : null,
    ),
  );
}

/** @type {Plan | null} */
let shown = null;
/** @type {ReturnType<typeof setTimeout> | 0} */
let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => shown && drawTimeline(shown), 150);
});
window.addEventListener("beforeprint", () => shown && drawTimeline(shown));

// The printed card: runs of the same technique on the same area become one line, so even an
// hour fits on one page.
/** @param {Plan} plan */
function cardItems(plan) {
  /** @type {{technique: string, region: string, phase: string, steps: PlanStep[]}[]} */
  const groups = [];
  for (const s of plan.steps) {
    const last = groups[groups.length - 1];
    if (last && last.technique === s.technique && last.region === s.region && last.phase === s.phase) {
      last.steps.push(s);
    } else {
      groups.push({ technique: s.technique, region: s.region, phase: s.phase, steps: [s] });
    }
  }
  return groups.map((g) => {
    const first = g.steps[0];
    const end = g.steps[g.steps.length - 1];
    const levels = [...new Set(g.steps.map((s) => words[String(s.pressure)] || s.pressure))];
    const seconds = g.steps.reduce((a, s) => a + s.seconds, 0);
    const checks = plan.mode === "partner" && g.steps.some((s) => s.check_in);
    return h(
      "li",
      { class: `ph-${g.phase}` },
      h("span", { class: "when", text: `${minutesSeconds(first.start)}–${minutesSeconds(end.start + end.seconds)}` }),
      h("span", { class: "what" }, `${first.technique_name} · ${first.region_name}`, checks ? h("span", { class: "badge", text: "check-ins" }) : null),
      h(
        "span",
        { class: "how" },
        `${PHASE_NAMES[g.phase]} · ${levels.join(" → ")} · ${Math.round(seconds / 60)} min · ${first.tool}`,
        first.self_help ? h("span", {}, h("br"), first.self_help) : null,
      ),
    );
  });
}

/** @param {Plan} plan */
function render(plan) {
  shown = plan;
  const total = plan.total_seconds;
  const summary = clear($("plan-summary"));
  summary.append(
    h("span", {}, h("strong", { text: `${Math.round(total / 60)} min` })),
    h("span", { text: plan.mode === "partner" ? "a partner's back" : "your own back" }),
    h("span", { text: `up to ${words[String(plan.pressure_ceiling)] || plan.pressure_ceiling} pressure` }),
    h("span", { text: plan.oil ? "with oil" : "no oil" }),
    h("span", { text: `${plan.steps.length} steps` }),
  );
  clear($("steps")).append(...plan.steps.map((s) => stepItem(s, plan.mode)));
  clear($("steps-card")).append(...cardItems(plan));
  const cautions = clear($("cautions"));
  const reasons = (plan.safety && plan.safety.reasons) || [];
  if (reasons.length) {
    cautions.append(
      h("div", { class: "note note--caution" }, h("ul", { class: "reasons" }, reasons.map((r) => reasonItem(r, { advice: false })))),
    );
  }
  $("plan-status").textContent = "";
  $("plan").hidden = false;
  drawTimeline(plan);
}

// ---- begin -----------------------------------------------------------------------------------

function openBegin() {
  $("begin-error").textContent = "";
  dialog("begin-dialog").showModal();
  $("tension-before").focus();
}

/** @param {Event} event */
async function begin(event) {
  event.preventDefault();
  const go = button("begin-go");
  go.disabled = true;
  $("begin-error").textContent = "";
  try {
    const view = await postJSON("/api/v1/sessions", { ...body(), tension_before: Number(/** @type {HTMLInputElement} */ ($("tension-before")).value) });
    window.location.assign(`/play/${encodeURIComponent(view.id)}`);
  } catch (error) {
    go.disabled = false;
    if (error instanceof ApiError && error.status === 409) {
      dialog("begin-dialog").close();
      showStop(error);
      return;
    }
    $("begin-error").textContent = /** @type {Error} */ (error).message;
  }
}

// ---- download as audio -----------------------------------------------------------------------

// A render runs at about 200× real time on one core, plus the voice for new phrases.
/** @param {number} minutes */
function renderSeconds(minutes) {
  return Math.max(5, Math.round(minutes / 2) + 3);
}

async function downloadAudio() {
  const audio = button("audio");
  const status = $("audio-status");
  const plan = body();
  audio.disabled = true;
  $("audio-error").textContent = "";
  status.textContent = `Preparing your audio… (about ${renderSeconds(plan.minutes)} seconds)`;
  try {
    const response = await fetch("/api/v1/audio", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      credentials: "same-origin",
      body: JSON.stringify({ ...plan, format: "ogg" }),
    });
    if (!response.ok) {
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      throw new ApiError((data && data.error) || `The server answered ${response.status}.`, response.status, data);
    }
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: "backrub-massage.ogg", hidden: "" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    status.textContent = "Your audio is ready: backrub-massage.ogg is in your downloads.";
  } catch (error) {
    status.textContent = "";
    if (error instanceof ApiError && error.status === 409) {
      showStop(error);
      return;
    }
    $("audio-error").textContent = error instanceof ApiError ? error.message : "The audio could not be prepared: the server could not be reached.";
  } finally {
    audio.disabled = false;
  }
}

$("audio").addEventListener("click", downloadAudio);
$("begin").addEventListener("click", openBegin);
$("begin-cancel").addEventListener("click", () => dialog("begin-dialog").close());
$("begin-form").addEventListener("submit", begin);
$("print").addEventListener("click", () => window.print());
$("tension-before").addEventListener("input", (event) => {
  const slider = /** @type {HTMLInputElement} */ (event.target);
  $("tension-before-out").textContent = slider.value;
  slider.setAttribute("aria-valuetext", `${slider.value} of 10`);
});

async function load() {
  if (!safety.verdict) {
    window.location.replace("/safety");
    return;
  }
  try {
    render(await postJSON("/api/v1/plans", body()));
  } catch (error) {
    showStop(error);
  }
}

load();
