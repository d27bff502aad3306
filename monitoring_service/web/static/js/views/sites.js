import { h } from '../dom.js';

export async function mount(root) {
  root.append(h('h2', {}, 'sites'));
  return {};
}
