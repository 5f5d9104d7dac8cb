/**
 * The state file in `workdir`: the highest epoch taken and who took it, so epochs keep growing
 * across restarts. Written atomically (a temporary file, then rename), so a reader sees either
 * the old or the new content, never a torn one.
 *
 * @module
 */
import { lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailoverError } from '../errors.js';

/** What the file holds. */
export interface StateRecord {
  readonly epoch: number;
  readonly primary: { readonly instanceId: string; readonly pid: number; readonly host: string } | null;
  readonly updatedAt: number;
}

export const STATE_FILE_NAME = 'failover-watch.state.json';

export class StateFile {
  readonly path: string;
  readonly #dir: string;
  #made = false;

  constructor(workdir: string) {
    this.#dir = workdir;
    this.path = join(workdir, STATE_FILE_NAME);
  }

  /** Reads the record; a missing file is epoch 0. A corrupt file throws ERR_FAILOVER_STATE_FILE. */
  async read(): Promise<StateRecord> {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { epoch: 0, primary: null, updatedAt: 0 };
      throw new FailoverError('ERR_FAILOVER_STATE_FILE', `cannot read ${this.path}`, { cause: error });
    }
    try {
      const value = JSON.parse(text) as Partial<StateRecord>;
      if (typeof value.epoch !== 'number' || !Number.isSafeInteger(value.epoch) || value.epoch < 0) {
        throw new Error('epoch is not a non-negative integer');
      }
      return { epoch: value.epoch, primary: value.primary ?? null, updatedAt: Number(value.updatedAt) || 0 };
    } catch (error) {
      throw new FailoverError('ERR_FAILOVER_STATE_FILE', `corrupt state file ${this.path}`, { cause: error });
    }
  }

  /** Writes the record atomically. */
  async write(record: StateRecord): Promise<void> {
    try {
      if (!this.#made) {
        mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
        // The default workdir lives under the shared temp directory: refuse one that another
        // user created first, since whoever owns it controls the epoch.
        const uid = process.getuid?.();
        const owner = lstatSync(this.#dir).uid;
        if (uid !== undefined && owner !== uid) {
          throw new Error(`${this.#dir} belongs to uid ${owner}, not to this user (uid ${uid})`);
        }
        this.#made = true;
      }
      const tmp = `${this.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
      renameSync(tmp, this.path);
    } catch (error) {
      throw new FailoverError('ERR_FAILOVER_STATE_FILE', `cannot write ${this.path}`, { cause: error });
    }
  }
}
