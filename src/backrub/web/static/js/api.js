// Talking to /api/v1: JSON in and out, the CSRF header on every change, errors as one sentence,
// and an outbox that keeps a session's events in order while the network is away.

const CSRF_COOKIE = "backrub_csrf";

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

export class OfflineError extends Error {}

export async function request(method, url, body, { keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
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

export const getJSON = (url) => request("GET", url);
export const postJSON = (url, body, options) => request("POST", url, body, options);
export const deleteJSON = (url) => request("DELETE", url);

// Sends queued POSTs one at a time, in order. A request that cannot reach the server (or meets a
// 5xx while the server restarts) stays at the head of the queue and is retried when the browser
// says it is online again, or every few seconds; a 4xx is dropped and reported.
export class Outbox {
  constructor({ onResult = () => {}, onError = () => {}, onStatus = () => {} } = {}) {
    this.items = [];
    this.busy = false;
    this.timer = 0;
    this.onResult = onResult;
    this.onError = onError;
    this.onStatus = onStatus;
    window.addEventListener("online", () => this.flush());
  }

  get pending() {
    return this.items.length;
  }

  push(url, body, meta = {}) {
    this.items.push({ url, body, meta, failures: 0 });
    this.flush();
  }

  async flush() {
    if (this.busy) return;
    this.busy = true;
    clearTimeout(this.timer);
    try {
      while (this.items.length) {
        const item = this.items[0];
        let data;
        try {
          data = await postJSON(item.url, item.body);
        } catch (error) {
          const retry =
            error instanceof OfflineError ||
            (error instanceof ApiError && error.status >= 500 && ++item.failures < 4);
          if (retry) {
            this.onStatus(false);
            this.timer = setTimeout(() => this.flush(), 5000);
            return;
          }
          this.items.shift();
          this.onError(error, item);
          continue;
        }
        this.items.shift();
        this.onStatus(true);
        this.onResult(data, item, this.items.length === 0);
      }
    } finally {
      this.busy = false;
    }
  }

  // When the page goes away: hand what is left to the browser, which may send it after unload.
  sendOnUnload() {
    for (const item of this.items) {
      postJSON(item.url, item.body, { keepalive: true }).catch(() => {});
    }
  }
}

// Safety answers and map choices travel between pages here, and only here: sessionStorage,
// never the URL and never localStorage.
export const store = {
  get(key, fallback = null) {
    try {
      const raw = sessionStorage.getItem(`backrub.${key}`);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      sessionStorage.setItem(`backrub.${key}`, JSON.stringify(value));
    } catch {
      /* private mode without storage: the page still works until it is left */
    }
  },
  remove(key) {
    try {
      sessionStorage.removeItem(`backrub.${key}`);
    } catch {
      /* nothing to remove */
    }
  },
};

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
