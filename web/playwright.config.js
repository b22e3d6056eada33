// Browser tests of the workspace against a real node: `camtrail demo --keep` on a small
// city (started by tests/global-setup.js), driven in Debian's chromium package — no
// browser download (CHROMIUM overrides the path).
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: 'tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results/artifacts',
  globalSetup: './tests/global-setup.js',
  globalTeardown: './tests/global-teardown.js',
  use: {
    headless: true,
    viewport: { width: 1400, height: 900 },
    acceptDownloads: true,
    launchOptions: { executablePath: process.env.CHROMIUM || '/usr/bin/chromium' },
    trace: 'off',
  },
});
