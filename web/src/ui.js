// Small shared pieces: status lines, errors as sentences, who is signed in, and texts
// that follow a change of language (each remembers how to render itself).
import { ApiError } from './api.js';

let me = { user: '', role: '' };
export function whoami() { return me; }
export function setWhoami(value) { me = value; }

const live = new Map();
const hooks = [];

/** Set element `id`'s text from `render` now and again after each change of language. */
export function setLive(id, render) {
  live.set(id, render);
  document.getElementById(id).textContent = render();
}

/** Run `hook` after each change of language (for panels rebuilt as a whole). */
export function onRelabel(hook) { hooks.push(hook); }

/** Render every live text and hook again (the language changed). */
export function relabel() {
  for (const [id, render] of live) document.getElementById(id).textContent = render();
  hooks.forEach((hook) => hook());
}

/** Put `text` (a string, or a function giving it) on the status line `id`. */
export function status(id, text) {
  const line = document.getElementById(id);
  line.classList.remove('error');
  delete line.dataset.code;
  delete line.dataset.status;
  setLive(id, typeof text === 'function' ? text : () => text);
}

/** Show `error` on the status line `id` as a sentence, with its code for a support call. */
export function showError(id, error) {
  const line = document.getElementById(id);
  setLive(id, () => (error instanceof ApiError ? error.sentence() : String(error.message || error)));
  line.classList.add('error');
  line.dataset.code = error instanceof ApiError ? error.code : 'client';
  line.dataset.status = error instanceof ApiError ? String(error.status) : '';
}

/**
 * An element holding `text` as text. Leaflet puts a string tooltip in as HTML, so every
 * tooltip whose words come from the node (plates, cameras, districts, roads) is one of these.
 */
export function textElement(text) {
  const span = document.createElement('span');
  span.textContent = text;
  return span;
}
