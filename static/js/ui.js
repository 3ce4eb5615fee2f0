// ui.js — small DOM, formatting and dialog helpers shared by the pages.
// Everything builds DOM nodes (never innerHTML with server data) so issue
// summaries and names can't inject markup.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export const DEPARTMENTS = ['ER', 'Pharmacy', 'Radiology', 'Laboratory', 'Nursing', 'Scheduling'];

export const URGENCY_LABELS = { normal: 'Normal', urgent: 'Urgent', critical: 'Critical' };

export const CONSULTANT_STATUS_LABELS = {
  online: 'Online',
  available: 'Available',
  away: 'Away',
  busy: 'Busy',
  offline: 'Offline',
};

export const SESSION_STATUS_LABELS = {
  pending: 'Pending',
  connecting: 'Connecting',
  active: 'Active',
  completed: 'Completed',
  cancelled: 'Cancelled',
};

export const TIER_LABELS = {
  dedicated: 'Dedicated consultant',
  preferred: 'Preferred consultant',
  requested: 'Requested by name',
  A: 'Tier A — worked together before, department specialist',
  B: 'Tier B — worked together before',
  C: 'Tier C — department specialist',
  D: 'Tier D — available consultant',
};

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'required']);

/** h('button', {class: 'btn', onclick: fn}, 'Label') → element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function badge(kind, value, labels) {
  const text = (labels && labels[value]) || value || '—';
  return h('span', { class: `badge badge-${kind}-${value || 'none'}`, dataset: { value: value || '' } }, text);
}

export const urgencyBadge = (u) => badge('urgency', u, URGENCY_LABELS);
export const statusBadge = (s) => badge('status', s, CONSULTANT_STATUS_LABELS);
export const sessionStatusBadge = (s) => badge('session', s, SESSION_STATUS_LABELS);

// ---- formatting ---------------------------------------------------------

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/** 45 → "45 s", 305 → "5 min 5 s", 3720 → "1 h 2 min"; null → "—". */
export function fmtDuration(sec) {
  if (!isNum(sec)) return '—';
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return `${sec} s`;
  const m = Math.floor(sec / 60);
  const s = sec % 60;
  if (m < 60) return s ? `${m} min ${s} s` : `${m} min`;
  const hh = Math.floor(m / 60);
  const mm = m % 60;
  return mm ? `${hh} h ${mm} min` : `${hh} h`;
}

/** Ticking clock: 65 → "1:05", 3725 → "1:02:05". */
export function fmtClock(sec) {
  if (!isNum(sec)) return '—';
  sec = Math.max(0, Math.floor(sec));
  const hh = Math.floor(sec / 3600);
  const mm = Math.floor((sec % 3600) / 60);
  const ss = String(sec % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A friendly estimate for people waiting: "under a minute", "about 4 min". */
export function fmtEstimate(sec) {
  if (!isNum(sec)) return '—';
  if (sec < 45) return 'under a minute';
  const min = Math.round(sec / 60);
  if (min < 60) return `about ${min} min`;
  return `about ${fmtDuration(Math.round(sec / 300) * 300)}`;
}

export function fmtDateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Rates arrive as fractions 0..1. */
export function fmtPercent(v) {
  if (!isNum(v)) return '—';
  const p = v * 100;
  return `${p === 0 || p >= 10 ? Math.round(p) : Number(p.toFixed(1))}%`;
}

export function fmtNumber(v, digits = 1) {
  if (!isNum(v)) return '—';
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

// ---- messages (aria-live regions) ----------------------------------------

/** Put text in a live region; kind styles it (error | info | success). */
export function announce(el, text, kind = 'info') {
  if (!el) return;
  el.classList.remove('is-error', 'is-info', 'is-success', 'is-warning');
  if (text) el.classList.add(`is-${kind}`);
  el.textContent = text || '';
}

export function clearMessage(el) {
  announce(el, '');
}

/**
 * Show an API error. `fieldMap` maps server field names to input elements so
 * validation_failed can mark the exact controls (aria-invalid + described-by).
 */
export function showError(el, err, fieldMap = {}) {
  for (const input of Object.values(fieldMap)) {
    if (input) input.removeAttribute('aria-invalid');
  }
  let text = (err && err.message) || String(err);
  if (err && err.fields && typeof err.fields === 'object') {
    const parts = [];
    for (const [name, problem] of Object.entries(err.fields)) {
      const input = fieldMap[name];
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        if (el && el.id) input.setAttribute('aria-describedby', el.id);
      }
      parts.push(`${name.replace(/_/g, ' ')}: ${Array.isArray(problem) ? problem.join(', ') : problem}`);
    }
    if (parts.length) text += ` (${parts.join('; ')})`;
  }
  announce(el, text, 'error');
}

// ---- dialogs ---------------------------------------------------------------

/** Open a <dialog> modally and hand focus back to the opener when it closes. */
export function openDialog(dlg) {
  const opener = document.activeElement;
  dlg.addEventListener('close', () => {
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  }, { once: true });
  if (!dlg.open) dlg.showModal();
  const first = dlg.querySelector('[autofocus]') || dlg.querySelector('input:not([type=hidden]):not([disabled]), select, textarea, button:not([disabled])');
  if (first) first.focus();
}

export function closeDialog(dlg, value) {
  if (dlg.open) dlg.close(value);
}

/** Today's date (local) as YYYY-MM-DD, optionally shifted by `days`. */
export function isoDate(days = 0) {
  const d = new Date();
  d.setDate(d.getDate() + days);
  const m = String(d.getMonth() + 1).padStart(2, '0');
  const day = String(d.getDate()).padStart(2, '0');
  return `${d.getFullYear()}-${m}-${day}`;
}

/** Fill a <select> with the department list (optionally with a leading "any" option). */
export function fillDepartments(select, anyLabel) {
  const opts = [];
  if (anyLabel) opts.push(h('option', { value: '' }, anyLabel));
  for (const d of DEPARTMENTS) opts.push(h('option', { value: d }, d));
  select.replaceChildren(...opts);
}

/** Collapse bursts of calls (e.g. a flurry of live events) into one, `ms` later. */
export function debounce(fn, ms = 250) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
