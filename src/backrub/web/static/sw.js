// @ts-check
// backrub's service worker: the app shell and the session player keep working without the
// network. Pages and static files: network first, the cached copy when offline (every page a
// person has opened once, and the shell below from the start). The session player's GET of its
// session (and the catalogue, for "How to do it") is cached the same way, so a reload offline
// resumes it. Every other API call goes straight to the network: the player keeps its own events
// (outbox.js) and applies them on top of the cached session, which may be older.
// The cached session is the newest the server has told this browser: the answer to each of the
// player's events replaces it unless it is older (by seq); a small answer (a progress save, pause
// or resume) is written into it. Finishing or deleting a session,
// deleting everything or signing out removes it (and the events kept for it).
// Served at /sw.js so its scope is the whole app.

// `self`, typed as what it is here (the worker lib types it as any worker's scope).
/** @type {ServiceWorkerGlobalScope} */
const worker = /** @type {any} */ (self);

const CACHE = "backrub-v7";
const SHELL = [
  "/",
  "/static/css/app.css",
  "/static/css/pages.css",
  "/static/css/player.css",
  "/static/js/account.js",
  "/static/js/adopt.js",
  "/static/js/api.js",
  "/static/js/audio.js",
  "/static/js/backmap.js",
  "/static/js/dom.js",
  "/static/js/error.js",
  "/static/js/history.js",
  "/static/js/howto.js",
  "/static/js/index.js",
  "/static/js/keys.js",
  "/static/js/map.js",
  "/static/js/motion.js",
  "/static/js/outbox.js",
  "/static/js/plan.js",
  "/static/js/player.js",
  "/static/js/receiver.js",
  "/static/js/remote.js",
  "/static/css/remote.css",
  "/static/js/safety.js",
  "/static/js/scene.js",
  "/static/js/signout.js",
  "/static/js/switches.js",
  "/static/js/timeline.js",
  "/static/js/voice.js",
  "/static/icons/icon.svg",
  "/static/icons/icon-192.png",
  "/static/manifest.webmanifest",
  "/api/v1/catalogue",
];

worker.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      // One by one: a file that fails to load (a slow start, a moved file) leaves the others cached.
      .then((cache) => Promise.allSettled(SHELL.map((path) => cache.add(path))))
      .catch(() => {})
      .then(() => worker.skipWaiting()),
  );
});

worker.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => worker.clients.claim()),
  );
});

/**
 * @param {URL} url
 * @param {Request} request
 */
function cacheable(url, request) {
  if (url.origin !== worker.location.origin || request.method !== "GET") return false;
  if (url.pathname.startsWith("/api/")) {
    return url.pathname === "/api/v1/catalogue" || /^\/api\/v1\/sessions\/[^/]+$/.test(url.pathname);
  }
  return true;
}

/** @param {Request} request */
async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request, { ignoreVary: true });
    if (cached) return cached;
    throw error;
  }
}

/** @param {string} sessionPath /api/v1/sessions/{id} */
function sessionKey(sessionPath) {
  return new Request(new URL(sessionPath, worker.location.origin));
}

/** @param {any} view a session as GET /api/v1/sessions/{id} answers */
function seqOf(view) {
  return Number(view && view.state && view.state.seq) || 0;
}

// The cached session with a small answer's saved position written in (null when there is no
// whole session to write it into, or the answer is not one).
/**
 * @param {any} view
 * @param {any} answer
 */
function withSaved(view, answer) {
  if (!view || !view.state || !answer || !Number.isInteger(answer.seq)) return null;
  const state = { ...view.state, seq: answer.seq, active: answer.active, started: true };
  if (Array.isArray(answer.fired)) state.fired = answer.fired;
  return { ...view, active: answer.active, state };
}

// The cached session with a full answer written in. The answer has all of the session but its
// plan, which no event changes (kept from before), and its cues, which the page makes from the
// steps and durations (the cached ones were made for the timeline before, so they go). An
// accepted event's answer has only the fields of the steps it changed: they go onto the cached steps, which
// must be those of the state they were changed from (`applied_to`) — undefined when they are not.
/**
 * @param {any} before
 * @param {any} answer
 * @returns {any}
 */
function withAnswer(before, answer) {
  const kept = { ...(before || {}), ...answer };
  delete kept.changed_steps;
  delete kept.applied_to;
  if (!("cues" in answer)) delete kept.cues;
  if (Array.isArray(answer.state.steps)) return kept;
  const base = before && before.state && Array.isArray(before.state.steps) ? before.state.steps : null;
  if (!base || seqOf(before) !== answer.applied_to) return undefined;
  const steps = base.slice();
  for (const [i, fields] of answer.changed_steps || []) steps[i] = { ...steps[i], ...fields };
  kept.state = { ...answer.state, steps };
  return kept;
}

/** @param {string} sessionPath */
async function freshSession(sessionPath) {
  try {
    const response = await fetch(sessionKey(sessionPath), { credentials: "same-origin" });
    return response.ok ? await response.json() : null;
  } catch (error) {
    return null;
  }
}

// One change to the cached sessions at a time: two answers read and replace in turn.
/** @type {Promise<unknown>} */
let keeping = Promise.resolve();
/**
 * @template T
 * @param {() => Promise<T>} work
 * @returns {Promise<T>}
 */
function inTurn(work) {
  const next = keeping.then(work, work);
  keeping = next.catch(() => {});
  return next;
}

// The answer to a player's event is the session as the server saved it: kept as the cached copy
// of the session (unless the cached one is newer), so a reload without the network resumes from
// the last save, not the first. It is cached before the page reads it: the page forgets a kept
// event only once the cached copy has it. A progress save, pause or resume answers only with
// what it saved (seq, active time, cues given; the timeline did not change): that goes into the
// cached session, never in its place.
/**
 * @param {Request} request
 * @param {string} sessionPath
 */
async function keepEventAnswer(request, sessionPath) {
  const response = await fetch(request);
  if (!response.ok) return response;
  await inTurn(async () => {
    const answer = await response.clone().json();
    const cache = await caches.open(CACHE);
    const cached = await cache.match(sessionKey(sessionPath), { ignoreVary: true });
    const before = cached ? await cached.json().catch(() => null) : null;
    let kept = answer && answer.state ? withAnswer(before, answer) : withSaved(before, answer);
    // Changed steps with no copy of the state they were changed from: the session, asked afresh.
    if (kept === undefined) kept = await freshSession(sessionPath);
    if (!kept || (before && seqOf(before) > seqOf(kept))) return;
    const headers = { "Content-Type": "application/json", "Cache-Control": "no-store" };
    await cache.put(sessionKey(sessionPath), new Response(JSON.stringify(kept), { headers }));
  }).catch(() => {});
  return response;
}

// The events kept for a session (outbox.js: IndexedDB "backrub", store "outbox", keyed by the
// session's id), or all of them.
/**
 * @param {string | null} sessionId
 * @returns {Promise<void>}
 */
function forgetKept(sessionId) {
  return new Promise((resolve) => {
    if (sessionId === null) {
      const request = indexedDB.deleteDatabase("backrub");
      request.onsuccess = request.onerror = request.onblocked = () => resolve();
      return;
    }
    const request = indexedDB.open("backrub", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("outbox");
    request.onerror = request.onblocked = () => resolve();
    request.onsuccess = () => {
      const db = request.result;
      const tx = db.transaction("outbox", "readwrite");
      tx.objectStore("outbox").delete(sessionId);
      tx.oncomplete = tx.onerror = tx.onabort = () => {
        db.close();
        resolve();
      };
    };
  });
}

// Finishing a session, deleting it, deleting everything, signing out: once the server has done
// it, the copies here go too (the cached session holds tension scores; kept events, positions).
/**
 * @param {Request} request
 * @param {string | null} sessionPath
 */
async function thenForget(request, sessionPath) {
  const response = await fetch(request);
  if (response.ok) {
    await inTurn(async () => {
      const cache = await caches.open(CACHE);
      if (sessionPath === null) {
        const keys = await cache.keys();
        const sessions = keys.filter((key) => /^\/api\/v1\/sessions\//.test(new URL(key.url).pathname));
        await Promise.all(sessions.map((key) => cache.delete(key)));
      } else {
        await cache.delete(sessionKey(sessionPath), { ignoreVary: true });
      }
    }).catch(() => {});
    const id = sessionPath === null ? null : decodeURIComponent(/** @type {string} */ (sessionPath.split("/").pop()));
    await forgetKept(id).catch(() => {});
  }
  return response;
}

worker.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== worker.location.origin) return;
  const events = /^(\/api\/v1\/sessions\/[^/]+)\/events$/.exec(url.pathname);
  if (events && request.method === "POST") {
    event.respondWith(keepEventAnswer(request, events[1]));
    return;
  }
  const finish = /^(\/api\/v1\/sessions\/[^/]+)\/finish$/.exec(url.pathname);
  if (finish && request.method === "POST") {
    event.respondWith(thenForget(request, finish[1]));
    return;
  }
  if (request.method === "DELETE" && /^\/api\/v1\/sessions\/[^/]+$/.test(url.pathname)) {
    event.respondWith(thenForget(request, url.pathname));
    return;
  }
  const everything = [
    "/api/v1/data",
    "/api/v1/account/signout",
    "/api/v1/account/delete",
  ].includes(url.pathname);
  if ((request.method === "DELETE" || request.method === "POST") && everything) {
    event.respondWith(thenForget(request, null));
    return;
  }
  if (!cacheable(url, request)) return;
  event.respondWith(networkFirst(request));
});
