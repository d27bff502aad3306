// EVs: positions on a map drawn in SVG from latitude/longitude (no tile server), battery shown
// by colour AND marker shape, low / critical / charging lists. Moves are pushed as they happen.

import { clear, h, num } from '../dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 800;
const H = 480;
const LIST_MAX = 100;

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export function batteryClass(soc, config) {
  if (soc <= config.ev_critical_battery_percent) return 'critical';
  if (soc <= config.ev_low_battery_percent) return 'low';
  return 'ok';
}

function bounds(items) {
  // Equirectangular around the fleet, widened so that a degree of longitude keeps its true
  // length against a degree of latitude (cos of the middle latitude) in a W×H picture.
  const lats = items.map((e) => e.latitude);
  const lons = items.map((e) => e.longitude);
  const mid = (Math.min(...lats) + Math.max(...lats)) / 2;
  const k = Math.max(Math.cos((mid * Math.PI) / 180), 0.05);
  let latSpan = Math.max(Math.max(...lats) - Math.min(...lats), 0.01) * 1.2;
  let lonSpan = Math.max(Math.max(...lons) - Math.min(...lons), 0.01) * 1.2;
  if (lonSpan * k / latSpan < W / H) lonSpan = (latSpan * W) / H / k; else latSpan = (lonSpan * k * H) / W;
  const midLon = (Math.min(...lons) + Math.max(...lons)) / 2;
  return { s: mid - latSpan / 2, n: mid + latSpan / 2, w: midLon - lonSpan / 2, e: midLon + lonSpan / 2 };
}

function marker(kind) { // shape by battery: the colour is not the only carrier
  if (kind === 'critical') return svg('rect', { x: -5, y: -5, width: 10, height: 10 });
  if (kind === 'low') return svg('path', { d: 'M0,-6 L6,5 L-6,5 Z' });
  return svg('circle', { r: 5 });
}

export async function mount(root, ctx) {
  const { items, truncated } = await ctx.api.get('/v1/console/evs');
  const vehicles = new Map(items.map((e) => [e.unit_id, e]));
  const map = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'map-title' });
  const lists = h('div', { class: 'grid2' });
  const summary = h('p', { class: 'sub', 'aria-live': 'polite' });
  let box = items.length ? bounds(items) : { s: -1, n: 1, w: -1, e: 1 };
  const points = new Map();

  const project = (e) => {
    const x = ((e.longitude - box.w) / (box.e - box.w)) * W;
    const y = ((box.n - e.latitude) / (box.n - box.s)) * H;
    return [x.toFixed(1), y.toFixed(1)];
  };
  const grid = () => {
    const g = svg('g', { class: 'graticule', stroke: '#b8c7d6', 'stroke-width': 0.5, fill: '#59636e', 'font-size': 11 });
    for (let i = 1; i <= 3; i += 1) {
      const lat = box.s + ((box.n - box.s) * i) / 4;
      const lon = box.w + ((box.e - box.w) * i) / 4;
      const [, y] = project({ latitude: lat, longitude: box.w });
      const [x] = project({ latitude: box.s, longitude: lon });
      g.append(svg('line', { x1: 0, x2: W, y1: y, y2: y }), svg('line', { x1: x, x2: x, y1: 0, y2: H }));
      const tLat = svg('text', { x: 4, y: Number(y) - 3, stroke: 'none' }); tLat.textContent = `${lat.toFixed(3)}°`;
      const tLon = svg('text', { x: Number(x) + 3, y: H - 4, stroke: 'none' }); tLon.textContent = `${lon.toFixed(3)}°`;
      g.append(tLat, tLon);
    }
    return g;
  };
  const place = (e) => {
    const kind = batteryClass(e.soc_percent, ctx.config);
    let p = points.get(e.unit_id);
    if (!p || p.kind !== kind) {
      const g = svg('g', { class: `ev battery-${kind}${e.charging_state === 'CHARGING' ? ' charging' : ''}`, 'data-ev': e.unit_id });
      g.append(marker(kind), svg('title'));
      if (p) p.g.replaceWith(g); else map.append(g);
      p = { g, kind };
      points.set(e.unit_id, p);
    }
    const [x, y] = project(e);
    p.g.setAttribute('transform', `translate(${x},${y})`);
    p.g.classList.toggle('charging', e.charging_state === 'CHARGING');
    p.g.querySelector('title').textContent = `${e.unit_id}: ${num(e.soc_percent, 0)} % battery, ${e.charging_state}`;
  };
  const drawAll = () => {
    clear(map);
    points.clear();
    const title = svg('title', { id: 'map-title' });
    title.textContent = `Map of ${vehicles.size} vehicles by latitude and longitude`;
    map.append(title, grid());
    for (const e of vehicles.values()) place(e);
  };
  const list = (title, id, pick) => {
    const chosen = [...vehicles.values()].filter(pick).sort((a, b) => a.soc_percent - b.soc_percent);
    return h('section', { class: 'card', 'aria-labelledby': id }, h('h3', { id }, `${title}: ${chosen.length}`),
      chosen.length ? h('ul', {}, ...chosen.slice(0, LIST_MAX).map((e) => h('li', {},
        h('a', { href: `#/units/${encodeURIComponent(e.unit_id)}` }, e.unit_id),
        ` ${num(e.soc_percent, 0)} % · ${e.charging_state}`))) : h('p', { class: 'sub' }, 'none'),
      chosen.length > LIST_MAX ? h('p', { class: 'sub' }, `and ${chosen.length - LIST_MAX} more`) : null);
  };
  const drawLists = () => {
    const c = ctx.config;
    clear(lists).append(
      list('Critical battery', 'ev-critical', (e) => e.soc_percent <= c.ev_critical_battery_percent),
      list('Low battery', 'ev-low', (e) => e.soc_percent > c.ev_critical_battery_percent && e.soc_percent <= c.ev_low_battery_percent),
      list('Charging', 'ev-charging', (e) => e.charging_state === 'CHARGING'));
    summary.textContent = `${vehicles.size} vehicles${truncated ? ' (first 20,000)' : ''}`;
  };

  const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' },
    h('li', {}, h('span', { class: 'battery-ok', 'aria-hidden': 'true' }, '●'), ` battery above ${ctx.config.ev_low_battery_percent} %`),
    h('li', {}, h('span', { class: 'battery-low', 'aria-hidden': 'true' }, '▲'), ` low (≤ ${ctx.config.ev_low_battery_percent} %)`),
    h('li', {}, h('span', { class: 'battery-critical', 'aria-hidden': 'true' }, '■'), ` critical (≤ ${ctx.config.ev_critical_battery_percent} %)`),
    h('li', {}, h('span', { class: 'ring', 'aria-hidden': 'true' }, '◎'), ' thick outline: charging'));
  root.append(h('div', { class: 'title' }, h('h2', {}, 'EVs'), summary),
    h('div', { class: 'map card' }, map, legend), lists);
  drawAll();
  drawLists();

  let listTimer = null;
  return {
    watch: () => ({ evs: true }),
    onEvent(name, data) {
      if (name !== 'evs') return;
      let outside = false;
      for (const e of data) {
        vehicles.set(e.unit_id, e);
        if (e.latitude < box.s || e.latitude > box.n || e.longitude < box.w || e.longitude > box.e) outside = true;
        else place(e);
      }
      if (outside) { box = bounds([...vehicles.values()]); drawAll(); }
      if (!listTimer) listTimer = setTimeout(() => { listTimer = null; drawLists(); }, 1000);
    },
    unmount() { clearTimeout(listTimer); },
  };
}
