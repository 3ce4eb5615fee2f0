// charts.js — tiny SVG charts (no library). Each function replaces the contents
// of a container with one <svg id=…> that scales to the container's width.
// Colours come from CSS classes (.chart-bar, .heat-N…) so the stylesheet owns them.
// Each chart has role="img", a <title> and a <desc> listing the values, so a
// screen reader gets the numbers, not just "image".

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

let uid = 0;

function svgRoot(id, title, desc, width, height) {
  uid += 1;
  const svg = el('svg', {
    id,
    class: 'chart',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-labelledby': `${id}-t${uid} ${id}-d${uid}`,
    preserveAspectRatio: 'xMidYMid meet',
  });
  svg.append(el('title', { id: `${id}-t${uid}` }, title), el('desc', { id: `${id}-d${uid}` }, desc));
  return svg;
}

/** 0 → 1, 7 → 10, 23 → 25, 140 → 200: a round axis maximum. */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function empty(svg, width, height, message = 'No data for this period') {
  svg.append(el('text', { x: width / 2, y: height / 2, class: 'chart-empty', 'text-anchor': 'middle' }, message));
  return svg;
}

const truncate = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

// Draw in the container's real pixel width so text stays at its CSS size
// instead of shrinking with the viewBox (callers re-render on resize).
function widthOf(container, fallback) {
  const w = Math.round(container.clientWidth || 0);
  return w >= 280 ? w : fallback;
}

/**
 * Horizontal bars, one per row: data = [{label, value}].
 * Good for categories with long names (departments, hospitals).
 */
export function barChart(container, { id, title, data, format = String, barClass = 'chart-bar' }) {
  const rows = (data || []).filter((d) => d && d.value !== null && d.value !== undefined);
  const width = widthOf(container, 640);
  const rowH = 30;
  const top = 8;
  const labelW = Math.min(190, Math.round(width * 0.34));
  const maxChars = Math.max(8, Math.floor(labelW / 7.5));
  const valueW = 56;
  const height = Math.max(80, top * 2 + rows.length * rowH);
  const desc = rows.length ? rows.map((d) => `${d.label}: ${format(d.value)}`).join('; ') : 'No data';
  const svg = svgRoot(id, title, desc, width, height);
  if (!rows.length) return mount(container, empty(svg, width, height));

  const max = niceMax(Math.max(...rows.map((d) => d.value)));
  const plotW = width - labelW - valueW;
  rows.forEach((d, i) => {
    const y = top + i * rowH;
    const w = Math.max(d.value > 0 ? 2 : 0, (d.value / max) * plotW);
    const g = el('g', { class: 'chart-row' });
    g.append(
      el('text', { x: labelW - 8, y: y + rowH / 2, class: 'chart-label', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, truncate(String(d.label), maxChars)),
      el('rect', { x: labelW, y: y + 5, width: w.toFixed(1), height: rowH - 10, rx: 3, class: barClass }),
      el('text', { x: labelW + w + 6, y: y + rowH / 2, class: 'chart-value', 'dominant-baseline': 'middle' }, format(d.value)),
    );
    g.append(el('title', {}, `${d.label}: ${format(d.value)}`));
    svg.append(g);
  });
  svg.append(el('line', { x1: labelW, x2: labelW, y1: top, y2: height - top, class: 'chart-axis' }));
  return mount(container, svg);
}

/**
 * A 24-cell strip (hours 0–23), shaded by count: data = [{hour, count}].
 * Missing hours count as zero.
 */
export function hourStrip(container, { id, title, data }) {
  const counts = new Array(24).fill(0);
  for (const d of data || []) {
    if (d && Number.isInteger(d.hour) && d.hour >= 0 && d.hour < 24) counts[d.hour] = d.count || 0;
  }
  const width = widthOf(container, 720);
  const height = 96;
  const cellW = width / 24;
  const max = Math.max(...counts);
  const busiest = max > 0 ? counts.indexOf(max) : -1;
  const desc = max > 0
    ? `Busiest hour ${hourLabel(busiest)} with ${max} requests. ${counts.map((c, h) => `${hourLabel(h)}: ${c}`).join('; ')}`
    : 'No requests in this period';
  const svg = svgRoot(id, title, desc, width, height);
  counts.forEach((c, hr) => {
    const level = max > 0 ? Math.ceil((c / max) * 5) : 0;
    const x = hr * cellW;
    const g = el('g', {});
    g.append(
      el('rect', { x: x + 1, y: 8, width: cellW - 2, height: 48, rx: 4, class: `heat heat-${level}` }),
      el('text', { x: x + cellW / 2, y: 37, class: `chart-cell-value${level >= 3 ? ' on-dark' : ''}`, 'text-anchor': 'middle' }, c && cellW >= 18 ? String(c) : ''),
      el('title', {}, `${hourLabel(hr)}–${hourLabel((hr + 1) % 24)}: ${c} request${c === 1 ? '' : 's'}`),
    );
    if (hr % (cellW < 30 ? 6 : 3) === 0) g.append(el('text', { x: x + 2, y: 78, class: 'chart-label' }, hourLabel(hr)));
    svg.append(g);
  });
  return mount(container, svg);
}

function hourLabel(h) {
  return `${String(h).padStart(2, '0')}:00`;
}

/**
 * Daily series with bars (count) and a line (value): data = [{label, value, count}].
 * Used for average wait by day; null values break the line. `axisMax` rounds the
 * line's largest value up to the axis maximum (four equal steps).
 */
export function dayChart(container, { id, title, data, format = String, axisFormat = format, axisMax = niceMax }) {
  const rows = data || [];
  const width = widthOf(container, 720);
  const height = 260;
  const m = { top: 16, right: 16, bottom: 40, left: 56 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const desc = rows.length
    ? rows.map((d) => `${d.label}: ${d.value === null || d.value === undefined ? 'no data' : format(d.value)} (${d.count ?? 0} requests)`).join('; ')
    : 'No data';
  const svg = svgRoot(id, title, desc, width, height);
  if (!rows.length) return mount(container, empty(svg, width, height));

  const maxV = axisMax(Math.max(0, ...rows.map((d) => d.value || 0)));
  const maxC = niceMax(Math.max(0, ...rows.map((d) => d.count || 0)));
  const step = plotW / rows.length;
  const x = (i) => m.left + step * i + step / 2;
  const yV = (v) => m.top + plotH - (v / maxV) * plotH;

  // Grid + left axis labels (the line's scale).
  for (let t = 0; t <= 4; t += 1) {
    const v = (maxV * t) / 4;
    const y = yV(v);
    svg.append(
      el('line', { x1: m.left, x2: width - m.right, y1: y, y2: y, class: t ? 'chart-gridline' : 'chart-axis' }),
      el('text', { x: m.left - 6, y, class: 'chart-label', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, axisFormat(v)),
    );
  }

  // Request counts as pale bars behind the line (their own scale).
  rows.forEach((d, i) => {
    const hgt = ((d.count || 0) / maxC) * plotH;
    const bar = el('rect', {
      x: (x(i) - step * 0.35).toFixed(1), y: (m.top + plotH - hgt).toFixed(1),
      width: (step * 0.7).toFixed(1), height: hgt.toFixed(1), class: 'chart-bar-muted',
    });
    bar.append(el('title', {}, `${d.label}: ${d.count ?? 0} requests, average wait ${d.value === null || d.value === undefined ? '—' : format(d.value)}`));
    svg.append(bar);
  });

  // The line, broken where a day has no value.
  let path = '';
  let pen = false;
  rows.forEach((d, i) => {
    if (d.value === null || d.value === undefined) { pen = false; return; }
    path += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${yV(d.value).toFixed(1)}`;
    pen = true;
  });
  if (path) svg.append(el('path', { d: path, class: 'chart-line' }));
  rows.forEach((d, i) => {
    if (d.value === null || d.value === undefined) return;
    const dot = el('circle', { cx: x(i).toFixed(1), cy: yV(d.value).toFixed(1), r: 4, class: 'chart-dot' });
    dot.append(el('title', {}, `${d.label}: ${format(d.value)}`));
    svg.append(dot);
  });

  // Date labels, thinned so they don't collide.
  const every = Math.max(1, Math.ceil(rows.length / Math.max(2, Math.floor(plotW / 70))));
  rows.forEach((d, i) => {
    if (i % every) return;
    svg.append(el('text', { x: x(i), y: height - m.bottom + 18, class: 'chart-label', 'text-anchor': 'middle' }, shortDay(d.label)));
  });
  return mount(container, svg);
}

function shortDay(day) {
  const d = new Date(`${day}T12:00:00`);
  if (Number.isNaN(d.getTime())) return String(day);
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

function mount(container, svg) {
  container.replaceChildren(svg);
  return svg;
}
