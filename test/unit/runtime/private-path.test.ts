/**
 * The directory and file checks of `private-path.ts`, as one user: the modes, links, FIFOs and
 * /proc paths that must be refused quickly and by name. (Other users' directories: see
 * test/integration/two-user-workdir.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { keyDirectoryProblem, makeDirectoriesSync, readCheckedFile, readCheckedFileSync, workDirectoryProblem, type FileRule } from '../../../src/runtime/private-path.js';
import { StateFile } from '../../../src/runtime/state-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fw-pp-'));
  dirs.push(d);
  return d;
}
const RULE: FileRule = { maxBytes: 100, noFollow: true, rootMayOwn: false, forbiddenMode: 0o022 };

it('accepts a private directory under a sticky shared one', () => {
  const base = temp();
  chmodSync(base, 0o1777);
  const dir = join(base, 'a', 'b');
  makeDirectoriesSync(dir);
  expect(workDirectoryProblem(dir)).toBeUndefined();
});

it('refuses a work directory group or others may write', () => {
  const dir = join(temp(), 'w');
  mkdirSync(dir);
  chmodSync(dir, 0o770);
  expect(workDirectoryProblem(dir)).toBe(`${dir} has mode 0770: group or others may write to it`);
});

it('refuses a directory above that others may rename in', () => {
  // Not sticky: whoever may write there may rename the work directory away.
  const base = temp();
  chmodSync(base, 0o777);
  const dir = join(base, 'w');
  makeDirectoriesSync(dir);
  expect(workDirectoryProblem(dir)).toBe(`${base} has mode 0777: group or others may rename what it holds (no sticky bit)`);
});

it('refuses a work directory that is a symbolic link', () => {
  const base = temp();
  mkdirSync(join(base, 'real'), { mode: 0o700 });
  symlinkSync(join(base, 'real'), join(base, 'w'));
  expect(workDirectoryProblem(join(base, 'w'))).toMatch(/w is a symbolic link, not a directory/);
});

it('fails at once to create a work directory under /proc', () => {
  // Node's recursive mkdir never returns on such a path (it spun at 100 % CPU).
  const started = performance.now();
  expect(() => makeDirectoriesSync('/proc/self/fw-state/x')).toThrow(/cannot create the directory \/proc\/self\/fw-state: ENOENT/);
  expect(performance.now() - started).toBeLessThan(1000);
});

it('refuses a FIFO without blocking, sync and async', async () => {
  const fifo = join(temp(), 'f');
  execFileSync('mkfifo', [fifo]);
  expect(() => readCheckedFileSync(fifo, RULE)).toThrow(`${fifo} is not a regular file (a FIFO)`);
  await expect(readCheckedFile(fifo, RULE)).rejects.toThrow(`${fifo} is not a regular file (a FIFO)`);
});

it('refuses a file over the size bound and a link with noFollow', () => {
  const dir = temp();
  writeFileSync(join(dir, 'big'), 'x'.repeat(101), { mode: 0o600 });
  expect(() => readCheckedFileSync(join(dir, 'big'), RULE)).toThrow(/is 101 bytes, more than the 100 allowed/);
  symlinkSync(join(dir, 'big'), join(dir, 'link'));
  expect(() => readCheckedFileSync(join(dir, 'link'), RULE)).toThrow(`${join(dir, 'link')} is a symbolic link (refused)`);
});

it('a state file that is a FIFO is refused by name, never read', () => {
  const dir = temp();
  chmodSync(dir, 0o700);
  execFileSync('mkfifo', [join(dir, 'failover-watch.state.json')]);
  const file = new StateFile(dir);
  expect(() => file.checkDirectory()).toThrow(`work directory refused: ${join(dir, 'failover-watch.state.json')} is not a regular file (a FIFO)`);
});

it('follows a key directory link of this user, refuses an open target', async () => {
  // Key directories are often installed as links (a mounted secret): the link is followed when
  // this user or root owns it, and the directory it leads to is what is checked.
  const base = temp();
  mkdirSync(join(base, 'real'), { mode: 0o700 });
  symlinkSync(join(base, 'real'), join(base, 'keys'));
  expect(await keyDirectoryProblem(join(base, 'keys'))).toBeUndefined();
  chmodSync(join(base, 'real'), 0o777);
  expect(await keyDirectoryProblem(join(base, 'keys'))).toBe(`${join(base, 'keys')} has mode 0777: group or others may write to it (and so add or replace keys)`);
});
