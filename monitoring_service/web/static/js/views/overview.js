// Fleet overview: the latest report's figures (pushed as each report is made) and a paged,
// live list of units (only the rows on screen are watched).

import { h, num, severityBadge, time } from '../dom.js';
import { UnitTable } from './units_table.js';

const sum = (items, field) => items.reduce((total, item) => total + (item[field] || 0), 0);

/** The figures the overview shows, from a report (the tests compute them the same way). */
export function figures(report) {
  const sites = report.soc.sites || [];
  const open = report.faults.open_alerts || {};
  return {
    reporting: `${report.units.reporting}`,
    stale: `${report.units.stale}`,
    total: `${report.units.total}`,
    soc_mean: num(report.soc.mean_percent, 1),
    soc_range: `${num(report.soc.min_percent, 0)}–${num(report.soc.max_percent, 0)}`,
    charging_mw: num(sum(sites, 'charging_mw'), 2),
    discharging_mw: num(sum(sites, 'discharging_mw'), 2),
    stored_mwh: num(sum(sites, 'energy_stored_mwh'), 2),
    alerts_critical: `${open.critical || 0}`,
    alerts_warning: `${open.warning || 0}`,
    alerts_info: `${open.info || 0}`,
    in_fault: `${report.faults.units_in_fault}`,
    evs_charging: `${report.evs.charging}`,
    evs_low: `${report.evs.low_battery}`,
    evs_critical: `${report.evs.critical_battery}`,
  };
}

function card(label, field, unit, extra = null) {
  return h('div', { class: 'card figure' },
    h('h3', {}, label),
    h('p', { class: 'value' }, h('span', { 'data-figure': field }, '—'), unit ? ` ${unit}` : ''),
    extra);
}

export async function mount(root, ctx) {
  const stamp = h('span', { 'data-figure': 'generated_at' }, '—');
  const grid = h('section', { class: 'figures', 'aria-label': 'Fleet figures' },
    card('Units reporting', 'reporting', '',
      h('p', { class: 'sub' }, h('span', { 'data-figure': 'stale' }, '—'), ' stale of ',
        h('span', { 'data-figure': 'total' }, '—'))),
    card('Fleet SOC (mean)', 'soc_mean', '%',
      h('p', { class: 'sub' }, 'range ', h('span', { 'data-figure': 'soc_range' }, '—'), ' %')),
    card('Charging', 'charging_mw', 'MW'),
    card('Discharging', 'discharging_mw', 'MW'),
    card('Energy stored', 'stored_mwh', 'MWh'),
    h('div', { class: 'card figure' }, h('h3', {}, 'Active alerts'),
      h('ul', { class: 'severities' },
        h('li', {}, severityBadge('critical'), ' ', h('span', { 'data-figure': 'alerts_critical' }, '—')),
        h('li', {}, severityBadge('warning'), ' ', h('span', { 'data-figure': 'alerts_warning' }, '—')),
        h('li', {}, severityBadge('info'), ' ', h('span', { 'data-figure': 'alerts_info' }, '—'))),
      h('p', { class: 'sub' }, 'Megapacks in FAULT: ', h('span', { 'data-figure': 'in_fault' }, '—'))),
    h('div', { class: 'card figure' }, h('h3', {}, 'EVs'),
      h('p', { class: 'sub' }, h('span', { 'data-figure': 'evs_charging' }, '—'), ' charging · ',
        h('span', { 'data-figure': 'evs_low' }, '—'), ' low · ',
        h('span', { 'data-figure': 'evs_critical' }, '—'), ' critical')));
  const table = new UnitTable(ctx, { pageSize: 50, onPage: () => ctx.rewatch() });
  root.append(
    h('div', { class: 'title' }, h('h2', {}, 'Fleet overview'),
      h('p', { class: 'sub' }, 'Report of ', stamp)),
    grid,
    h('h2', {}, 'Units'),
    table.element);

  const show = (report) => {
    for (const [field, value] of Object.entries(figures(report))) {
      const el = grid.querySelector(`[data-figure="${field}"]`);
      if (el && el.textContent !== value) el.textContent = value;
    }
    stamp.textContent = time(report.generated_at);
    stamp.dataset.at = report.generated_at;
  };
  const report = ctx.latest || await ctx.api.get('/v1/monitoring/summary');
  show(report);
  await table.load();

  return {
    watch: () => ({ ids: table.ids() }),
    onEvent(name, data) {
      if (name === 'summary') show(data);
      if (name === 'units') table.update(data);
      if (name === 'tick') table.tick(new Date(data.now));
    },
  };
}
