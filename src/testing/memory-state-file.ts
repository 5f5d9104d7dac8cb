/**
 * The state file of a test cluster, in memory: one record shared by every node of the cluster,
 * as the nodes of one host share `workdir`. The watcher reads and writes it through the same
 * methods as the real file (`StateFile`); nothing touches the disk, and the write of a node that
 * has crashed goes nowhere (a dead process writes nothing).
 *
 * @module
 */
import { StateFile, type StateRecord } from '../runtime/state-file.js';

/** The one record of a cluster, and how often it was written. */
export class MemoryStateStore {
  record: StateRecord;
  writes = 0;

  constructor(epoch = 0) {
    this.record = { epoch, primary: null, updatedAt: 0 };
  }
}

/** A node's view of the shared record. `alive` says whether the node's process still runs. */
export class MemoryStateFile extends StateFile {
  readonly #store: MemoryStateStore;
  readonly #alive: () => boolean;

  constructor(store: MemoryStateStore, alive: () => boolean) {
    // The path only names the file in messages; nothing is created there.
    super('/failover-watch-testing');
    this.#store = store;
    this.#alive = alive;
  }

  override readSync(): StateRecord {
    return this.#store.record;
  }

  override epochFloor(): { readonly epoch: number; readonly problem?: string } {
    return { epoch: this.#store.record.epoch };
  }

  override writeSync(record: StateRecord): void {
    if (!this.#alive()) return;
    this.#store.record = record;
    this.#store.writes++;
  }

  override checkDirectory(): void {}

  override prepare(): void {}

  override remove(): void {}

  override async settle(): Promise<void> {}

  override get pendingFlushes(): number {
    return 0;
  }
}
