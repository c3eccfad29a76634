// @ts-check
// History: GET /api/v1/sessions and /api/v1/stats → the list, a before/after chart, the effect
// per region, the next session; export, reminders, and "Delete everything" (DELETE /api/v1/data).

import { getJSON, deleteJSON, registerServiceWorker } from "./api.js";
import { h, clear } from "./dom.js";

registerServiceWorker();

/** @param {string} id an element the history page has */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @type {Record<string, string>} */
const names = JSON.parse($("history").dataset.regionNames || "{}");
/** @param {string} id */
const nameOf = (id) => names[id] || id;

/**
 * @param {string} iso a date, or a date and time
 * @param {Intl.DateTimeFormatOptions} [options]
 */
function dayLabel(iso, options = { day: "numeric", month: "short" }) {
  const d = new Date(iso.length === 10 ? `${iso}T12:00:00` : iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleDateString(undefined, options);
}

/** @typedef {{day: string, before: number | null, after: number | null}} TrendPoint */

/** @param {TrendPoint[]} trend */
function drawTrend(trend) {
  const svg = $("trend-chart");
  for (const el of [...svg.children]) if (el.tagName !== "title") el.remove();
  const points = trend.filter((p) => p.before !== null || p.after !== null);
  if (!points.length) return false;
  $("chart-section").hidden = false;
  // Drawn in the chart's own pixels, so the labels stay readable on a phone.
  const W = Math.max(300, Math.round(svg.getBoundingClientRect().width) || 640);
  svg.setAttribute("viewBox", `0 0 ${W} 230`);
  const left = 30;
  const right = W - 10;
  const top = 12;
  const bottom = 196;
  /** @param {number} v */
  const y = (v) => bottom - (v / 10) * (bottom - top);
  const step = (right - left) / Math.max(1, points.length);
  for (const v of [0, 5, 10]) {
    svg.append(
      h("line", { class: "grid", x1: left, x2: right, y1: y(v), y2: y(v) }),
      h("text", { x: left - 8, y: y(v) + 4, "text-anchor": "end", text: String(v) }),
    );
  }
  points.forEach((p, i) => {
    const cx = left + step * (i + 0.5);
    const label = `${dayLabel(p.day)}: ${p.before ?? "–"} before, ${p.after ?? "–"} after`;
    const g = h("g", {}, h("title", { text: label }));
    if (p.before !== null && p.after !== null) {
      g.append(h("line", { class: "drop", x1: cx, x2: cx, y1: y(p.before), y2: y(p.after) }));
    }
    if (p.before !== null) g.append(h("circle", { class: "before", cx, cy: y(p.before), r: 7 }));
    if (p.after !== null) g.append(h("circle", { class: "after", cx, cy: y(p.after), r: 7 }));
    const every = Math.ceil(points.length / Math.max(1, Math.floor((right - left) / 64)));
    if (i % every === 0) {
      g.append(h("text", { x: cx, y: 222, "text-anchor": "middle", text: dayLabel(p.day) }));
    }
    svg.append(g);
  });
  return true;
}

/** @param {{region: string, average_drop: number, sessions: number}[]} regions */
function drawRegions(regions) {
  const list = clear($("region-bars"));
  const best = Math.max(1, ...regions.map((r) => r.average_drop));
  for (const r of regions) {
    const bar = h("span");
    bar.style.width = `${Math.max(2, (Math.max(0, r.average_drop) / best) * 100)}%`;
    list.append(
      h(
        "li",
        {},
        h("span", {}, h("strong", { text: nameOf(r.region).replace(/^./, (c) => c.toUpperCase()) }), ` — eased ${r.average_drop.toFixed(1)} on average over ${r.sessions} session${r.sessions === 1 ? "" : "s"}`),
        h("div", { class: "bar", "aria-hidden": "true" }, bar),
      ),
    );
  }
  return regions.length > 0;
}

/** @param {any} s a session of GET /api/v1/sessions */
function sessionItem(s) {
  const when = dayLabel(s.started_at, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  const done = Math.round((s.seconds_done || 0) / 60);
  const change =
    s.tension_before !== null && s.tension_after !== null
      ? `${s.tension_before} → ${s.tension_after}`
      : s.tension_before !== null
        ? `${s.tension_before} → –`
        : "–";
  const focus = (s.focus || []).map((/** @type {{region: string}} */ f) => nameOf(f.region)).join(", ");
  /** @type {Record<string, string>} */
  const statusWords = { active: "not finished", finished: "", stopped: "ended early" };
  const status = statusWords[s.status] || s.status;
  return h(
    "li",
    {},
    h(
      "div",
      {},
      h("div", {}, h("strong", { text: when })),
      h("div", { class: "meta", text: [`${s.mode === "partner" ? "partner" : "own back"}`, `${done} of ${s.minutes_planned} min`, focus, status].filter(Boolean).join(" · ") }),
      s.note ? h("div", { class: "meta", text: `“${s.note}”` }) : null,
    ),
    s.status === "active"
      ? h("a", { class: "btn", href: `/play/${encodeURIComponent(s.id)}` }, "Continue")
      : h("span", { class: "tension-change", title: "tension before → after", "aria-label": `tension ${change.replace("→", "to")}` , text: change }),
  );
}

/** @type {TrendPoint[]} */
let lastTrend = [];
/** @type {ReturnType<typeof setTimeout> | 0} */
let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => drawTrend(lastTrend), 150);
});

async function load() {
  let sessions;
  let stats;
  try {
    [sessions, stats] = await Promise.all([getJSON("/api/v1/sessions"), getJSON("/api/v1/stats")]);
  } catch (error) {
    $("history-status").textContent = `Could not load the history: ${/** @type {Error} */ (error).message}`;
    return;
  }
  const list = (sessions && sessions.sessions) || [];
  $("history-status").textContent = "";
  clear($("sessions")).append(...list.map(sessionItem));
  $("no-sessions").hidden = list.length > 0;

  $("summary").hidden = !stats || !stats.sessions;
  if (stats && stats.sessions) {
    $("stats-message").textContent = stats.message || "";
    $("stat-sessions").textContent = String(stats.sessions);
    $("stat-sessions-label").textContent = stats.sessions === 1 ? "session" : "sessions";
    $("stat-drop").textContent = stats.average_drop === null || stats.average_drop === undefined ? "–" : stats.average_drop.toFixed(1);
    $("stat-streak").textContent = String(stats.streak_weeks || 0);
    $("stat-streak-label").textContent = stats.streak_weeks === 1 ? "week in a row" : "weeks in a row";
    $("stat-next").textContent = stats.next_session ? dayLabel(stats.next_session, { weekday: "short", day: "numeric", month: "short" }) : "–";
  }
  lastTrend = (stats && stats.trend) || [];
  $("chart-section").hidden = !drawTrend(lastTrend);
  $("regions-section").hidden = !(stats && drawRegions(stats.regions || []));
}

const deleteDialog = /** @type {HTMLDialogElement} */ ($("delete-dialog"));
const deleteGo = /** @type {HTMLButtonElement} */ ($("delete-go"));
$("delete-all").addEventListener("click", () => deleteDialog.showModal());
$("delete-cancel").addEventListener("click", () => deleteDialog.close());
$("delete-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  deleteGo.disabled = true;
  try {
    const result = await deleteJSON("/api/v1/data");
    $("data-status").textContent = `Deleted ${result && result.deleted !== undefined ? result.deleted : "all"} session(s).`;
    try {
      sessionStorage.clear();
      if (window.caches) for (const key of await caches.keys()) await caches.delete(key);
    } catch {
      /* nothing cached */
    }
    await load();
  } catch (error) {
    $("data-status").textContent = /** @type {Error} */ (error).message;
  } finally {
    deleteGo.disabled = false;
    deleteDialog.close();
  }
});

load();
