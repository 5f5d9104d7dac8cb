#!/usr/bin/env node
// The `failover-watch` command. In a git checkout (src/ present) it runs the TypeScript source
// through tsx, so no build step is needed after npm install and a stale dist/ is never used; the
// published package (no src/) runs the compiled dist/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const source = new URL('../src/cli/main.ts', import.meta.url);
// In a checkout, FAILOVER_WATCH_DIST may name a fresh JavaScript build of src/ to run instead
// (the test suite builds one at its start: a node process then starts in a third of tsx's CPU).
const built = existsSync(source) ? process.env.FAILOVER_WATCH_DIST : undefined;
let cli;
if (built !== undefined && built !== '') {
  cli = await import(pathToFileURL(join(built, 'cli', 'main.js')).href);
} else if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  cli = await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
const code = await cli.main(process.argv.slice(2), cli.processIo());
// Done: exit now, once stdout and stderr are written (at once on Linux; pipes are asynchronous
// elsewhere), at most 1 s. Waiting for the event loop to drain and the runtime to tear itself down
// (V8's heap, freed page by page) kept a finished command alive for 100-400 ms more on a busy host;
// whatever main() started is closed by the time it returns.
const written = (stream) =>
  stream.destroyed || stream.writableLength === 0 ? undefined : new Promise((resolve) => stream.once('drain', resolve));
await Promise.race([
  Promise.all([written(process.stdout), written(process.stderr)]),
  new Promise((resolve) => setTimeout(resolve, 1000).unref()),
]);
process.exit(code);
