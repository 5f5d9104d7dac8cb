/**
 * `run --metadata KEY=VALUE` (repeatable): the application metadata the node announces while
 * primary, checked against the same limits as the library's `metadata` option, so that the CLI
 * refuses at start what every peer would drop.
 *
 * @module
 */
import { isFailoverError } from '../errors.js';
import { resolveMetadata } from '../metadata-option.js';
import { METADATA_KEY_RULE, type Metadata } from '../protocol/metadata.js';

export const METADATA_OPTION = {
  metadata: {
    type: 'list',
    value: 'KEY=VALUE',
    description:
      `Application metadata this node announces while primary (ZeroMQ heartbeats, Redis ${'`{project}:metadata`'}, ` +
      `the etcd campaign key, the PostgreSQL presence row); followers, ` +
      `status and watch show it. KEY: ${METADATA_KEY_RULE}; VALUE: up to 256 bytes; at most 16 keys.`,
    example: 'port=7001',
  },
} as const;

/**
 * The metadata of `--metadata KEY=VALUE` pairs, or the usage error to report (one line naming the
 * key): a pair without `=`, a key given twice, or a map the metadata rules refuse.
 */
export function metadataOrUsageError(pairs: readonly string[]): { readonly metadata: Metadata } | { readonly error: string } {
  const map: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq === -1) return { error: `--metadata expects KEY=VALUE, received ${JSON.stringify(pair)}` };
    const key = pair.slice(0, eq);
    if (Object.hasOwn(map, key)) return { error: `--metadata ${key} is given twice` };
    Object.defineProperty(map, key, { value: pair.slice(eq + 1), enumerable: true, writable: true, configurable: true });
  }
  try {
    return { metadata: resolveMetadata(map) };
  } catch (error) {
    if (!isFailoverError(error, 'ERR_FAILOVER_INVALID_OPTION')) throw error;
    const e = error as { option?: string; expected?: string; received?: unknown };
    const option = e.option ?? 'metadata';
    const which = option === 'metadata' ? '--metadata' : `--metadata ${option.slice('metadata.'.length)}`;
    return { error: `${which}: expected ${e.expected ?? 'valid metadata'}, received ${typeof e.received === 'string' ? JSON.stringify(e.received) : String(e.received)}` };
  }
}
