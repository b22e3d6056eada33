// The workspace's start: sign in, case and reason once per working session, then the map
// and the three panels (plate, scene, and the audit trail for supervisors).
import 'leaflet/dist/leaflet.css';
import './app.css';
import { ApiError, getJson, onAudited, session } from './api.js';
import { initAudit } from './audit.js';
import { applyTo, language, roleName, setLanguage, t } from './i18n.js';
import { loadBasemap, theMap } from './map.js';
import { initScene, setSceneActive } from './scene.js';
import { setZone, toInput } from './time.js';
import { firstSighting, forgetTrack, initTrack, show } from './track.js';
import { relabel, setWhoami, showError, status } from './ui.js';

const $ = (id) => document.getElementById(id);
// What tests and the benchmark read: audited requests made, when the map became usable.
const probe = { audited: [], marks: {}, showTrack: show, toInput, firstSighting };
window.camtrail = probe;
onAudited((path, code) => probe.audited.push({ path: path.split('?')[0], status: code }));

function mark(name) {
  probe.marks[name] = performance.now();
  document.body.dataset[name] = 'true';
}

async function start() {
  $('lang').value = language();
  applyTo(document);
  $('lang').addEventListener('change', () => {
    setLanguage($('lang').value);
    refreshHeader();
    relabel();
  });
  $('signin-form').addEventListener('submit', signIn);
  $('purpose-form').addEventListener('submit', setPurpose);
  $('sign-out').addEventListener('click', () => { sessionStorage.clear(); window.location.reload(); });
  $('change-purpose').addEventListener('click', askPurpose);
  // A token refused mid-session: start over (whoever signs in next must not inherit this
  // session's case, results or role).
  window.addEventListener('camtrail:unauthenticated', () => {
    if (!me) return;
    sessionStorage.clear();
    window.location.reload();
  });
  // Escape would close the dialogs without an answer: they are the way in.
  for (const id of ['signin-dialog', 'purpose-dialog']) {
    $(id).addEventListener('cancel', (event) => event.preventDefault());
  }
  if (session.token) await afterToken();
  else askToken('');
}

function askToken(message) {
  $('signin-error').textContent = message;
  if (!$('signin-dialog').open) $('signin-dialog').showModal();
  $('token').focus();
}

async function signIn(event) {
  event.preventDefault();
  session.token = $('token').value.trim();
  $('token').value = '';
  await afterToken();
}

let me;
async function afterToken() {
  try {
    me = await getJson('v1/whoami');
  } catch (error) {
    session.token = '';
    askToken(error instanceof ApiError ? error.sentence() : String(error));
    return;
  }
  $('signin-dialog').close();
  setWhoami(me);
  setZone(me.time_zone);
  refreshHeader();
  if (session.caseId && session.reason) enter();
  else askPurpose();
}

function askPurpose() {
  $('case-id').value = session.caseId;
  $('reason').value = session.reason;
  $('purpose-error').textContent = '';
  $('purpose-dialog').showModal();
  $('case-id').focus();
}

function setPurpose(event) {
  event.preventDefault();
  const caseId = $('case-id').value.trim();
  const reason = $('reason').value.trim();
  if (!/^[A-Za-z0-9\-_./:]{1,64}$/.test(caseId)) { $('purpose-error').textContent = t('err_invalid_case'); return; }
  if (!reason) { $('purpose-error').textContent = t('err_missing_reason'); return; }
  if (entered && (caseId !== session.caseId || reason !== session.reason)) forgetTrack();
  session.caseId = caseId;
  session.reason = reason;
  $('purpose-dialog').close();
  refreshHeader();
  enter();
}

function refreshHeader() {
  if (!me) return;
  $('who').textContent = t('signed_in_as', { user: me.user, role: roleName(me.role) });
  const badge = $('purpose-badge');
  badge.hidden = !session.caseId;
  badge.textContent = t('badge', { case: session.caseId, reason: session.reason });
  badge.title = badge.textContent;
  $('sign-out').hidden = false;
  $('change-purpose').hidden = false;
}

let entered = false;
async function enter() {
  $('workspace').hidden = false;
  if (entered) return;
  entered = true;
  $('tab-audit').hidden = me.role !== 'supervisor';
  const now = Date.now();
  $('plate-from').value = toInput(now - 24 * 3_600_000);
  $('plate-to').value = toInput(now + 60_000);
  $('scene-from').value = toInput(now - 3_600_000);
  $('scene-to').value = toInput(now + 60_000);
  initTabs();
  theMap();
  initTrack();
  initScene(me.limits);
  initAudit();
  status('map-note', () => t('loading_map'));
  mark('mapShown');
  try {
    const counts = await loadBasemap(me.tile_url);
    status('map-note', () => t('map_ready', counts));
    mark('mapReady');
  } catch (error) {
    showError('map-note', error);
  }
}

function initTabs() {
  const tabs = [...document.querySelectorAll('[role=tab]')];
  const select = (tab) => {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute('aria-selected', String(on));
      other.tabIndex = on ? 0 : -1;
      $(other.dataset.panel).hidden = !on;
    }
    setSceneActive(tab.id === 'tab-scene');
    theMap().invalidateSize();
  };
  tabs.forEach((tab) => {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (event) => {
      const visible = tabs.filter((x) => !x.hidden);
      const at = visible.indexOf(tab);
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) {
        const next = visible[(at + step + visible.length) % visible.length];
        next.focus();
        select(next);
      }
    });
  });
  select(tabs[0]);
}

start();
