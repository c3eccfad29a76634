// Sign in, make an account, change the password, delete the account. The forms post JSON with
// the CSRF header (api.js); a refusal is shown as the server's one sentence.

import { postJSON, registerServiceWorker } from "./api.js";

registerServiceWorker();

function wire(formId, errorId, build, done) {
  const form = document.getElementById(formId);
  if (!form) return;
  const error = document.getElementById(errorId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    error.hidden = true;
    button.disabled = true;
    try {
      const answer = await postJSON(form.dataset.action, build(form));
      await done(form, answer);
    } catch (problem) {
      error.textContent = problem.message;
      error.hidden = false;
      const first = form.querySelector("input");
      if (first) first.focus();
    } finally {
      button.disabled = false;
    }
  });
}

const value = (form, name) => form.elements.namedItem(name).value;
const go = (form) => window.location.assign(form.dataset.next || "/");

wire("signin-form", "form-error", (f) => ({ email: value(f, "email"), password: value(f, "password") }), go);
wire(
  "signup-form",
  "form-error",
  (f) => ({
    email: value(f, "email"),
    password: value(f, "password"),
    consent: f.elements.namedItem("consent").checked,
  }),
  go,
);
wire(
  "password-form",
  "password-error",
  (f) => ({ current: value(f, "current"), new: value(f, "new") }),
  (f) => {
    f.reset();
    document.getElementById("password-done").textContent =
      "The password is changed; other browsers are signed out.";
  },
);
wire(
  "delete-account-form",
  "delete-error",
  (f) => ({ password: value(f, "password") }),
  () => window.location.assign("/signup"),
);
