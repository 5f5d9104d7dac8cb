/**
 * The `--peer` template that runs the reference peer (./library-peer.ts) through tsx, for the
 * kit's own tests and for the documentation's examples.
 *
 * @module
 */
import { join } from 'node:path';
import { ROOT } from '../harness/child-runtime.js';

/** The template for the reference peer at `script` (default: this checkout's). */
export function libraryPeerCommand(script = join(ROOT, 'conformance/library-peer.ts')): string {
  return [
    `"${process.execPath}"`,
    '--import tsx',
    `"${script}"`,
    '--endpoint {endpoint} --id {id} --priority {priority} --workdir {workdir}',
    '--heartbeat-interval {heartbeatInterval} --heartbeat-timeout {heartbeatTimeout}',
  ].join(' ');
}
