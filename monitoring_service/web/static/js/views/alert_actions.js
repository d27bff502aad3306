// The inline forms of the alerts view: shelve (for how long, why) and assign (to whom).

import { h } from '../dom.js';

const SHELVE_FOR = [[900, '15 minutes'], [3600, '1 hour'], [8 * 3600, '8 hours'], [86400, '1 day']];

export function actionForm(kind, alert, submit) {
  const id = `${kind}-${alert.alert_id}`;
  const fields = kind === 'shelve'
    ? [h('div', { class: 'field' }, h('label', { for: `${id}-for` }, 'Shelve for'),
        h('select', { id: `${id}-for`, name: 'for_s' },
          ...SHELVE_FOR.map(([s, label]) => h('option', { value: s }, label)))),
      h('div', { class: 'field' }, h('label', { for: `${id}-reason` }, 'Reason'),
        h('input', { id: `${id}-reason`, name: 'reason', required: true, maxlength: 200 }))]
    : [h('div', { class: 'field' }, h('label', { for: `${id}-to` }, 'Assign to'),
        h('input', { id: `${id}-to`, name: 'to', required: true, maxlength: 64 }))];
  const tr = h('tr', { class: 'action-form' });
  const close = () => tr.remove();
  const form = h('form', { class: 'inline', 'aria-label': `${kind} alert ${alert.alert_id}` },
    ...fields,
    h('button', { type: 'submit' }, kind === 'shelve' ? 'Shelve' : 'Assign'),
    h('button', { type: 'button', onclick: close }, 'Cancel'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const payload = {};
    for (const input of form.querySelectorAll('input, select')) {
      payload[input.name] = input.name === 'for_s' ? Number(input.value) : input.value.trim();
    }
    submit(payload, close);
  });
  form.addEventListener('keydown', (event) => { if (event.key === 'Escape') close(); });
  tr.append(h('td', { colspan: 9 }, form));
  return tr;
}
