// Scene search: draw a circle or a polygon on the map, pick a window, see who passed
// (a page at a time), each vehicle one click from its track.
import L from 'leaflet';
import { postJson } from './api.js';
import { t } from './i18n.js';
import { theMap } from './map.js';
import { fromInput } from './time.js';
import { search as trackSearch } from './track.js';
import { onRelabel, setLive, showError, status, whoami } from './ui.js';

const $ = (id) => document.getElementById(id);
let active = false;
let shapeLayer;
let centre;
let corners = [];
let lastRequest;
let limits = {};

export function initScene(nodeLimits) {
  limits = nodeLimits || {};
  onRelabel(hint);
  const m = theMap();
  shapeLayer = L.layerGroup().addTo(m);
  m.on('click', (event) => {
    if (!active) return;
    if (shape() === 'circle') centre = event.latlng;
    else corners.push(event.latlng);
    drawShape();
  });
  $('radius').addEventListener('input', drawShape);
  document.querySelectorAll('input[name=shape]').forEach((r) => r.addEventListener('change', () => { clearShape(); hint(); }));
  $('clear-shape').addEventListener('click', clearShape);
  $('scene-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const area = currentArea();
    if (!area) { status('scene-status', () => t('scene_need_area')); $('scene-status').classList.add('error'); return; }
    lastRequest = { area, from: fromInput($('scene-from').value), to: fromInput($('scene-to').value), limit: 100 };
    await run(lastRequest, false);
  });
  $('scene-next').addEventListener('click', () => run({ ...lastRequest, after: lastRequest.next }, true));
}

/** The scene tab is showing: map clicks draw the area. */
export function setSceneActive(on) {
  active = on;
  theMap().getContainer().classList.toggle('drawing', on);
  if (on) hint();
}

function shape() {
  return document.querySelector('input[name=shape]:checked').value;
}

function hint() {
  $('shape-hint').textContent = shape() === 'circle' ? t('circle_hint') : t('polygon_hint');
  $('radius-row').hidden = shape() !== 'circle';
  const supervisor = whoami().role === 'supervisor';
  $('tier-note').textContent = supervisor
    ? t('tier_note_supervisor', { radius: limits.max_scene_radius_m, hours: (limits.max_scene_window_ms || 0) / 3_600_000 })
    : t('tier_note', { radius: limits.scene_radius_m, hours: (limits.scene_window_ms || 0) / 3_600_000 });
}

function clearShape() {
  centre = undefined;
  corners = [];
  shapeLayer.clearLayers();
}

function drawShape() {
  shapeLayer.clearLayers();
  const style = { color: '#0b62d6', weight: 2, fillOpacity: 0.08, interactive: false };
  if (shape() === 'circle' && centre) {
    L.circle(centre, { ...style, radius: Number($('radius').value) || 0 }).addTo(shapeLayer);
  } else if (corners.length) {
    (corners.length >= 3 ? L.polygon(corners, style) : L.polyline(corners, style)).addTo(shapeLayer);
    corners.forEach((c) => L.circleMarker(c, { radius: 4, color: '#0b62d6', interactive: false }).addTo(shapeLayer));
  }
}

function currentArea() {
  if (shape() === 'circle') {
    return centre ? { kind: 'circle', lat: centre.lat, lon: centre.lng, radius_m: Number($('radius').value) } : undefined;
  }
  return corners.length >= 3 ? { kind: 'polygon', ring: corners.map((c) => [c.lng, c.lat]) } : undefined;
}

async function run(request, append) {
  status('scene-status', () => t('searching'));
  if (!append) $('scene-result').hidden = true;
  try {
    const { next, ...body } = request;
    const answer = await postJson('v1/scene', body);
    lastRequest = { ...request, after: undefined, next: answer.next };
    status('scene-status', '');
    showAnswer(answer, append);
  } catch (error) {
    showError('scene-status', error);
  }
}

function showAnswer(answer, append) {
  $('scene-result').hidden = false;
  const body = $('scene-table').tBodies[0];
  const rows = answer.vehicles.map((v) => {
    const row = document.createElement('tr');
    for (const text of [v.plate || v.key, v.first, String(v.sightings.length)]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    const cell = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = t('track_it');
    button.addEventListener('click', () => {
      document.getElementById('tab-plate').click();
      $('plate').value = v.plate || v.key;
      $('plate-from').value = $('scene-from').value;
      $('plate-to').value = $('scene-to').value;
      // A vehicle without a read plate is tracked by its key, not by a made-up plate.
      const subject = v.plate ? { plate: v.plate } : { subjectKey: v.key, plate: v.key };
      trackSearch({ ...subject, from: fromInput($('scene-from').value), to: fromInput($('scene-to').value), mode: 'exact' });
    });
    cell.append(button);
    row.append(cell);
    return row;
  });
  if (append) body.append(...rows);
  else body.replaceChildren(...rows);
  const shown = body.rows.length;
  setLive('scene-summary', () => (answer.total_vehicles === 0
    ? t('scene_empty')
    : t('scene_summary', { total: answer.total_vehicles, shown, cameras: answer.cameras, audit: `${answer.audit.node_id} #${answer.audit.seq}` })));
  $('scene-next').hidden = !answer.next;
}
