// @ts-check
// A session's outbox: the player's events wait here, in order, until the server has them.
//
// Requests go one at a time. One that cannot reach the server (offline, or a 5xx while the server
// restarts) stays at the head of the queue and is tried again when the browser says it is online,
// or every few seconds; a 4xx is dropped and reported.
//
// The queue outlives the page: it is kept in IndexedDB under the session's id (so it survives a
// reload and closing the tab) and mirrored in sessionStorage, which is written at once (so a
// reload that cuts short an IndexedDB write still finds it; and the only store where IndexedDB
// is missing). The next page for the session takes it back with `restore()`.
//
// Privacy: what is kept holds positions only — the event's kind, its active time, its sequence
// number, the cue ids given and a feedback word. A body with any other field is never written
// anywhere: the finish call (tension after, a note) lives in memory only, and a reload before it
// reaches the server shows the finish form again (the events that reached the end are kept).
// Nothing goes to localStorage.

import { postJSON, ApiError, OfflineError } from "./api.js";

// Kept and sent again later, never dropped: signed out elsewhere (401) or a lost CSRF cookie
// (403) until the person signs in or reloads; over the hosted per-person limit (429); the
// database away while the app answers (503).
const KEEP_ON = new Set([401, 403, 429, 503]);

/**
 * One request waiting: `meta` is for the page (what kind of event, restored from an earlier page,
 * sent again) and never leaves it.
 * @typedef {object} Item
 * @property {string} url
 * @property {any} body
 * @property {Meta} meta
 * @property {number} failures
 */
/** @typedef {{kind?: string, restored?: boolean, retried?: boolean}} Meta */
/** @typedef {{url: string, body: any}} KeptItem */

const DB_NAME = "backrub";
const DB_STORE = "outbox";
const MIRROR = "backrub.outbox.";
const KEPT_FIELDS = new Set(["kind", "active", "seq", "fired", "feedback"]);
const RETRY_MS = 5000;
// A queue nobody came back for (the session was never reopened) is forgotten after a week.
const FORGET_MS = 7 * 24 * 3600 * 1000;

/** @param {{body: any}} item */
function keepable(item) {
  const body = item.body;
  return (
    body !== null &&
    typeof body === "object" &&
    Number.isInteger(body.seq) &&
    Object.keys(body).every((field) => KEPT_FIELDS.has(field))
  );
}

/**
 * @param {any} item
 * @returns {item is KeptItem}
 */
function wellFormed(item) {
  return item && typeof item.url === "string" && item.url.startsWith("/api/") && keepable(item);
}

// ---- IndexedDB: one record per session, {items, saved} -----------------------------------------

/** @type {Promise<IDBDatabase> | null} */
let opened = null;
function database() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      if (typeof indexedDB === "undefined") throw new Error("No IndexedDB here.");
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(DB_STORE);
      request.onsuccess = () => {
        // "Delete all my data" (the service worker deletes this database) must not wait for us.
        request.result.onversionchange = () => {
          request.result.close();
          opened = null;
        };
        resolve(request.result);
      };
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error("IndexedDB is blocked."));
    });
  }
  return opened;
}

/**
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest | null} work
 * @returns {Promise<any>} the result of the request `work` returned
 */
async function transact(mode, work) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(DB_STORE, mode);
    const request = work(tx.objectStore(DB_STORE));
    tx.oncomplete = () => resolve(request ? request.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/**
 * @param {string} key
 * @returns {Promise<unknown[]>}
 */
async function readDb(key) {
  try {
    const record = await transact("readonly", (store) => store.get(key));
    return record && Array.isArray(record.items) ? record.items : [];
  } catch {
    return [];
  }
}

/**
 * @param {string} key
 * @param {KeptItem[]} items
 */
function writeDb(key, items) {
  return transact("readwrite", (store) => {
    if (items.length) store.put({ items, saved: Date.now() }, key);
    else store.delete(key);
    return null;
  });
}

async function forgetOld() {
  try {
    await transact("readwrite", (store) => {
      const cursor = store.openCursor();
      cursor.onsuccess = () => {
        const at = cursor.result;
        if (!at) return;
        if (!(at.value && at.value.saved > Date.now() - FORGET_MS)) at.delete();
        at.continue();
      };
      return null;
    });
  } catch {
    /* nothing to forget */
  }
}

// ---- the sessionStorage mirror -----------------------------------------------------------------

/**
 * @param {string} key
 * @returns {unknown[]}
 */
function readMirror(key) {
  try {
    const items = JSON.parse(sessionStorage.getItem(MIRROR + key) || "[]");
    return Array.isArray(items) ? items : [];
  } catch {
    return [];
  }
}

/**
 * @param {string} key
 * @param {KeptItem[]} items
 */
function writeMirror(key, items) {
  try {
    if (items.length) sessionStorage.setItem(MIRROR + key, JSON.stringify(items));
    else sessionStorage.removeItem(MIRROR + key);
  } catch {
    /* no storage (a private mode): the queue lives as long as the page */
  }
}

// ---- the outbox --------------------------------------------------------------------------------

export class Outbox {
  // key: the session's id. status: an element (role="status") that says what is waiting while
  // the server cannot be reached. Nothing is sent before `start()`.
  /**
   * @param {object} options
   * @param {string} options.key
   * @param {HTMLElement | null} [options.status]
   * @param {(data: any, item: Item, last: boolean) => void} [options.onResult] the answer to an event;
   *   `last`: no other waits behind it
   * @param {(error: Error, item: Item) => void} [options.onError] an event the server refused
   */
  constructor({ key, status = null, onResult = () => {}, onError = () => {} }) {
    this.key = String(key);
    this.status = status;
    this.onResult = onResult;
    this.onError = onError;
    /** @type {Item[]} */
    this.items = [];
    this.busy = false;
    this.started = false;
    this.reachable = true;
    /** @type {ReturnType<typeof setTimeout> | 0} */
    this.timer = 0;
    /** @type {Promise<void>} */
    this.writes = Promise.resolve();
    window.addEventListener("online", () => {
      this.reachable = true;
      this.show();
      this.flush();
    });
    window.addEventListener("offline", () => this.show());
  }

  get pending() {
    return this.items.length;
  }

  // Resolves once no event waits for its answer (the page has adopted the last), or after
  // `limit` ms, whichever comes first.
  /**
   * @param {number} limit
   * @returns {Promise<void>}
   */
  settled(limit) {
    const until = Date.now() + limit;
    return new Promise((resolve) => {
      const check = () => (!this.pending || Date.now() >= until ? resolve() : setTimeout(check, 50));
      check();
    });
  }

  // What earlier pages for this session left unsent, oldest first (by seq). They go to the front
  // of the queue, marked `meta.restored`, and are returned so the page can apply them.
  /** @returns {Promise<Item[]>} */
  async restore() {
    /** @type {Map<number, any>} */
    const found = new Map();
    for (const item of [...(await readDb(this.key)), ...readMirror(this.key)]) {
      if (wellFormed(item)) found.set(item.body.seq, item);
    }
    forgetOld();
    const queued = new Set(this.items.filter(keepable).map((item) => item.body.seq));
    const restored = [...found.values()]
      .filter((item) => !queued.has(item.body.seq))
      .sort((a, b) => a.body.seq - b.body.seq)
      .map((item) => ({
        url: item.url,
        body: item.body,
        meta: { kind: item.body.kind, restored: true },
        failures: 0,
      }));
    this.items = [...restored, ...this.items];
    this.save();
    this.show();
    return restored;
  }

  // The server has every event up to `seq`: the restored ones at or below it need not go again.
  /** @param {number} seq */
  confirmed(seq) {
    this.drop((item) => item.meta.restored && item.body.seq <= seq);
  }

  // Forget what is waiting (the session has ended or is gone).
  clear() {
    this.drop(() => true);
  }

  /** @param {(item: Item) => unknown} test */
  drop(test) {
    const before = this.items.length;
    this.items = this.items.filter((item, i) => (i === 0 && this.busy) || !test(item));
    if (this.items.length !== before) {
      this.save();
      this.show();
    }
  }

  start() {
    this.started = true;
    this.flush();
  }

  /**
   * @param {string} url
   * @param {any} body
   * @param {Meta} [meta]
   */
  push(url, body, meta = {}) {
    this.items.push({ url, body, meta, failures: 0 });
    this.save();
    this.show();
    this.flush();
  }

  async flush() {
    if (!this.started || this.busy) return;
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
            (error instanceof ApiError && KEEP_ON.has(error.status)) ||
            (error instanceof ApiError && error.status >= 500 && ++item.failures < 4);
          if (retry) {
            this.reachable = false;
            this.show();
            this.timer = setTimeout(() => this.flush(), RETRY_MS);
            return;
          }
          this.items.shift();
          this.save();
          this.show();
          this.onError(/** @type {Error} */ (error), item);
          continue;
        }
        this.items.shift();
        this.reachable = true;
        this.save();
        this.show();
        this.onResult(data, item, this.items.length === 0);
      }
    } finally {
      this.busy = false;
    }
  }

  // Writes what may be kept: the mirror at once, IndexedDB in order behind earlier writes.
  save() {
    const kept = this.items.filter(keepable).map(({ url, body }) => ({ url, body }));
    writeMirror(this.key, kept);
    this.writes = this.writes.then(() => writeDb(this.key, kept)).catch(() => {});
  }

  show() {
    const el = this.status;
    if (!el) return;
    const n = this.items.length;
    const changes = n === 1 ? "1 change" : `${n} changes`;
    let text = "";
    if (!navigator.onLine) {
      text = n ? `Offline — ${changes} will be sent when you're back online.` : "Offline — the session goes on.";
    } else if (!this.reachable && n) {
      text = `The server can't be reached — ${changes} will be sent when it's back.`;
    }
    if (el.textContent !== text) el.textContent = text;
    el.hidden = !text;
  }

  // When the page goes away: hand the next event to the browser, which may send it after
  // unload — only when nothing is in flight, and only one: sent all at once, a later event could
  // arrive first and the server would refuse the earlier one as old (by its seq) while the next
  // page takes it as delivered. The rest is kept, and the next page for the session sends it.
  sendOnUnload() {
    if (this.busy || !this.items.length) return;
    const item = this.items[0];
    postJSON(item.url, item.body, { keepalive: true }).catch(() => {});
  }
}
