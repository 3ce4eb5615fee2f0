// analytics.js — leadership (own hospital) and admins: KPIs, charts and a
// per-consultant table for a date range, in the viewer's time zone.

import { api, requireUser } from '../api.js';
import { connectSocket } from '../socket.js';
import { barChart, hourStrip, dayChart, niceMax } from '../charts.js';
import {
  $, h, announce, clearMessage, showError, fmtDuration, fmtPercent, fmtNumber, isoDate, fillDepartments, debounce,
} from '../ui.js';

const REFRESH_MS = 60000; // "longest current wait" is live; keep the page fresh

const form = $('#analytics-filters');
const message = $('#analytics-message');
const from = $('#filter-from');
const to = $('#filter-to');
const hospital = $('#filter-hospital');
const department = $('#filter-department');

const tz = (() => {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { return 'UTC'; }
})();

let me = null;
let loading = false;
let last = null; // last reply, to redraw charts at a new width

// Compact axis labels: 45 → "45s", 200 → "3.3m", 7200 → "2h".
function axisDuration(sec) {
  if (sec < 60) return `${Math.round(sec)}s`;
  if (sec < 3600) return `${Number((sec / 60).toFixed(1))}m`;
  return `${Number((sec / 3600).toFixed(1))}h`;
}

// Axis maximum of four clock-friendly steps: 125 s → 4 min (gridlines 1m, 2m, 3m, 4m)
// rather than niceMax's 200 s (gridlines at 50s, 1.7m, 2.5m, 3.3m).
function durationMax(sec) {
  for (const step of [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600]) {
    if (sec <= step * 4) return step * 4;
  }
  return niceMax(sec / 3600) * 3600;
}

fillDepartments(department, 'All departments');
from.value = isoDate(-29);
to.value = isoDate(0);

function setKpi(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

const rating = (v) => (typeof v === 'number' ? `${fmtNumber(v, 1)} / 5` : '—');

function render(a) {
  last = a;
  setKpi('kpi-total-requests', typeof a.total_requests === 'number' ? String(a.total_requests) : '—');
  setKpi('kpi-avg-wait', fmtDuration(a.avg_wait_seconds));
  setKpi('kpi-wait-p50', fmtDuration(a.wait_p50_seconds));
  setKpi('kpi-wait-p90', fmtDuration(a.wait_p90_seconds));
  setKpi('kpi-longest-current-wait', fmtDuration(a.longest_current_wait_seconds));
  setKpi('kpi-avg-duration', fmtDuration(a.avg_duration_seconds));
  setKpi('kpi-first-call-resolution-rate', fmtPercent(a.first_call_resolution_rate));
  setKpi('kpi-service-level', fmtPercent(a.service_level));
  setKpi('kpi-abandonment-rate', fmtPercent(a.abandonment_rate));
  setKpi('kpi-utilization', fmtPercent(a.utilization));
  setKpi('kpi-rating-avg', rating(a.rating_avg));

  renderCharts(a);

  const rows = (a.consultants || []).map((c) => h('tr', { dataset: { consultantId: String(c.consultant_id) } },
    h('th', { scope: 'row' }, c.name || `Consultant #${c.consultant_id}`),
    h('td', { class: 'num' }, typeof c.sessions === 'number' ? String(c.sessions) : '—'),
    h('td', { class: 'num' }, rating(c.rating_avg)),
    h('td', { class: 'num' }, fmtPercent(c.utilization))));
  if (!rows.length) rows.push(h('tr', { class: 'empty-row' }, h('td', { colspan: 4 }, 'No consultant activity in this period.')));
  $('#consultant-table tbody').replaceChildren(...rows);

  const total = a.total_requests ?? 0;
  // first_day/last_day are the window's local days, both inclusive (`to` is exclusive).
  const range = a.first_day && a.last_day ? `${a.first_day} to ${a.last_day}` : `${from.value} to ${to.value}`;
  $('#analytics-range').textContent = `${range} · ${total} request${total === 1 ? '' : 's'} · times in ${a.timezone || tz}`;
}

function renderCharts(a) {
  barChart($('#chart-department-wrap'), {
    id: 'chart-department',
    title: 'Requests by department',
    data: (a.requests_by_department || []).map((d) => ({ label: d.department, value: d.count })),
  });
  barChart($('#chart-hospital-wrap'), {
    id: 'chart-hospital',
    title: 'Requests by hospital',
    data: (a.requests_by_hospital || []).map((d) => ({ label: d.hospital_name || `Hospital #${d.hospital_id}`, value: d.count })),
    barClass: 'chart-bar chart-bar-alt',
  });
  hourStrip($('#chart-peak-hours-wrap'), {
    id: 'chart-peak-hours',
    title: `Requests by hour of day (${a.timezone || tz})`,
    data: a.peak_hours || [],
  });
  $('#peak-tz').textContent = `(${a.timezone || tz})`;
  dayChart($('#chart-wait-by-day-wrap'), {
    id: 'chart-wait-by-day',
    title: 'Average wait by day',
    data: (a.wait_by_day || []).map((d) => ({ label: d.day, value: d.avg_wait_seconds, count: d.count })),
    format: fmtDuration,
    axisFormat: axisDuration,
    axisMax: durationMax,
  });
}

async function load() {
  if (loading) return;
  if (from.value && to.value && from.value > to.value) {
    announce(message, '"From" must be on or before "To".', 'error');
    from.setAttribute('aria-invalid', 'true');
    from.focus();
    return;
  }
  from.removeAttribute('aria-invalid');
  loading = true;
  clearMessage(message);
  $('#analytics-apply').disabled = true;
  try {
    // Dates are calendar days in `tz`, both ends inclusive.
    const query = { from: from.value, to: to.value, department: department.value, tz };
    if (me.role === 'admin' && hospital.value) query.hospital_id = hospital.value;
    const a = await api('/api/support/analytics', { query });
    render(a);
  } catch (e) {
    if (e.status !== 401) showError(message, e, { from, to, hospital_id: hospital, department });
    // Charts still waiting for their first figures have nothing to wait for now.
    for (const p of document.querySelectorAll('.chart-loading')) p.textContent = 'No figures to show.';
  } finally {
    loading = false;
    $('#analytics-apply').disabled = false;
  }
}

form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });

async function main() {
  me = await requireUser(['hospital_leadership', 'admin']);
  $('#hospital-field').hidden = me.role !== 'admin';
  const socket = connectSocket();
  socket.onReconnect(load);
  setInterval(() => { if (document.visibilityState === 'visible') load(); }, REFRESH_MS);
  window.addEventListener('resize', debounce(() => { if (last) renderCharts(last); }, 200));
  await load();
}

main();
