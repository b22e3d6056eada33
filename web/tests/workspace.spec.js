// The workspace as an investigator and a supervisor use it, against a real node (the
// demo's, see global-setup.js). Screenshots of each flow: test-results/screens/.
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { STATE } from './global-setup.js';

const demo = JSON.parse(readFileSync(STATE, 'utf8'));
const REASON = `browser test ${Date.now()}`;
const CASE = 'DEMO-0001';
const shot = (page, name) => page.screenshot({ path: `test-results/screens/${name}.png` });

/** Collects Content-Security-Policy violations and page errors of `page`. */
function watch(page) {
  const problems = [];
  page.on('console', (m) => {
    // The refusals the tests provoke on purpose (a wrong token, a search beyond the tier)
    // are logged by the browser as failed loads; anything else is a problem.
    const provoked = /status of (401|403) /.test(m.text());
    if ((m.type() === 'error' && !provoked) || /Content Security Policy/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return problems;
}

async function signIn(page, token, reason = REASON) {
  await page.goto(demo.url);
  await page.fill('#token', token);
  await page.click('#signin-form button[type=submit]');
  await expect(page.locator('#purpose-dialog')).toBeVisible();
  await page.fill('#case-id', CASE);
  await page.fill('#reason', reason);
  await page.click('#purpose-form button[type=submit]');
  await expect(page.locator('body[data-map-ready]')).toHaveCount(1, { timeout: 30_000 });
}

test.describe.serial('an investigator', () => {
  let page;
  let problems;

  const urls = [];
  test.beforeAll(async ({ browser }) => {
    page = await browser.newPage();
    problems = watch(page);
    page.on('request', (request) => urls.push(request.url()));
  });
  test.afterAll(async () => { await page.close(); });

  test('a wrong token is refused in a sentence, the right one asks for the case', async () => {
    await page.goto(demo.url);
    await expect(page.locator('#signin-dialog')).toBeVisible();
    await page.fill('#token', 'ct_not_a_token');
    await page.click('#signin-form button[type=submit]');
    await expect(page.locator('#signin-error')).toHaveText(/token was not accepted/);
    await shot(page, '01-sign-in-refused');
    await page.fill('#token', demo.investigator);
    await page.click('#signin-form button[type=submit]');
    await expect(page.locator('#purpose-dialog')).toBeVisible();
    await shot(page, '02-case-prompt');
    await page.fill('#case-id', CASE);
    await page.fill('#reason', REASON);
    await page.click('#purpose-form button[type=submit]');
    await expect(page.locator('#purpose-badge')).toContainText(CASE);
    await expect(page.locator('#purpose-badge')).toContainText(REASON);
    await expect(page.locator('body[data-map-ready]')).toHaveCount(1, { timeout: 30_000 });
    await expect(page.locator('#map-note')).toContainText('5000 cameras');
    await expect(page.locator('#tab-audit')).toBeHidden();
    // The token is never in the address bar.
    expect(page.url()).not.toContain(demo.investigator);
  });

  test('a plate search shows every sighting on the map and in the table', async () => {
    await page.fill('#plate', demo.plate);
    await page.check('input[name=mode][value=fuzzy]');
    await page.fill('#plate-from', await page.evaluate((ms) => window.camtrail.toInput(ms), Number(demo.from)));
    await page.click('#plate-form button[type=submit]');
    await expect(page.locator('#track-result')).toBeVisible();
    const n = Number(demo.sightings);
    await expect(page.locator('body')).toHaveAttribute('data-track-points', String(n));
    await expect(page.locator('#sightings tbody tr')).toHaveCount(n);
    await expect(page.locator('#track-summary')).toContainText(`${n} sightings of ${demo.plate}`);
    await expect(page.locator('#track-summary')).toContainText(/Audit record \S+ #\d+/);
    // On the map: one number label per sighting (a track this short is labelled).
    await expect(page.locator('.point-number')).toHaveCount(n);
    await page.waitForTimeout(500);
    await shot(page, '03-plate-track');
  });

  test('the timeline scrubs through the sightings', async () => {
    const n = Number(demo.sightings);
    const target = Math.min(3, n);
    await page.locator('#scrub').fill(String(target));
    await expect(page.locator('#scrub-label')).toContainText(`#${target} `);
    await expect(page.locator(`#sightings tr[data-index="${target}"]`)).toHaveClass(/current/);
    await page.locator('#scrub').focus();
    await page.keyboard.press('ArrowRight');
    await expect(page.locator('#scrub-label')).toContainText(`#${Math.min(target + 1, n)} `);
    await shot(page, '04-timeline');
  });

  test('a snapshot opens full size', async () => {
    const thumb = page.locator('button.thumb').first();
    await expect(thumb.locator('img')).toHaveCount(1);
    await thumb.click();
    await expect(page.locator('#snapshot-dialog')).toBeVisible();
    await expect.poll(() => page.evaluate(() => document.getElementById('snapshot-full').naturalWidth)).toBeGreaterThan(0);
    await shot(page, '05-snapshot');
    await page.click('#snapshot-dialog button');
  });

  test('exports download PNG, GeoJSON and CSV, and the report carries the case', async () => {
    const downloads = {};
    for (const [button, ext] of [['#export-png', 'png'], ['#export-geojson', 'geojson'], ['#export-csv', 'csv']]) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
      expect(download.suggestedFilename()).toMatch(new RegExp(`^track-${CASE}-.*\\.${ext}$`));
      downloads[ext] = readFileSync(await download.path());
    }
    expect(downloads.png.subarray(1, 4).toString()).toBe('PNG');
    const geojson = JSON.parse(downloads.geojson.toString());
    expect(geojson.type).toBe('FeatureCollection');
    expect(geojson.camtrail.case).toBe(CASE);
    expect(geojson.camtrail.reason).toBe(REASON);
    const csv = downloads.csv.toString();
    expect(csv).toContain(`# case,${CASE}`);
    expect(csv).toContain(`# reason,${REASON}`);
    expect(csv.trim().split('\r\n').length).toBe(5 + Number(demo.sightings));
    await page.evaluate(() => { window.printed = 0; window.print = () => { window.printed += 1; }; });
    await page.click('#export-report');
    await expect.poll(() => page.evaluate(() => window.printed)).toBe(1);
    const report = page.locator('#report');
    await expect(report).toContainText(CASE);
    await expect(report).toContainText(REASON);
    await expect(report).toContainText(/Audit record\s*\S+ #\d+/);
    await expect(report).toContainText(demo.plate);
    await page.emulateMedia({ media: 'print' });
    await shot(page, '06-report-print');
    await page.emulateMedia({ media: 'screen' });
  });

  test('a scene search lists who passed, and one beyond the tier is refused in a sentence', async () => {
    await page.click('#tab-scene');
    // Centre the circle on the first sighting's camera, window around the demo's run.
    const point = await page.evaluate(() => {
      const m = window.camtrailMap;
      const first = document.querySelector('#sightings tbody tr');
      return first ? m.latLngToContainerPoint(window.camtrail.firstSighting()) : null;
    });
    expect(point).not.toBeNull();
    await page.locator('#map').click({ position: { x: point.x, y: point.y } });
    await page.fill('#radius', '300');
    await page.fill('#scene-from', await page.evaluate((ms) => window.camtrail.toInput(ms), Number(demo.from)));
    await page.fill('#scene-to', await page.evaluate((ms) => window.camtrail.toInput(ms), Number(demo.to)));
    await page.click('#scene-form button[type=submit]');
    await expect(page.locator('#scene-result')).toBeVisible();
    await expect(page.locator('#scene-table tbody tr').first()).toBeVisible();
    await expect(page.locator('#scene-summary')).toContainText(/vehicles passed/);
    await shot(page, '07-scene');
    await page.fill('#radius', '5000');
    await page.click('#scene-form button[type=submit]');
    await expect(page.locator('#scene-status')).toHaveText(/not allowed to do this with your role/);
    await expect(page.locator('#scene-status')).toHaveAttribute('data-status', '403');
    await expect(page.locator('#scene-status')).not.toContainText('{');
    await shot(page, '08-scene-403');
  });

  test('the page works in Chinese', async () => {
    await page.selectOption('#lang', 'zh-CN');
    await expect(page.locator('#tab-plate')).toHaveText('号牌');
    await expect(page.locator('#purpose-badge')).toContainText(`案件 ${CASE}`);
    // What was already on screen follows: the tier note and the refusal of the scene.
    await expect(page.locator('#tier-note')).toContainText('需要主管权限');
    await expect(page.locator('#scene-status')).toContainText('您的角色无权执行此操作');
    await shot(page, '09-zh-CN');
    await page.selectOption('#lang', 'en');
  });

  test('no policy violation or script error happened, and the token was in no URL', async () => {
    expect(problems).toEqual([]);
    expect(urls.length).toBeGreaterThan(10);
    expect(urls.filter((url) => url.includes(demo.investigator))).toEqual([]);
  });

  test('every search the page made is exactly one audit record, seen by a supervisor', async ({ browser }) => {
    // Nothing still in flight (a thumbnail), then what the page asked, by kind.
    await page.waitForLoadState('networkidle');
    const made = await page.evaluate(() => window.camtrail.audited);
    const answered = made.filter((r) => r.status < 400);
    const kindOf = (path) => (/v1\/snapshots\//.test(path) ? 'snapshot'
      : /v1\/track/.test(path) ? 'track' : /v1\/scene/.test(path) ? 'scene' : path);
    const asked = {};
    for (const r of answered) asked[kindOf(r.path)] = (asked[kindOf(r.path)] || 0) + 1;
    // A plate search, three track exports (PNG, GeoJSON, the report's map), snapshots, a scene.
    expect(asked.track).toBe(4);
    expect(asked.scene).toBe(1);
    expect(asked.snapshot).toBeGreaterThanOrEqual(1);
    const supervisor = await browser.newPage();
    const supervisorProblems = watch(supervisor);
    await signIn(supervisor, demo.supervisor, 'reviewing the browser test');
    await expect(supervisor.locator('#tab-audit')).toBeVisible();
    await supervisor.click('#tab-audit');
    await supervisor.fill('#audit-case', CASE);
    await supervisor.fill('#audit-user', 'demo-investigator');
    await supervisor.click('#audit-form button[type=submit]');
    await expect(supervisor.locator('#chain-status')).toContainText('verified');
    const links = Number(/(\d+) links verified/.exec(await supervisor.locator('#chain-status').textContent())?.[1]);
    expect(links).toBeGreaterThan(0);
    // Every page of records, then the ones with this test's reason.
    for (;;) {
      const next = supervisor.locator('#audit-next');
      if (await next.isHidden()) break;
      const before = await supervisor.locator('#audit-table tbody tr').count();
      await next.click();
      await expect.poll(() => supervisor.locator('#audit-table tbody tr').count()).toBeGreaterThan(before);
    }
    // Exactly one record per request the node answered, of the same kind.
    const rows = await supervisor.locator('#audit-table tbody tr').evaluateAll((trs) => trs.map((tr) => ({
      kind: tr.cells[3].textContent, reason: tr.cells[5].textContent,
    })));
    const recorded = {};
    for (const r of rows.filter((row) => row.reason === REASON)) recorded[r.kind] = (recorded[r.kind] || 0) + 1;
    expect(recorded).toEqual(asked);
    await shot(supervisor, '10-audit');
    expect(supervisorProblems).toEqual([]);
    await supervisor.close();
  });
});
