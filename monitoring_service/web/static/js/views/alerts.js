// Alerts: filter, acknowledge, shelve, assign. Reloaded when the server says an alert changed.
// Shelve and assign need the alarm API of SPEC §13; where it answers 404 the view says so.

import { ApiError, readable } from '../api.js';
import { clear, dateTime, h, severityBadge, unavailable } from '../dom.js';
import { actionForm } from './alert_actions.js';

const STATES = ['', 'active', 'acknowledged', 'cleared'];
const SEVERITIES = ['', 'critical', 'warning', 'info'];

function select(id, values, labelOf) {
  return h('select', { id }, ...values.map((v) => h('option', { value: v }, labelOf(v))));
}

export async function mount(root, ctx) {
  const state = select('alert-state', STATES, (v) => v || 'any state');
  const severity = select('alert-severity', SEVERITIES, (v) => v || 'any severity');
  const unitId = h('input', { id: 'alert-unit', type: 'search', placeholder: 'e.g. MP-0002', pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}' });
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const message = h('div', { role: 'status', 'aria-live': 'polite' });
  let cursor = null;
  let serverSeverity = true; // false once the server said it has no severity filter
  let busy = false;
  let pending = false;

  const query = () => {
    const q = new URLSearchParams({ limit: '50' });
    if (state.value) q.set('state', state.value);
    if (unitId.value.trim()) q.set('unit_id', unitId.value.trim());
    if (severity.value && serverSeverity) q.set('severity', severity.value);
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
      clear(message).append(error instanceof ApiError && error.missingRoute
        ? unavailable(`“${action}”`, `POST /v1/alerts/{id}/${action}`)
        : h('p', { class: 'error', role: 'alert' }, `${action} refused (${error.status}): ${readable(error.detail)}`));
    }
  };

  const row = (alert) => {
    const actions = h('div', { class: 'actions' });
    const tr = h('tr', { 'data-alert': alert.alert_id, 'data-state': alert.state },
      h('td', {}, dateTime(alert.raised_at)),
      h('td', {}, severityBadge(alert.severity)),
      h('td', { 'data-field': 'state' }, alert.shelved_until ? `${alert.state} (shelved)` : alert.state),
      h('th', { scope: 'row' }, alert.rule),
      h('td', {}, h('a', { href: `#/units/${encodeURIComponent(alert.unit_id)}` }, alert.unit_id)),
      h('td', { class: 'wrap' }, alert.message),
      h('td', {}, alert.acknowledged_by ? `${alert.acknowledged_by} ${dateTime(alert.acknowledged_at)}` : '—'),
      h('td', {}, alert.assigned_to || '—'),
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
    if (alert.state !== 'cleared') {
      actions.append(h('button', { type: 'button', onclick: () => open('shelve') }, 'Shelve'),
        h('button', { type: 'button', onclick: () => open('assign') }, 'Assign'));
    }
    return tr;
  };

  const load = async (fresh) => {
    if (busy) { pending = true; return; }
    busy = true;
    if (fresh) cursor = null;
    try {
      let page;
      try {
        page = await ctx.api.get(`/v1/alerts?${query()}`);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 422 && String(error.detail).includes('severity'))) throw error;
        serverSeverity = false; // this server filters by state and unit only
        page = await ctx.api.get(`/v1/alerts?${query()}`);
      }
      if (fresh) clear(body);
      const items = page.items.filter((a) => serverSeverity || !severity.value || a.severity === severity.value);
      for (const alert of items) body.append(row(alert));
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
