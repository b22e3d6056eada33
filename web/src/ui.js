// Small shared pieces: status lines, errors as sentences, who is signed in.
import { ApiError } from './api.js';

let me = { user: '', role: '' };
export function whoami() { return me; }
export function setWhoami(value) { me = value; }

/** Put `text` on the status line `id` (an empty text clears it). */
export function status(id, text) {
  const line = document.getElementById(id);
  line.textContent = text;
  line.classList.remove('error');
}

/** Show `error` on the status line `id` as a sentence, with its code for a support call. */
export function showError(id, error) {
  const line = document.getElementById(id);
  const sentence = error instanceof ApiError ? error.sentence() : String(error.message || error);
  line.textContent = sentence;
  line.classList.add('error');
  line.dataset.code = error instanceof ApiError ? error.code : 'client';
  line.dataset.status = error instanceof ApiError ? String(error.status) : '';
}
