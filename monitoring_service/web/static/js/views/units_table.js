// A paged list of units (server-side paging by cursor), its visible rows updated live.

import { age, clear, h, num, stateBadge } from '../dom.js';

export class UnitTable {
  constructor(ctx, { pageSize = 50, onPage = () => {}, filter = {} } = {}) {
    this.ctx = ctx;
    this.pageSize = pageSize;
    this.onPage = onPage;
    this.filter = filter;
    this.cursors = [null]; // the cursor of each page seen so far
    this.page = 0;
    this.rows = new Map(); // unit id -> {tr, unit}
    this.body = h('tbody');
    this.kind = h('select', { id: 'units-kind', onchange: () => this.reset() },
      h('option', { value: '' }, 'all'), h('option', { value: 'megapack' }, 'Megapacks'),
      h('option', { value: 'ev' }, 'EVs'));
    this.prev = h('button', { type: 'button', onclick: () => this.go(-1) }, '← Previous');
    this.next = h('button', { type: 'button', onclick: () => this.go(1) }, 'Next →');
    this.where = h('span', { class: 'sub', 'aria-live': 'polite' });
    this.element = h('section', { class: 'units', 'aria-label': 'Units' },
      h('div', { class: 'toolbar' }, h('label', { for: 'units-kind' }, 'Kind '), this.kind,
        this.prev, this.next, this.where),
      h('div', { class: 'scroll' }, h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ...['Unit', 'Kind', 'Site / fleet', 'State', 'SOC %',
          'Power kW', 'Temp °C', 'Last reading'].map((label) => h('th', { scope: 'col' }, label)))),
        this.body)));
  }

  ids() { return [...this.rows.keys()]; }

  reset() { this.cursors = [null]; this.page = 0; this.load().then(this.onPage); }

  async go(step) {
    const page = this.page + step;
    if (page < 0 || page >= this.cursors.length) return;
    this.page = page;
    await this.load();
    this.onPage();
  }

  async load() {
    const query = new URLSearchParams({ limit: String(this.pageSize) });
    const cursor = this.cursors[this.page];
    if (cursor) query.set('cursor', cursor);
    if (this.kind.value) query.set('kind', this.kind.value);
    for (const [name, value] of Object.entries(this.filter)) if (value) query.set(name, value);
    const page = await this.ctx.api.get(`/v1/units?${query}`);
    this.cursors.length = this.page + 1;
    if (page.next_cursor) this.cursors.push(page.next_cursor);
    clear(this.body);
    this.rows.clear();
    for (const unit of page.items) {
      const tr = h('tr', { 'data-unit': unit.unit_id });
      this.rows.set(unit.unit_id, { tr, unit });
      this.render(unit.unit_id);
      this.body.append(tr);
    }
    if (!page.items.length) {
      this.body.append(h('tr', {}, h('td', { colspan: 8 }, 'No units have reported yet.')));
    }
    this.prev.disabled = this.page === 0;
    this.next.disabled = !page.next_cursor;
    this.where.textContent = `page ${this.page + 1} · ${page.items.length} units`;
  }

  render(unitId) {
    const row = this.rows.get(unitId);
    const { tr, unit } = row;
    if (!row.cells) { // built once: focus and selection survive the live updates
      row.cells = {
        state: h('td'), soc: h('td', { class: 'num', 'data-field': 'soc_percent' }),
        power: h('td', { class: 'num' }), temp: h('td', { class: 'num' }),
        seen: h('td', { 'data-field': 'last_seen' }),
      };
      tr.append(
        h('th', { scope: 'row' },
          h('a', { href: `#/units/${encodeURIComponent(unit.unit_id)}` }, unit.unit_id)),
        h('td', {}, unit.kind), h('td', {}, unit.site_id || unit.fleet_id || '—'),
        row.cells.state, row.cells.soc, row.cells.power, row.cells.temp, row.cells.seen);
    }
    const now = this.ctx.now || new Date();
    const silent = (now - new Date(unit.last_seen)) / 1000;
    const stale = this.ctx.now ? silent >= this.ctx.config.stale_after_s : unit.stale;
    const badge = `${unit.state}|${stale}`;
    if (row.badge !== badge) {
      clear(row.cells.state).append(stateBadge(unit.state, stale));
      row.badge = badge;
    }
    row.cells.soc.textContent = num(unit.soc_percent, 1);
    row.cells.power.textContent = num(unit.power_kw, 0);
    row.cells.temp.textContent = num(unit.temperature_c, 1);
    row.cells.seen.textContent = `${age(silent)} ago`;
    row.cells.seen.dataset.at = unit.last_seen;
  }

  /** Changed units pushed by the server. */
  update(units) {
    for (const change of units) {
      const row = this.rows.get(change.unit_id);
      if (!row) continue;
      row.unit = { ...row.unit, ...change };
      this.render(change.unit_id);
    }
  }

  /** The server's clock moved: ages and staleness. */
  tick() { for (const id of this.rows.keys()) this.render(id); }
}
