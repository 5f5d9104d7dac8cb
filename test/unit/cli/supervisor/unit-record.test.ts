/**
 * The unit record's file handling and the /proc parsing behind process groups: no processes are
 * signalled here (the fence itself is tested with real processes in
 * test/integration/cli-run-unit.test.ts).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findExecutable } from '../../../../src/cli/supervisor/child.js';
import { parseStateAndGroup } from '../../../../src/cli/supervisor/process-group.js';
import { UNIT_RECORD_NAME, UnitRecordFile } from '../../../../src/cli/supervisor/unit-record.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const scratch = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'fw-unit-record-'));
  dirs.push(dir);
  return dir;
};

describe('parseStateAndGroup', () => {
  it('reads state and group after a command name with ") "', () => {
    const stat = '4242 (evil) R 1 (x)) Z 7 4200 4200 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0';
    expect(parseStateAndGroup(stat)).toEqual({ state: 'Z', pgrp: 4200 });
  });

  it('gives undefined for text that is not a stat line', () => {
    expect(parseStateAndGroup('garbage')).toBeUndefined();
    expect(parseStateAndGroup('1 (x) ')).toBeUndefined();
  });
});

describe('UnitRecordFile', () => {
  it('writes a record it reads back, and removes only its own group', () => {
    const dir = join(scratch(), 'work');
    const file = new UnitRecordFile(dir, 'zmq ipc://@x');
    file.write({ pgid: 4321, leaderStart: 99 }, 1);
    expect(file.read()).toMatchObject({ pgid: 4321, leaderStart: 99, cluster: 'zmq ipc://@x', supervisorPid: process.pid });
    file.remove({ pgid: 4321, leaderStart: 98 });
    expect(file.read()).toBeDefined();
    file.remove({ pgid: 4321, leaderStart: 99 });
    expect(file.read()).toBeUndefined();
  });

  it('ignores a record that does not parse or names no valid group', () => {
    const dir = scratch();
    const file = new UnitRecordFile(dir, 'c');
    for (const text of ['{', '[]', '{"pgid":1,"cluster":"c","host":"h"}', '{"pgid":-5,"cluster":"c","host":"h"}', '{"pgid":7,"host":"h"}']) {
      writeFileSync(join(dir, UNIT_RECORD_NAME), text);
      expect(file.read(), text).toBeUndefined();
    }
  });

  it('never acts on a record others could have written', async () => {
    // A record naming a group of ours on this host, but in a directory others may write, or in a
    // file others may write: either could have been planted, so the fence does nothing.
    const dir = scratch();
    const file = new UnitRecordFile(dir, 'mine');
    const record = JSON.stringify({ pgid: 4321, leaderStart: 1, cluster: 'mine', host: hostname(), uid: process.getuid?.() });
    writeFileSync(join(dir, UNIT_RECORD_NAME), record, { mode: 0o666 });
    chmodSync(join(dir, UNIT_RECORD_NAME), 0o666);
    expect(file.read()).toBeUndefined();
    chmodSync(join(dir, UNIT_RECORD_NAME), 0o600);
    expect(file.read()).toBeDefined();
    chmodSync(dir, 0o777);
    expect(await file.fence()).toEqual({ action: 'none' });
    expect(() => file.write({ pgid: 4321, leaderStart: 1 }, 1)).toThrow(/work directory refused/);
  });

  it("skips another cluster's or another host's record", async () => {
    const dir = scratch();
    const file = new UnitRecordFile(dir, 'mine');
    writeFileSync(join(dir, UNIT_RECORD_NAME), JSON.stringify({ pgid: 4321, leaderStart: 1, cluster: 'theirs', host: 'h', uid: process.getuid?.() }));
    expect(await file.fence()).toMatchObject({ action: 'skipped', detail: expect.stringContaining('another cluster') });
    writeFileSync(join(dir, UNIT_RECORD_NAME), JSON.stringify({ pgid: 4321, leaderStart: 1, cluster: 'mine', host: 'elsewhere.invalid', uid: process.getuid?.() }));
    expect(await file.fence()).toMatchObject({ action: 'skipped', detail: expect.stringContaining('elsewhere.invalid') });
  });
});

describe('findExecutable', () => {
  it('finds a command on PATH and refuses a missing one with ENOENT', () => {
    expect(findExecutable('sh', '/usr/bin:/bin')).toMatch(/\/sh$/);
    expect(() => findExecutable('fw-no-such-command', '/usr/bin:/bin')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('refuses a file that is not executable with EACCES', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'plain'), 'echo hi', { mode: 0o644 });
    // root may read anything but still needs an execute bit to run it.
    expect(() => findExecutable(join(dir, 'plain'), undefined)).toThrow(expect.objectContaining({ code: 'EACCES' }));
  });
});
