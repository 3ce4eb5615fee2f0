// request.js — staff ask for help, then wait in a live "waiting room" until a
// consultant accepts; a reload (or dropped connection) finds the same place.

import { api, requireUser, serverNow } from '../api.js';
import { connectSocket } from '../socket.js';
import {
  $, h, announce, clearMessage, showError, fmtClock, fmtEstimate, urgencyBadge, debounce,
  CONSULTANT_STATUS_LABELS,
} from '../ui.js';

const MAX_ISSUE = 2000;
const LAST_DEPT_KEY = 'nicehr.lastDepartment';

const form = $('#request-form');
const department = $('#department');
const issue = $('#issue-summary');
const issueCount = $('#issue-count');
const consultantSelect = $('#consultant-select');
const waitFor = $('#wait-for-consultant');
const submit = $('#request-submit');
const requestError = $('#request-error');
const requestStatus = $('#request-status');
const panel = $('#request-panel');
const room = $('#waiting-room');
const positionEl = $('#queue-position');
const estimateEl = $('#estimated-wait');
const elapsedEl = $('#elapsed-wait');
const waitingMessage = $('#waiting-message');
const cancelBtn = $('#cancel-request');
const cancelError = $('#cancel-error');

let me = null;
let waiting = null; // the pending Session we are waiting on
let leaving = false;
let consultants = new Map();

const callUrl = (id) => `/support/call/${id}`;

function goToCall(id) {
  if (leaving) return;
  leaving = true;
  location.assign(callUrl(id));
}

// ---- form ------------------------------------------------------------------

try {
  const last = localStorage.getItem(LAST_DEPT_KEY);
  if (last && [...department.options].some((o) => o.value === last)) department.value = last;
} catch { /* storage off */ }

function updateCount() {
  const n = issue.value.length;
  issueCount.textContent = `${n} / ${MAX_ISSUE}`;
  issueCount.classList.toggle('is-near-limit', n > MAX_ISSUE * 0.9);
}
issue.addEventListener('input', updateCount);

consultantSelect.addEventListener('change', () => {
  waitFor.disabled = !consultantSelect.value;
  if (!consultantSelect.value) waitFor.checked = false;
});

function renderConsultants() {
  const chosen = consultantSelect.value;
  const opts = [h('option', { value: '' }, 'Best available (recommended)')];
  const list = [...consultants.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  for (const c of list) {
    const available = c.status === 'available';
    opts.push(h('option', { value: String(c.id), disabled: !available },
      `${c.name} — ${CONSULTANT_STATUS_LABELS[c.status] || c.status || 'unknown'}`));
  }
  consultantSelect.replaceChildren(...opts);
  // Keep the choice only while that consultant is still selectable.
  const still = list.find((c) => String(c.id) === chosen && c.status === 'available');
  consultantSelect.value = still ? chosen : '';
  waitFor.disabled = !consultantSelect.value;
  if (!consultantSelect.value) waitFor.checked = false;
}

async function loadConsultants() {
  try {
    const r = await api('/api/consultants/available');
    consultants = new Map((r.consultants || []).map((c) => [c.id, c]));
    renderConsultants();
  } catch { /* optional list: the request still works without it */ }
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearMessage(requestError);
  clearMessage(requestStatus);
  const summary = issue.value.trim();
  if (!summary) {
    issue.setAttribute('aria-invalid', 'true');
    announce(requestError, 'Please describe what you need help with.', 'error');
    issue.focus();
    return;
  }
  if (summary.length > MAX_ISSUE) {
    announce(requestError, `The description is too long (${summary.length} of ${MAX_ISSUE} characters).`, 'error');
    issue.focus();
    return;
  }
  issue.removeAttribute('aria-invalid');
  const body = {
    department: department.value,
    urgency: form.querySelector('input[name=urgency]:checked')?.value || 'normal',
    issue_summary: summary,
  };
  if (consultantSelect.value) {
    body.consultant_id = Number(consultantSelect.value);
    body.wait_for_consultant = waitFor.checked;
  }
  submit.disabled = true;
  submit.textContent = 'Requesting…';
  try {
    const r = await api('/api/support/request', { method: 'POST', body });
    try { localStorage.setItem(LAST_DEPT_KEY, body.department); } catch { /* ignore */ }
    const s = r.session;
    if (s.status === 'connecting' || s.status === 'active') { goToCall(s.id); return; }
    showWaiting(s, { position: r.queue_position, estimate: r.estimated_wait_seconds });
  } catch (e) {
    if (e.code === 'plan_not_included') {
      announce(requestError, "Your hospital's plan does not include live video support. Please contact your NICEHR account manager.", 'error');
    } else if (e.status === 409) {
      // Already have a live request: show it rather than a dead end.
      showError(requestError, e);
      syncActive();
    } else {
      showError(requestError, e, { issue_summary: issue, department, urgency: $('#urgency-normal'), consultant_id: consultantSelect });
    }
  } finally {
    submit.disabled = false;
    submit.textContent = 'Request support';
  }
});

const reloadConsultants = debounce(loadConsultants, 500);

// ---- waiting room ----------------------------------------------------------

function showWaiting(session, { position = null, estimate = null } = {}) {
  const first = !waiting;
  waiting = session;
  panel.hidden = true;
  room.hidden = false;
  $('#waiting-department').textContent = session.department;
  $('#waiting-urgency').replaceChildren(urgencyBadge(session.urgency));
  $('#waiting-issue').textContent = session.issue_summary || '—';
  if (position !== undefined) setPosition(position, estimate);
  tick();
  if (first) { document.title = 'Waiting… · NICEHR Remote Support'; cancelBtn.focus(); }
}

function setPosition(position, estimate) {
  positionEl.dataset.position = position ?? '';
  positionEl.textContent = position === null || position === undefined ? '—' : String(position);
  estimateEl.dataset.seconds = estimate ?? '';
  estimateEl.textContent = estimate === null || estimate === undefined ? '—' : fmtEstimate(estimate);
  if (position === 1) waitingMessage.textContent = 'You are next in line. The first available consultant will take your call.';
  else if (position === null || position === undefined) waitingMessage.textContent = 'Contacting a consultant… Keep this page open; the call starts automatically.';
  else waitingMessage.textContent = 'You are in the queue. Keep this page open; the call starts automatically.';
}

function hideWaiting(message, kind = 'info') {
  waiting = null;
  room.hidden = true;
  panel.hidden = false;
  document.title = 'Request support · NICEHR Remote Support';
  if (message) announce(requestStatus, message, kind);
}

function tick() {
  if (!waiting) return;
  const since = Date.parse(waiting.created_at);
  elapsedEl.textContent = Number.isNaN(since) ? '—' : fmtClock((serverNow() - since) / 1000);
}
setInterval(tick, 1000);

cancelBtn.addEventListener('click', async () => {
  if (!waiting) return;
  clearMessage(cancelError);
  cancelBtn.disabled = true;
  try {
    await api(`/api/support/cancel/${waiting.id}`, { method: 'POST', body: {} });
    hideWaiting('Your request was cancelled.', 'info');
    submit.focus();
  } catch (e) {
    if (e.status === 409) syncActive(); // probably just accepted: follow it
    showError(cancelError, e);
  } finally {
    cancelBtn.disabled = false;
  }
});

// The server is the truth: where is my request now?
async function syncActive() {
  try {
    const r = await api('/api/support/active');
    const s = r.session;
    if (s && s.requester_id === me.id && (s.status === 'connecting' || s.status === 'active')) {
      goToCall(s.id);
    } else if (s && s.requester_id === me.id && s.status === 'pending') {
      // Position may come with the reply (extra fields), otherwise from the next update.
      const pos = 'queue_position' in r ? { position: r.queue_position, estimate: r.estimated_wait_seconds } : {};
      showWaiting(s, pos);
    } else if (waiting) {
      hideWaiting('Your request is no longer waiting. If you still need help, request support again.', 'warning');
    }
  } catch (e) {
    if (e.status !== 401) showError(requestStatus, e);
  }
}

// ---- start -----------------------------------------------------------------

async function main() {
  me = await requireUser(['hospital_staff', 'hospital_leadership', 'admin']);
  updateCount();
  const socket = connectSocket();

  socket.on('queue_position_update', (d) => {
    if (waiting && d.session_id === waiting.id) setPosition(d.position ?? null, d.estimated_wait_seconds ?? null);
  });
  // Match on requester as well as id: with auto-accept the acceptance can
  // arrive before our POST has even returned the session id.
  const accepted = (d) => {
    const s = d.session;
    if (s && (s.requester_id === me.id || (waiting && s.id === waiting.id)) && s.status !== 'completed' && s.status !== 'cancelled') {
      announce(requestStatus, 'A consultant accepted your request. Connecting…', 'success');
      goToCall(s.id);
    }
  };
  socket.on('support_request_accepted', accepted);
  socket.on('support_session_started', accepted);
  socket.on('support_session_ended', (d) => {
    if (waiting && d.session && d.session.id === waiting.id) hideWaiting('Your request was closed.', 'warning');
  });
  socket.on('support_request_cancelled', (d) => {
    if (waiting && d.session_id === waiting.id) hideWaiting('Your request was cancelled.', 'warning');
  });
  socket.on('consultant_status_changed', (d) => {
    const c = consultants.get(d.consultant_id);
    if (c) { c.status = d.status; renderConsultants(); } else reloadConsultants();
  });
  socket.onReconnect(() => { syncActive(); loadConsultants(); });
  socket.onResync(() => { syncActive(); loadConsultants(); });

  await Promise.all([syncActive(), loadConsultants()]);
}

main();
