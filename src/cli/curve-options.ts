/**
 * The CURVE options shared by `run`, `status` and `watch`: a key directory written by
 * `failover-watch keygen` and this node's key name in it.
 *
 * @module
 */
import type { CurveOptions } from '../transport/zmq/curve.js';
import { readCurveKeys } from '../transport/zmq/curve-key-files.js';

export const CURVE_OPTIONS = {
  'curve-dir': {
    type: 'string',
    value: 'DIR',
    description: 'Use CURVE security with the key directory written by `failover-watch keygen` (needs --curve-name).',
    example: '/etc/my-app/curve',
  },
  'curve-name': {
    type: 'string',
    value: 'NAME',
    description: "This node's key name in --curve-dir.",
    example: 'node-a',
  },
} as const;

/**
 * The keys for `--curve-dir`/`--curve-name`: undefined without them, or the usage error to
 * report (one line) when only one is given or the keys cannot be read.
 */
export async function curveOrUsageError(
  dir: string | undefined,
  name: string | undefined,
): Promise<{ curve: CurveOptions | undefined } | { error: string }> {
  try {
    const curve = await curveFromArgs(dir, name);
    return typeof curve === 'string' ? { error: curve } : { curve };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/** The keys for `--curve-dir`/`--curve-name`, undefined without them; a string when only one is given. */
export async function curveFromArgs(dir: string | undefined, name: string | undefined): Promise<CurveOptions | undefined | string> {
  if (dir === undefined && name === undefined) return undefined;
  if (dir === undefined || name === undefined) return '--curve-dir and --curve-name go together';
  return readCurveKeys({ dir, name });
}
