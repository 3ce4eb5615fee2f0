// api.js — the one way the client talks HTTP to the server, plus auth helpers
// (who am I, may I be on this page) and the shared top navigation bar.

const TOKEN_KEY = 'nicehr.token';

export const ROLES = ['admin', 'consultant', 'hospital_staff', 'hospital_leadership'];

export const ROLE_LABELS = {
  admin: 'Admin',
  consultant: 'Consultant',
  hospital_staff: 'Hospital staff',
  hospital_leadership: 'Hospital leadership',
};

// Where each role lands after login or when it opens a page it may not use.
const HOME = {
  hospital_staff: '/support/request',
  hospital_leadership: '/support/request',
  consultant: '/support/queue',
  admin: '/support/queue',
};

// DESIGN.md §8: which links each role sees.
const NAV_LINKS = [
  { href: '/support/request', label: 'Request support', roles: ['hospital_staff', 'hospital_leadership', 'admin'] },
  { href: '/support/queue', label: 'Queue', roles: ['consultant', 'admin'] },
  { href: '/support/history', label: 'History', roles: ROLES },
  { href: '/support/settings', label: 'Settings', roles: ['consultant', 'admin'] },
  { href: '/support/analytics', label: 'Analytics', roles: ['hospital_leadership', 'admin'] },
  { href: '/admin', label: 'Admin console', roles: ['admin'] },
];

export function homeFor(role) {
  return HOME[role] || '/support/history';
}

// The token lives in sessionStorage (per tab) as well as in the HttpOnly cookie:
// the header works even where cookies are blocked, and the WebSocket needs it in its URL.
export function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the cookie still authenticates */ }
}

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.message) || defaultMessage(status, retryAfter));
    this.name = 'ApiError';
    this.status = status;
    this.code = (body && body.error) || (status ? `http_${status}` : 'network');
    this.fields = (body && body.fields) || null;
    this.retryAfter = retryAfter ? Number(retryAfter) : null;
  }
}

function defaultMessage(status, retryAfter) {
  switch (status) {
    case 0: return 'Cannot reach the server. Check your connection and try again.';
    case 401: return 'Your session has expired. Please sign in again.';
    case 403: return 'You do not have access to this.';
    case 404: return 'Not found.';
    case 409: return 'That is no longer possible; the information on screen may be out of date.';
    case 413: return 'That is too large to send.';
    case 429: return `Too many requests. Please wait ${retryAfter || 'a few'} seconds and try again.`;
    case 503: return 'The service is temporarily unavailable. Please try again shortly.';
    default: return `Something went wrong (HTTP ${status}).`;
  }
}

// Offset between the server clock (from the Date header) and ours, so countdowns
// (offer expiry, waiting time) agree with the server even if this PC's clock is off.
let clockOffsetMs = 0;

function noteServerClock(res) {
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isNaN(date)) return;
  const offset = date - Date.now();
  // The header has 1 s resolution: ignore differences that small.
  clockOffsetMs = Math.abs(offset) > 2000 ? offset : 0;
}

export function serverNow() {
  return Date.now() + clockOffsetMs;
}

export function buildQuery(query) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  }
  const s = qs.toString();
  return s ? `?${s}` : '';
}

/**
 * JSON fetch. Resolves with the parsed body; rejects with ApiError carrying the
 * server's {error, message, fields}. A 401 sends the user to /login unless
 * `redirectOn401: false`.
 */
export async function api(path, { method = 'GET', body, query, redirectOn401 = true, signal } = {}) {
  const headers = {
    Accept: 'application/json',
    'X-Requested-With': 'nicehr', // CSRF guard required by the server for cookie-authenticated writes
  };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, credentials: 'same-origin', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let res;
  try {
    res = await fetch(path + buildQuery(query), init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, null);
  }
  noteServerClock(res);

  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data && typeof data === 'object' ? data : null, res.headers.get('Retry-After'));
    if (res.status === 401 && redirectOn401) {
      setToken(null);
      redirectToLogin();
    }
    throw err;
  }
  return data ?? {};
}

export function redirectToLogin() {
  if (location.pathname === '/login') return;
  const next = location.pathname + location.search;
  location.replace(`/login?next=${encodeURIComponent(next)}`);
}

let mePromise = null;

/** The signed-in user (cached per page load). Rejects with ApiError (401 redirects). */
export function getMe({ fresh = false, redirectOn401 = true } = {}) {
  if (!mePromise || fresh) {
    mePromise = api('/api/auth/me', { redirectOn401 }).then((r) => r.user || r);
    mePromise.catch(() => { mePromise = null; });
  }
  return mePromise;
}

/**
 * Gatekeeper for every page: resolves with the user if their role may use this
 * page, otherwise navigates away (login, or the role's home) and never resolves,
 * so the page's own code simply stops.
 */
export async function requireUser(allowedRoles = ROLES) {
  let user;
  try {
    user = await getMe();
  } catch (e) {
    if (e.status !== 401) showFatal(`Could not load your account: ${e.message}`);
    return new Promise(() => {});
  }
  if (!allowedRoles.includes(user.role)) {
    location.replace(homeFor(user.role));
    return new Promise(() => {});
  }
  renderNav(user);
  return user;
}

export async function logout() {
  try { await api('/api/auth/logout', { method: 'POST', body: {}, redirectOn401: false }); } catch { /* signing out anyway */ }
  setToken(null);
  location.assign('/login');
}

/** Fill the static nav skeleton (#nav) with the links this role may use. */
export function renderNav(user) {
  const list = document.getElementById('nav-links');
  if (list) {
    list.replaceChildren();
    for (const link of NAV_LINKS) {
      if (!link.roles.includes(user.role)) continue;
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = link.href;
      a.textContent = link.label;
      if (location.pathname === link.href) a.setAttribute('aria-current', 'page');
      li.append(a);
      list.append(li);
    }
  }
  const who = document.getElementById('nav-user');
  if (who) {
    const name = document.createElement('span');
    name.className = 'nav-user-name';
    name.textContent = user.name || user.email;
    const role = document.createElement('span');
    role.className = 'nav-user-role';
    role.textContent = ROLE_LABELS[user.role] || user.role;
    who.replaceChildren(name, role);
  }
  const btn = document.getElementById('logout');
  if (btn) {
    btn.hidden = false;
    btn.addEventListener('click', logout);
  }
  const pill = document.getElementById('ws-status');
  if (pill) pill.hidden = false;
}

/** Show a page-level error at the top of <main> (used when a page cannot start). */
export function showFatal(message) {
  const main = document.querySelector('main') || document.body;
  let box = document.getElementById('page-error');
  if (!box) {
    box = document.createElement('div');
    box.id = 'page-error';
    box.className = 'message is-error';
    box.setAttribute('role', 'alert');
    main.prepend(box);
  }
  box.textContent = message;
}
