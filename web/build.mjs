// Builds the workspace into dist/ (committed; compiled into the camtrail binary by
// rust-embed). Deterministic: the same sources and lockfile give the same bytes, so the
// test command can check the committed bundle against a fresh `npm ci && npm run build`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist/assets', { recursive: true });
await build({
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  outdir: 'dist/assets',
  // Leaflet's stylesheet names a few images; inline them (no request, nothing external).
  loader: { '.png': 'dataurl', '.svg': 'dataurl' },
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync('src/index.html', 'dist/index.html');
