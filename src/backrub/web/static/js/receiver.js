// @ts-check
// The receiver's remote (/r/{code}): four big buttons that send "good", "softer", "firmer" or
// "tender" to the giver's player. No login: the code in the address is the key, and it reaches
// this one session's feedback only. The typing page (/r) needs no script: its form goes to the
// server, which sends the browser on to /r/{CODE}.

import { postJSON, getJSON, ApiError, OfflineError } from "./api.js";

/** @type {Record<string, string>} */
const SENT = {
  good: "Good",
  softer: "Softer",
  firmer: "Firmer",
  tender: "Tender",
};
const CHECK_EVERY_MS = 30000;

const root = document.getElementById("remote");

/** @param {string} id an element the remote page has */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

if (root && root.dataset.state === "active") {
  const code = /** @type {string} */ (root.dataset.code);
  const status = $("remote-status");
  const buttons = [.../** @type {NodeListOf<HTMLButtonElement>} */ (root.querySelectorAll("[data-kind]"))];
  /** @type {ReturnType<typeof setTimeout> | 0} */
  let sentTimer = 0;

  /** @param {string} text */
  const show = (text, kind = "") => {
    status.textContent = text;
    status.classList.toggle("is-ok", kind === "ok");
    status.classList.toggle("is-error", kind === "error");
  };

  // The session has ended (or the code no longer leads anywhere): say so instead of the buttons.
  /**
   * @param {string} title
   * @param {string} text
   */
  const over = (title, text) => {
    $("remote-live").hidden = true;
    $("remote-over-title").textContent = title;
    $("remote-over-text").textContent = text;
    const section = $("remote-over");
    section.classList.add(title.startsWith("The session") ? "note--clear" : "note--stop");
    section.hidden = false;
    $("remote-over-title").focus();
    clearInterval(checker);
  };

  /** @param {any} error */
  const refused = (error) => {
    if (error instanceof ApiError && error.status === 409) {
      over("The session has ended", error.message);
    } else if (error instanceof ApiError && error.status === 404) {
      over("No session with this code", error.message);
    } else if (error instanceof OfflineError) {
      show("No connection — not sent. Try again in a moment.", "error");
    } else {
      show(error.message, "error");
    }
  };

  /** @param {HTMLButtonElement} button */
  const send = async (button) => {
    const kind = /** @type {string} */ (button.dataset.kind);
    for (const b of buttons) b.classList.remove("is-sent");
    button.disabled = true;
    show("Sending…");
    try {
      await postJSON(`/api/v1/remote/${encodeURIComponent(code)}/feedback`, { kind });
    } catch (error) {
      refused(error);
      return;
    } finally {
      button.disabled = false;
    }
    button.classList.add("is-sent");
    show(`${SENT[kind]}: sent — the giver sees it.`, "ok");
    if (navigator.vibrate) navigator.vibrate(30);
    clearTimeout(sentTimer);
    sentTimer = setTimeout(() => button.classList.remove("is-sent"), 2000);
  };

  for (const button of buttons) {
    button.addEventListener("click", (event) => {
      send(button);
      if (event.detail > 0) button.blur();
    });
  }

  // Now and then, and when the phone is picked up again: has the session ended meanwhile?
  const check = async () => {
    if (document.visibilityState === "hidden") return;
    try {
      const remote = await getJSON(`/api/v1/remote/${encodeURIComponent(code)}`);
      if (remote.status !== "active") {
        over("The session has ended", "This session has ended; thank you, and rest a moment.");
      }
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 409)) refused(error);
    }
  };
  const checker = setInterval(check, CHECK_EVERY_MS);
  document.addEventListener("visibilitychange", check);
}
