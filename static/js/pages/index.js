// index.js — "/" just sends each role to its home page (or to /login).

import { getMe, homeFor } from '../api.js';

getMe()
  .then((user) => location.replace(homeFor(user.role)))
  .catch((e) => {
    if (e.status !== 401) {
      const p = document.getElementById('index-status');
      p.textContent = `Could not load your account: ${e.message}`;
      p.className = 'message is-error';
    }
  });
