// admin.js — the admin console: hospitals, users, consultants' specialties and
// hours (online or not), dedicated assignments and the audit log.

import { api, requireUser, buildQuery, ROLES, ROLE_LABELS } from '../api.js';
import { connectSocket } from '../socket.js';
import { $, h, announce, showError, fmtDateTime, DEPARTMENTS } from '../ui.js';

const PLANS = ['basic', 'professional', 'premium', 'enterprise'];
const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const NEEDS_HOSPITAL = ['hospital_staff', 'hospital_leadership'];
const PAGE = 50;
const AUDIT_ACTIONS = [
  'create_hospital', 'update_hospital', 'deactivate_hospital', 'reactivate_hospital',
  'create_user', 'update_user', 'deactivate_user', 'reactivate_user', 'reset_password',
  'set_specialties', 'set_hours', 'create_assignment', 'update_assignment', 'delete_assignment',
  'unlock_login', 'join_call', 'list_sessions', 'export_sessions', 'read_analytics',
];

let me = null;
let hospitals = [];
let retention = new Map(); // hospital id → HospitalRetention
let retentionDefault = null;
let editing = null; // the user being edited
let usersCursor = null;
let auditCursor = null;
let consultants = [];
let rowSeq = 0;

const options = (values, labels = {}, selected = '') =>
  values.map((v) => h('option', { value: v, selected: v === selected }, labels[v] || v));

function hospitalName(id) {
  const found = hospitals.find((x) => x.id === id);
  return found ? found.name : (id == null ? '—' : `#${id}`);
}

function fillHospitalSelect(select, emptyLabel, selected) {
  select.replaceChildren(
    h('option', { value: '' }, emptyLabel),
    ...hospitals.map((x) => h('option', { value: String(x.id), selected: x.id === selected },
      x.active ? x.name : `${x.name} (deactivated)`)));
}

// ---- hospitals -----------------------------------------------------------------

function retentionText(policy) {
  if (!policy) return '—';
  const rule = policy.effective_days == null ? 'Off'
    : `${policy.effective_days} days${policy.source === 'server_default' ? ' (server default)' : ''}`;
  const run = policy.last_run
    ? `last run ${fmtDateTime(policy.last_run.finished_at)}, ${policy.last_run.sessions_erased} erased`
    : 'never run';
  return `${rule}; ${run}`;
}

function hospitalRow(x) {
  const name = h('input', { value: x.name, 'aria-label': `Name of ${x.name}`, class: 'hospital-name' });
  const plan = h('select', { 'aria-label': `Plan of ${x.name}`, class: 'hospital-plan' }, options(PLANS, {}, x.plan));
  const tz = h('input', { value: x.timezone, 'aria-label': `Time zone of ${x.name}`, class: 'hospital-tz' });
  const passwords = h('input', {
    type: 'checkbox', checked: x.password_login !== false, class: 'hospital-password-login',
    'aria-label': `Password sign-in for ${x.name}`,
  });
  const policy = retention.get(x.id);
  const days = h('input', {
    type: 'number', min: '0', max: '36500', class: 'hospital-retention',
    value: policy && policy.days != null ? String(policy.days) : '',
    placeholder: retentionDefault == null ? 'off' : `default ${retentionDefault}`,
    'aria-label': `Retention in days for ${x.name} (empty: the server default)`,
  });
  const save = h('button', {
    type: 'button', class: 'btn btn-primary hospital-save',
    onclick: () => saveHospital(x, {
      name: name.value, plan: plan.value, timezone: tz.value, password_login: passwords.checked,
    }, days.value.trim()),
  }, 'Save');
  const toggle = h('button', {
    type: 'button', class: 'btn btn-secondary hospital-toggle',
    onclick: () => {
      if (x.active && !confirm(`Deactivate ${x.name}? Its people are signed out and cannot sign in.`)) return;
      patchHospital(x.id, { active: !x.active }, x.active ? `${x.name} deactivated.` : `${x.name} reactivated.`);
    },
  }, x.active ? 'Deactivate' : 'Reactivate');
  return h('tr', { 'data-hospital-id': String(x.id) },
    h('td', {}, name), h('td', {}, plan), h('td', {}, tz),
    h('td', {}, passwords),
    h('td', {}, days, h('div', { class: 'muted hospital-retention-status' }, retentionText(policy))),
    h('td', {}, x.active ? 'Active' : 'Deactivated'),
    h('td', {}, save, ' ', toggle));
}

// The row's fields, then its retention if that changed (its own endpoint).
async function saveHospital(x, body, daysText) {
  const msg = $('#hospitals-message');
  const policy = retention.get(x.id);
  const days = daysText === '' ? null : Number(daysText);
  try {
    await api(`/api/admin/hospitals/${x.id}`, { method: 'PATCH', body });
    if (!policy || policy.days !== days) {
      await api(`/api/admin/hospitals/${x.id}/retention`, { method: 'PUT', body: { days } });
    }
    announce(msg, `${x.name} saved.`, 'success');
    await loadHospitals();
  } catch (e) {
    showError(msg, e);
  }
}

async function patchHospital(id, body, done) {
  const msg = $('#hospitals-message');
  try {
    await api(`/api/admin/hospitals/${id}`, { method: 'PATCH', body });
    announce(msg, done, 'success');
    await loadHospitals();
  } catch (e) {
    showError(msg, e);
  }
}

async function loadHospitals() {
  try {
    const [r, kept] = await Promise.all([api('/api/admin/hospitals'), api('/api/admin/retention')]);
    hospitals = r.hospitals || [];
    retentionDefault = kept.default_days;
    retention = new Map((kept.hospitals || []).map((p) => [p.hospital_id, p]));
  } catch (e) {
    showError($('#hospitals-message'), e);
    return;
  }
  $('#hospitals-table tbody').replaceChildren(...hospitals.map(hospitalRow));
  fillHospitalSelect($('#user-hospital'), 'Any hospital', Number($('#user-hospital').value) || null);
  fillHospitalSelect($('#new-user-hospital'), 'No hospital', null);
  fillHospitalSelect($('#edit-hospital'), 'No hospital', editing ? editing.hospital_id : null);
  fillHospitalSelect($('#assign-hospital'), 'Any hospital', null);
}

$('#hospital-create').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const msg = $('#hospitals-message');
  try {
    const body = { name: $('#new-hospital-name').value, plan: $('#new-hospital-plan').value, timezone: $('#new-hospital-tz').value };
    const x = await api('/api/admin/hospitals', { method: 'POST', body });
    announce(msg, `${x.name} created.`, 'success');
    $('#new-hospital-name').value = '';
    await loadHospitals();
  } catch (e) {
    showError(msg, e);
  }
});

// ---- users ---------------------------------------------------------------------

function userQuery() {
  return {
    q: $('#user-q').value.trim() || undefined,
    role: $('#user-role').value || undefined,
    hospital_id: $('#user-hospital').value || undefined,
    active: $('#user-active').value || undefined,
    limit: PAGE,
  };
}

function userRow(u) {
  return h('tr', { 'data-user-id': String(u.id), class: u.active ? '' : 'muted' },
    h('td', {}, u.name), h('td', {}, u.email), h('td', {}, ROLE_LABELS[u.role] || u.role),
    h('td', {}, hospitalName(u.hospital_id)), h('td', { class: 'user-status' }, u.active ? 'Active' : 'Deactivated'),
    h('td', {}, h('button', { type: 'button', class: 'btn btn-secondary user-edit', onclick: () => openEditor(u) }, 'Edit')));
}

async function searchUsers({ more = false } = {}) {
  const msg = $('#users-message');
  const query = userQuery();
  if (more && usersCursor) query.cursor = usersCursor;
  try {
    const r = await api('/api/admin/users', { query });
    const rows = (r.users || []).map(userRow);
    if (more) $('#users-table tbody').append(...rows);
    else $('#users-table tbody').replaceChildren(...rows);
    usersCursor = r.next_cursor || null;
    $('#users-more').hidden = !usersCursor;
    if (!more) announce(msg, rows.length ? '' : 'No users match.', 'info');
  } catch (e) {
    showError(msg, e);
  }
}

$('#user-search').addEventListener('submit', (ev) => { ev.preventDefault(); searchUsers(); });
$('#users-more').addEventListener('click', () => searchUsers({ more: true }));

function openEditor(u) {
  editing = u;
  const form = $('#user-edit');
  form.hidden = false;
  $('#user-edit-title').textContent = `Edit ${u.name} (${u.email})`;
  $('#edit-name').value = u.name;
  $('#edit-role').replaceChildren(...options(ROLES, ROLE_LABELS, u.role));
  fillHospitalSelect($('#edit-hospital'), 'No hospital', u.hospital_id);
  $('#edit-toggle-active').textContent = u.active ? 'Deactivate' : 'Reactivate';
  $('#edit-toggle-active').disabled = u.id === me.id;
  $('#edit-password').value = '';
  announce($('#user-edit-message'), '', 'info');
  $('#edit-name').focus();
}

async function patchUser(body, done) {
  const msg = $('#user-edit-message');
  try {
    const u = await api(`/api/admin/users/${editing.id}`, { method: 'PATCH', body });
    openEditor(u);
    announce(msg, done, 'success');
    await searchUsers();
  } catch (e) {
    showError(msg, e, { name: $('#edit-name'), role: $('#edit-role'), hospital_id: $('#edit-hospital'), password: $('#edit-password') });
  }
}

$('#user-edit').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const role = $('#edit-role').value;
  const body = { name: $('#edit-name').value, role };
  const hospital = $('#edit-hospital').value;
  body.hospital_id = NEEDS_HOSPITAL.includes(role) ? (hospital ? Number(hospital) : null) : null;
  patchUser(body, 'Changes saved.');
});
$('#edit-toggle-active').addEventListener('click', () => {
  if (editing.active && !confirm(`Deactivate ${editing.name}? They are signed out at once.`)) return;
  patchUser({ active: !editing.active }, editing.active ? 'Deactivated: signed out everywhere.' : 'Reactivated.');
});
$('#edit-reset-password').addEventListener('click', () => {
  patchUser({ password: $('#edit-password').value }, 'Password reset; they were signed out everywhere.');
});
$('#edit-close').addEventListener('click', () => { $('#user-edit').hidden = true; editing = null; });

$('#user-create').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const msg = $('#user-create-message');
  const body = {
    email: $('#new-user-email').value, name: $('#new-user-name').value,
    role: $('#new-user-role').value, password: $('#new-user-password').value,
  };
  const hospital = $('#new-user-hospital').value;
  if (hospital && NEEDS_HOSPITAL.includes(body.role)) body.hospital_id = Number(hospital);
  try {
    const u = await api('/api/admin/users', { method: 'POST', body });
    announce(msg, `${u.name} created.`, 'success');
    $('#user-create').reset();
    await searchUsers();
    await loadConsultants();
  } catch (e) {
    showError(msg, e, { email: $('#new-user-email'), name: $('#new-user-name'), role: $('#new-user-role'), hospital_id: $('#new-user-hospital'), password: $('#new-user-password') });
  }
});

// ---- consultants: specialties and hours -----------------------------------------

const target = () => Number($('#consultant-picker').value) || null;

function specRow(spec = { department: '', proficiency: 'standard' }) {
  rowSeq += 1;
  const dept = h('select', { id: `spec-dept-${rowSeq}`, class: 'spec-department' },
    h('option', { value: '' }, 'Choose…'), options(DEPARTMENTS, {}, spec.department));
  const prof = h('select', { id: `spec-prof-${rowSeq}`, class: 'spec-proficiency' },
    options(['standard', 'expert'], { standard: 'Standard', expert: 'Expert' }, spec.proficiency));
  const row = h('li', { class: 'spec-row' },
    h('div', { class: 'field' }, h('label', { for: dept.id }, 'Department'), dept),
    h('div', { class: 'field' }, h('label', { for: prof.id }, 'Proficiency'), prof),
    h('button', { type: 'button', class: 'btn btn-secondary spec-remove', onclick: () => row.remove() }, 'Remove'));
  return row;
}

function hoursRow(item = { weekday: 1, start: '08:00', end: '17:00' }) {
  rowSeq += 1;
  const day = h('select', { id: `hours-day-${rowSeq}`, class: 'hours-weekday' },
    WEEKDAYS.map((d, i) => h('option', { value: String(i + 1), selected: i + 1 === item.weekday }, d)));
  const start = h('input', { id: `hours-start-${rowSeq}`, class: 'hours-start', value: item.start, placeholder: '08:00' });
  const end = h('input', { id: `hours-end-${rowSeq}`, class: 'hours-end', value: item.end, placeholder: '17:00' });
  const row = h('li', { class: 'spec-row' },
    h('div', { class: 'field' }, h('label', { for: day.id }, 'Weekday'), day),
    h('div', { class: 'field' }, h('label', { for: start.id }, 'Start (UTC)'), start),
    h('div', { class: 'field' }, h('label', { for: end.id }, 'End (UTC)'), end),
    h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => row.remove() }, 'Remove'));
  return row;
}

async function loadConsultantDetails() {
  const id = target();
  if (!id) return;
  try {
    const s = await api('/api/consultants/specialties', { query: { consultant_id: id } });
    $('#specialties-list').replaceChildren(...(s.specialties || []).map(specRow));
    const hrs = await api(`/api/admin/consultants/${id}/hours`);
    $('#hours-list').replaceChildren(...(hrs.hours || []).map(hoursRow));
    $('#consultant-picker').dataset.loaded = String(id);
  } catch (e) {
    showError($('#specialties-message'), e);
  }
}

async function loadConsultants() {
  try {
    const r = await api('/api/admin/users', { query: { role: 'consultant', limit: 500 } });
    consultants = r.users || [];
  } catch (e) {
    showError($('#specialties-message'), e);
    return;
  }
  const keep = target();
  const label = (c) => (c.active ? c.name : `${c.name} (deactivated)`);
  $('#consultant-picker').replaceChildren(...consultants.map((c) =>
    h('option', { value: String(c.id), selected: c.id === keep }, label(c))));
  $('#assign-consultant').replaceChildren(...consultants.map((c) => h('option', { value: String(c.id) }, label(c))));
  await loadConsultantDetails();
}

$('#consultant-picker').addEventListener('change', loadConsultantDetails);
$('#add-specialty').addEventListener('click', () => $('#specialties-list').append(specRow()));
$('#add-hours').addEventListener('click', () => $('#hours-list').append(hoursRow()));

$('#specialties-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const msg = $('#specialties-message');
  const specialties = [...$('#specialties-list').querySelectorAll('.spec-row')].map((row) => ({
    department: row.querySelector('.spec-department').value,
    proficiency: row.querySelector('.spec-proficiency').value,
  }));
  if (specialties.some((s) => !s.department)) {
    announce(msg, 'Choose a department for every row, or remove the empty row.', 'error');
    return;
  }
  try {
    const r = await api('/api/consultants/specialties', { method: 'POST', body: { consultant_id: target(), specialties } });
    $('#specialties-list').replaceChildren(...(r.specialties || []).map(specRow));
    announce(msg, 'Specialties saved.', 'success');
  } catch (e) {
    showError(msg, e);
  }
});

$('#hours-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const msg = $('#hours-message');
  const hours = [...$('#hours-list').querySelectorAll('.spec-row')].map((row) => ({
    weekday: Number(row.querySelector('.hours-weekday').value),
    start: row.querySelector('.hours-start').value.trim(),
    end: row.querySelector('.hours-end').value.trim(),
  }));
  try {
    const r = await api(`/api/admin/consultants/${target()}/hours`, { method: 'PUT', body: { hours } });
    $('#hours-list').replaceChildren(...(r.hours || []).map(hoursRow));
    announce(msg, 'Hours saved.', 'success');
  } catch (e) {
    showError(msg, e);
  }
});

// ---- dedicated assignments -------------------------------------------------------

function consultantName(id) {
  const c = consultants.find((x) => x.id === id);
  return c ? c.name : `#${id}`;
}

async function loadAssignments() {
  const msg = $('#assignments-message');
  try {
    const r = await api('/api/admin/assignments');
    const rows = (r.assignments || []).map((a) => {
      const covers = [a.staff_id ? `staff #${a.staff_id}` : null, a.hospital_id ? hospitalName(a.hospital_id) : null, a.department]
        .filter(Boolean).join(', ');
      const when = a.weekdays ? `days ${a.weekdays}` : 'always';
      return h('tr', { 'data-assignment-id': String(a.id) },
        h('td', {}, consultantName(a.consultant_id)), h('td', {}, covers), h('td', {}, when),
        h('td', {}, h('button', {
          type: 'button', class: 'btn btn-secondary',
          onclick: async () => {
            try { await api(`/api/admin/assignments/${a.id}`, { method: 'DELETE' }); announce(msg, 'Assignment removed.', 'success'); loadAssignments(); } catch (e) { showError(msg, e); }
          },
        }, 'Remove')));
    });
    $('#assignments-table tbody').replaceChildren(...rows);
  } catch (e) {
    showError(msg, e);
  }
}

$('#assignment-create').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const msg = $('#assignments-message');
  const body = { consultant_id: Number($('#assign-consultant').value) };
  if ($('#assign-hospital').value) body.hospital_id = Number($('#assign-hospital').value);
  if ($('#assign-department').value) body.department = $('#assign-department').value;
  try {
    await api('/api/admin/assignments', { method: 'POST', body });
    announce(msg, 'Assignment added.', 'success');
    loadAssignments();
  } catch (e) {
    showError(msg, e);
  }
});

// ---- audit log ---------------------------------------------------------------------

function auditQuery() {
  const q = {
    user_id: $('#audit-user').value.trim() || undefined,
    action: $('#audit-action').value.trim() || undefined,
    session_id: $('#audit-session').value.trim() || undefined,
    from: $('#audit-from').value || undefined,
    to: $('#audit-to').value || undefined,
  };
  // `to` is a day: include all of it.
  if (q.to) {
    const next = new Date(`${q.to}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    q.to = next.toISOString().slice(0, 10);
  }
  return q;
}

async function loadAudit({ more = false } = {}) {
  const msg = $('#audit-message');
  const query = { ...auditQuery(), limit: PAGE };
  if (more && auditCursor) query.cursor = auditCursor;
  $('#audit-csv').href = `/api/admin/audit.csv${buildQuery(auditQuery())}`;
  try {
    const r = await api('/api/admin/audit', { query });
    const rows = (r.entries || []).map((e) => h('tr', {},
      h('td', {}, fmtDateTime(e.at)),
      h('td', {}, e.user_name ? `${e.user_name} (#${e.user_id})` : (e.user_id ? `#${e.user_id}` : 'system')),
      h('td', {}, e.action),
      h('td', {}, `${e.target_type}${e.target_id != null ? ` #${e.target_id}` : ''}`),
      h('td', {}, e.detail ? JSON.stringify(e.detail) : '')));
    if (more) $('#audit-table tbody').append(...rows);
    else $('#audit-table tbody').replaceChildren(...rows);
    auditCursor = r.next_cursor || null;
    $('#audit-more').hidden = !auditCursor;
    if (!more) announce(msg, rows.length ? '' : 'No audit entries match.', 'info');
  } catch (e) {
    showError(msg, e);
  }
}

$('#audit-filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadAudit(); });
$('#audit-more').addEventListener('click', () => loadAudit({ more: true }));

// ---- start -------------------------------------------------------------------------

async function main() {
  me = await requireUser(['admin']);
  $('#new-hospital-plan').replaceChildren(...options(PLANS, {}, 'premium'));
  $('#user-role').append(...options(ROLES, ROLE_LABELS));
  $('#new-user-role').replaceChildren(...options(ROLES, ROLE_LABELS, 'hospital_staff'));
  $('#assign-department').replaceChildren(h('option', { value: '' }, 'Any department'), ...options(DEPARTMENTS));
  $('#audit-actions').replaceChildren(...AUDIT_ACTIONS.map((a) => h('option', { value: a })));
  // The socket shows the connection and signs this page out if the admin is.
  connectSocket();
  await loadHospitals();
  await Promise.all([searchUsers(), loadConsultants(), loadAudit()]);
  await loadAssignments();
}

main();
