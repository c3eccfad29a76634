// The player's outbox (static/js/outbox.js): events wait while the server cannot be reached and
// go later, in order, each once; they outlive a reload; and nothing but positions is ever kept.
// The browser around it is a small stand-in: a fetch that answers like POST …/events (or
// cannot connect), sessionStorage, the online/offline events. No IndexedDB here, so the
// sessionStorage mirror is what a reload finds, as in a private window.
import assert from "node:assert/strict";
import test, { afterEach } from "node:test";

class MemoryStorage {
  constructor() {
    /** @type {Map<string, string>} */
    this.map = new Map();
  }
  /** @param {string} key */
  getItem(key) {
    return this.map.has(key) ? /** @type {string} */ (this.map.get(key)) : null;
  }
  /** @param {string} key @param {string} value */
  setItem(key, value) {
    this.map.set(key, String(value));
  }
  /** @param {string} key */
  removeItem(key) {
    this.map.delete(key);
  }
  clear() {
    this.map.clear();
  }
}

// The server: `up` or not; every body it got, in order; a status to answer the next ones with.
const server = { up: true, status: 200, /** @type {any[]} */ got: [], /** @type {any[]} */ headers: [] };

const page = new EventTarget();
const browser = { onLine: true };
Object.assign(globalThis, { window: page, sessionStorage: new MemoryStorage(), document: { cookie: "backrub_csrf=tok%3D1" } });
Object.defineProperty(globalThis, "navigator", { value: browser, configurable: true, writable: true });
globalThis.fetch = async (url, init = {}) => {
  if (!server.up) throw new TypeError("Failed to fetch");
  const body = JSON.parse(String(init.body));
  server.got.push({ url, ...body });
  server.headers.push(init.headers);
  const answer = server.status === 200 ? { accepted: true, seq: body.seq } : { error: "Not that." };
  return new Response(JSON.stringify(answer), { status: server.status, headers: { "content-type": "application/json" } });
};

const { Outbox } = await import("../../src/backrub/web/static/js/outbox.js");

const URL = "/api/v1/sessions/abc/events";
/** @param {number} seq */
const event = (seq, kind = "progress") => ({ kind, active: seq * 10, seq, fired: ["step:0"] });
const idle = () => new Promise((resolve) => setTimeout(resolve, 20));

/** @type {any[]} */
const made = [];
// A page's outbox lives as long as the page: here each is emptied after its test, and its retry
// timer stopped, so that it sends nothing into the next test.
afterEach(() => {
  for (const box of made.splice(0)) {
    box.items = [];
    clearTimeout(box.timer);
  }
});

/** An outbox for `key` with what it reports. */
function outbox(key) {
  /** @type {{seq: number, last: boolean}[]} */
  const results = [];
  /** @type {string[]} */
  const errors = [];
  const status = { textContent: "", hidden: true };
  const box = new Outbox({
    key,
    status: /** @type {any} */ (status),
    onResult: (data, item, last) => results.push({ seq: item.body.seq, last }),
    onError: (error) => errors.push(error.message),
  });
  made.push(box);
  return { box, results, errors, status };
}

function reset() {
  Object.assign(server, { up: true, status: 200, got: [], headers: [] });
  browser.onLine = true;
}

test("events sent while the server is up go at once, with the CSRF token", async () => {
  reset();
  const { box, results } = outbox("s1");
  box.start();
  box.push(URL, event(1));
  await box.settled(1000);
  assert.deepEqual(server.got.map((b) => b.seq), [1]);
  assert.equal(server.headers[0]["X-CSRF-Token"], "tok=1");
  assert.deepEqual(results, [{ seq: 1, last: true }]);
});

test("events made offline are kept, said to be waiting, and sent in order once back online", async () => {
  reset();
  const { box, results, status } = outbox("s2");
  box.start();
  server.up = false;
  browser.onLine = false;
  page.dispatchEvent(new Event("offline"));
  box.push(URL, event(1, "pause"));
  box.push(URL, event(2, "resume"));
  box.push(URL, event(3, "skip"));
  await idle();
  assert.equal(box.pending, 3);
  assert.equal(status.textContent, "Offline — 3 changes will be sent when you're back online.");
  assert.equal(status.hidden, false);
  assert.deepEqual(server.got, []);

  server.up = true;
  browser.onLine = true;
  page.dispatchEvent(new Event("online"));
  await box.settled(2000);
  assert.deepEqual(server.got.map((b) => [b.seq, b.kind]), [[1, "pause"], [2, "resume"], [3, "skip"]]);
  assert.deepEqual(results, [{ seq: 1, last: false }, { seq: 2, last: false }, { seq: 3, last: true }]);
  assert.equal(status.textContent, "");
  assert.equal(status.hidden, true);
});

test("a server that is restarting (503) keeps the event at the head until it answers", async () => {
  reset();
  const { box, results, errors, status } = outbox("s3");
  box.start();
  server.status = 503;
  box.push(URL, event(1));
  box.push(URL, event(2));
  await idle();
  assert.equal(box.pending, 2);
  assert.equal(status.textContent, "The server can't be reached — 2 changes will be sent when it's back.");
  server.status = 200;
  page.dispatchEvent(new Event("online"));
  await box.settled(2000);
  assert.deepEqual(server.got.map((b) => b.seq), [1, 1, 2], "the first was tried again, then the second went");
  assert.deepEqual(results.map((r) => r.seq), [1, 2]);
  assert.deepEqual(errors, []);
});

test("an event the server refuses (4xx) is dropped and reported, and the next one still goes", async () => {
  reset();
  const { box, results, errors } = outbox("s4");
  box.start();
  server.status = 422;
  box.push(URL, event(1));
  await idle();
  server.status = 200;
  box.push(URL, event(2));
  await box.settled(2000);
  assert.deepEqual(errors, ["Not that."]);
  assert.deepEqual(results.map((r) => r.seq), [2]);
});

test("what was not sent survives a reload: the next page gets it back, in order, and sends it", async () => {
  reset();
  server.up = false;
  const before = outbox("s5");
  before.box.start();
  before.box.push(URL, event(2, "skip"));
  before.box.push(URL, event(1, "pause")); // out of order in the queue: restored by seq
  before.box.push(URL, event(3, "extend"));
  await idle();

  server.up = true;
  const after = outbox("s5"); // the reloaded page
  const restored = await after.box.restore();
  assert.deepEqual(restored.map((item) => [item.body.seq, item.meta.restored]), [[1, true], [2, true], [3, true]]);
  after.box.confirmed(1); // the server's saved state already has seq 1
  after.box.start();
  await after.box.settled(2000);
  assert.deepEqual(server.got.map((b) => b.seq), [2, 3]);
  assert.equal(globalThis.sessionStorage.getItem("backrub.outbox.s5"), null, "nothing left behind once sent");
});

test("only positions are ever written to storage: a finish with a note lives in memory only", async () => {
  reset();
  server.up = false;
  const { box } = outbox("s6");
  box.start();
  box.push(URL, event(1));
  box.push("/api/v1/sessions/abc/finish", { active: 10, tension_after: 2, note: "my back hurts", stopped: false }, { kind: "finish" });
  await idle();
  const kept = globalThis.sessionStorage.getItem("backrub.outbox.s6");
  assert.ok(kept);
  assert.deepEqual(JSON.parse(kept).map((/** @type {any} */ item) => item.body.seq), [1]);
  assert.ok(!kept.includes("my back hurts") && !kept.includes("tension_after"));
});

test("nothing is sent before the page starts the outbox", async () => {
  reset();
  const { box } = outbox("s7");
  box.push(URL, event(1));
  await idle();
  assert.deepEqual(server.got, []);
  box.start();
  await box.settled(1000);
  assert.deepEqual(server.got.map((b) => b.seq), [1]);
});
