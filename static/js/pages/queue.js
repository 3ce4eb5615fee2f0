// queue.js — the consultant's desk: my availability, offers to accept or
// decline (with their countdown), the live queue and who else is around.

import { api, requireUser, serverNow } from '../api.js';
import { connectSocket } from '../socket.js';
import { mountStatusControl, SETTABLE_STATUSES } from '../status.js';
import {
  $, h, announce, showError, fmtClock, fmtEstimate, urgencyBadge, statusBadge, debounce,
  CONSULTANT_STATUS_LABELS, URGENCY_LABELS, TIER_LABELS,
} from '../ui.js';

const AUTO_ACCEPT_KEY = 'nicehr.autoAccept';
const STATUS_ORDER = ['available', 'online', 'busy', 'away', 'offline'];
const TITLE = document.title;

const tbody = $('#queue-table tbody');
const queueSummary = $('#queue-summary');
const queueMessage = $('#queue-message');
const offerSlot = $('#offer-slot');
const offerLive = $('#offer-live');
const colleaguesEl = $('#colleagues');
const autoAccept = $('#auto-accept');

let me = null;
let isAdmin = false;
let statusCtl = null;
let consultants = new Map(); // id → {id, name, status, specialties}
let queue = []; // [{session, position, waiting_seconds, estimated_wait_seconds, offered_to}]
let queueFetchedAt = 0; // performance.now() of the last queue fetch, for ticking waits
let offer = null; // {session, expiresAt (ms, server clock) | null, shownAt}
let accepting = false;

// ---- helpers -------------------------------------------------------------

function consultantName(id) {
  if (id === null || id === undefined) return '—';
  if (me && id === me.id) return 'You';
  const c = consultants.get(id);
  return c ? c.name : `Consultant #${id}`;
}

let leaving = false;
function goToCall(id) {
  if (leaving) return; // the REST reply and the WS event both lead here
  leaving = true;
  location.assign(`/support/call/${id}`);
}

// ---- queue table -----------------------------------------------------------

async function loadQueue() {
  try {
    const r = await api('/api/support/queue');
    queue = r.queue || [];
    queueFetchedAt = performance.now();
    renderQueue();
    reconcileOffer();
  } catch (e) {
    if (e.status !== 401) showError(queueMessage, e);
  }
}
const refreshQueue = debounce(loadQueue, 200);

function renderQueue() {
  const rows = queue.map((item) => {
    const s = item.session;
    const offeredToMe = me && item.offered_to === me.id;
    return h('tr', { dataset: { sessionId: String(s.id) }, class: offeredToMe ? 'is-offered' : '' },
      h('td', { class: 'num' }, item.position ?? '—'),
      h('td', {}, s.department),
      h('td', {}, urgencyBadge(s.urgency)),
      h('td', { class: 'num js-waiting', role: 'timer', dataset: { base: String(item.waiting_seconds ?? '') } }, fmtClock(item.waiting_seconds)),
      h('td', {}, fmtEstimate(item.estimated_wait_seconds)),
      h('td', {}, consultantName(item.offered_to)),
      h('td', { class: 'actions-cell' }, takeButton(item)),
    );
  });
  if (!rows.length) {
    rows.push(h('tr', { class: 'empty-row' }, h('td', { colspan: 7 }, 'No one is waiting. New requests appear here automatically.')));
  }
  tbody.replaceChildren(...rows);
  const n = queue.length;
  queueSummary.textContent = n ? `${n} request${n === 1 ? '' : 's'} waiting` : 'Queue is empty';
}

function tickWaits() {
  const extra = (performance.now() - queueFetchedAt) / 1000;
  for (const cell of tbody.querySelectorAll('.js-waiting')) {
    const base = Number(cell.dataset.base);
    if (cell.dataset.base !== '' && Number.isFinite(base)) cell.textContent = fmtClock(base + extra);
  }
}

// A waiting request nobody holds an offer of (or one offered to me) can be taken
// straight from the list; admins may take any.
function takeButton(item) {
  const mine = me && item.offered_to === me.id;
  const free = item.offered_to === null || item.offered_to === undefined;
  if (!(free || mine || isAdmin)) return null;
  const s = item.session;
  return h('button', {
    type: 'button',
    class: 'btn btn-small btn-secondary js-take',
    dataset: { sessionId: String(s.id) },
    'aria-label': `Take the ${s.department} request waiting ${fmtClock(item.waiting_seconds)}`,
    onclick: (ev) => takeRequest(s.id, ev.currentTarget),
  }, 'Take');
}

async function takeRequest(id, button) {
  if (accepting) return;
  accepting = true;
  if (button) button.disabled = true;
  try {
    await api(`/api/support/take/${id}`, { method: 'POST', body: {} });
    goToCall(id);
  } catch (e) {
    accepting = false;
    if (button) button.disabled = false;
    showError(queueMessage, e);
    refreshQueue();
  }
}

// ---- offers ----------------------------------------------------------------

function showOffer({ session, expires_at: expiresAt, match }) {
  if (!session) return;
  // A replayed offer that has already run out (the socket resumed late) is history.
  if (expiresAt && Date.parse(expiresAt) <= serverNow()) return;
  if (session.status && session.status !== 'pending') return;
  offer = {
    session,
    match: match || session.match || null,
    expiresAt: expiresAt ? Date.parse(expiresAt) : null,
    shownAt: Date.now(),
  };
  const m = offer.match;
  const reasons = m && Array.isArray(m.reasons) && m.reasons.length
    ? h('ul', { class: 'reasons' }, m.reasons.map((r) => h('li', {}, r)))
    : null;
  const card = h('section', {
    id: 'offer-card', class: `card offer offer-${session.urgency}`,
    dataset: { sessionId: String(session.id) }, 'aria-labelledby': 'offer-title',
  },
  h('div', { class: 'card-header' },
    h('h2', { id: 'offer-title' }, 'New support request'),
    h('p', { class: 'countdown' }, 'Respond within ', h('span', { id: 'offer-countdown', role: 'timer' }, '—'))),
  h('dl', { class: 'summary' },
    h('div', {}, h('dt', {}, 'Department'), h('dd', {}, session.department)),
    h('div', {}, h('dt', {}, 'Urgency'), h('dd', {}, urgencyBadge(session.urgency))),
    m ? h('div', {}, h('dt', {}, 'Why you'), h('dd', {},
      `${TIER_LABELS[m.tier] || `Tier ${m.tier}`}${m.score !== undefined && m.score !== null ? ` · score ${m.score}` : ''}`, reasons)) : null,
    h('div', { class: 'summary-wide' }, h('dt', {}, 'Issue'), h('dd', { class: 'pre-wrap' }, session.issue_summary || '—'))),
  h('div', { id: 'offer-error', class: 'message', role: 'alert' }),
  h('div', { class: 'actions' },
    h('button', { id: 'offer-accept', type: 'button', class: 'btn btn-success btn-large', onclick: () => acceptOffer() }, 'Accept'),
    h('button', { id: 'offer-decline', type: 'button', class: 'btn btn-secondary btn-large', onclick: () => declineOffer() }, 'Decline')));
  offerSlot.replaceChildren(card);
  tickOffer();
  document.title = `New request! · ${TITLE}`;
  offerLive.textContent = `New support request: ${session.department}, ${URGENCY_LABELS[session.urgency] || session.urgency}. Accept or decline.`;
  if (autoAccept.checked) {
    announce($('#offer-error'), 'Auto-accepting…', 'info');
    acceptOffer();
  }
}

function removeOffer(message, kind = 'info') {
  offer = null;
  offerSlot.replaceChildren();
  document.title = TITLE;
  if (message) announce(queueMessage, message, kind);
}

function tickOffer() {
  if (!offer) return;
  const el = $('#offer-countdown');
  if (!el) return;
  if (offer.expiresAt === null) { el.textContent = '—'; return; }
  const left = Math.ceil((offer.expiresAt - serverNow()) / 1000);
  el.textContent = left > 0 ? `${left} s` : 'expired';
  el.classList.toggle('is-low', left <= 5);
  // The server revokes expired offers; tidy up if that event went missing.
  if (left <= -3 && !accepting) removeOffer('The offer expired.', 'warning');
}

// After a reload the queue says which offer I hold, with its deadline and reasons.
function reconcileOffer() {
  if (!me || isAdmin) return;
  const mine = queue.find((q) => q.offered_to === me.id);
  if (!offer && mine) {
    const o = mine.offer || {};
    showOffer({ session: mine.session, expires_at: o.expires_at || null, match: o.match || mine.session.match });
  } else if (offer && mine && mine.session.id === offer.session.id && offer.expiresAt === null && mine.offer) {
    offer.expiresAt = Date.parse(mine.offer.expires_at);
    tickOffer();
  } else if (offer && !accepting && Date.now() - offer.shownAt > 3000
    && !queue.some((q) => q.session.id === offer.session.id && q.offered_to === me.id)) {
    removeOffer('That request is no longer offered to you.', 'info');
  }
}

async function acceptOffer() {
  if (!offer || accepting) return;
  const id = offer.session.id;
  accepting = true;
  setOfferButtons(false);
  try {
    await api(`/api/support/accept/${id}`, { method: 'POST', body: {} });
    goToCall(id);
  } catch (e) {
    accepting = false;
    if (e.status === 409 || e.status === 404) {
      removeOffer(`Could not accept: ${e.message}`, 'warning');
      refreshQueue();
    } else {
      showError($('#offer-error'), e);
      setOfferButtons(true);
    }
  }
}

async function declineOffer() {
  if (!offer || accepting) return;
  const id = offer.session.id;
  setOfferButtons(false);
  try {
    await api(`/api/support/decline/${id}`, { method: 'POST', body: {} });
    removeOffer('Request declined; it goes to the next consultant.', 'info');
  } catch (e) {
    if (e.status === 409 || e.status === 404) removeOffer(e.message, 'warning');
    else { showError($('#offer-error'), e); setOfferButtons(true); }
  }
  refreshQueue();
}

function setOfferButtons(enabled) {
  for (const id of ['#offer-accept', '#offer-decline']) {
    const b = $(id);
    if (b) b.disabled = !enabled;
  }
}

const REVOKE_TEXT = {
  timeout: 'The offer timed out and went to the next consultant.',
  cancelled: 'The requester cancelled that request.',
  accepted_elsewhere: 'Another consultant took that request.',
  declined: 'You declined that request.',
  unavailable: 'The offer was withdrawn: you are not available, or the call could not be set up.',
  reassigned: 'An admin handed that request to another consultant.',
};

// ---- colleagues --------------------------------------------------------------

async function loadConsultants() {
  const changesBefore = statusCtl.changes();
  try {
    const r = await api('/api/consultants/available');
    consultants = new Map((r.consultants || []).map((c) => [c.id, c]));
    // A status picked while this list was on its way is newer than the list.
    if (!isAdmin && statusCtl.changes() === changesBefore) {
      statusCtl.set(consultants.get(me.id)?.status || statusCtl.get() || 'offline');
    }
    renderColleagues();
    renderQueue(); // "offered to" names may have changed
  } catch (e) {
    if (e.status !== 401) showError(queueMessage, e);
  }
}
const refreshConsultants = debounce(loadConsultants, 500);

function renderColleagues() {
  const list = [...consultants.values()]
    .filter((c) => c.id !== me.id)
    .sort((a, b) => (STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status)) || String(a.name).localeCompare(String(b.name)));
  const items = list.map((c) => {
    const specs = (c.specialties || []).map((s) => `${s.department}${s.proficiency === 'expert' ? ' (expert)' : ''}`).join(', ');
    return h('li', { class: 'person', dataset: { consultantId: String(c.id), status: c.status || '' } },
      h('div', { class: 'person-main' },
        h('span', { class: 'person-name' }, c.name),
        statusBadge(c.status)),
      specs ? h('div', { class: 'person-meta' }, specs) : null,
      isAdmin ? adminStatusSelect(c) : null);
  });
  if (!items.length) items.push(h('li', { class: 'muted' }, 'No colleagues online right now.'));
  colleaguesEl.replaceChildren(...items);
}

// Admins set availability for any consultant (DESIGN.md §8).
function adminStatusSelect(c) {
  const id = `status-for-${c.id}`;
  const select = h('select', { id, class: 'select-small' },
    SETTABLE_STATUSES.map((s) => h('option', { value: s, selected: s === c.status }, CONSULTANT_STATUS_LABELS[s])));
  if (!SETTABLE_STATUSES.includes(c.status)) select.value = '';
  select.addEventListener('change', async () => {
    select.disabled = true;
    try {
      const r = await api('/api/consultants/status', { method: 'POST', body: { status: select.value, consultant_id: c.id } });
      c.status = r.status || select.value;
      announce(queueMessage, `${c.name} is now ${CONSULTANT_STATUS_LABELS[c.status] || c.status}.`, 'success');
      renderColleagues();
    } catch (e) {
      showError(queueMessage, e);
      select.disabled = false;
    }
  });
  return h('div', { class: 'person-admin' }, h('label', { for: id, class: 'visually-hidden' }, `Set status for ${c.name}`), select);
}

// ---- in-progress call --------------------------------------------------------

async function checkActive() {
  try {
    const r = await api('/api/support/active');
    const s = r.session;
    const live = s && (s.status === 'connecting' || s.status === 'active');
    $('#return-banner').hidden = !live;
    if (live) $('#return-to-call').href = `/support/call/${s.id}`;
  } catch { /* non-essential */ }
}

// ---- start -------------------------------------------------------------------

async function main() {
  me = await requireUser(['consultant', 'admin']);
  isAdmin = me.role === 'admin';

  statusCtl = mountStatusControl({
    select: $('#status-select'), badge: $('#status-badge'), message: $('#status-message'), hint: $('#status-hint'),
  });
  if (isAdmin) {
    // Admins don't take offers themselves; they manage colleagues' status below.
    $('#my-status').hidden = true;
    $('#colleagues-title').textContent = 'Consultants';
  }

  try { autoAccept.checked = localStorage.getItem(AUTO_ACCEPT_KEY) === '1'; } catch { /* ignore */ }
  autoAccept.addEventListener('change', () => {
    try { localStorage.setItem(AUTO_ACCEPT_KEY, autoAccept.checked ? '1' : '0'); } catch { /* ignore */ }
    if (autoAccept.checked && offer) acceptOffer();
  });

  const socket = connectSocket();
  socket.on('support_request_offered', (d) => showOffer(d));
  socket.on('support_request_offer_revoked', (d) => {
    if (offer && d.session_id === offer.session.id && !accepting) removeOffer(REVOKE_TEXT[d.reason] || 'The offer was withdrawn.', 'warning');
    refreshQueue();
  });
  socket.on('support_request_cancelled', (d) => {
    if (offer && d.session_id === offer.session.id && !accepting) removeOffer(REVOKE_TEXT.cancelled, 'warning');
    refreshQueue();
  });
  socket.on('support_request_accepted', (d) => {
    const s = d.session;
    if (s && s.consultant_id === me.id) {
      if (accepting || (offer && offer.session.id === s.id)) goToCall(s.id);
      else checkActive(); // accepted in another tab: offer a way back
    } else if (offer && s && s.id === offer.session.id && !accepting) {
      removeOffer(REVOKE_TEXT.accepted_elsewhere, 'info');
    }
    refreshQueue();
  });
  socket.on('support_request_new', refreshQueue);
  socket.on('queue_position_update', refreshQueue);
  socket.on('support_session_ended', checkActive);
  socket.on('consultant_status_changed', (d) => {
    if (me && d.consultant_id === me.id && !isAdmin) statusCtl.set(d.status);
    const c = consultants.get(d.consultant_id);
    if (c) { c.status = d.status; renderColleagues(); } else refreshConsultants();
    refreshQueue();
  });
  socket.onReconnect(() => { loadConsultants(); loadQueue(); checkActive(); });
  socket.onResync(() => { loadConsultants(); loadQueue(); checkActive(); });

  setInterval(() => { tickWaits(); tickOffer(); }, 1000);
  setInterval(loadQueue, 30000); // belt and braces if an event was missed

  await loadConsultants();
  await Promise.all([loadQueue(), checkActive()]);
}

main();
