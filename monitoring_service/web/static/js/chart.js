// A time series chart on the vendored uPlot (MIT, static/vendor/LICENSE.uPlot).

import uPlot from '../vendor/uPlot.esm.js';
import { h } from './dom.js';

export class Chart {
  constructor(container, { title, unit, stroke = '#0a58ca' }) {
    this.points = [[], []];
    this.span = null; // [from, to] in seconds: the x axis spans it, however few the points
    this.element = h('figure', { class: 'card chart' },
      h('figcaption', {}, h('h3', {}, `${title} (${unit})`)));
    container.append(this.element);
    this.empty = h('p', { class: 'sub' }, 'No readings in this range.');
    const width = Math.max(260, this.element.clientWidth - 32);
    this.plot = new uPlot({
      width, height: 180,
      series: [{}, { label: title, stroke, width: 1.5 }], // points shown where sparse
      axes: [{}, { size: 56 }],
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
    }, this.points, this.element);
    this.resize = new ResizeObserver(() => {
      const next = Math.max(260, this.element.clientWidth - 32);
      if (Math.abs(next - this.plot.width) > 4) this.plot.setSize({ width: next, height: 180 });
    });
    this.resize.observe(this.element);
  }

  /** Replace the data: times in seconds since the epoch, values (null: a gap); the x axis
   * spans `span` ([from, to] in seconds) when given, else the data. */
  set(times, values, span = this.span) {
    this.span = span;
    this.points = [times, values];
    this.plot.setData(this.points);
    if (span) this.plot.setScale('x', { min: span[0], max: span[1] });
    this.element.dataset.points = String(times.length);
    if (!times.length) this.element.append(this.empty); else this.empty.remove();
  }

  /** A new point at the end; points older than `oldest` (seconds) drop out. */
  append(t, value, oldest) {
    const [times, values] = this.points;
    if (times.length && t <= times[times.length - 1]) return;
    times.push(t);
    values.push(value);
    while (times.length && times[0] < oldest) { times.shift(); values.shift(); }
    this.set(times, values);
  }

  destroy() {
    this.resize.disconnect();
    this.plot.destroy();
  }
}
