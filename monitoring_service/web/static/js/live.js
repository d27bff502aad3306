// The push channel: server-sent events read with fetch() so that the key travels in the
// X-API-Key header (EventSource cannot send headers, and a key in its URL would be logged).

const STALL_MS = 6000; // no tick for this long: the stream is dead, open a new one

export class Live {
  constructor(client, { onEvent, onState }) {
    this.client = client;
    this.onEvent = onEvent;
    this.onState = onState;
    this.watchKey = null;
    this.controller = null;
    this.retryMs = 500;
    this.lastFrame = 0;
    this.stopped = true;
    this.timer = null;
  }

  /** Watch these unit ids (and vehicle positions when evs); reopens the stream on a change. */
  watch(ids = [], evs = false) {
    const key = `${[...ids].sort().join(',')}|${evs}`;
    if (key === this.watchKey && !this.stopped) return;
    this.watchKey = key;
    this.ids = [...ids].slice(0, 200);
    this.evs = evs;
    this.restart();
  }

  restart() {
    this.stop();
    this.stopped = false;
    this.timer = setInterval(() => {
      if (this.controller && Date.now() - this.lastFrame > STALL_MS) this.restartLater();
    }, 1000);
    this.run();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  restartLater() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.onState('reconnecting');
    setTimeout(() => { if (!this.stopped) this.run(); }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 10000);
  }

  async run() {
    const controller = new AbortController();
    this.controller = controller;
    this.lastFrame = Date.now();
    const query = new URLSearchParams();
    if (this.ids.length) query.set('watch', this.ids.join(','));
    if (this.evs) query.set('evs', 'true');
    const path = `/v1/console/stream${query.size ? `?${query}` : ''}`;
    try {
      const response = await this.client.raw(path, { signal: controller.signal });
      if (!response.ok) {
        if (response.status === 401) { this.stop(); this.client.onUnauthorized(); return; }
        throw new Error(`stream answered ${response.status}`);
      }
      this.onState('live');
      this.retryMs = 500;
      await this.read(response.body, controller);
    } catch (error) {
      if (controller.signal.aborted) return; // we closed it ourselves
    }
    if (!this.stopped && this.controller === controller) this.restartLater();
  }

  async read(body, controller) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done || controller.signal.aborted) return;
      this.lastFrame = Date.now();
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) name = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length) this.onEvent(name, JSON.parse(data.join('\n')));
      }
    }
  }
}
