// Sites: per site energy, power, SOC spread and worst active alert (GET /v1/sites, reloaded
// with each new report), and one site's last hours from its 1-minute buckets
// (GET /v1/sites/{id}/telemetry, reloaded once a minute).

import { Chart } from '../chart.js';
import { clear, h, num, severityBadge } from '../dom.js';

const HOURS = [[1, '1 hour'], [6, '6 hours'], [24, '24 hours']];
const SERIES = [['Net power', 'MW', 'net_power_mw'], ['Energy stored', 'MWh', 'energy_stored_mwh'],
  ['SOC (mean of units)', '%', 'soc_mean_percent']];
const CHART_EVERY_MS = 60_000; // a new bucket each minute

export async function mount(root, ctx) {
  const body = h('tbody');
  const hours = h('select', { id: 'site-hours' },
    ...HOURS.map(([value, label]) => h('option', { value, selected: value === 6 }, label)));
  const chartTitle = h('h2', {}, 'Site history');
  const charts = h('div', { class: 'grid2', 'aria-live': 'off' });
  let chosen = null;
  let plots = [];
  let chartedAt = 0;

  const chooser = (siteId) => h('button', {
    type: 'button', class: 'link', 'aria-pressed': String(siteId === chosen),
    'aria-label': `${siteId}: show its history`, onclick: () => choose(siteId),
  }, siteId);
  const render = (sites) => {
    if (chosen === null && sites.length) chosen = sites[0].site_id;
    clear(body);
    for (const site of sites) {
      body.append(h('tr', { 'data-site': site.site_id },
        h('th', { scope: 'row' }, chooser(site.site_id)),
        h('td', { class: 'num' }, `${site.reporting} of ${site.units}`),
        h('td', { class: 'num' }, num(site.energy_stored_mwh, 2)),
        h('td', { class: 'num' }, num(site.net_power_mw, 2)),
        h('td', { class: 'num' }, `${num(site.soc_min_percent, 0)}–${num(site.soc_max_percent, 0)}`),
        h('td', {}, site.worst_severity ? severityBadge(site.worst_severity) : 'none')));
    }
    if (!sites.length) body.append(h('tr', {}, h('td', { colspan: 6 }, 'No sites have reported yet.')));
  };
  let loading = null;
  const load = () => {
    loading ||= ctx.api.get('/v1/sites').then((answer) => render(answer.items))
      .finally(() => { loading = null; }); // one request at a time; a report meanwhile joins it
    return loading;
  };

  const loadCharts = async () => {
    if (chosen === null) return;
    const siteId = chosen;
    const end = new Date();
    const query = new URLSearchParams({ from: new Date(end - hours.value * 3600_000).toISOString(),
      to: end.toISOString(), limit: '1440' });
    const history = await ctx.api.get(`/v1/sites/${encodeURIComponent(siteId)}/telemetry?${query}`);
    if (siteId !== chosen) return; // another site was chosen meanwhile
    chartedAt = Date.now();
    plots.forEach((plot) => plot.destroy());
    clear(charts);
    chartTitle.textContent = `${siteId}: the last ${hours.selectedOptions[0].textContent}`;
    const times = history.items.map((item) => new Date(item.bucket).getTime() / 1000);
    plots = SERIES.map(([title, unit, field]) => {
      const chart = new Chart(charts, { title, unit });
      const span = [new Date(history.from) / 1000, new Date(history.to) / 1000];
      chart.set([...times], history.items.map((item) => item[field]), span);
      Object.assign(chart.element.dataset, { series: field, // what the tests compare with the API
        firstBucket: history.items.length ? history.items[0].bucket : '',
        firstValue: history.items.length ? history.items[0][field] : '' });
      return chart;
    });
    Object.assign(charts.dataset, { chartSite: siteId, from: history.from, to: history.to });
  };
  const choose = (siteId) => {
    chosen = siteId;
    for (const button of body.querySelectorAll('button[aria-pressed]')) {
      button.setAttribute('aria-pressed', String(button.textContent === siteId));
    }
    loadCharts();
  };
  hours.addEventListener('change', loadCharts);

  root.append(h('h2', {}, 'Sites'),
    h('div', { class: 'scroll' }, h('table', { class: 'list', 'aria-label': 'Sites' },
      h('thead', {}, h('tr', {}, ...['Site', 'Units reporting', 'Energy MWh', 'Net power MW',
        'SOC spread %', 'Worst active alert'].map((l) => h('th', { scope: 'col' }, l)))), body)),
    h('div', { class: 'title' }, chartTitle,
      h('div', { class: 'field' }, h('label', { for: 'site-hours' }, 'Show the last '), hours)),
    h('p', { class: 'sub' }, 'Per minute, from the 1-minute averages of the site’s Megapacks.'),
    charts);
  await load();
  await loadCharts();

  return {
    onEvent(name) {
      if (name === 'summary' || name === 'alerts') load().catch(() => {}); // the next one retries
      if (name === 'summary' && Date.now() - chartedAt >= CHART_EVERY_MS) loadCharts().catch(() => {});
    },
    unmount() { plots.forEach((plot) => plot.destroy()); },
  };
}
