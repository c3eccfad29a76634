// @ts-check
// An error page: nothing to do but keep the app installable and working offline.

import { registerServiceWorker } from "./api.js";

registerServiceWorker();
