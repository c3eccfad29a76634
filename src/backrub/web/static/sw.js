// backrub's service worker: the app shell and the session player keep working without the
// network. Pages and static files: network first, the cached copy when offline. The session
// player's GET of its session (and the catalogue, for "How to do it") is cached the same way, so
// a reload offline resumes it; every other API call goes straight to the network (the player
// queues its events itself).
// Served at /sw.js so its scope is the whole app.

const CACHE = "backrub-v2";
const SHELL = [
  "/",
  "/static/css/app.css",
  "/static/css/pages.css",
  "/static/css/player.css",
  "/static/js/api.js",
  "/static/js/audio.js",
  "/static/js/backmap.js",
  "/static/js/dom.js",
  "/static/js/error.js",
  "/static/js/history.js",
  "/static/js/index.js",
  "/static/js/map.js",
  "/static/js/motion.js",
  "/static/js/plan.js",
  "/static/js/player.js",
  "/static/js/safety.js",
  "/static/js/timeline.js",
  "/static/js/voice.js",
  "/static/icons/icon.svg",
  "/static/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .catch(() => {})
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function cacheable(url, request) {
  if (url.origin !== self.location.origin || request.method !== "GET") return false;
  if (url.pathname.startsWith("/api/")) {
    return url.pathname === "/api/v1/catalogue" || /^\/api\/v1\/sessions\/[^/]+$/.test(url.pathname);
  }
  return true;
}

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

// The answer to a player's event is the session as the server saved it: kept as the cached copy
// of the session, so a reload without the network resumes from the last save, not the first.
async function keepEventAnswer(request, sessionPath) {
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(CACHE);
    await cache.put(new Request(new URL(sessionPath, self.location.origin)), response.clone());
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const events = /^(\/api\/v1\/sessions\/[^/]+)\/events$/.exec(url.pathname);
  if (events && event.request.method === "POST" && url.origin === self.location.origin) {
    event.respondWith(keepEventAnswer(event.request, events[1]));
    return;
  }
  if (!cacheable(url, event.request)) return;
  event.respondWith(networkFirst(event.request));
});
