/**
 * prom-client is an optional peer dependency: a node process in which it cannot be resolved (a
 * resolve hook refuses it, as if it were not installed) imports the library's main and Redis
 * entries, runs a Watcher and serves `run --health`'s /healthz; only failover-watch/metrics needs
 * it, and /metrics then says how to install it. A second process checks that importing the
 * main entry leaves prom-client out of the module cache even when it is installed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { uniqueIpc } from '../../harness/cluster.js';

const src = (file: string): string => pathToFileURL(resolve('src', file)).href;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Runs `script` (ESM) in a fresh node with tsx; resolves with its exit code and output. */
function runNode(files: Record<string, string>, main: string, args: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fw-optional-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const child = spawn(process.execPath, ['--import', 'tsx', ...args.map((a) => a.replace('DIR', dir)), join(dir, main)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((done) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, out, err });
    }),
  );
}

const BLOCK_HOOKS = `
export async function resolve(specifier, context, next) {
  if (specifier === 'prom-client' || specifier.startsWith('prom-client/')) {
    const error = new Error("Cannot find package 'prom-client' (blocked by the test)");
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}
`;

it('the library runs and serves /healthz without prom-client', async () => {
  const main = `
import { register } from 'node:module';
register('./block-hooks.mjs', import.meta.url);
const { Watcher } = await import(${JSON.stringify(src('index.ts'))});
await import(${JSON.stringify(src('redis.ts'))});
const { startHealthServer } = await import(${JSON.stringify(src('cli/supervisor/health-server.ts'))});
const w = new Watcher({ endpoint: ${JSON.stringify(uniqueIpc('fw-optional'))}, workdir: process.argv[2], heartbeatInterval: 50, heartbeatTimeout: 400, rehearsals: 0 });
await w.start();
const warnings = [];
const server = await startHealthServer('127.0.0.1', 0, { status: () => w.status(), health: () => w.health(), onElection: () => undefined }, { childRestarts: 0 }, (t) => warnings.push(t));
const healthz = await fetch('http://127.0.0.1:' + server.port + '/healthz');
const metrics = await fetch('http://127.0.0.1:' + server.port + '/metrics');
let metricsEntry = 'loaded';
try { await import(${JSON.stringify(src('metrics.ts'))}); } catch (e) { metricsEntry = e.code; }
console.log(JSON.stringify({ role: w.role, healthz: healthz.status, metrics: metrics.status, metricsText: await metrics.text(), warnings, metricsEntry }));
await server.close();
await w.shutdown();
`;
  const work = mkdtempSync(join(tmpdir(), 'fw-optional-work-'));
  dirs.push(work);
  const r = await runNode({ 'block-hooks.mjs': BLOCK_HOOKS, 'main.mjs': main.replace('process.argv[2]', JSON.stringify(work)) }, 'main.mjs');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const result = JSON.parse(r.out) as Record<string, unknown>;
  expect(result).toMatchObject({ role: 'primary', metrics: 501, metricsEntry: 'ERR_MODULE_NOT_FOUND' });
  expect([200, 503]).toContain(result.healthz);
  expect(result.metricsText).toContain('npm install prom-client');
  expect(result.warnings).toEqual([expect.stringContaining('optional peer dependency')]);
});

it('importing the main entry does not load prom-client', async () => {
  const main = `
import { createRequire } from 'node:module';
const cache = createRequire(import.meta.url).cache;
const loaded = () => Object.keys(cache).some((f) => f.includes('/node_modules/prom-client/'));
await import(${JSON.stringify(src('index.ts'))});
await import(${JSON.stringify(src('redis.ts'))});
const afterMain = loaded();
await import(${JSON.stringify(src('metrics.ts'))});
console.log(JSON.stringify({ afterMain, afterMetrics: loaded() }));
`;
  const r = await runNode({ 'main.mjs': main }, 'main.mjs');
  expect(r.err).toBe('');
  // The control (afterMetrics) shows the check sees prom-client when it is loaded.
  expect(JSON.parse(r.out)).toEqual({ afterMain: false, afterMetrics: true });
});
