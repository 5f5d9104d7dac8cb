/**
 * Two real accounts for the tests that play another user of the same host (SECURITY.md's
 * "other local users"): a victim that runs the cluster and an attacker that tries to break it.
 *
 * Where the suite runs as root (CI does), {@link testUsers} creates both accounts once with
 * `useradd` (system accounts, no home directory, no login shell) and reuses them afterwards.
 * Elsewhere it returns a reason to skip, which the tests print with `it.skipIf`. Processes are
 * started under an account with Node's own `uid`/`gid` spawn options, so nothing here needs
 * `sudo` or a setuid helper.
 *
 * @module
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, chmodSync, chownSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './child-runtime.js';

/** One account of the host. */
export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** The two accounts of a two-user test. */
export interface TestUsers {
  readonly victim: OsUser;
  readonly attacker: OsUser;
}

const NAMES = { victim: 'fwvictim', attacker: 'fwattacker' } as const;

function lookup(name: string): OsUser | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

function ensure(name: string): OsUser {
  const found = lookup(name);
  if (found !== undefined) return found;
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', name], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const made = lookup(name);
  if (made === undefined) throw new Error(`useradd ${name} succeeded but id cannot find the account`);
  return made;
}

let cached: TestUsers | string | undefined;

/**
 * The victim and attacker accounts, created on first use; or a string that says why the
 * two-user tests cannot run here (not root, no `useradd`), for `it.skipIf`'s message.
 */
export function testUsers(): TestUsers | string {
  if (cached !== undefined) return cached;
  if (process.platform !== 'linux') return (cached = 'two-user tests need Linux');
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return (cached = 'two-user tests need root to create the victim and attacker accounts (CI runs as root)');
  }
  let users: TestUsers;
  try {
    users = { victim: ensure(NAMES.victim), attacker: ensure(NAMES.attacker) };
  } catch (error) {
    return (cached = `cannot create the test accounts: ${(error as Error).message}`);
  }
  // The accounts run the checkout's own code: every directory above it must let them through
  // (a clone under a 0700 home would not; .ci/run opens the path for search).
  const unreadable = Object.values(users).find((user) => !canRead(user, join(ROOT, 'package.json')));
  cached =
    unreadable === undefined
      ? users
      : `account ${unreadable.name} cannot read ${join(ROOT, 'package.json')}: a directory above the checkout is closed to other users`;
  return cached;
}

function canRead(user: OsUser, path: string): boolean {
  const result = spawnSync('test', ['-r', path], { uid: user.uid, gid: user.gid, stdio: 'ignore', timeout: 10_000 });
  return result.status === 0;
}

/** The skip reason of {@link testUsers}, or undefined when the accounts exist. */
export function twoUserSkipReason(): string | undefined {
  const users = testUsers();
  return typeof users === 'string' ? users : undefined;
}

/** A private temporary directory (mode 0700) owned by `user`; remove it with `rmSync(dir, { recursive: true })`. */
export function privateDirOf(user: OsUser, prefix = 'fw-user-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
  return dir;
}

/**
 * Starts `command` as `user`: its own uid and gid, no supplementary groups, and an environment
 * whose HOME is `home` (a directory that user owns) so that nothing the child writes lands in
 * root's. TMPDIR is the caller's to set in `env` (tests that share a temp directory between the
 * two users choose it).
 */
export function spawnAs(user: OsUser, command: string, args: readonly string[], options: SpawnOptions & { home: string }): ChildProcess {
  const { home, env, ...rest } = options;
  return spawn(command, args, {
    ...rest,
    uid: user.uid,
    gid: user.gid,
    env: { ...(env ?? process.env), HOME: home, USER: user.name, LOGNAME: user.name },
  });
}

/** Removes a directory made by {@link privateDirOf}, ignoring one that is already gone. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
