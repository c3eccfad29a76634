// @ts-check
// "How to do it": the technique's card (start position, numbered steps, warning), fetched from
// the catalogue the first time it is opened, so the player's first load stays small.
import { getJSON } from "./api.js";

/** @import { Step } from "./timeline.js" */

/** @type {Map<string, any> | null} */
let catalogue = null;

/**
 * @param {HTMLElement} body
 * @param {Step | undefined} step
 * @param {string} mode
 */
export async function showHowto(body, step, mode) {
  if (!catalogue) {
    try {
      const data = await getJSON("/api/v1/catalogue");
      catalogue = new Map(data.techniques.map((/** @type {any} */ t) => [t.id, t]));
    } catch {
      body.textContent = "The instructions need the connection; the cue above says what to do.";
      return;
    }
  }
  const t = step && catalogue.get(step.technique);
  body.textContent = "";
  if (!t) return;
  const start = mode === "self" ? t.start_position_self : t.start_position_partner;
  const title = document.createElement("h3");
  title.textContent = t.name;
  body.append(title);
  if (start) {
    const p = document.createElement("p");
    p.textContent = start;
    body.append(p);
  }
  const list = document.createElement("ol");
  for (const line of t.instructions) {
    const li = document.createElement("li");
    li.textContent = line;
    list.append(li);
  }
  const warning = document.createElement("p");
  warning.className = "warning";
  warning.textContent = t.warning;
  body.append(list, warning);
}
