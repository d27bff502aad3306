// Sites: per site energy, power, SOC spread and worst alert. The list comes from GET /v1/sites
// (SPEC §13); where the server has no such route, from the latest report's per-site figures,
// with the SOC spread from the site's units, and a notice saying what is missing.

import { ApiError } from '../api.js';
import { clear, h, num, severityBadge, unavailable } from '../dom.js';

const pick = (obj, ...names) => names.map((n) => obj[n]).find((v) => v !== undefined && v !== null);

async function spread(ctx, siteId) {
  const page = await ctx.api.get(`/v1/units?${new URLSearchParams({ kind: 'megapack', site: siteId, limit: '500' })}`);
  const socs = page.items.map((u) => u.soc_percent);
  return socs.length ? { min: Math.min(...socs), max: Math.max(...socs), partial: Boolean(page.next_cursor) } : null;
}

function fromApi(site) {
  const units = pick(site, 'units', 'unit_count');
  return {
    site_id: site.site_id,
    units: Array.isArray(units) ? units.length : units,
    energy_mwh: pick(site, 'energy_stored_mwh', 'energy_mwh') ?? (site.energy_stored_kwh ?? site.energy_kwh ?? null) / 1000,
    power_mw: pick(site, 'net_power_mw', 'power_mw') ?? (site.power_kw ?? site.net_power_kw ?? null) / 1000,
    soc_min: pick(site, 'soc_min_percent', 'min_soc_percent'),
    soc_max: pick(site, 'soc_max_percent', 'max_soc_percent'),
    worst: pick(site, 'worst_severity', 'worst_active_severity', 'worst_alert_severity'),
  };
}

function fromReport(site) {
  return { site_id: site.site_id, units: site.units, energy_mwh: site.energy_stored_mwh,
    power_mw: site.net_power_mw, soc_min: null, soc_max: null, worst: undefined };
}

export async function mount(root, ctx) {
  const body = h('tbody');
  const notes = h('div');
  root.append(h('h2', {}, 'Sites'), notes,
    h('div', { class: 'scroll' }, h('table', { class: 'list', 'aria-label': 'Sites' },
      h('thead', {}, h('tr', {}, ...['Site', 'Units', 'Energy MWh', 'Net power MW', 'SOC spread %',
        'Worst active alert'].map((l) => h('th', { scope: 'col' }, l)))), body)));

  let sites;
  try {
    const answer = await ctx.api.get('/v1/sites');
    sites = (Array.isArray(answer) ? answer : answer.items || answer.sites || []).map(fromApi);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    notes.append(unavailable('The sites list (worst alert per site)', 'GET /v1/sites'),
      h('p', { class: 'sub' }, 'Shown instead: the latest monitoring report’s per-site figures.'));
    const report = ctx.latest || await ctx.api.get('/v1/monitoring/summary');
    sites = (report.soc.sites || []).map(fromReport);
  }
  const render = () => {
    clear(body);
    for (const site of sites) {
      const soc = site.soc_min !== undefined && site.soc_min !== null
        ? `${num(site.soc_min, 0)}–${num(site.soc_max, 0)}` : (site.spread
          ? `${num(site.spread.min, 0)}–${num(site.spread.max, 0)}${site.spread.partial ? ' (first 500 units)' : ''}` : '—');
      body.append(h('tr', { 'data-site': site.site_id },
        h('th', { scope: 'row' }, site.site_id),
        h('td', { class: 'num' }, site.units ?? '—'),
        h('td', { class: 'num' }, num(site.energy_mwh, 2)),
        h('td', { class: 'num' }, num(site.power_mw, 2)),
        h('td', { class: 'num' }, soc),
        h('td', {}, site.worst ? severityBadge(site.worst) : (site.worst === undefined ? 'see Alerts' : 'none'))));
    }
    if (!sites.length) body.append(h('tr', {}, h('td', { colspan: 6 }, 'No sites have reported yet.')));
  };
  render();
  await Promise.all(sites.filter((s) => s.soc_min === undefined || s.soc_min === null).map(async (s) => {
    s.spread = await spread(ctx, s.site_id);
  }));
  render();

  return {
    onEvent(name, data) {
      if (name !== 'summary' || !notes.children.length) return;
      const bySite = new Map((data.soc.sites || []).map((s) => [s.site_id, fromReport(s)]));
      sites = sites.map((s) => ({ ...s, ...(bySite.get(s.site_id) || {}), spread: s.spread }));
      render();
    },
  };
}
