// One unit: its latest reading (live), charts over a chosen range, its commands with their
// lifecycle (pushed as it moves) and the form that sends one.

import { Chart } from '../chart.js';
import { age, clear, dateTime, h, num, stateBadge, statusBadge, time } from '../dom.js';
import { commandForm } from './command_form.js';

const RANGES = [['15m', '15 minutes', 900], ['1h', '1 hour', 3600], ['6h', '6 hours', 21600],
  ['24h', '24 hours', 86400], ['7d', '7 days', 604800]];
const SERIES = { // kind: [[title, unit, raw field, bucket field, unit-row field]]
  megapack: [['SOC', '%', 'soc_percent', 'soc_percent_avg', 'soc_percent'],
    ['Power', 'kW', 'power_kw', 'power_kw_avg', 'power_kw'],
    ['Temperature', '°C', 'temperature_c', 'temperature_c_avg', 'temperature_c']],
  ev: [['Battery', '%', 'battery_soc_percent', 'battery_soc_percent_avg', 'soc_percent'],
    ['Charge power', 'kW', 'charge_power_kw', 'charge_power_kw_avg', 'power_kw'],
    ['Battery temperature', '°C', 'battery_temp_c', 'battery_temp_c_avg', 'temperature_c']],
};
const STEPS = ['scheduled', 'sent', 'acknowledged', 'completed', 'rejected', 'failed', 'expired',
  'superseded', 'lapsed'];

function facts(unit) {
  const rows = [['Kind', unit.kind], ['Site / fleet', unit.site_id || unit.fleet_id || '—'],
    ['State', stateBadge(unit.state, unit.stale)], ['SOC', `${num(unit.soc_percent, 1)} %`],
    ['Power', `${num(unit.power_kw, 0)} kW`], ['Temperature', `${num(unit.temperature_c, 1)} °C`],
    ['Fault codes', (unit.fault_codes || []).join(', ') || 'none'],
    ['Last reading', h('span', { 'data-field': 'last_seen', 'data-at': unit.last_seen }, dateTime(unit.last_seen))]];
  return h('dl', { class: 'facts' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function commandRow(command) {
  const steps = STEPS.filter((s) => command[`${s}_at`])
    .map((s) => `${s} ${time(command[`${s}_at`])}`).join(' · ');
  return h('tr', { 'data-command': command.command_id },
    h('td', {}, time(command.created_at)),
    h('th', { scope: 'row' }, command.type),
    h('td', {}, JSON.stringify(command.params || {})),
    h('td', {}, statusBadge(command.status)),
    h('td', { class: 'wrap' }, steps || '—'),
    h('td', { class: 'wrap' }, command.reason || command.delivery_error || ''));
}

export async function mount(root, ctx, [unitId]) {
  let unit = await ctx.api.get(`/v1/units/${encodeURIComponent(unitId)}`);
  const factsBox = h('div', { class: 'card' }, facts(unit));
  const range = h('select', { id: 'range' },
    ...RANGES.map(([v, label]) => h('option', { value: v, selected: v === '15m' }, label)));
  const charts = h('div', { class: 'grid2' });
  const commandsBody = h('tbody');
  const commands = new Map();
  const series = SERIES[unit.kind];
  let plots = [];
  let rangeEnd = null;
  let rangeStart = null;

  const putCommand = (command) => {
    const merged = { ...(commands.get(command.command_id) || {}), ...command };
    commands.set(command.command_id, merged);
    const row = commandRow(merged);
    const old = commandsBody.querySelector(`[data-command="${command.command_id}"]`);
    if (old) old.replaceWith(row); else commandsBody.prepend(row);
  };

  const loadCharts = async () => {
    const [, , seconds] = RANGES.find(([v]) => v === range.value);
    const end = new Date();
    const start = new Date(end - seconds * 1000);
    const bucket = seconds > 3600 ? '1m' : 'raw';
    const query = new URLSearchParams({ from: start.toISOString(), to: end.toISOString(), bucket, limit: '10000' });
    const page = await ctx.api.get(`/v1/units/${encodeURIComponent(unitId)}/telemetry?${query}`);
    plots.forEach((p) => p.destroy());
    clear(charts);
    const timeField = bucket === '1m' ? 'bucket' : 'time';
    const times = page.items.map((r) => new Date(r[timeField]).getTime() / 1000);
    plots = series.map(([title, u, raw, agg]) => {
      const chart = new Chart(charts, { title, unit: u });
      chart.set([...times], page.items.map((r) => r[bucket === '1m' ? agg : raw]));
      return chart;
    });
    charts.dataset.bucket = bucket;
    rangeStart = start.getTime() / 1000;
    rangeEnd = end;
  };
  range.addEventListener('change', loadCharts);

  root.append(
    h('div', { class: 'title' }, h('h2', {}, unitId), h('p', { class: 'sub' }, h('a', { href: '#/' }, '← fleet'))),
    h('div', { class: 'grid2' }, factsBox, commandForm(ctx, unit, { onSent: putCommand })),
    h('h2', {}, 'Telemetry'),
    h('div', { class: 'toolbar' }, h('label', { for: 'range' }, 'Range '), range,
      h('span', { class: 'sub' }, 'live while the range ends now')),
    charts,
    h('h2', {}, 'Commands'),
    h('div', { class: 'scroll' }, h('table', { class: 'list', 'aria-label': 'Commands' },
      h('thead', {}, h('tr', {}, ...['Created', 'Type', 'Params', 'Status', 'Steps', 'Reason']
        .map((label) => h('th', { scope: 'col' }, label)))), commandsBody)));

  await loadCharts();
  try {
    const page = await ctx.control.get(`/v1/units/${encodeURIComponent(unitId)}/commands?limit=20`);
    for (const command of [...page.items].reverse()) putCommand(command);
  } catch (error) {
    commandsBody.append(h('tr', {}, h('td', { colspan: 6, class: 'error', role: 'alert' },
      `Commands unavailable: ${error.message}`)));
  }

  return {
    watch: () => ({ ids: [unitId] }),
    onEvent(name, data) {
      if (name === 'units') {
        const change = data.find((u) => u.unit_id === unitId);
        if (!change) return;
        unit = { ...unit, ...change, stale: false };
        clear(factsBox).append(facts(unit));
        const t = new Date(change.last_seen).getTime() / 1000;
        if (rangeEnd && t > rangeEnd.getTime() / 1000 - 5 && charts.dataset.bucket === 'raw') {
          const span = rangeEnd.getTime() / 1000 - rangeStart;
          plots.forEach((p, i) => p.append(t, change[series[i][4]], t - span));
        }
      }
      if (name === 'commands') data.forEach(putCommand);
      if (name === 'tick') {
        const seen = factsBox.querySelector('[data-field="last_seen"]');
        const silent = (new Date(data.now) - new Date(unit.last_seen)) / 1000;
        if (seen) seen.textContent = `${dateTime(unit.last_seen)} (${age(silent)} ago)`;
      }
    },
    unmount() { plots.forEach((p) => p.destroy()); },
  };
}
