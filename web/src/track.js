// Plate search: the path on the map (numbered points coloured by district, arrows,
// impossible hops dashed red, sightings attributed to another vehicle as grey crosses, a
// cloned plate's second vehicle dashed purple), a timeline to play and scrub, the
// sightings table with snapshots, district changes, trips, and the exports.
import L from 'leaflet';
import { download, getBlob, getJson, queryString, session } from './api.js';
import { t } from './i18n.js';
import { PALETTE, cameraPosition, canvasRenderer, theMap } from './map.js';
import { format, fromInput, zoneName } from './time.js';
import { onRelabel, setLive, showError, status, textElement, whoami } from './ui.js';

const $ = (id) => document.getElementById(id);
let layer;
let current;
let highlight;
let progress;
let playing;
let snapshots;

/** The request's parameters, shared by the JSON search and every export of it. */
function trackParams(form) {
  const mode = form.querySelector('input[name=mode]:checked').value;
  const plate = $('plate').value.trim();
  return {
    plate,
    from: fromInput($('plate-from').value),
    to: fromInput($('plate-to').value),
    fuzzy: mode === 'fuzzy' ? 'true' : undefined,
    mode,
  };
}

export function initTrack() {
  theMap().on('zoomend', declutter);
  onRelabel(() => {
    if (current?.shown) fillPanels(current.answer, current.shown.colours, current.shown.attributed);
    if (!playing) $('play').textContent = t('play');
  });
  $('plate-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const params = trackParams(event.target);
    if (params.mode === 'pattern' && !/[*?]/.test(params.plate)) {
      params.plate = `${params.plate}*`;
    }
    await search(params);
  });
  $('scrub').addEventListener('input', () => scrubTo(Number($('scrub').value)));
  $('play').addEventListener('click', togglePlay);
  $('export-png').addEventListener('click', () => exportFile('png'));
  $('export-geojson').addEventListener('click', () => exportFile('geojson'));
  $('export-csv').addEventListener('click', exportCsv);
  $('export-report').addEventListener('click', printReport);
}

function apiParams(params) {
  const subject = params.subjectKey ? { subject_key: params.subjectKey } : { plate: params.plate };
  return { ...subject, from: params.from, to: params.to, fuzzy: params.fuzzy };
}

/** [lat, lon] of the shown track's first sighting (tests centre a scene on it). */
export function firstSighting() {
  const first = current?.answer.sightings[0];
  return first ? [first.lat, first.lon] : undefined;
}

/** Run a plate search and show it. */
export async function search(params) {
  stopPlay();
  $('track-result').hidden = true;
  status('plate-status', () => t('searching'));
  try {
    // Everything shown from this answer (snapshots, exports, the report) is asked and
    // printed under the case and reason it was searched under.
    const purpose = { caseId: session.caseId, reason: session.reason };
    const answer = await getJson(`v1/track?${queryString(apiParams(params), purpose)}`, { audited: true });
    forgetSnapshots();
    current = { params, answer, purpose };
    status('plate-status', '');
    show(answer);
  } catch (error) {
    current = undefined;
    clearLayer();
    showError('plate-status', error);
  }
}

function clearLayer() {
  if (layer) layer.remove();
  layer = undefined;
  numberMarkers = [];
  theMap().getPane('cameras')?.classList.remove('faded');
}

let numberMarkers = [];
/** Hide the number labels that would overlap an earlier shown one at this zoom. */
function declutter() {
  const m = theMap();
  const kept = [];
  for (const marker of numberMarkers) {
    const at = m.latLngToLayerPoint(marker.getLatLng());
    const free = kept.every((p) => Math.abs(p.x - at.x) > 22 || Math.abs(p.y - at.y) > 14);
    if (free) kept.push(at);
    marker.getElement()?.classList.toggle('crowded', !free);
  }
}

/** Colours by district, in order of first appearance (as on the PNG map). */
function districtColours(sightings) {
  const colours = new Map();
  for (const s of sightings) {
    if (!colours.has(s.district)) colours.set(s.district, PALETTE[colours.size % PALETTE.length]);
  }
  return colours;
}

/** Draw `answer` on the map and fill the panels; exposed for the drawing benchmark. */
export function show(answer) {
  const started = performance.now();
  const m = theMap();
  clearLayer();
  layer = L.layerGroup().addTo(m);
  const renderer = canvasRenderer();
  const sightings = answer.sightings;
  const colours = districtColours(sightings);
  const points = sightings.map((s) => [s.lat, s.lon]);
  // Links: one segment each; impossible hops dashed red.
  const arrowEvery = Math.max(1, Math.ceil(answer.links.length / 60));
  // Consecutive possible links of one colour make one line (a 2,000-sighting track is a
  // few dozen layers, not 2,000); each impossible hop is its own dashed red line.
  let run = [];
  let runColour;
  const flush = () => {
    if (run.length > 1) L.polyline(run, { renderer, color: runColour, weight: 3, opacity: 0.85, interactive: false }).addTo(layer);
    run = [];
  };
  answer.links.forEach((link, index) => {
    const a = points[link.from_index];
    const b = points[link.to_index];
    if (link.impossible) {
      flush();
      L.polyline([a, b], { renderer, color: '#dc1414', weight: 3, dashArray: '8 6', className: 'hop-impossible' })
        .bindTooltip(textElement(`${t('legend_impossible')}: ${Math.round(link.implied_speed_kmh ?? 0)} km/h, ${link.distance_km.toFixed(1)} km`))
        .addTo(layer);
    } else {
      const colour = colours.get(sightings[link.from_index].district);
      if (colour !== runColour) { flush(); runColour = colour; }
      if (!run.length) run.push(a);
      run.push(b);
    }
    if (index % arrowEvery === 0 && (a[0] !== b[0] || a[1] !== b[1])) arrow(a, b, link.impossible).addTo(layer);
  });
  flush();
  // Sightings attributed to a look-alike vehicle: grey crosses.
  const attributed = answer.dropped.filter((d) => d.reason === 'attributed_to_look_alike');
  for (const d of attributed) {
    const at = cameraPosition(d.camera_id);
    if (at) {
      L.marker(at, { keyboard: false, icon: L.divIcon({ className: 'attributed', html: '×', iconSize: [14, 14] }) })
        .bindTooltip(textElement(`${t('legend_attributed')} (${d.attributed_to ?? '?'}) ${d.time}`)).addTo(layer);
    }
  }
  // A cloned plate's second vehicle.
  if (answer.second_vehicle) {
    const second = answer.second_vehicle.sightings.map((s) => [s.lat, s.lon]);
    L.polyline(second, { renderer, color: '#5a288c', weight: 3, dashArray: '10 4' }).addTo(layer);
    answer.second_vehicle.sightings.forEach((s) => {
      L.circleMarker([s.lat, s.lon], { renderer, radius: 6, color: '#5a288c', weight: 2.5, fillColor: '#fff', fillOpacity: 1 })
        .bindTooltip(textElement(`B${s.n} ${s.time} · ${s.camera_id}`)).addTo(layer);
    });
  }
  // Points, numbered: labels on the map while few (those that would cover an earlier one
  // at the current zoom are hidden until zoomed in), in tooltips when crowded.
  const labelled = sightings.length <= 150;
  numberMarkers = [];
  sightings.forEach((s, index) => {
    const colour = colours.get(s.district);
    const fuzzy = s.match_kind === 'fuzzy';
    const marker = L.circleMarker(points[index], {
      renderer,
      radius: 7,
      color: fuzzy ? colour : '#1e1e1e',
      weight: fuzzy ? 2.5 : 1,
      fillColor: fuzzy ? '#ffffff' : colour,
      fillOpacity: 1,
      className: 'sighting',
    }).bindTooltip(textElement(t('point', { n: s.n, time: s.time, camera: s.camera_id, district: s.district })));
    marker.on('click', () => scrubTo(index + 1));
    marker.addTo(layer);
    if (labelled) {
      numberMarkers.push(L.marker(points[index], {
        keyboard: false,
        interactive: false,
        icon: L.divIcon({ className: 'point-number', html: String(s.n), iconSize: null }),
      }).addTo(layer));
    }
  });
  progress = L.polyline([], { renderer, color: '#111', weight: 6, opacity: 0.35, interactive: false }).addTo(layer);
  highlight = L.circleMarker(points[0] ?? [0, 0], { renderer, radius: 12, color: '#111', weight: 3, fill: false, interactive: false });
  if (points.length) {
    highlight.addTo(layer);
    const all = points.concat(answer.second_vehicle ? answer.second_vehicle.sightings.map((s) => [s.lat, s.lon]) : []);
    m.fitBounds(L.latLngBounds(all).pad(0.15), { animate: false, maxZoom: 16 });
  }
  declutter();
  m.getPane('cameras')?.classList.add('faded');
  if (current?.answer === answer) current.shown = { colours, attributed: attributed.length };
  fillPanels(answer, colours, attributed.length);
  const drawnMs = performance.now() - started;
  document.body.dataset.trackPoints = String(sightings.length);
  document.body.dataset.trackDrawMs = drawnMs.toFixed(1);
  return drawnMs;
}

/** A small arrowhead midway from `a` to `b`, turned along the segment on screen. */
function arrow(a, b, impossible) {
  const m = theMap();
  const pa = m.project(a);
  const pb = m.project(b);
  const degrees = (Math.atan2(pb.y - pa.y, pb.x - pa.x) * 180) / Math.PI;
  const marker = L.marker([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2], {
    keyboard: false,
    interactive: false,
    icon: L.divIcon({ className: impossible ? 'arrow arrow-impossible' : 'arrow', html: '<span>➤</span>', iconSize: [16, 16] }),
  });
  marker.on('add', () => {
    const span = marker.getElement()?.firstChild;
    if (span) span.style.transform = `rotate(${degrees}deg)`;
  });
  return marker;
}

function fillPanels(answer, colours, attributedCount) {
  const sightings = answer.sightings;
  $('track-result').hidden = false;
  const districts = new Set(sightings.map((s) => s.district));
  const fuzzy = sightings.filter((s) => s.match_kind === 'fuzzy').length;
  setLive('track-summary', () => {
    const summary = sightings.length === 0
      ? t('no_sightings', { plate: answer.asked, from: answer.from, to: answer.to })
      : t('track_summary', {
        n: sightings.length, asked: answer.asked, from: answer.from, to: answer.to, zone: answer.time_zone,
        districts: districts.size, impossible: answer.impossible_hops, fuzzy, attributed: attributedCount,
        audit: `${answer.audit.node_id} #${answer.audit.seq}`,
      });
    const extra = [];
    if (answer.second_vehicle) extra.push(t('second_vehicle', { n: answer.second_vehicle.sightings.length }));
    if (answer.truncated) extra.push(t('truncated'));
    return [summary, ...extra].join(' ');
  });
  $('scrub').max = String(Math.max(1, sightings.length));
  $('scrub').value = '1';
  $('scrub').disabled = sightings.length === 0;
  $('play').disabled = sightings.length < 2;
  document.querySelectorAll('.exports button').forEach((b) => { b.disabled = sightings.length === 0; });
  scrubTo(1);
  const transitions = $('transitions');
  transitions.replaceChildren(...answer.transitions.map((tr) => li(t('transition_line', {
    from_n: tr.from_n, to_n: tr.to_n, time: tr.time, from: tr.from_district, to: tr.to_district,
  }))));
  const trips = $('trips');
  trips.replaceChildren(...answer.trips.map((trip) => li(t('trip_line', {
    first: trip.first_index + 1, last: trip.last_index + 1, km: trip.distance_km.toFixed(1),
    minutes: Math.round((trip.end_ms - trip.start_ms) / 60000),
  }))));
  fillTable(sightings, colours);
}

function li(text) {
  const item = document.createElement('li');
  item.textContent = text;
  return item;
}

const TABLE_FIRST = 100;
const TABLE_CHUNK = 250;
let tableGeneration = 0;

function fillTable(sightings, colours) {
  tableGeneration += 1;
  if (snapshots) snapshots.disconnect();
  const body = $('sightings').tBodies[0];
  const makeRow = (s, index) => {
    const row = document.createElement('tr');
    row.dataset.index = String(index + 1);
    row.tabIndex = 0;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colours.get(s.district);
    const cells = [String(s.n), s.time.slice(11), s.camera_id, s.district, s.plate,
      s.match_kind === 'fuzzy' ? `${t('fuzzy_kind')} ${Math.round(s.match_confidence * 100)}%` : t('exact_kind')];
    cells.forEach((text, column) => {
      const cell = document.createElement('td');
      if (column === 3) cell.append(swatch);
      if (column === 1) cell.title = s.time;
      cell.append(text);
      row.append(cell);
    });
    const snap = document.createElement('td');
    if (s.has_snapshot) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'thumb';
      button.dataset.eventId = s.event_id;
      button.textContent = t('show_snapshot');
      button.setAttribute('aria-label', `${t('snapshot')} #${s.n}`);
      button.addEventListener('click', (event) => { event.stopPropagation(); openSnapshot(s, button); });
      snap.append(button);
    } else {
      snap.textContent = t('no_snapshot');
    }
    row.insertBefore(snap, row.children[1]);
    row.addEventListener('click', () => scrubTo(index + 1));
    row.addEventListener('keydown', (event) => { if (event.key === 'Enter') scrubTo(index + 1); });
    return row;
  };
  const rows = { length: sightings.length, slice: (a, b) => sightings.slice(a, b).map((s, i) => makeRow(s, a + i)) };
  // The first rows at once, the rest in chunks between frames: a 2,000-row table must not
  // hold up the map.
  body.replaceChildren(...rows.slice(0, TABLE_FIRST));
  const drawn = tableGeneration;
  const more = (from) => {
    if (drawn !== tableGeneration || from >= rows.length) return;
    const chunk = rows.slice(from, from + TABLE_CHUNK);
    body.append(...chunk);
    chunk.forEach((row) => snapshots.observe(row));
    setTimeout(() => more(from + TABLE_CHUNK), 0);
  };
  // Thumbnails of the rows in view, loaded as they scroll in (each read is audited).
  snapshots = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) {
        snapshots.unobserve(entry.target);
        const index = Number(entry.target.dataset.index) - 1;
        const button = entry.target.querySelector('button.thumb');
        if (button) loadThumb(sightings[index], button);
      }
    }
  }, { root: document.querySelector('#panel-plate .table-wrap') });
  body.querySelectorAll('tr').forEach((row) => snapshots.observe(row));
  setTimeout(() => more(TABLE_FIRST), 0);
}

// Snapshots of the answer on screen (blob URLs), dropped with it.
const thumbs = new Map();
function forgetSnapshots() {
  for (const url of thumbs.values()) url.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  thumbs.clear();
}

/** The working session's case changed: what was found under the old one goes. */
export function forgetTrack() {
  stopPlay();
  forgetSnapshots();
  current = undefined;
  clearLayer();
  $('track-result').hidden = true;
  status('plate-status', '');
}
async function snapshotUrl(s) {
  if (!thumbs.has(s.event_id)) {
    thumbs.set(s.event_id, getBlob(`v1/snapshots/${s.event_id}.jpg?${queryString({}, current.purpose)}`)
      .then((blob) => URL.createObjectURL(blob))
      .catch((error) => { thumbs.delete(s.event_id); throw error; }));
  }
  return thumbs.get(s.event_id);
}

async function loadThumb(s, button) {
  try {
    const url = await snapshotUrl(s);
    const img = document.createElement('img');
    img.src = url;
    img.alt = '';
    button.replaceChildren(img);
  } catch (error) {
    button.title = error.sentence ? error.sentence() : String(error);
  }
}

async function openSnapshot(s, button) {
  try {
    const url = await snapshotUrl(s);
    $('snapshot-full').src = url;
    $('snapshot-caption').textContent = `#${s.n} ${s.time} · ${s.camera_id} · ${s.district} · ${s.plate}`;
    $('snapshot-dialog').showModal();
  } catch (error) {
    button.title = error.sentence ? error.sentence() : String(error);
    showError('plate-status', error);
  }
}

function scrubTo(n) {
  if (!current) return;
  const sightings = current.answer.sightings;
  if (!sightings.length) return;
  const index = Math.min(Math.max(1, n), sightings.length) - 1;
  const s = sightings[index];
  $('scrub').value = String(index + 1);
  $('scrub-label').textContent = t('point', { n: s.n, time: s.time, camera: s.camera_id, district: s.district });
  highlight.setLatLng([s.lat, s.lon]);
  progress.setLatLngs(sightings.slice(0, index + 1).map((x) => [x.lat, x.lon]));
  document.querySelectorAll('#sightings tr.current').forEach((row) => row.classList.remove('current'));
  const row = document.querySelector(`#sightings tr[data-index="${index + 1}"]`);
  if (row) row.classList.add('current');
}

function togglePlay() {
  if (playing) { stopPlay(); return; }
  const max = Number($('scrub').max);
  if (Number($('scrub').value) >= max) scrubTo(1);
  $('play').textContent = t('pause');
  playing = setInterval(() => {
    const next = Number($('scrub').value) + 1;
    if (next > max) { stopPlay(); return; }
    scrubTo(next);
  }, 400);
}

function stopPlay() {
  if (playing) clearInterval(playing);
  playing = undefined;
  $('play').textContent = t('play');
}

function fileBase() {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `track-${current.purpose.caseId.replace(/[^A-Za-z0-9_-]/g, '_')}-${stamp}`;
}

async function exportFile(kind) {
  if (!current) return;
  try {
    const path = kind === 'png' ? 'v1/track.png' : 'v1/track.geojson';
    const blob = await getBlob(`${path}?${queryString(apiParams(current.params), current.purpose)}`);
    const name = `${fileBase()}.${kind}`;
    download(blob, name);
    status('plate-status', () => t('exported', { file: name }));
  } catch (error) {
    showError('plate-status', error);
  }
}

function csvField(value) {
  const text = String(value ?? '');
  // Text starting with = + - @ would be a formula in a spreadsheet: marked as text.
  // Numbers (a western longitude is negative) stay numbers.
  const safe = typeof value === 'string' && /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The sightings as CSV, headed by the case, reason and audit record (no new request). */
function exportCsv() {
  if (!current) return;
  const { answer, params, purpose } = current;
  const lines = [
    ['# case', purpose.caseId], ['# reason', purpose.reason],
    ['# audit record', `${answer.audit.node_id}/${answer.audit.seq}`, answer.audit.hash],
    ['# query', answer.asked, `from ${answer.from}`, `to ${answer.to}`, params.fuzzy ? 'fuzzy' : params.mode, `times in ${answer.time_zone}`],
    ['n', 'time', 'captured_at_ms', 'camera_id', 'district', 'road', 'lat', 'lon', 'plate', 'match_kind', 'match_confidence', 'event_id'],
    ...answer.sightings.map((s) => [s.n, s.time, s.captured_at_ms, s.camera_id, s.district, s.road, s.lat, s.lon, s.plate, s.match_kind, s.match_confidence, s.event_id]),
  ];
  const text = `${lines.map((line) => line.map(csvField).join(',')).join('\r\n')}\r\n`;
  const name = `${fileBase()}.csv`;
  download(new Blob([text], { type: 'text/csv;charset=utf-8' }), name);
  status('plate-status', () => t('exported', { file: name }));
}

/** A one-page report for the case file: fetched map, parameters, the table; then print. */
async function printReport() {
  if (!current) return;
  const { answer, params, purpose } = current;
  let mapUrl;
  try {
    mapUrl = URL.createObjectURL(await getBlob(`v1/track.png?${queryString(apiParams(params), purpose)}`));
  } catch (error) {
    showError('plate-status', error);
    return;
  }
  const report = $('report');
  const me = whoami();
  const element = (tag, text, className) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (className) e.className = className;
    return e;
  };
  const facts = element('dl');
  for (const [label, value] of [
    [t('report_case'), purpose.caseId],
    [t('report_reason'), purpose.reason],
    [t('report_audit'), `${answer.audit.node_id} #${answer.audit.seq} (${answer.audit.hash.slice(0, 16)}…)`],
    [t('report_query'), `${answer.asked} · ${answer.from} – ${answer.to} (${answer.time_zone}) · ${params.fuzzy ? t('fuzzy') : t(params.mode)}`],
    [t('report_by'), `${me.user} (${me.role})`],
    [t('report_at'), `${format(Date.now())} (${zoneName()})`],
  ]) {
    facts.append(element('dt', label), element('dd', value));
  }
  const image = element('img');
  image.src = mapUrl;
  image.alt = '';
  const table = element('table');
  const head = element('tr');
  ['#', t('time'), t('camera'), t('district'), t('plate'), t('match_col')].forEach((h) => head.append(element('th', h)));
  table.append(head);
  for (const s of answer.sightings) {
    const row = element('tr');
    [s.n, s.time, s.camera_id, s.district, s.plate, s.match_kind].forEach((v) => row.append(element('td', String(v))));
    table.append(row);
  }
  report.replaceChildren(element('h1', t('report_title')), facts, image, element('p', t('report_note'), 'note'), table);
  report.hidden = false;
  document.body.classList.add('printing');
  await image.decode().catch(() => {});
  const done = () => {
    document.body.classList.remove('printing');
    report.hidden = true;
    URL.revokeObjectURL(mapUrl);
    window.removeEventListener('afterprint', done);
  };
  window.addEventListener('afterprint', done);
  window.print();
}
