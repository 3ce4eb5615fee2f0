// socket.js — the live event channel (/ws). One small class:
//   const s = new Socket(); s.on('support_request_new', fn); s.connect();
// It keeps the connection alive (ping every 20 s, watchdog for silent drops),
// reconnects with exponential backoff + jitter, and tells the page when it has
// reconnected so the page can re-fetch state it may have missed.

import { getToken, getMe } from './api.js';

const PING_EVERY_MS = 20000;
const STALE_AFTER_MS = 50000; // two missed pongs: the connection is dead even if TCP hasn't noticed
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const OUTBOX_LIMIT = 200;

export class Socket {
  constructor({ path = '/ws' } = {}) {
    this.path = path;
    this.ws = null;
    this.status = 'idle'; // idle | connecting | connected | reconnecting | closed
    this.handlers = new Map();
    this.statusFns = [];
    this.reconnectFns = [];
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
    return `${proto}//${location.host}${this.path}${token ? `?token=${encodeURIComponent(token)}` : ''}`;
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
    const data = frame.data || {};
    for (const fn of this.handlers.get(frame.type) || []) safe(fn, data, frame);
    for (const fn of this.handlers.get('*') || []) safe(fn, data, frame);
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
