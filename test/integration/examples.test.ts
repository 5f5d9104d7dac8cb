/**
 * The examples in examples/ run as users would run them, so they never rot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { uniqueIpc } from '../../harness/cluster.js';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }
});

/** Starts a TypeScript example; `waitForLine` resolves on the first stdout line matching. */
function runExample(file: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let buffer = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) waiters.splice(waiters.indexOf(w), 1) && w.resolve(line);
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    lines,
    exited,
    waitForLine(re: RegExp, timeout = 20_000): Promise<string> {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${re} within ${timeout} ms; stdout: ${lines.join(' | ')}; stderr: ${stderr}`)), timeout);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

describe('examples/desktop-app.ts', () => {
  it('the first instance becomes primary, the second follows, and takes over when the first quits', async () => {
    const env = { APP_ENDPOINT: uniqueIpc('fw-example') };
    const first = runExample('examples/desktop-app.ts', env);
    await first.waitForLine(/^started as primary/);
    const second = runExample('examples/desktop-app.ts', env);
    await second.waitForLine(/^started as secondary/);
    await second.waitForLine(/^following the primary instance/);
    process.kill(first.child.pid as number, 'SIGTERM');
    await first.waitForLine(/^stopped/);
    expect(await first.exited).toBe(0);
    const promoted = await second.waitForLine(/^primary \(epoch \d+, shutdown\)/);
    expect(promoted).toContain('opening the shared database');
  });
});
