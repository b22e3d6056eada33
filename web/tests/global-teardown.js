// Stop the demo node and remove its files.
import { readFileSync, rmSync } from 'node:fs';
import { stopDemo } from './demo.js';
import { STATE } from './global-setup.js';

export default async function globalTeardown() {
  let state;
  try { state = JSON.parse(readFileSync(STATE, 'utf8')); } catch { return; }
  await stopDemo(state.pid);
  rmSync(state.out, { recursive: true, force: true });
  rmSync(STATE, { force: true });
}
