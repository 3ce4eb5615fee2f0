// socket.js — the live event channel (/ws). One small class:
//   const s = new Socket(); s.on('support_request_new', fn); s.connect();
// It keeps the connection alive (ping every 20 s, watchdog for silent drops),
// reconnects with exponential backoff + jitter, and resumes where it left off:
// every frame that comes from the server's event stream carries an `event_id`,
// the last one is kept (in sessionStorage, so a reload keeps it too), and a
// reconnect asks for `/ws?since=<it>` — the server replays what was missed, in
// order, then says `resumed`. When the server no longer has that far back it says
// `resync_required` and the page refetches (onResync). A socket closed with 4001
// (token revoked or expired, account deactivated) signs the page out.

import { getToken, getMe, setToken, redirectToLogin } from './api.js';

const PING_EVERY_MS = 20000;
const STALE_AFTER_MS = 50000; // two missed pongs: the connection is dead even if TCP hasn't noticed
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const OUTBOX_LIMIT = 200;
const CURSOR_KEY = 'nicehr.eventCursor';
const SIGNED_OUT = 4001; // the server closed the socket: token revoked or expired

function loadCursor() {
  try {
    const n = Number(sessionStorage.getItem(CURSOR_KEY));
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch { return null; }
}

function saveCursor(n) {
  try { sessionStorage.setItem(CURSOR_KEY, String(n)); } catch { /* storage off: resume within this page only */ }
}

export class Socket {
  constructor({ path = '/ws' } = {}) {
    this.path = path;
    this.ws = null;
    this.status = 'idle'; // idle | connecting | connected | reconnecting | closed
    this.handlers = new Map();
    this.statusFns = [];
    this.reconnectFns = [];
    this.resyncFns = [];
    this.cursor = loadCursor(); // last event id seen, for ?since=
    this.outbox = []; // frames sent while disconnected, flushed on (re)connect
    this.attempt = 0;
    this.opens = 0;
    this.failedOpens = 0;
    this.lastSeq = null;
    this.lastFrameAt = 0;
    this.stopped = false;
    this.retryTimer = null;
    this.heartbeat = null;

    // Come back quickly when the network or the tab does.
    const wake = () => { if (!this.stopped && !this.isOpen()) this.reconnectNow(); };
    window.addEventListener('online', wake);
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') wake(); });
    window.addEventListener('pagehide', () => this.close());
    window.addEventListener('pageshow', (e) => { if (e.persisted) { this.stopped = false; this.reconnectNow(); } });
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = getToken();
    // Browsers can't set headers on a WebSocket; without a stored token the cookie authenticates.
    const params = new URLSearchParams();
    if (token) params.set('token', token);
    if (this.cursor) params.set('since', String(this.cursor));
    const query = params.toString();
    return `${proto}//${location.host}${this.path}${query ? `?${query}` : ''}`;
  }

  isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** Subscribe to a frame type ('*' for all). Returns an unsubscribe function. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  /** fn(status) now and on every change. */
  onStatus(fn) {
    this.statusFns.push(fn);
    fn(this.status);
    return this;
  }

  /** fn() after every successful reconnect (not the first connect). */
  onReconnect(fn) {
    this.reconnectFns.push(fn);
    return this;
  }

  /** fn() when the server could not replay what was missed: refetch state. */
  onResync(fn) {
    this.resyncFns.push(fn);
    return this;
  }

  /** Send a frame; queued while disconnected. Returns true if it went out now. */
  send(type, data = {}) {
    const frame = JSON.stringify({ type, data });
    if (this.isOpen()) {
      this.ws.send(frame);
      return true;
    }
    if (type !== 'ping') {
      this.outbox.push(frame);
      if (this.outbox.length > OUTBOX_LIMIT) this.outbox.shift();
    }
    return false;
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return this;
    this.setStatus(this.opens ? 'reconnecting' : 'connecting');

    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return this;
    }
    this.ws = ws;
    let opened = false;

    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.opens += 1;
      this.attempt = 0;
      this.failedOpens = 0;
      this.lastFrameAt = Date.now();
      this.startHeartbeat();
      this.setStatus('connected');
      const queued = this.outbox.splice(0);
      for (const f of queued) ws.send(f);
      if (this.opens > 1) for (const fn of this.reconnectFns) safe(fn);
    };
    ws.onmessage = (ev) => { if (this.ws === ws) this.handleFrame(ev.data); };
    ws.onerror = () => { /* a close event always follows */ };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      if (this.stopped) { this.setStatus('closed'); return; }
      if (ev.code === SIGNED_OUT) {
        // Signed out elsewhere (logout, a password change, an admin): no retries.
        this.stopped = true;
        this.setStatus('closed');
        setToken(null);
        redirectToLogin();
        return;
      }
      // Repeated refusals usually mean the token is no longer valid: ask the
      // REST API, which sends the user to /login on 401.
      if (!opened || ev.code === 1008 || ev.code === 4401) this.failedOpens += 1;
      if (this.failedOpens >= 3) {
        this.failedOpens = 0;
        getMe({ fresh: true }).catch(() => {});
      }
      this.scheduleReconnect();
    };
    return this;
  }

  handleFrame(raw) {
    this.lastFrameAt = Date.now();
    let frame;
    try { frame = JSON.parse(raw); } catch { return; }
    if (!frame || typeof frame.type !== 'string') return;
    if (typeof frame.seq === 'number') this.lastSeq = frame.seq;
    if (frame.type === 'error') console.warn('server rejected a frame:', frame.data);
    const data0 = frame.data || {};
    if (frame.type === 'hello' && !this.cursor && typeof data0.last_event_id === 'number') {
      this.setCursor(data0.last_event_id);
    }
    if (typeof frame.event_id === 'number') this.setCursor(frame.event_id);
    if (frame.type === 'resumed' && typeof data0.to === 'number') this.setCursor(data0.to);
    if (frame.type === 'resync_required') {
      this.cursor = null;
      if (typeof data0.last_event_id === 'number') this.setCursor(data0.last_event_id);
      for (const fn of this.resyncFns) safe(fn);
    }
    const data = frame.data || {};
    for (const fn of this.handlers.get(frame.type) || []) safe(fn, data, frame);
    for (const fn of this.handlers.get('*') || []) safe(fn, data, frame);
  }

  setCursor(n) {
    if (this.cursor !== null && n <= this.cursor) return;
    this.cursor = n;
    saveCursor(n);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastFrameAt > STALE_AFTER_MS) {
        // Silent drop: abandon this socket without waiting for a close handshake.
        const dead = this.ws;
        this.ws = null;
        this.stopHeartbeat();
        if (dead) { dead.onclose = null; try { dead.close(); } catch { /* already gone */ } }
        this.scheduleReconnect();
        return;
      }
      this.send('ping', {});
    }, PING_EVERY_MS);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    // 0.5 s doubling to 10 s; random in [50%, 100%] so a restarted server isn't stampeded.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = base * (0.5 + Math.random() * 0.5);
    this.attempt += 1;
    this.setStatus('reconnecting');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws) { try { ws.close(1000, 'page closed'); } catch { /* ignore */ } }
    this.setStatus('closed');
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    for (const fn of this.statusFns) safe(fn, status);
  }
}

function safe(fn, ...args) {
  try { fn(...args); } catch (e) { console.error(e); }
}

const STATUS_TEXT = {
  idle: 'Connecting…',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Offline',
};

/** Create, wire to the #ws-status pill, and connect. */
export function connectSocket({ pill = document.getElementById('ws-status') } = {}) {
  const socket = new Socket();
  if (pill) {
    socket.onStatus((status) => {
      pill.hidden = false;
      pill.dataset.status = status;
      pill.textContent = STATUS_TEXT[status] || status;
      pill.title = status === 'connected' ? 'Live updates are on' : 'Live updates paused; trying to reconnect';
    });
  }
  socket.connect();
  window.__socket = socket; // handy for debugging and automated tests
  return socket;
}
