/**
 * The state file at the epoch ceiling: a record whose epoch is above 2^53 - 1 (what a node of an
 * earlier version wrote when it promoted past the ceiling) is never read as a small epoch. Before,
 * it was called corrupt, nothing safe could be salvaged from it, and the next start took epoch 1:
 * the fencing token went backwards.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatRecord, salvageEpoch, StateFile } from '../../../src/runtime/state-file.js';

const dirs: string[] = [];
function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fw-state-ceiling-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const MAX = Number.MAX_SAFE_INTEGER;
const record = (epoch: number) => ({ epoch, primary: { instanceId: 'a', pid: 42, host: 'box' }, updatedAt: 1 });

describe('StateFile at the epoch ceiling', () => {
  it('reads back 2^53 - 1, the last valid epoch', () => {
    const file = new StateFile(workdir());
    file.writeSync(record(MAX));
    expect(file.readSync().epoch).toBe(MAX);
    expect(file.epochFloor()).toEqual({ epoch: MAX });
  });

  it('refuses a checksummed record past 2^53 - 1, naming the file', () => {
    const file = new StateFile(workdir());
    // Byte for byte what a node of an earlier version wrote when it took epoch 2^53.
    writeFileSync(file.path, formatRecord(record(2 ** 53)));
    expect(() => file.readSync()).toThrowError(
      expect.objectContaining({
        code: 'ERR_FAILOVER_EPOCH_EXHAUSTED',
        salvagedEpoch: MAX,
        message: expect.stringContaining(file.path) as string,
      }),
    );
    expect(file.rereads).toBe(0);
    const floor = file.epochFloor();
    expect(floor.epoch).toBe(MAX);
    expect(floor.problem).toMatch(/holds epoch 9007199254740992, beyond 2\^53 - 1/);
  });

  it('refuses an old-format record past the ceiling as well', () => {
    const file = new StateFile(workdir());
    writeFileSync(file.path, JSON.stringify({ epoch: 1e300, primary: null, updatedAt: 0 }));
    expect(file.epochFloor().epoch).toBe(MAX);
  });

  it('salvages the ceiling, never a smaller epoch, from a damaged file', () => {
    expect(salvageEpoch('{"epoch":9007199254740993,"prim')).toBe(MAX);
    // 17 digits: once read as its first 16 (1234567890123456), an epoch far below the real one.
    expect(salvageEpoch('{"epoch":12345678901234567,')).toBe(MAX);
    expect(salvageEpoch('{"epoch":9.1e15}')).toBe(MAX);
    expect(salvageEpoch('{"epoch":23,"x":1} {"epoch":7')).toBe(23);
  });
});
