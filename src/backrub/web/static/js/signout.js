// @ts-check
// The header's "Sign out" button (shown when accounts are on and someone is signed in).

import { postJSON } from "./api.js";

const button = /** @type {HTMLButtonElement | null} */ (document.getElementById("sign-out"));
if (button) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await postJSON("/api/v1/account/signout");
    } finally {
      window.location.assign("/signin");
    }
  });
}
