// history.js — past sessions with filters and cursor paging ("Load more").
// The server scopes rows by role (own sessions / own hospital / all).

import { api, requireUser, buildQuery } from '../api.js';
import { connectSocket } from '../socket.js';
import {
  $, h, announce, clearMessage, showError, fmtDateTime, fmtDuration, urgencyBadge, sessionStatusBadge, fillDepartments,
} from '../ui.js';

const PAGE_SIZE = 25;

const form = $('#history-filters');
const tbody = $('#history-table tbody');
const loadMore = $('#load-more');
const message = $('#history-message');
const count = $('#history-count');
const csv = $('#csv-link');

let me = null;
let cursor = null;
let rows = 0;
let loading = false;

fillDepartments($('#filter-department'), 'Any department');

// Dates are picked in local time; the server gets instants (RFC 3339):
// `from` = start of that day, `to` = start of the day after (exclusive).
function localDayStart(value, addDays = 0) {
  if (!value) return undefined;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d + addDays).toISOString();
}

function filters() {
  return {
    from: localDayStart($('#filter-from').value),
    to: localDayStart($('#filter-to').value, 1),
    status: $('#filter-status').value || undefined,
    department: $('#filter-department').value || undefined,
  };
}

// History rows carry the parties' names; an id is the fallback for a deleted account.
function party(id, name) {
  if (id === null || id === undefined) return '—';
  return name || `#${id}`;
}

function partyCell(s) {
  const requester = party(s.requester_id, s.requester_name);
  const consultant = party(s.consultant_id, s.consultant_name);
  if (me.role === 'hospital_staff') return consultant;
  if (me.role === 'consultant') return requester;
  return `${requester} / ${consultant}`;
}

function ratingCell(s) {
  if (s.rating !== null && s.rating !== undefined) {
    return h('span', { class: 'rating', 'aria-label': `${s.rating} out of 5 stars` }, `${'★'.repeat(s.rating)}${'☆'.repeat(5 - s.rating)}`);
  }
  if (s.status === 'completed' && s.requester_id === me.id) {
    return h('a', { href: `/support/call/${s.id}` }, 'Rate');
  }
  if (s.status === 'connecting' || s.status === 'active') {
    return h('a', { href: `/support/call/${s.id}` }, 'Join call');
  }
  return '—';
}

function resolvedCell(s) {
  if (s.resolved === true) return 'Yes';
  if (s.resolved === false) return 'No';
  return '—';
}

function renderRow(s) {
  return h('tr', { dataset: { sessionId: String(s.id) } },
    h('td', {}, h('time', { datetime: s.created_at }, fmtDateTime(s.created_at))),
    h('td', {}, s.department),
    h('td', {}, urgencyBadge(s.urgency)),
    h('td', {}, sessionStatusBadge(s.status)),
    h('td', {}, partyCell(s)),
    h('td', { class: 'num' }, fmtDuration(s.wait_time_seconds)),
    h('td', { class: 'num' }, fmtDuration(s.duration_seconds)),
    h('td', {}, ratingCell(s)),
    h('td', {}, resolvedCell(s)));
}

async function load({ reset }) {
  if (loading) return;
  loading = true;
  loadMore.disabled = true;
  clearMessage(message);
  if (reset) { cursor = null; rows = 0; }
  try {
    const r = await api('/api/support/history', { query: { ...filters(), limit: PAGE_SIZE, cursor: reset ? undefined : cursor } });
    const sessions = r.sessions || [];
    const built = sessions.map(renderRow);
    if (reset) tbody.replaceChildren(...built);
    else tbody.append(...built);
    rows += sessions.length;
    cursor = r.next_cursor || null;
    if (reset && !rows) tbody.replaceChildren(h('tr', { class: 'empty-row' }, h('td', { colspan: 9 }, 'No sessions match these filters.')));
    loadMore.hidden = !cursor;
    count.textContent = rows ? `Showing ${rows} session${rows === 1 ? '' : 's'}${cursor ? '' : ' (all)'}` : '';
    if (!reset && sessions.length) announce(message, `Loaded ${sessions.length} more.`, 'info');
  } catch (e) {
    if (e.status !== 401) showError(message, e, { from: $('#filter-from'), to: $('#filter-to') });
  } finally {
    loading = false;
    loadMore.disabled = false;
  }
  updateCsv();
}

function updateCsv() {
  const f = filters();
  csv.href = `/api/support/history.csv${buildQuery(f)}`;
}

form.addEventListener('submit', (ev) => { ev.preventDefault(); load({ reset: true }); });
form.addEventListener('reset', () => setTimeout(() => load({ reset: true }), 0));
loadMore.addEventListener('click', () => load({ reset: false }));

async function main() {
  me = await requireUser();
  $('#col-party').textContent = me.role === 'hospital_staff'
    ? 'Consultant'
    : me.role === 'consultant' ? 'Requester' : 'Requester / Consultant';
  csv.hidden = !(me.role === 'hospital_leadership' || me.role === 'admin');
  const socket = connectSocket();
  // A session of ours finishing changes this list.
  socket.on('support_session_ended', () => { if (!cursor) load({ reset: true }); });
  socket.onReconnect(() => load({ reset: true }));
  await load({ reset: true });
}

main();
