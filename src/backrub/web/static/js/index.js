// @ts-check
// The welcome page: offers to continue a session that is still open.

import { getJSON, registerServiceWorker } from "./api.js";

registerServiceWorker();

async function offerResume() {
  let data;
  try {
    data = await getJSON("/api/v1/sessions");
  } catch {
    return;
  }
  const open = (data && data.sessions ? data.sessions : []).find((/** @type {any} */ s) => s.status === "active");
  if (!open) return;
  const started = new Date(open.started_at);
  const when = Number.isNaN(started.getTime())
    ? ""
    : started.toLocaleString(undefined, { weekday: "long", hour: "2-digit", minute: "2-digit" });
  // The welcome page has these elements.
  const text = /** @type {HTMLElement} */ (document.getElementById("resume-text"));
  const link = /** @type {HTMLAnchorElement} */ (document.getElementById("resume-link"));
  text.textContent = `${open.minutes_planned} minutes${when ? `, started ${when}` : ""}.`;
  link.href = `/play/${encodeURIComponent(open.id)}`;
  /** @type {HTMLElement} */ (document.getElementById("resume")).hidden = false;
}

offerResume();
