// @ts-check
// Building page parts from data without innerHTML: text always goes in as text.

/** @typedef {Node | string | number | null | undefined | false} Child */
/** @typedef {"svg" | "g" | "rect" | "path" | "line" | "circle" | "text" | "polyline" | "title"} SvgTag */

/**
 * An element with these attributes (`text`: its text; `on…`: a listener) and children: an SVG
 * element for the SVG tags.
 * @template {string} K
 * @param {K} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {K extends SvgTag ? SVGElement : HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const svgTags = new Set(["svg", "g", "rect", "path", "line", "circle", "text", "polyline", "title"]);
  const el = svgTags.has(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "class") el.setAttribute("class", value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return /** @type {any} */ (el);
}

/**
 * @template {Element} E
 * @param {E} el
 * @returns {E}
 */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// A reason from a safety verdict: what it is, why, what to do, and where to read more. `level`:
// its heading's, one below the heading the list stands under.
/**
 * A safety verdict's reason, as the server sends it.
 * @typedef {object} Reason
 * @property {string} label
 * @property {string} [change]
 * @property {string} [why]
 * @property {string} [advice]
 * @property {{name: string, url?: string}[]} [sources]
 */

/**
 * @param {Reason} reason
 * @param {{advice?: boolean, change?: boolean, level?: number}} [options]
 */
export function reasonItem(reason, { advice = true, change = true, level = 3 } = {}) {
  const sources = (reason.sources || []).map((s) =>
    h("li", {}, s.url ? h("a", { href: s.url, rel: "noopener noreferrer", target: "_blank" }, s.name) : h("span", {}, s.name)),
  );
  return h(
    "li",
    {},
    h(`h${level}`, { class: "reason-title", text: reason.label }),
    change && reason.change ? h("p", { text: reason.change }) : null,
    reason.why ? h("p", { class: "muted", text: reason.why }) : null,
    advice && reason.advice ? h("p", {}, h("strong", { text: "What to do: " }), reason.advice) : null,
    sources.length ? h("ul", { class: "sources", "aria-label": "Sources" }, sources) : null,
  );
}

/** @param {HTMLElement} el */
export function focusHeading(el) {
  /** @type {HTMLElement | null} */
  const target = el.matches("h1, h2, h3, [tabindex]") ? el : el.querySelector("h1, h2, h3");
  if (!target) return;
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus({ preventScroll: false });
}
