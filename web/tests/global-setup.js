// Start `camtrail demo --keep` on a small city (every event with a snapshot, so the table
// has thumbnails) and leave what it printed in test-results/demo.json (owner-only: it holds
// tokens). CAMTRAIL_BIN names the binary (default: this repository's debug build).
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startDemo } from './demo.js';

export const STATE = resolve('test-results/demo.json');

export default async function globalSetup() {
  const bin = process.env.CAMTRAIL_BIN || resolve('../target/debug/camtrail');
  const demo = await startDemo(bin, ['--duration', '4', '--rate', '2000', '--snapshots', '1',
    '--cameras', '5000', '--gateways', '40']);
  mkdirSync('test-results/screens', { recursive: true });
  writeFileSync(STATE, JSON.stringify(demo), { mode: 0o600 });
}
