// Small DOM and formatting helpers (no framework).

/** Create an element: h('a', {href: '#'}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function num(value, digits = 1) {
  return value === null || value === undefined || Number.isNaN(value)
    ? '—' : Number(value).toFixed(digits);
}

export function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : '—';
}

export function dateTime(iso) {
  return iso ? new Date(iso).toLocaleString([], { hour12: false }) : '—';
}

/** Seconds as "12 s", "4 min", "3 h". */
export function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

// A state is always carried by text and a symbol, the colour only adds to it.
const STATE_ICONS = {
  FAULT: '✖', OFFLINE: '⏻', MAINTENANCE: '⚒', CHARGING: '▲', DISCHARGING: '▼', IDLE: '●',
  STANDBY: '◌', NOT_CHARGING: '●', COMPLETE: '✔', STALE: '⌛',
};
export function stateBadge(state, stale = false) {
  const shown = stale ? 'STALE' : state;
  return h('span', { class: `badge state-${shown.toLowerCase()}` },
    h('span', { 'aria-hidden': 'true' }, STATE_ICONS[shown] || '●'), ' ',
    stale ? `${state} (stale)` : state);
}

const SEVERITY_ICONS = { critical: '‼', warning: '⚠', info: 'ℹ' };
export function severityBadge(severity) {
  return h('span', { class: `badge sev-${severity}` },
    h('span', { 'aria-hidden': 'true' }, SEVERITY_ICONS[severity] || '•'), ' ', severity);
}

const STATUS_ICONS = {
  scheduled: '⏲', pending: '…', sent: '→', acknowledged: '✓', completed: '✔', rejected: '✖',
  failed: '✖', expired: '⌛', superseded: '↷',
};
export function statusBadge(status) {
  return h('span', { class: `badge status-${status}`, 'data-status': status },
    h('span', { 'aria-hidden': 'true' }, STATUS_ICONS[status] || '•'), ' ', status);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}
