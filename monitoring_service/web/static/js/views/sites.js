// Sites: per site energy, power, SOC spread and worst active alert (GET /v1/sites, SPEC §13),
// reloaded with each new monitoring report.

import { clear, h, num, severityBadge } from '../dom.js';

export async function mount(root, ctx) {
  const body = h('tbody');
  root.append(h('h2', {}, 'Sites'),
    h('div', { class: 'scroll' }, h('table', { class: 'list', 'aria-label': 'Sites' },
      h('thead', {}, h('tr', {}, ...['Site', 'Units', 'Energy MWh', 'Net power MW', 'SOC spread %',
        'Worst active alert'].map((l) => h('th', { scope: 'col' }, l)))), body)));

  const render = (sites) => {
    clear(body);
    for (const site of sites) {
      body.append(h('tr', { 'data-site': site.site_id },
        h('th', { scope: 'row' }, site.site_id),
        h('td', { class: 'num' }, `${site.reporting} of ${site.units}`),
        h('td', { class: 'num' }, num(site.energy_stored_mwh, 2)),
        h('td', { class: 'num' }, num(site.net_power_mw, 2)),
        h('td', { class: 'num' }, `${num(site.soc_min_percent, 0)}–${num(site.soc_max_percent, 0)}`),
        h('td', {}, site.worst_severity ? severityBadge(site.worst_severity) : 'none')));
    }
    if (!sites.length) body.append(h('tr', {}, h('td', { colspan: 6 }, 'No sites have reported yet.')));
  };
  let loading = null;
  const load = async () => {
    if (loading) return loading; // one request at a time; a report arriving meanwhile joins it
    loading = ctx.api.get('/v1/sites').then((answer) => render(answer.items))
      .finally(() => { loading = null; });
    return loading;
  };
  await load();

  return {
    onEvent(name) {
      if (name === 'summary' || name === 'alerts') load().catch(() => {}); // the next report retries
    },
  };
}
