// status.js — the consultant availability control (a <select> + a coloured
// badge), shared by the queue and settings pages. `busy` is set only by the
// server, so it shows on the badge but is never offered in the select.

import { api } from './api.js';
import { announce, showError, CONSULTANT_STATUS_LABELS } from './ui.js';

export const SETTABLE_STATUSES = ['online', 'available', 'away', 'offline'];

/**
 * @param {object} o
 * @param {HTMLSelectElement} o.select
 * @param {HTMLElement} o.badge
 * @param {HTMLElement} o.message  aria-live region for confirmations/errors
 * @param {() => number|null} [o.consultantId]  set when an admin acts for someone else
 */
export function mountStatusControl({ select, badge, message, hint, consultantId = () => null }) {
  let current = null;
  // Counts the user's own changes, so a status list fetched before one of them can
  // tell it is stale and must not put the old status back on screen.
  let changes = 0;

  function set(status) {
    current = status || 'offline';
    badge.className = `badge badge-status-${current}`;
    badge.dataset.status = current;
    badge.textContent = CONSULTANT_STATUS_LABELS[current] || current;
    if (SETTABLE_STATUSES.includes(current)) select.value = current;
    if (hint) {
      hint.textContent = current === 'busy'
        ? 'You are in a session. Your status returns to available when it ends.'
        : current === 'available'
          ? 'You will be offered new requests.'
          : 'You will not be offered new requests until you are available.';
    }
  }

  select.addEventListener('change', async () => {
    const wanted = select.value;
    const body = { status: wanted };
    const id = consultantId();
    if (id !== null && id !== undefined) body.consultant_id = id;
    select.disabled = true;
    try {
      const r = await api('/api/consultants/status', { method: 'POST', body });
      changes += 1;
      set(r.status || wanted);
      announce(message, `Status set to ${CONSULTANT_STATUS_LABELS[r.status || wanted] || wanted}.`, 'success');
    } catch (e) {
      showError(message, e);
      if (SETTABLE_STATUSES.includes(current)) select.value = current;
    } finally {
      select.disabled = false;
    }
  });

  return { set, get: () => current, changes: () => changes };
}
