// The query API as the workspace calls it: the token in the Authorization header (never
// in a URL), the case and reason of the working session on every audited request, and
// errors turned into sentences by their codes.
import { t } from './i18n.js';

const session = {
  get token() { return sessionStorage.getItem('camtrail.token') || ''; },
  set token(value) { setOrClear('camtrail.token', value); },
  get caseId() { return sessionStorage.getItem('camtrail.case') || ''; },
  set caseId(value) { setOrClear('camtrail.case', value); },
  get reason() { return sessionStorage.getItem('camtrail.reason') || ''; },
  set reason(value) { setOrClear('camtrail.reason', value); },
};
export { session };

function setOrClear(key, value) {
  if (value) sessionStorage.setItem(key, value);
  else sessionStorage.removeItem(key);
}

/** A refusal from the node (or no answer at all), with its code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** What a person reads: a sentence by code, the node's own words as detail. */
  sentence() {
    const key = `err_${this.code}`;
    // The node's own words, as a sentence of their own.
    const text = (this.message || this.code).trim();
    const detail = `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`;
    const known = t(key, { detail });
    return known === key ? t('err_other', { detail }) : known;
  }
}

/** Listeners told of every audited request the page makes (the tests count them). */
const auditedListeners = [];
export function onAudited(listener) { auditedListeners.push(listener); }

/**
 * `a=1&b=2` of `params`, plus a case and reason when `purpose` is given: `true` for the
 * working session's, or `{caseId, reason}` (what an earlier search ran under: its exports
 * and snapshots are asked under the same case).
 */
export function queryString(params, purpose) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  if (purpose) {
    const { caseId, reason } = purpose === true ? session : purpose;
    search.set('case', caseId);
    search.set('reason', reason);
  }
  return search.toString();
}

async function call(path, init, audited) {
  let response;
  try {
    response = await fetch(path, {
      ...init,
      headers: { ...(init.headers || {}), Authorization: `Bearer ${session.token}` },
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch (error) {
    throw new ApiError(0, 'network', error.message);
  }
  if (audited) auditedListeners.forEach((listener) => listener(path, response.status));
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = response.statusText;
    try {
      const body = await response.json();
      code = body.error?.code || code;
      message = body.error?.message || message;
    } catch { /* not JSON: keep the status */ }
    if (response.status === 401) window.dispatchEvent(new CustomEvent('camtrail:unauthenticated'));
    throw new ApiError(response.status, code, message);
  }
  return response;
}

/** GET JSON; `audited`: the node records the request (searches, snapshots, exports). */
export async function getJson(path, { audited = false } = {}) {
  return (await call(path, { method: 'GET' }, audited)).json();
}

/** GET bytes (PNG, JPEG, GeoJSON) as a Blob. */
export async function getBlob(path, { audited = true } = {}) {
  return (await call(path, { method: 'GET' }, audited)).blob();
}

/** POST a JSON body carrying the session's case and reason. */
export async function postJson(path, body) {
  const response = await call(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ case: session.caseId, reason: session.reason, ...body }),
  }, true);
  return response.json();
}

/** Save `blob` as `name` through the browser's download. */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
