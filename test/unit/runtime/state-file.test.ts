/**
 * The state file (src/runtime/state-file.ts): written in place as one padded record with a
 * checksum. Real files in a temporary directory; the concurrent-reader test uses a real second
 * process writing as fast as it can.
 */
import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatRecord, parseRecord, salvageEpoch, StateFile, STATE_FILE_NAME, STATE_RECORD_BLOCK } from '../../../src/runtime/state-file.js';

const dirs: string[] = [];
function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fw-state-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const record = (epoch: number, instanceId = 'node-a') => ({
  epoch,
  primary: { instanceId, pid: 4242, host: 'box' },
  updatedAt: 1_700_000_000_123.25,
});

describe('StateFile', () => {
  it('a scratch file lives next to the real one, never touches it, is not flushed, and remove() deletes only it', () => {
    const dir = workdir();
    const real = new StateFile(dir);
    real.writeSync(record(5));
    const before = readFileSync(real.path, 'utf8');
    const a = new StateFile(dir, { scratch: true });
    const b = new StateFile(dir, { scratch: true });
    expect(a.path).not.toBe(real.path);
    expect(a.path).not.toBe(b.path);
    expect(a.path.startsWith(`${real.path}.${process.pid}.`)).toBe(true);
    expect(a.readSync()).toEqual({ epoch: 0, primary: null, updatedAt: 0 });
    a.writeSync(record(9));
    expect(a.readSync()).toEqual(record(9));
    expect(a.pendingFlushes).toBe(0);
    expect(readFileSync(real.path, 'utf8')).toBe(before);
    a.remove();
    a.remove();
    real.remove();
    expect(readdirSync(dir)).toEqual([STATE_FILE_NAME]);
    expect(real.readSync()).toEqual(record(5));
  });

  it('reads a missing file as epoch 0 and reads back what it wrote', () => {
    const file = new StateFile(join(workdir(), 'nested', 'dir'));
    expect(file.readSync()).toEqual({ epoch: 0, primary: null, updatedAt: 0 });
    file.writeSync(record(7));
    expect(file.readSync()).toEqual(record(7));
    expect(lstatSync(file.path).mode & 0o777).toBe(0o600);
  });

  it('writes whole blocks of padding and never cuts the file: a shorter record is padded to the longer one', () => {
    const file = new StateFile(workdir());
    file.writeSync(record(7, 'y'));
    expect(readFileSync(file.path).length).toBe(STATE_RECORD_BLOCK);
    file.writeSync(record(123456789, 'x'.repeat(600)));
    expect(readFileSync(file.path).length).toBe(2 * STATE_RECORD_BLOCK);
    file.writeSync(record(123456790, 'y'));
    const bytes = readFileSync(file.path);
    expect(bytes.length).toBe(2 * STATE_RECORD_BLOCK);
    expect(bytes.at(-1)).toBe(0x0a);
    expect(file.readSync()).toEqual(record(123456790, 'y'));
  });

  it('flushes each write to disk in the background', async () => {
    const file = new StateFile(workdir());
    file.writeSync(record(3));
    expect(file.pendingFlushes).toBe(1);
    const until = performance.now() + 10_000;
    while (file.pendingFlushes > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(file.pendingFlushes).toBe(0);
  });

  it('settle() starts the pending flushes at once and resolves when they are done', async () => {
    const file = new StateFile(workdir());
    file.writeSync(record(4));
    file.writeSync(record(5));
    expect(file.pendingFlushes).toBe(2);
    await file.settle();
    expect(file.pendingFlushes).toBe(0);
    await file.settle();
  });

  it('reads a record written by an earlier version (no padding, no checksum)', () => {
    const dir = workdir();
    writeFileSync(join(dir, STATE_FILE_NAME), `${JSON.stringify(record(41))}\n`);
    const file = new StateFile(dir);
    expect(file.readSync()).toEqual(record(41));
    // Replaced once by rename (an in-place write over a record without a checksum could be
    // read half done and taken for a record), then written in place.
    file.writeSync(record(42));
    expect(readFileSync(file.path).length).toBe(STATE_RECORD_BLOCK);
    expect(file.readSync()).toEqual(record(42));
    expect(readdirSync(dir)).toEqual([STATE_FILE_NAME]);
  });

  it('reads an empty file (created, never written) as epoch 0', () => {
    const dir = workdir();
    writeFileSync(join(dir, STATE_FILE_NAME), '');
    expect(new StateFile(dir).readSync().epoch).toBe(0);
  });

  it('treats a record whose checksum does not match as torn, retries, then reports it corrupt', () => {
    const dir = workdir();
    const good = formatRecord(record(19)).toString('utf8');
    // A mix of two writes: the epoch of one, the checksum of the other.
    writeFileSync(join(dir, STATE_FILE_NAME), good.replace('"epoch":19', '"epoch":10'));
    const file = new StateFile(dir);
    expect(() => file.readSync()).toThrowError(expect.objectContaining({ code: 'ERR_FAILOVER_STATE_FILE' }));
    expect(file.rereads).toBe(4);
  });

  it("reads another writer's record, checked over its own text", () => {
    // PROTOCOL.md 6.6: the check covers the record's text before ',"check":"', closed with '}',
    // so a peer in another language need not write JSON exactly as JSON.stringify does.
    const fnv = (text: string): string => {
      let h = 0x811c9dc5;
      for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
      return h.toString(16).padStart(8, '0');
    };
    const body = '{ "updatedAt": 1733300000000, "epoch": 31, "primary": { "host": "h", "pid": 7, "instanceId": "py-1" }';
    const dir = workdir();
    writeFileSync(join(dir, STATE_FILE_NAME), `${body},"check":"${fnv(`${body}}`)}"}${' '.repeat(300)}\n`);
    expect(new StateFile(dir).readSync()).toMatchObject({ epoch: 31, primary: { instanceId: 'py-1' } });
    // The same record with a check that matches neither its text nor its content is torn.
    writeFileSync(join(dir, STATE_FILE_NAME), `${body},"check":"${fnv(body)}"}\n`);
    expect(parseRecord(`${body},"check":"${fnv(body)}"}`)).toBe('torn');
  });

  it('a corrupt file still gives the highest epoch that can be made out in it', () => {
    const dir = workdir();
    writeFileSync(join(dir, STATE_FILE_NAME), '{"epoch":17,"primary":nul\u0000\u0000 "epoch": 23 garbage "epoch":9');
    const file = new StateFile(dir);
    expect(() => file.readSync()).toThrowError(expect.objectContaining({ salvagedEpoch: 23 }));
    expect(file.epochFloor()).toEqual({ epoch: 23, problem: expect.stringMatching(/corrupt state file .*epoch 23 made out in it/) });
    expect(salvageEpoch('nothing here')).toBe(0);
    expect(new StateFile(workdir()).epochFloor()).toEqual({ epoch: 0 });
  });

  it('reports garbage as corrupt, with the cause', () => {
    const dir = workdir();
    writeFileSync(join(dir, STATE_FILE_NAME), '{"epoch": -3}');
    const file = new StateFile(dir);
    expect(() => file.readSync()).toThrowError(
      expect.objectContaining({ message: expect.stringMatching(/corrupt state file/), cause: expect.objectContaining({ message: expect.stringMatching(/non-negative integer/) }) }),
    );
    expect(parseRecord('not json')).toBeInstanceOf(Error);
    expect(parseRecord('[1]')).toBeInstanceOf(Error);
  });

  it('refuses to write through a symbolic link', () => {
    const dir = workdir();
    const elsewhere = join(workdir(), 'target.json');
    writeFileSync(elsewhere, 'untouched');
    symlinkSync(elsewhere, join(dir, STATE_FILE_NAME));
    expect(() => new StateFile(dir).writeSync(record(1))).toThrowError(expect.objectContaining({ code: 'ERR_FAILOVER_STATE_FILE' }));
    expect(readFileSync(elsewhere, 'utf8')).toBe('untouched');
  });

  it('prepare() runs the write once on a scratch file, removed at once, and leaves the record as it was', async () => {
    const dir = workdir();
    const file = new StateFile(dir);
    file.writeSync(record(12));
    await file.settle();
    const before = readFileSync(file.path);
    const other = new StateFile(dir);
    other.prepare();
    expect(readdirSync(dir)).toEqual([STATE_FILE_NAME]);
    expect(readFileSync(file.path).equals(before)).toBe(true);
    expect(other.readSync()).toEqual(record(12));
    // The scratch write is not flushed to disk: nothing of it outlives prepare().
    expect(other.pendingFlushes).toBe(0);
  });

  it('prepare() makes the directory and never throws, and the write then reports the problem', () => {
    const parent = workdir();
    const file = new StateFile(join(parent, 'made'));
    file.prepare();
    expect(lstatSync(join(parent, 'made')).isDirectory()).toBe(true);
    expect(file.readSync().epoch).toBe(0);

    const locked = workdir();
    chmodSync(locked, 0o500);
    const denied = new StateFile(join(locked, 'sub'));
    try {
      expect(() => denied.prepare()).not.toThrow();
      if (process.getuid?.() !== 0) expect(() => denied.writeSync(record(1))).toThrowError(/cannot write/);
    } finally {
      chmodSync(locked, 0o700);
    }
  });

  it('a reader racing a writer in another process never takes a mix of two records for a record', async () => {
    // The writer rewrites without pause, with records of 1 and 2 blocks in turn (a write, then a
    // cut), far more often than any real cluster: some reads may find no whole record five times
    // in a row and throw (callers fall back to the wire's epochs); every record a read returns
    // must be one that was written, and they must come in order.
    const dir = workdir();
    const file = new StateFile(dir);
    file.writeSync(record(1));
    const writes = 3000;
    const script = `
      import { StateFile } from ${JSON.stringify(new URL('../../../src/runtime/state-file.ts', import.meta.url).pathname)};
      const file = new StateFile(${JSON.stringify(dir)});
      for (let e = 2; e <= ${writes}; e++) file.writeSync({ epoch: e, primary: { instanceId: 'w'.repeat(e % 2 === 0 ? 3 : 600), pid: e, host: 'h' }, updatedAt: e });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let done = false;
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    void exited.then(() => (done = true));
    let last = 1;
    let returned = 0;
    let thrown = 0;
    let seenBetween = 0;
    const deadline = performance.now() + 20_000;
    for (let reads = 0; !done && performance.now() < deadline && reads < 500_000; reads++) {
      let r;
      try {
        r = file.readSync();
      } catch (error) {
        expect((error as { code?: string }).code).toBe('ERR_FAILOVER_STATE_FILE');
        thrown++;
        continue;
      }
      returned++;
      expect(r.epoch).toBeGreaterThanOrEqual(last);
      if (r.epoch > 1) {
        expect(r.primary).toEqual({ instanceId: 'w'.repeat(r.epoch % 2 === 0 ? 3 : 600), pid: r.epoch, host: 'h' });
        expect(r.updatedAt).toBe(r.epoch);
      }
      if (r.epoch > 1 && r.epoch < writes) seenBetween++;
      last = r.epoch;
      if (reads % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await exited, stderr).toBe(0);
    expect(file.readSync().epoch).toBe(writes);
    expect(returned).toBeGreaterThan(0);
    // The reads overlapped the writes (saw records strictly between the first and the last).
    expect(seenBetween).toBeGreaterThan(0);
  }, 30_000);
});
