// @ts-check
// The receiver's remote, on the giver's player (partner mode). "Receiver's remote" opens a code
// for the session (POST …/remote) and shows it, large, with its QR code; from then on the page
// waits for what the receiver taps (a long poll: GET …/remote/messages?after=N, which the server
// answers as soon as a message is in the database, whichever app process took it). Each message
// is shown ("Receiver: softer"), spoken, chimed, and handed to the player's own feedback, so the
// rest of the session is re-planned exactly as if the giver had tapped it.
// The loop stops while the page is hidden, and for good when the session ends.

import { postJSON, ApiError, store } from "./api.js";

const WAIT_SECONDS = 20;
const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];
const SAID_MS = 12000;
/** @type {Record<string, string>} */
const WORDS = { good: "good", softer: "softer", firmer: "firmer", tender: "tender" };

/** @param {string} id an element the player page has */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

export class ReceiverRemote {
  // say(text): speak and announce through the player's voice; chime(): the player's chime;
  // feedback(kind): the player's own feedback; over(): true once the session has ended here.
  /**
   * @param {object} options
   * @param {string} options.sessionId
   * @param {(text: string) => void} options.say
   * @param {() => void} options.chime
   * @param {(kind: string) => void} options.feedback
   * @param {() => boolean} options.over
   */
  constructor({ sessionId, say, chime, feedback, over }) {
    this.base = `/api/v1/sessions/${encodeURIComponent(sessionId)}`;
    this.key = `remote.${sessionId}`;
    this.say = say;
    this.chime = chime;
    this.feedback = feedback;
    this.over = over;
    /** @type {number | null} */
    this.after = null; // the newest message taken; null until a code is open
    this.running = false;
    this.stopped = false;
    /** @type {AbortController | null} */
    this.controller = null;
    this.failures = 0;
    /** @type {ReturnType<typeof setTimeout> | 0} */
    this.saidTimer = 0;
    this.dialog = /** @type {HTMLDialogElement} */ ($("remote-dialog"));
    this.buttons = [.../** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll("[data-remote-open]"))];
    for (const button of this.buttons) {
      button.hidden = false;
      button.addEventListener("click", (event) => {
        this.open();
        if (event.detail > 0) button.blur();
      });
    }
    $("remote-close").addEventListener("click", () => this.dialog.close());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.run();
      else this.pause();
    });
    window.addEventListener("pagehide", () => this.pause());
    // The session may end while a poll waits: the panel goes and the loop stops within a second.
    this.watch = setInterval(() => {
      if (this.over()) this.stop();
    }, 1000);
    // A remote opened before a reload keeps reaching this page, from the message it had taken.
    const kept = store.get(this.key);
    if (kept && Number.isInteger(kept.after)) this.open({ show: false, after: kept.after });
  }

  /** @param {{show?: boolean, after?: number | null}} [options] */
  async open({ show = true, after = null } = {}) {
    if (this.stopped) return;
    let remote;
    try {
      remote = await postJSON(`${this.base}/remote`, {});
    } catch (error) {
      if (show) {
        this.fill(null);
        $("remote-state").textContent = /** @type {Error} */ (error).message;
        this.dialog.showModal();
      }
      if (error instanceof ApiError && (error.status === 404 || error.status === 409)) this.stop();
      return;
    }
    this.fill(remote);
    if (show && !this.dialog.open) this.dialog.showModal();
    if (this.after === null) {
      this.after = after ?? remote.last;
      this.keep();
    }
    this.run();
  }

  /** @param {any} remote the open code: {code, url, qr, last}, or null */
  fill(remote) {
    $("remote-join").textContent = `${window.location.origin}/r`;
    $("remote-code").textContent = remote ? remote.code : "";
    $("remote-url").textContent = remote ? remote.url : "";
    const qr = /** @type {HTMLImageElement} */ ($("remote-qr"));
    qr.hidden = !remote;
    if (remote) qr.src = remote.qr;
    if (remote && !$("remote-state").textContent) {
      $("remote-state").textContent = "Waiting for the receiver…";
    }
  }

  keep() {
    store.set(this.key, { after: this.after });
  }

  // The long poll. One loop at a time; it ends when the page hides or the session ends.
  async run() {
    if (this.running || this.stopped || this.after === null || document.visibilityState === "hidden") return;
    this.running = true;
    try {
      // (The page may be hidden by the time a poll comes back: the type says what it can be.)
      while (!this.stopped && !this.over() && /** @type {DocumentVisibilityState} */ (document.visibilityState) !== "hidden") {
        this.controller = new AbortController();
        let inbox;
        try {
          inbox = await this.poll(this.controller.signal);
        } catch (error) {
          if (this.controller.signal.aborted || this.stopped) break;
          if (error instanceof ApiError && (error.status === 404 || error.status === 409)) {
            this.stop();
            break;
          }
          const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
          this.failures += 1;
          await new Promise((resolve) => setTimeout(resolve, delay));
          continue;
        }
        this.failures = 0;
        for (const message of inbox.messages) this.receive(message);
        this.after = Math.max(/** @type {number} */ (this.after), Number(inbox.last) || 0);
        this.keep();
        if (!inbox.active) this.stop();
      }
    } finally {
      this.running = false;
      this.controller = null;
    }
  }

  /**
   * @param {AbortSignal} signal
   * @returns {Promise<any>} {messages, last, active}
   */
  async poll(signal) {
    const url = `${this.base}/remote/messages?after=${this.after}&wait=${WAIT_SECONDS}`;
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError((data && data.error) || `The server answered ${response.status}.`, response.status, data);
    }
    return data;
  }

  /** @param {{kind: string}} message */
  receive(message) {
    const word = WORDS[message.kind];
    if (!word) return;
    const said = $("remote-said");
    said.textContent = `Receiver: ${word}`;
    said.hidden = false;
    said.classList.remove("is-new");
    void said.offsetWidth; // restart the highlight
    said.classList.add("is-new");
    clearTimeout(this.saidTimer);
    this.saidTimer = setTimeout(() => {
      said.hidden = true;
      said.classList.remove("is-new");
    }, SAID_MS);
    $("remote-state").textContent = `Last from the receiver: ${word}`;
    this.say(`Receiver: ${word}.`);
    this.chime();
    this.feedback(message.kind);
  }

  pause() {
    if (this.controller) this.controller.abort();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watch);
    this.pause();
    if (this.dialog.open) this.dialog.close();
    for (const button of this.buttons) button.hidden = true;
    store.remove(this.key);
  }
}
