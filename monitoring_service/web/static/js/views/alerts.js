// Alerts (SPEC §13): filter, acknowledge, shelve / unshelve, assign. Reloaded when the server
// says an alert changed.

import { readable } from '../api.js';
import { clear, dateTime, h, severityBadge } from '../dom.js';
import { actionForm } from './alert_actions.js';

// '' lists every alert; 'active' is the alarm list (active, or cleared and not acknowledged)
const STATES = ['', 'active', 'active_unacknowledged', 'active_acknowledged',
  'cleared_unacknowledged', 'cleared'];
const STATE_LABELS = { '': 'any state', active: 'alarm list (to act on)' };
const SEVERITIES = ['', 'critical', 'warning', 'info'];

function select(id, values, labelOf) {
  return h('select', { id }, ...values.map((v) => h('option', { value: v }, labelOf(v))));
}

export async function mount(root, ctx) {
  const state = select('alert-state', STATES, (v) => STATE_LABELS[v] || v.replace('_', ', '));
  const severity = select('alert-severity', SEVERITIES, (v) => v || 'any severity');
  const unitId = h('input', { id: 'alert-unit', type: 'search', placeholder: 'e.g. MP-0002', pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}' });
  const shelved = h('input', { id: 'alert-shelved', type: 'checkbox' });
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const message = h('div', { role: 'status', 'aria-live': 'polite' });
  let cursor = null;
  let busy = false;
  let pending = false;

  const query = () => {
    const q = new URLSearchParams({ limit: '50' });
    if (state.value) q.set('state', state.value);
    if (unitId.value.trim()) q.set('unit_id', unitId.value.trim());
    if (severity.value) q.set('severity', severity.value);
    if (shelved.checked) q.set('shelved', 'true');
    if (cursor) q.set('cursor', cursor);
    return q;
  };

  const act = async (alert, action, payload, done) => {
    try {
      await ctx.api.post(`/v1/alerts/${alert.alert_id}/${action}`, payload);
      clear(message).append(h('p', {}, `Alert ${alert.alert_id}: ${action} done.`));
      if (done) done();
      await load(true);
    } catch (error) {
      clear(message).append(h('p', { class: 'error', role: 'alert' },
        `${action} refused (${error.status}): ${readable(error.detail)}`));
    }
  };

  const row = (alert) => {
    const actions = h('div', { class: 'actions' });
    const tr = h('tr', { 'data-alert': alert.alert_id, 'data-state': alert.state,
      'data-shelved': alert.shelved },
      h('td', {}, dateTime(alert.raised_at)),
      h('td', {}, severityBadge(alert.severity)),
      h('td', { 'data-field': 'state' }, alert.state.replace('_', ', '),
        alert.shelved ? ` (shelved until ${dateTime(alert.shelved_until)})` : ''),
      h('th', { scope: 'row' }, alert.rule),
      h('td', {}, h('a', { href: `#/units/${encodeURIComponent(alert.unit_id)}` }, alert.unit_id)),
      h('td', { class: 'wrap' }, alert.message),
      h('td', {}, alert.acknowledged_by ? `${alert.acknowledged_by} ${dateTime(alert.acknowledged_at)}` : '—'),
      h('td', { 'data-field': 'assigned' }, alert.assigned_to || '—'),
      h('td', {}, actions));
    if (!alert.acknowledged_at) {
      actions.append(h('button', { type: 'button', onclick: () => act(alert, 'ack') },
        'Acknowledge', h('span', { class: 'sr' }, ` alert ${alert.alert_id}`)));
    }
    const open = (kind) => {
      const form = actionForm(kind, alert, (payload, close) => act(alert, kind, payload, close));
      tr.after(form);
      form.querySelector('input, select').focus();
    };
    const named = (text) => [text, h('span', { class: 'sr' }, ` alert ${alert.alert_id}`)];
    if (alert.shelved) {
      actions.append(h('button', { type: 'button', onclick: () => act(alert, 'unshelve') },
        ...named('Unshelve')));
    } else if (alert.state !== 'cleared') {
      actions.append(h('button', { type: 'button', onclick: () => open('shelve') }, ...named('Shelve')));
    }
    if (alert.state !== 'cleared') {
      actions.append(h('button', { type: 'button', onclick: () => open('assign') }, ...named('Assign')));
    }
    return tr;
  };

  const load = async (fresh) => {
    if (busy) { pending = true; return; }
    busy = true;
    if (fresh) cursor = null;
    try {
      const page = await ctx.api.get(`/v1/alerts?${query()}`);
      if (fresh) clear(body);
      for (const alert of page.items) body.append(row(alert));
      if (!body.children.length) body.append(h('tr', {}, h('td', { colspan: 9 }, 'No alerts match.')));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      clear(message).append(h('p', { class: 'error', role: 'alert' }, `Alerts unavailable: ${error.message}`));
    } finally {
      busy = false;
      if (pending) { pending = false; load(true); }
    }
  };
  more.addEventListener('click', () => load(false));
  const filters = h('form', { class: 'inline', 'aria-label': 'Filter alerts' },
    h('div', { class: 'field' }, h('label', { for: 'alert-state' }, 'State'), state),
    h('div', { class: 'field' }, h('label', { for: 'alert-severity' }, 'Severity'), severity),
    h('div', { class: 'field' }, h('label', { for: 'alert-unit' }, 'Unit'), unitId),
    h('div', { class: 'field' }, h('label', { for: 'alert-shelved' }, 'Shelved only'), shelved),
    h('button', { type: 'submit' }, 'Filter'));
  filters.addEventListener('submit', (event) => { event.preventDefault(); load(true); });

  root.append(h('h2', {}, 'Alerts'), filters, message,
    h('div', { class: 'scroll' }, h('table', { class: 'list', 'aria-label': 'Alerts' },
      h('thead', {}, h('tr', {}, ...['Raised', 'Severity', 'State', 'Rule', 'Unit', 'Message',
        'Acknowledged', 'Assigned', 'Actions'].map((l) => h('th', { scope: 'col' }, l)))), body)),
    more);
  await load(true);

  let timer = null;
  return {
    onEvent(name) {
      if (name !== 'alerts') return;
      if (root.querySelector('tr.action-form')) return; // do not pull the form from under the operator
      clearTimeout(timer);
      timer = setTimeout(() => load(true), 300);
    },
    unmount() { clearTimeout(timer); },
  };
}
