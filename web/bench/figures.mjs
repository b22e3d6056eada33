// The workspace's figures in headless Chromium (Debian's package) against a local node:
// `camtrail demo --keep` on a 150,000-camera city, release build.
//
//   cd web && npm run bench            (CAMTRAIL_BIN, CHROMIUM, CAMERAS, RUNS, BENCH_MD)
//
// - first load: navigation → the base map drawn and the cameras clustered (the page's own
//   `mapReady` mark; performance.now() counts from navigation start), signed in already
//   (token, case and reason in sessionStorage as after a sign-in), cold (new browser
//   context: no cache) and warm (reload);
// - a track of 2,000 sightings drawn: a synthetic answer along real cameras handed to the
//   page's drawing code, to the next painted frame;
// - panning with every camera on the map (clustered): frames per second while a mouse
//   drags the map, at the city view and zoomed in, and the re-clustering after the drag;
// - the bundle's size, raw and gzip, and the base map's payload.
// Appends a table to BENCHMARKS.md.
import { appendFileSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execSync } from 'node:child_process';
import { chromium } from '@playwright/test';
import { startDemo, stopDemo } from '../tests/demo.js';

const bin = process.env.CAMTRAIL_BIN || resolve('../target/release/camtrail');
const cameras = Number(process.env.CAMERAS || 150_000);
const runs = Number(process.env.RUNS || 5);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x, digits = 0) => x.toFixed(digits);

process.stderr.write(`starting camtrail demo with ${cameras} cameras...\n`);
const demo = await startDemo(bin, ['--duration', '5', '--rate', '5000', '--snapshots', '0',
  '--cameras', String(cameras)]);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
const rows = [];
try {
  const session = { 'camtrail.token': demo.investigator, 'camtrail.case': 'DEMO-0001', 'camtrail.reason': 'workspace figures' };
  const signedIn = async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await context.addInitScript((values) => {
      for (const [k, v] of Object.entries(values)) sessionStorage.setItem(k, v);
    }, session);
    return context;
  };
  const ready = (page) => page.waitForSelector('body[data-map-ready]', { timeout: 60_000 });

  // 1. First load.
  const cold = [];
  const warm = [];
  const shown = [];
  for (let i = 0; i < runs; i += 1) {
    const context = await signedIn();
    const page = await context.newPage();
    await page.goto(demo.url);
    await ready(page);
    const marks = await page.evaluate(() => window.camtrail.marks);
    cold.push(marks.mapReady);
    shown.push(marks.mapShown);
    await page.reload();
    await ready(page);
    warm.push(await page.evaluate(() => window.camtrail.marks.mapReady));
    await context.close();
    process.stderr.write(`first load ${i + 1}/${runs}: cold ${fmt(cold[i])} ms, warm ${fmt(warm[i])} ms\n`);
  }
  rows.push(['first load → map with districts, roads and clustered cameras, cold (no cache)', `${fmt(median(cold))} ms (max ${fmt(Math.max(...cold))})`, '< 1,500 ms']);
  rows.push(['same, warm (reload)', `${fmt(median(warm))} ms (max ${fmt(Math.max(...warm))})`, '']);
  rows.push(['first load → the empty map on screen (before the base map arrives)', `${fmt(median(shown))} ms`, '']);

  // 2. A track of 2,000 sightings.
  const context = await signedIn();
  const page = await context.newPage();
  await page.goto(demo.url);
  await ready(page);
  const draws = await page.evaluate(async ({ n, runs: times }) => {
    // 2,000 cameras along a walk over the registry: each step to a near camera east-ish.
    const positions = [];
    const response = await fetch('v1/basemap', { headers: { Authorization: `Bearer ${sessionStorage.getItem('camtrail.token')}` } });
    const basemap = await response.json();
    const order = basemap.cameras.lon.map((lon, i) => [lon, basemap.cameras.lat[i], i]).sort((a, b) => a[0] - b[0]);
    const band = order.filter((c, i) => i % Math.max(1, Math.floor(order.length / n)) === 0).slice(0, n);
    for (const [lon, lat, i] of band) positions.push({ lat, lon, id: basemap.cameras.ids[i], d: basemap.cameras.district[i] });
    const start = Date.now() - n * 30_000;
    const sightings = positions.map((p, i) => ({
      n: i + 1, lat: p.lat, lon: p.lon, camera_id: p.id, district: basemap.districts[p.d]?.name ?? '?',
      time: new Date(start + i * 30_000).toISOString(), captured_at_ms: start + i * 30_000, event_id: String(i).padStart(32, '0'),
      has_snapshot: false, match_kind: i % 50 === 0 ? 'fuzzy' : 'exact', match_confidence: 1, plate: 'BENCH', road: '',
    }));
    const links = sightings.slice(1).map((s, i) => ({ from_index: i, to_index: i + 1, distance_km: 0.5, elapsed_ms: 30_000, implied_speed_kmh: 60, confidence: 1, impossible: i % 97 === 0 }));
    const answer = {
      asked: 'BENCH', audit: { node_id: 'bench', seq: 0, hash: '0'.repeat(64) }, dropped: [], from: '', to: '', from_ms: 0, to_ms: 0,
      impossible_hops: 0, links, sightings, stops: [], transitions: [], trips: [], keys: [], second_vehicle: null, time_zone: 'UTC', truncated: false,
    };
    const results = [];
    for (let r = 0; r < times; r += 1) {
      const t0 = performance.now();
      window.camtrail.showTrack(answer);
      await new Promise((resolveFrame) => { requestAnimationFrame(() => requestAnimationFrame(resolveFrame)); });
      results.push({ total: performance.now() - t0, code: Number(document.body.dataset.trackDrawMs) });
    }
    return results;
  }, { n: 2000, runs });
  rows.push(['a track of 2,000 sightings drawn (JS + the next two frames painted)', `${fmt(median(draws.map((d) => d.total)))} ms (max ${fmt(Math.max(...draws.map((d) => d.total)))}; drawing code alone ${fmt(median(draws.map((d) => d.code)))} ms)`, '< 300 ms']);
  await page.evaluate(() => window.camtrail.showTrack({ asked: '', audit: { node_id: '', seq: 0, hash: '' }, dropped: [], links: [], sightings: [], stops: [], transitions: [], trips: [], keys: [], impossible_hops: 0 }));

  // 3. Panning.
  const pan = async (zoom) => {
    await page.evaluate((z) => { const m = window.camtrailMap; m.setZoom(z, { animate: false }); }, zoom);
    await page.waitForTimeout(500);
    const items = await page.evaluate(() => Number(document.getElementById('map').dataset.cameraItems));
    const box = await page.locator('#map').boundingBox();
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await page.evaluate(() => {
      window.frames_ = [];
      const tick = (t) => { window.frames_.push(t); if (window.frames_.length < 100_000 && window.counting_) requestAnimationFrame(tick); };
      window.counting_ = true;
      requestAnimationFrame(tick);
    });
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    const steps = 120;
    for (let i = 1; i <= steps; i += 1) {
      const phase = (i / steps) * 2 * Math.PI;
      await page.mouse.move(cx + 250 * Math.sin(phase), cy + 150 * Math.sin(phase * 2));
      await page.waitForTimeout(16);
    }
    const dragEnd = await page.evaluate(() => performance.now());
    await page.mouse.up();
    const after = await page.evaluate(async () => {
      await new Promise((r) => { requestAnimationFrame(() => requestAnimationFrame(r)); });
      window.counting_ = false;
      return performance.now();
    });
    const frames = await page.evaluate((end) => window.frames_.filter((t) => t <= end), dragEnd);
    const gaps = frames.slice(1).map((t, i) => t - frames[i]);
    const seconds = (frames[frames.length - 1] - frames[0]) / 1000;
    return { fps: (frames.length - 1) / seconds, worst: Math.max(...gaps), items, settle: after - dragEnd };
  };
  for (const zoom of [11, 14]) {
    const result = await pan(zoom);
    rows.push([`pan (mouse drag, 2 s) at zoom ${zoom} with ${cameras.toLocaleString('en')} cameras clustered (${result.items} markers in view)`, `${fmt(result.fps, 1)} fps, worst frame ${fmt(result.worst)} ms`, '≥ 30 fps']);
  }
  const recluster = await page.evaluate(async () => {
    const m = window.camtrailMap;
    const times = [];
    for (let i = 0; i < 5; i += 1) {
      const t0 = performance.now();
      m.panBy([200, 0], { animate: false });
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[2];
  });
  rows.push(['re-clustering the cameras in view after a move (moveend)', `${fmt(recluster, 1)} ms`, '']);
  await context.close();

  // 4. Sizes.
  const assets = readdirSync('dist/assets').map((f) => resolve('dist/assets', f));
  const raw = assets.reduce((sum, f) => sum + statSync(f).size, 0) + statSync('dist/index.html').size;
  const zipped = assets.concat([resolve('dist/index.html')]).reduce((sum, f) => sum + gzipSync(readFileSync(f)).length, 0);
  rows.push(['bundle (index.html, app.js, app.css)', `${fmt(raw / 1024)} KiB, ${fmt(zipped / 1024)} KiB gzip`, '']);
  // Sizes as sent (the token in a header of this process, not on a command line).
  const size = async (encoding) => {
    const { request } = await import('node:http');
    return new Promise((resolveSize, reject) => {
      const req = request(`${demo.url}v1/basemap`, { headers: { Authorization: `Bearer ${demo.investigator}`, 'Accept-Encoding': encoding } }, (res) => {
        let bytes = 0;
        res.on('data', (chunk) => { bytes += chunk.length; });
        res.on('end', () => resolveSize(bytes));
      });
      req.on('error', reject);
      req.end();
    });
  };
  const basemap = await size('identity');
  const basemapGz = await size('gzip');
  rows.push([`base map payload (${cameras.toLocaleString('en')} cameras, districts, roads)`, `${fmt(Number(basemap) / 1048576, 1)} MiB, ${fmt(Number(basemapGz) / 1048576, 1)} MiB gzip`, '']);
} finally {
  await browser.close();
  await stopDemo(demo.pid);
  rmSync(demo.out, { recursive: true, force: true });
}

const commit = execSync('git rev-parse --short HEAD').toString().trim();
const cpu = cpus()[0]?.model ?? 'unknown CPU';
const chromiumVersion = execSync(`${process.env.CHROMIUM || '/usr/bin/chromium'} --version`).toString().trim();
const table = [
  '',
  `### Workspace in the browser (${new Date().toISOString().slice(0, 10)}, ${commit}, ${cpu}, ${cpus().length} cores, ${chromiumVersion} headless)`,
  '',
  `\`cd web && npm run bench\` — \`camtrail demo --keep\` (release) on a ${cameras.toLocaleString('en')}-camera city, medians of ${runs} runs, node and browser on the same ${cpus().length} cores.`,
  '',
  '| figure | measured | target |',
  '|---|---|---|',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
].join('\n');
process.stdout.write(table);
appendFileSync(process.env.BENCH_MD || '../BENCHMARKS.md', table);
