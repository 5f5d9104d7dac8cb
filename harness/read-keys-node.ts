/**
 * Reads a key directory with `readCurveKeys({ dir, name })` and prints one JSON line: `{ ok:
 * true, allowed }` (the admitted public keys) or `{ ok: false, code, message }`. Used by the
 * two-user tests, run as the victim.
 *
 * Usage: `node --import tsx harness/read-keys-node.ts DIR NAME`
 *
 * @module
 */
import { readCurveKeys } from '../src/index.js';

const [dir, name] = process.argv.slice(2);
if (dir === undefined || name === undefined) throw new Error('usage: read-keys-node.ts DIR NAME');
try {
  const curve = await readCurveKeys({ dir, name });
  process.stdout.write(`${JSON.stringify({ ok: true, allowed: curve.allowedClientKeys })}\n`);
} catch (error) {
  const e = error as { code?: string; message?: string };
  process.stdout.write(`${JSON.stringify({ ok: false, code: e.code, message: e.message })}\n`);
}
