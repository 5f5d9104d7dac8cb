/**
 * The directory of a filesystem ipc endpoint: whoever can enter it can connect to the socket,
 * and whoever can write it can replace the socket file with their own (libzmq unlinks and
 * rebinds, so the lock in `path-lock.ts` orders only the processes that take it: this
 * package's, and peers that follow PROTOCOL.md 2.2).
 *
 * When it opens (a node that may bind: not the CLI's listeners), the transport makes sure the
 * directory exists, creating missing directories with mode 0700, and warns (once) when an
 * existing one is open to other users or owned by someone else; a bind waits for that check. It
 * never changes the mode of an existing directory.
 *
 * @module
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { makeDirectoriesSync } from '../../runtime/private-path.js';

/** Creates the endpoint's directory if missing (0700); returns a warning when it is not private. */
export async function checkPrivateDirectory(socketPath: string): Promise<string | undefined> {
  const dir = dirname(socketPath);
  try {
    // One level at a time: Node's recursive mkdir spins without end under /proc (a directory
    // that cannot hold new entries answers neither EEXIST nor ENOENT as it expects).
    makeDirectoriesSync(dir);
    const info = await stat(dir);
    const uid = process.getuid?.();
    const problems: string[] = [];
    if (uid !== undefined && info.uid !== uid) problems.push(`is owned by uid ${info.uid}`);
    if ((info.mode & 0o077) !== 0) problems.push(`has mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}`);
    if (problems.length === 0) return undefined;
    return (
      `the ipc endpoint's directory ${dir} ${problems.join(' and ')}: other users may connect to the ` +
      `endpoint or replace its socket; use a directory only this user can enter (mode 0700) or CURVE`
    );
  } catch (error) {
    return `cannot check the ipc endpoint's directory ${dir}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
