// KPIs (SPEC §14): per bucket energy, round-trip efficiency, cycles, availability; the same
// query as CSV (GET /v1/kpis with Accept: text/csv) for download.

import { ApiError, readable } from '../api.js';
import { clear, dateTime, h, num } from '../dom.js';

const COLUMNS = [['energy_charged_kwh', 'Charged kWh', 1], ['energy_discharged_kwh', 'Discharged kWh', 1],
  ['rte_percent', 'RTE %', 1], ['equivalent_full_cycles', 'Cycles', 3],
  ['availability_percent', 'Availability %', 1], ['peak_charge_kw', 'Peak charge kW', 0],
  ['peak_discharge_kw', 'Peak discharge kW', 0], ['soh_first', 'SOH first', 1], ['soh_last', 'SOH last', 1],
  ['readings_received', 'Readings', 0], ['readings_expected', 'Expected', 0]];

const local = (date) => new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);

function field(id, label, control) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

export async function mount(root, ctx) {
  const now = new Date();
  const scope = h('select', { id: 'kpi-scope' }, ...['fleet', 'site', 'unit'].map((s) => h('option', { value: s }, s)));
  const id = h('input', { id: 'kpi-id', placeholder: 'SITE-01 or MP-0001', disabled: true });
  const from = h('input', { id: 'kpi-from', type: 'datetime-local', value: local(new Date(now - 86400000)) });
  const to = h('input', { id: 'kpi-to', type: 'datetime-local', value: local(now) });
  const bucket = h('select', { id: 'kpi-bucket' }, h('option', { value: '1h' }, '1 hour'), h('option', { value: '1d' }, '1 day'));
  const csv = h('button', { type: 'button' }, 'Download CSV');
  const out = h('div', { 'aria-live': 'polite' });
  scope.addEventListener('change', () => { id.disabled = scope.value === 'fleet'; id.required = !id.disabled; });

  const query = () => {
    const q = new URLSearchParams({ scope: scope.value, bucket: bucket.value,
      from: new Date(from.value).toISOString(), to: new Date(to.value).toISOString() });
    if (scope.value !== 'fleet') q.set('id', id.value.trim());
    return q;
  };
  const refused = (error) => h('p', { class: 'error', role: 'alert' },
    error.status ? `Refused (${error.status}): ${readable(error.detail)}` : error.message);

  const show = async () => {
    clear(out).append(h('p', { class: 'sub' }, 'Loading…'));
    try {
      const answer = await ctx.api.get(`/v1/kpis?${query()}`);
      const rows = answer.items;
      clear(out).append(
        h('p', { class: 'sub' }, `${answer.units} unit${answer.units === 1 ? '' : 's'}, `
          + `${num(answer.capacity_kwh / 1000, 2)} MWh; ${dateTime(answer.from)} to ${dateTime(answer.to)} `
          + `(widened to whole UTC ${answer.bucket === '1d' ? 'days' : 'hours'})`),
        h('div', { class: 'scroll' }, h('table', { class: 'list', 'aria-label': 'KPIs',
          'data-from': answer.from, 'data-to': answer.to },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Bucket'), ...COLUMNS.map(([, l]) => h('th', { scope: 'col' }, l)), h('th', { scope: 'col' }, 'Gaps'))),
        h('tbody', {}, ...rows.map((r) => h('tr', { 'data-bucket': r.bucket_start },
          h('th', { scope: 'row' }, dateTime(r.bucket_start)),
          ...COLUMNS.map(([k, , d]) => h('td', { class: 'num', 'data-field': k }, num(r[k], d))),
          h('td', { class: 'num', 'data-field': 'gap_count' }, r.gap_count)))))));
      if (!rows.length) out.append(h('p', { class: 'sub' }, 'No buckets in this range.'));
    } catch (error) {
      clear(out).append(refused(error));
    }
  };
  csv.addEventListener('click', async () => {
    try {
      const response = await ctx.api.raw(`/v1/kpis?${query()}`, { headers: { Accept: 'text/csv' } });
      if (!response.ok) {
        let detail = response.statusText;
        try { detail = (await response.json()).detail; } catch { /* not JSON */ }
        throw new ApiError(response.status, detail, '/v1/kpis');
      }
      const url = URL.createObjectURL(await response.blob());
      const a = h('a', { href: url, download: `kpis-${scope.value}-${bucket.value}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) {
      clear(out).append(refused(error));
    }
  });
  const form = h('form', { class: 'inline', 'aria-label': 'KPI query' },
    field('kpi-scope', 'Scope', scope), field('kpi-id', 'Site or unit', id), field('kpi-from', 'From', from),
    field('kpi-to', 'To', to), field('kpi-bucket', 'Bucket', bucket), h('button', { type: 'submit' }, 'Show'), csv);
  form.addEventListener('submit', (event) => { event.preventDefault(); show(); });
  root.append(h('h2', {}, 'KPIs'), form, out);
  await show();
  return {};
}
