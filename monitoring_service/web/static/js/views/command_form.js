// The command form of the unit view: the types a unit of this kind takes, their parameters,
// and the control API's answer (its refusal shown as it was given).

import { readable } from '../api.js';
import { clear, h } from '../dom.js';

const MODES = ['IDLE', 'CHARGING', 'DISCHARGING', 'STANDBY', 'MAINTENANCE'];
// SPEC §12: a setpoint lapses after its hold unless renewed; blank is the service's default
const HOLD = ['hold_s', 'Hold s (blank: default)', 'number', null, true];
const TYPES = {
  megapack: {
    set_mode: [['mode', 'Mode', 'select', MODES], HOLD],
    set_power: [['power_kw', 'Power kW (+ discharge, − charge)', 'number'], HOLD],
    set_soc_limits: [['min_percent', 'Min SOC %', 'number'], ['max_percent', 'Max SOC %', 'number']],
    reset_fault: [],
  },
  ev: {
    start_charging: [],
    stop_charging: [],
    set_charge_limit: [['limit_percent', 'Charge limit %', 'number']],
  },
};

// A label beside (not around) its control: the control's name is the label's text alone.
function field(id, label, control) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

export function commandForm(ctx, unit, { onSent }) {
  const types = TYPES[unit.kind] || {};
  const type = h('select', { id: 'cmd-type', name: 'type' },
    ...Object.keys(types).map((name) => h('option', { value: name }, name)));
  const params = h('div', { class: 'inline' });
  const ttl = h('input', { id: 'cmd-ttl', type: 'number', min: 1, max: 3600, value: 30, required: true });
  const result = h('p', { id: 'cmd-result', role: 'status', 'aria-live': 'polite' });
  const send = h('button', { type: 'submit' }, 'Send command');

  const showParams = () => {
    clear(params);
    for (const [name, label, kind, options, optional = false] of types[type.value] || []) {
      const id = `cmd-${name}`;
      const input = kind === 'select'
        ? h('select', { id, name }, ...options.map((o) => h('option', { value: o }, o)))
        : h('input', { id, name, type: 'number', step: 'any', required: !optional });
      params.append(field(id, label, input));
    }
  };
  type.addEventListener('change', showParams);
  showParams();

  const form = h('form', { class: 'inline card', 'aria-label': 'Send a command' },
    field('cmd-type', 'Command', type), params, field('cmd-ttl', 'TTL s', ttl), send);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { type: type.value, params: {}, ttl_s: Number(ttl.value) };
    for (const input of params.querySelectorAll('input, select')) {
      if (input.value === '' && !input.required) continue;
      body.params[input.name] = input.type === 'number' ? Number(input.value) : input.value;
    }
    send.disabled = true;
    result.className = '';
    result.setAttribute('role', 'status');
    result.textContent = 'Sending…';
    try {
      const command = await ctx.control.post(
        `/v1/units/${encodeURIComponent(unit.unit_id)}/commands`, body,
        { headers: { 'Idempotency-Key': crypto.randomUUID() } });
      result.textContent = `Accepted: ${command.type} is ${command.status} (${command.command_id.slice(0, 8)}).`;
      onSent(command);
    } catch (error) {
      result.className = 'error';
      result.setAttribute('role', 'alert');
      result.textContent = error.status
        ? `Refused (${error.status}): ${readable(error.detail)}`
        : `Cannot reach the control service: ${error.message}`;
    } finally {
      send.disabled = false;
    }
  });
  return h('section', {}, form, result);
}
