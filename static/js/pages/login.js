// login.js — sign in, keep the token for this tab, go to the role's home page
// (or back to the page that sent us here).

import { api, setToken, getToken, getMe, homeFor } from '../api.js';
import { $, announce, showError } from '../ui.js';

const form = $('#login-form');
const email = $('#email');
const password = $('#password');
const submit = $('#login-submit');
const error = $('#login-error');

// Only same-site paths, so ?next= can't bounce the user to another site.
function nextUrl(role) {
  const next = new URLSearchParams(location.search).get('next');
  if (next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login')) return next;
  return homeFor(role);
}

// "Sign in with …" for each identity provider the server is configured with. The
// links go through the server's start route, which redirects to the provider.
const ssoBox = $('#sso');
const ssoList = $('#sso-providers');
api('/api/auth/sso/providers', { redirectOn401: false })
  .then(({ providers }) => {
    for (const p of providers || []) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.className = 'btn btn-secondary btn-block btn-sso';
      a.href = `/api/auth/sso/${encodeURIComponent(p.id)}/start`;
      a.dataset.provider = p.id;
      a.textContent = `Sign in with ${p.display_name}`;
      li.append(a);
      ssoList.append(li);
    }
    ssoBox.hidden = ssoList.children.length === 0;
  })
  .catch(() => { /* no buttons: password sign-in still works */ });

// Already signed in this tab? Skip the form. (Only when we hold a token, so a
// plain visit doesn't log a 401 in the console.)
if (getToken()) {
  getMe({ redirectOn401: false })
    .then((user) => location.replace(nextUrl(user.role)))
    .catch(() => {});
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  announce(error, '');
  if (!email.value.trim() || !password.value) {
    announce(error, 'Enter your email and password.', 'error');
    (email.value.trim() ? password : email).focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = 'Signing in…';
  try {
    const r = await api('/api/auth/login', {
      method: 'POST',
      body: { email: email.value.trim(), password: password.value },
      redirectOn401: false,
    });
    setToken(r.token);
    location.assign(nextUrl(r.user.role));
  } catch (e) {
    if (e.status === 403) announce(error, e.message, 'error');
    else if (e.status === 401) announce(error, e.message && e.code !== 'http_401' ? e.message : 'Email or password is not correct.', 'error');
    else showError(error, e);
    password.select();
    password.focus();
    submit.disabled = false;
    submit.textContent = 'Sign in';
  }
});
