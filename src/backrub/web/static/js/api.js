// @ts-check
// Talking to /api/v1: JSON in and out, the CSRF header on every change, errors as one sentence
// (OfflineError when the server cannot be reached). The player's events wait in outbox.js.

// `__Host-backrub_csrf` when the server has accounts (HTTPS, this host only), else `backrub_csrf`.
const CSRF_COOKIES = ["__Host-backrub_csrf", "backrub_csrf"];

export function csrfToken() {
  /** @type {Record<string, string>} */
  const found = {};
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    found[name] = decodeURIComponent(rest.join("="));
  }
  const name = CSRF_COOKIES.find((n) => n in found);
  return name ? found[name] : "";
}

export class ApiError extends Error {
  /**
   * @param {string} message one sentence for the person
   * @param {number} status
   * @param {any} data the answer's JSON, when it had some
   */
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

export class OfflineError extends Error {}

/** @typedef {{keepalive?: boolean}} RequestOptions */

/**
 * The answer's JSON (null for none), as the server sent it.
 * @param {string} method
 * @param {string} url
 * @param {unknown} [body]
 * @param {RequestOptions} [options]
 * @returns {Promise<any>}
 */
export async function request(method, url, body, { keepalive = false } = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  /** @type {RequestInit} */
  const init = { method, headers, credentials: "same-origin", keepalive, cache: "no-store" };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-CSRF-Token"] = csrfToken();
    headers["Content-Type"] = "application/json";
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new OfflineError("No connection right now.");
  }
  if (response.status === 204) return null;
  let data = null;
  if ((response.headers.get("content-type") || "").includes("json")) {
    data = await response.json().catch(() => null);
  }
  if (!response.ok) {
    const message = (data && data.error) || `Something went wrong (the server answered ${response.status}).`;
    throw new ApiError(message, response.status, data);
  }
  return data;
}

/** @param {string} url */
export const getJSON = (url) => request("GET", url);
/**
 * @param {string} url
 * @param {unknown} [body]
 * @param {RequestOptions} [options]
 */
export const postJSON = (url, body, options) => request("POST", url, body, options);
/** @param {string} url */
export const deleteJSON = (url) => request("DELETE", url);

// Safety answers and map choices travel between pages here, and only here: sessionStorage,
// never the URL and never localStorage.
export const store = {
  /**
   * @param {string} key
   * @param {any} [fallback]
   * @returns {any}
   */
  get(key, fallback = null) {
    try {
      const raw = sessionStorage.getItem(`backrub.${key}`);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  /**
   * @param {string} key
   * @param {unknown} value
   */
  set(key, value) {
    try {
      sessionStorage.setItem(`backrub.${key}`, JSON.stringify(value));
    } catch {
      /* private mode without storage: the page still works until it is left */
    }
  },
  /** @param {string} key */
  remove(key) {
    try {
      sessionStorage.removeItem(`backrub.${key}`);
    } catch {
      /* nothing to remove */
    }
  },
};

// The phases as the pages name them (the plan's legend, plan.html, says the same).
/** @type {Record<string, string>} */
export const PHASE_NAMES = { "warm-up": "Warm-up", strokes: "Flow", focus: "Focus", finish: "Finish" };

/** @param {number} seconds */
export function minutesSeconds(seconds) {
  const s = Math.max(0, Math.ceil(seconds - 1e-6));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

export function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    /* not served at the root: the app works without it, just not offline after a reload */
  });
}
