// The console's shell: sign-in, the hash router, the live indicator, one push stream.

import { ApiError, Client, session } from './api.js';
import { clear, h } from './dom.js';
import { Live } from './live.js';
import * as alerts from './views/alerts.js';
import * as evs from './views/evs.js';
import * as kpis from './views/kpis.js';
import * as overview from './views/overview.js';
import * as sites from './views/sites.js';
import * as unit from './views/unit.js';

const ROUTES = [
  [/^#?\/?$/, overview, 'Overview'],
  [/^#\/sites$/, sites, 'Sites'],
  [/^#\/units\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/, unit, 'Unit'],
  [/^#\/alerts$/, alerts, 'Alerts'],
  [/^#\/evs$/, evs, 'EVs'],
  [/^#\/kpis$/, kpis, 'KPIs'],
];

const $ = (id) => document.getElementById(id);
const api = new Client('');
const ctx = { api, control: null, config: null, live: null, latest: null, now: null };
let current = null; // the mounted view

function setLive(state) {
  const el = $('live');
  const text = { live: '● live', reconnecting: '◐ reconnecting…', off: '○ not connected' };
  el.textContent = text[state] || state;
  el.className = `live ${state === 'live' ? 'on' : 'off'}`;
  el.dataset.state = state;
}

function onEvent(name, data) {
  if (name === 'tick') ctx.now = new Date(data.now);
  if (name === 'summary') ctx.latest = data;
  if (current && current.onEvent) current.onEvent(name, data);
}

function signOut(message = '') {
  session.key = null;
  if (ctx.live) ctx.live.stop();
  if (current && current.unmount) current.unmount();
  current = null;
  clear($('view'));
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  setLive('off');
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('key').focus();
}

async function start() {
  ctx.config = await api.get('/v1/console/config');
  const controlBase = ctx.config.control_url
    || `${location.protocol}//${location.hostname}:8001`;
  ctx.control = new Client(controlBase);
  ctx.control.onUnauthorized = () => signOut('The control service refused the key.');
  ctx.live = new Live(api, { onEvent, onState: setLive });
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = `operator: ${ctx.config.operator}`;
  $('main').focus(); // keyboard users land on the content, the header is one Shift+Tab away
  route();
}

async function route() {
  if (!ctx.config) return;
  if (current && current.unmount) current.unmount();
  const hash = location.hash || '#/';
  const match = ROUTES.find(([pattern]) => pattern.test(hash)) || ROUTES[0];
  const [pattern, view, title] = match;
  const params = (hash.match(pattern) || []).slice(1).map(decodeURIComponent);
  for (const link of $('nav').querySelectorAll('a')) {
    link.toggleAttribute('aria-current', link.getAttribute('href') === hash
      || (hash === '#/' && link.getAttribute('href') === '#/'));
  }
  // A container of its own: a view still loading when the operator moves on writes into a
  // detached element, never into the next view.
  const root = h('div');
  clear($('view')).append(root);
  delete $('view').dataset.loaded;
  document.title = `${title} · Megapack console`;
  const mounted = { view };
  current = mounted;
  try {
    const handle = await view.mount(root, ctx, params);
    if (current !== mounted) { if (handle && handle.unmount) handle.unmount(); return; }
    current = handle || {};
    const { ids = [], evs: wantEvs = false } = current.watch ? current.watch() : {};
    ctx.live.watch(ids, wantEvs);
    $('view').dataset.loaded = 'true'; // the view has its data (tests and scripts wait on this)
    if (document.activeElement === document.body || !document.activeElement) $('main').focus();
    current.rewatch = () => {
      const next = current.watch ? current.watch() : {};
      ctx.live.watch(next.ids || [], next.evs || false);
    };
  } catch (error) {
    root.append(h('p', { class: 'error', role: 'alert' }, `Could not load this view: ${error.message}`));
  }
}
ctx.rewatch = () => current && current.rewatch && current.rewatch();

$('signin').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('key').value.trim();
  $('signin-error').textContent = '';
  try {
    await api.get('/v1/console/config', { key });
  } catch (error) {
    const refused = error instanceof ApiError && (error.status === 401 || error.status === 403);
    $('signin-error').textContent = refused
      ? `Key refused (${error.status}): ${error.detail}` : `Cannot reach the service: ${error.message}`;
    return;
  }
  session.key = key;
  $('key').value = '';
  await start();
});
$('signout').addEventListener('click', () => signOut());
api.onUnauthorized = () => signOut('The key was refused; sign in again.');
window.addEventListener('hashchange', route);

if (session.key) start().catch(() => signOut()); else signOut();
