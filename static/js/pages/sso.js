// sso.js — the page a single sign-on lands on: keep the token for this tab (as the
// password sign-in does) and go to the role's home page.

import { setToken, homeFor } from '../api.js';

const { token, role } = document.body.dataset;
if (token) {
  setToken(token);
  // The token must not stay in the DOM (or in this history entry) once stored.
  delete document.body.dataset.token;
  location.replace(homeFor(role));
}
