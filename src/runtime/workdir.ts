/**
 * Where default work directories live: one per-user directory under the temp directory, whose
 * own privacy the state file and the unit record check (docs/SECURITY.md).
 *
 * @module
 */
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/**
 * Whether `dir` sits right in the per-user directory of the default workdirs, which must then be
 * as private as `dir` itself (see the state file's and the unit record's directory checks).
 */
export function inDefaultWorkdirParent(dir: string): boolean {
  return dirname(resolve(dir)) === resolve(defaultWorkdirParent());
}

/** The per-user directory of the default workdirs: `${tmpdir()}/failover-watch-${user}`. */
export function defaultWorkdirParent(): string {
  let user = 'user';
  try {
    user = userInfo().username.replace(/[^A-Za-z0-9._-]/g, '_') || user;
  } catch {
    // No passwd entry (some containers): a shared name is still per-endpoint.
  }
  return join(tmpdir(), `failover-watch-${user}`);
}
