/**
 * Once per `vitest run`: a JavaScript build of src/ (harness/published-cli.ts, each file
 * transpiled, a second or two) that every `bin/failover-watch.js` the tests spawn runs instead of
 * the TypeScript source through tsx (FAILOVER_WATCH_DIST). The suite starts a few hundred CLI
 * processes; each starts in about a third of tsx's CPU, which on a 2-core machine is most of the
 * difference between a suite that fits in its time and one that does not. The code is the same:
 * the type check is `tsc --noEmit`, and tests that need the TypeScript entry set their own env.
 */
import { chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildPublishedCli } from '../harness/published-cli.js';

export default async function setup(): Promise<() => void> {
  // FW_TEST_TSX=1: spawn the CLI through tsx from src/, as a checkout runs it without the suite.
  if (process.env.FW_TEST_TSX === '1') return () => undefined;
  const cli = await buildPublishedCli();
  // Readable by the two-user tests' accounts, which inherit the variable (mkdtemp makes it 0700).
  chmodSync(dirname(dirname(cli.bin)), 0o755);
  process.env.FAILOVER_WATCH_DIST = join(dirname(dirname(cli.bin)), 'dist');
  return () => cli.cleanup();
}
