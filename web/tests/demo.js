// Starting `camtrail demo --keep` and reading what it prints (URL, tokens, the plate it
// tracked and its window); shared by the browser tests and the figures benchmark.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Start the demo with `args`; resolves once it serves, with what it printed and its pid. */
export async function startDemo(bin, args, { timeoutMs = 180_000 } = {}) {
  const out = mkdtempSync(join(tmpdir(), 'camtrail-web-'));
  // The test command's own CAMTRAIL_* settings (brokers, ClickHouse) are not the demo's.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAMTRAIL_')));
  const child = spawn(bin, ['demo', '--keep', '--out', join(out, 'demo'), '--quiet', ...args],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const collect = (chunk) => { text += chunk; };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const deadline = Date.now() + timeoutMs;
  const found = () => ({
    url: /workspace\s+(http:\/\/\S+\/)/.exec(text)?.[1],
    investigator: /investigator's token[^:]*: (ct_\w+)/.exec(text)?.[1],
    supervisor: /supervisor's token[^:]*: (ct_\w+)/.exec(text)?.[1],
    plate: /\[5\/5\] track of (\S+) /.exec(text)?.[1],
    from: /--from (\d+)/.exec(text)?.[1],
    to: /--to (\d+)/.exec(text)?.[1],
    sightings: /\n(\d+) sightings, /.exec(text)?.[1],
  });
  for (;;) {
    const state = found();
    if (Object.values(state).every(Boolean)) {
      child.stdout.off('data', collect);
      child.stderr.off('data', collect);
      child.stdout.resume();
      child.stderr.resume();
      child.unref();
      return { ...state, pid: child.pid, out };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`camtrail demo did not start its workspace (exit ${child.exitCode}):\n${text}`);
    }
    await new Promise((r) => { setTimeout(r, 250); });
  }
}

/** Stop a demo started by startDemo (Ctrl-C, as a person would), then SIGKILL after 10 s. */
export async function stopDemo(pid) {
  try { process.kill(pid, 'SIGINT'); } catch { return; }
  for (let i = 0; i < 100; i += 1) {
    try { process.kill(pid, 0); } catch { return; }
    await new Promise((r) => { setTimeout(r, 100); });
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* stopped */ }
}
