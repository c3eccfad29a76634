// @ts-check
// The player's keyboard: Space pauses and resumes, N next step, E one more minute, + firmer,
// - softer, T tender, G good, ? the list of keys. Keys do nothing while a dialog is open, in a
// form field, or once the session has ended; Space on a focused button presses that button.
/** @type {Record<string, string>} */
const FEEDBACK_KEYS = { "+": "firmer", "=": "firmer", "-": "softer", _: "softer", t: "tender", g: "good" };

/**
 * @param {object} controls
 * @param {HTMLDialogElement} controls.help the list of keys
 * @param {() => boolean} controls.ended
 * @param {() => void} controls.togglePause
 * @param {() => void} controls.skip
 * @param {() => void} controls.extend
 * @param {(kind: string) => void} controls.feedback
 */
export function bindKeys({ help, ended, togglePause, skip, extend, feedback }) {
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented) return;
    if (event.key === "?") {
      event.preventDefault();
      if (help.open) help.close();
      else if (!document.querySelector("dialog[open]")) help.showModal();
      return;
    }
    if (document.querySelector("dialog[open]") || ended()) return;
    const target = /** @type {Element} */ (event.target);
    if (target.closest("input, textarea, select, [contenteditable]")) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === " " || key === "Spacebar") {
      if (target.closest("button, a, summary")) return; // Space activates the focused button
      event.preventDefault();
      togglePause();
    } else if (key === "n") skip();
    else if (key === "e") extend();
    else if (key in FEEDBACK_KEYS) feedback(FEEDBACK_KEYS[key]);
  });
}
