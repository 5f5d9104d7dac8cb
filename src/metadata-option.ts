/**
 * The `metadata` option of every backend that carries it, and `setMetadata()`: validated once
 * against the limits of `protocol/metadata.ts`, so a node never announces metadata its peers
 * would drop.
 *
 * @module
 */
import { InvalidOptionError } from './errors.js';
import { checkMetadata, NO_METADATA, type Metadata } from './protocol/metadata.js';

export {
  MAX_METADATA_BYTES,
  MAX_METADATA_KEY_BYTES,
  MAX_METADATA_KEYS,
  MAX_METADATA_VALUE_BYTES,
  type Metadata,
} from './protocol/metadata.js';

/**
 * Validates application metadata; `undefined` is the empty map. Throws {@link InvalidOptionError}
 * naming the offending key (`metadata.port`), or `metadata` itself for the map as a whole (not a
 * plain object, too many keys, too large), with what was expected and what was received.
 */
export function resolveMetadata(value: unknown, option = 'metadata'): Metadata {
  if (value === undefined) return NO_METADATA;
  const checked = checkMetadata(value);
  if (checked.ok) return checked.metadata;
  const name = checked.key === undefined ? option : `${option}.${checked.key}`;
  throw new InvalidOptionError(name, checked.expected, checked.received);
}
