#!/usr/bin/env node
// The `failover-watch` command. In a git checkout (src/ present) it runs the TypeScript source
// through tsx, so no build step is needed after npm install and a stale dist/ is never used; the
// published package (no src/) runs the compiled dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  cli = await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
process.exitCode = await cli.main(process.argv.slice(2), cli.processIo());
