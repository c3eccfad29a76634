// @ts-check
// Sign in, make an account, change the password, delete the account. The forms post JSON with
// the CSRF header (api.js); a refusal is shown as the server's one sentence.

import { postJSON, registerServiceWorker } from "./api.js";

registerServiceWorker();

/**
 * @param {string} formId
 * @param {string} errorId
 * @param {(form: HTMLFormElement) => object} build the request's body
 * @param {(form: HTMLFormElement, answer: any) => void | Promise<void>} done
 */
function wire(formId, errorId, build, done) {
  const form = /** @type {HTMLFormElement | null} */ (document.getElementById(formId));
  if (!form) return;
  const error = /** @type {HTMLElement} */ (document.getElementById(errorId));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
    error.hidden = true;
    button.disabled = true;
    try {
      const answer = await postJSON(/** @type {string} */ (form.dataset.action), build(form));
      await done(form, answer);
    } catch (problem) {
      error.textContent = /** @type {Error} */ (problem).message;
      error.hidden = false;
      const first = form.querySelector("input");
      if (first) first.focus();
    } finally {
      button.disabled = false;
    }
  });
}

/**
 * @param {HTMLFormElement} form
 * @param {string} name
 */
const value = (form, name) => /** @type {HTMLInputElement} */ (form.elements.namedItem(name)).value;
/** @param {HTMLFormElement} form */
const go = (form) => window.location.assign(form.dataset.next || "/");

wire("signin-form", "form-error", (f) => ({ email: value(f, "email"), password: value(f, "password") }), go);
wire(
  "signup-form",
  "form-error",
  (f) => ({
    email: value(f, "email"),
    password: value(f, "password"),
    consent: /** @type {HTMLInputElement} */ (f.elements.namedItem("consent")).checked,
  }),
  go,
);
wire(
  "password-form",
  "password-error",
  (f) => ({ current: value(f, "current"), new: value(f, "new") }),
  (f) => {
    f.reset();
    /** @type {HTMLElement} */ (document.getElementById("password-done")).textContent =
      "The password is changed; other browsers are signed out.";
  },
);
wire(
  "delete-account-form",
  "delete-error",
  (f) => ({ password: value(f, "password") }),
  () => window.location.assign("/signup"),
);
