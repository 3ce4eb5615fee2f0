// settings.js — a consultant's availability and specialties (admins can pick
// any consultant and edit theirs).

import { api, requireUser } from '../api.js';
import { connectSocket } from '../socket.js';
import { mountStatusControl } from '../status.js';
import { $, h, announce, showError, DEPARTMENTS } from '../ui.js';

const list = $('#specialties-list');
const message = $('#specialties-message');
const picker = $('#consultant-picker');

let me = null;
let isAdmin = false;
let target = null; // consultant id being edited
let statusCtl = null;
let consultants = new Map();
let rowSeq = 0;

// ---- specialties editor ------------------------------------------------------

function specRow(spec = { department: '', proficiency: 'standard' }) {
  rowSeq += 1;
  const n = rowSeq;
  const dept = h('select', { id: `spec-dept-${n}`, class: 'spec-department', required: true },
    h('option', { value: '' }, 'Choose…'),
    DEPARTMENTS.map((d) => h('option', { value: d, selected: d === spec.department }, d)));
  // Keep departments the server knows that aren't in our list.
  if (spec.department && !DEPARTMENTS.includes(spec.department)) {
    dept.append(h('option', { value: spec.department, selected: true }, spec.department));
  }
  const prof = h('select', { id: `spec-prof-${n}`, class: 'spec-proficiency' },
    h('option', { value: 'standard', selected: spec.proficiency !== 'expert' }, 'Standard'),
    h('option', { value: 'expert', selected: spec.proficiency === 'expert' }, 'Expert'));
  const row = h('li', { class: 'spec-row' },
    h('div', { class: 'field' }, h('label', { for: dept.id }, 'Department'), dept),
    h('div', { class: 'field' }, h('label', { for: prof.id }, 'Proficiency'), prof),
    h('button', {
      type: 'button',
      class: 'btn btn-secondary spec-remove',
      'aria-label': `Remove specialty ${n}`,
      onclick: () => {
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        renderEmpty();
        (next ? next.querySelector('select') : $('#add-specialty')).focus();
      },
    }, 'Remove'));
  // Name the remove button after its department so screen readers can tell rows apart.
  dept.addEventListener('change', () => row.querySelector('.spec-remove').setAttribute('aria-label', `Remove ${dept.value || 'this'} specialty`));
  if (spec.department) row.querySelector('.spec-remove').setAttribute('aria-label', `Remove ${spec.department} specialty`);
  return row;
}

function renderEmpty() {
  const hasRows = list.querySelector('.spec-row');
  const empty = list.querySelector('.empty');
  if (!hasRows && !empty) list.append(h('li', { class: 'empty muted' }, 'No specialties yet. You can still receive any request.'));
  if (hasRows && empty) empty.remove();
}

function renderSpecs(specs) {
  list.replaceChildren(...(specs || []).map(specRow));
  renderEmpty();
}

async function loadSpecs() {
  try {
    const r = await api('/api/consultants/specialties', { query: { consultant_id: target } });
    renderSpecs(r.specialties || []);
  } catch (e) {
    showError(message, e);
  }
}

$('#add-specialty').addEventListener('click', () => {
  const row = specRow();
  list.append(row);
  renderEmpty();
  row.querySelector('select').focus();
});

$('#specialties-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const specs = [];
  const seen = new Set();
  for (const row of list.querySelectorAll('.spec-row')) {
    const dept = row.querySelector('.spec-department');
    dept.removeAttribute('aria-invalid');
    if (!dept.value) {
      dept.setAttribute('aria-invalid', 'true');
      announce(message, 'Choose a department for every row, or remove the empty row.', 'error');
      dept.focus();
      return;
    }
    if (seen.has(dept.value)) {
      dept.setAttribute('aria-invalid', 'true');
      announce(message, `${dept.value} is listed twice.`, 'error');
      dept.focus();
      return;
    }
    seen.add(dept.value);
    specs.push({ department: dept.value, proficiency: row.querySelector('.spec-proficiency').value });
  }
  const body = { specialties: specs };
  if (isAdmin || target !== me.id) body.consultant_id = target;
  const save = $('#save-specialties');
  save.disabled = true;
  try {
    const r = await api('/api/consultants/specialties', { method: 'POST', body });
    if (Array.isArray(r.specialties)) renderSpecs(r.specialties);
    announce(message, 'Specialties saved.', 'success');
  } catch (e) {
    showError(message, e);
  } finally {
    save.disabled = false;
  }
});

// ---- availability --------------------------------------------------------------

// Returns whether the list is current: false when the user changed the status while
// it was on its way (the list then holds the old status).
async function loadConsultants() {
  const changesBefore = statusCtl.changes();
  try {
    const r = await api('/api/consultants/available');
    consultants = new Map((r.consultants || []).map((c) => [c.id, c]));
  } catch { consultants = new Map(); }
  return statusCtl.changes() === changesBefore;
}

function syncStatus() {
  const c = consultants.get(target);
  statusCtl.set(c ? c.status : (statusCtl.get() || 'offline'));
}

async function main() {
  me = await requireUser(['consultant', 'admin']);
  isAdmin = me.role === 'admin';
  target = me.id;
  statusCtl = mountStatusControl({
    select: $('#status-select'),
    badge: $('#status-badge'),
    message: $('#status-message'),
    hint: $('#status-hint'),
    consultantId: () => (isAdmin ? target : null),
  });

  const current = await loadConsultants();
  if (isAdmin) {
    const options = [...consultants.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    if (!options.length) {
      announce(message, 'No consultants are listed right now.', 'info');
      $('#specialties-form').hidden = true;
      return;
    }
    picker.replaceChildren(...options.map((c) => h('option', { value: String(c.id) }, c.name)));
    $('#picker-row').hidden = false;
    target = options[0].id;
    picker.addEventListener('change', () => { target = Number(picker.value); syncStatus(); loadSpecs(); });
    $('h1').textContent = 'Consultant settings (admin)';
  }
  if (current) syncStatus();

  const socket = connectSocket();
  socket.on('consultant_status_changed', (d) => {
    const c = consultants.get(d.consultant_id);
    if (c) c.status = d.status;
    if (d.consultant_id === target) statusCtl.set(d.status);
  });
  socket.onReconnect(async () => { if (await loadConsultants()) syncStatus(); });

  await loadSpecs();
}

main();
