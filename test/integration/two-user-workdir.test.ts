/**
 * The work directory and the fencing token against another user of the host (issue 15, item 2).
 *
 * Two real accounts (`harness/os-users.ts`): the victim runs a watcher under its own uid; the
 * attacker prepares names in the temp directory they share first. TMPDIR of both points at one
 * fresh directory with mode 1777 (like /tmp) that each test makes, so the victim's default
 * workdir, `$TMPDIR/failover-watch-<user>/<endpoint>`, lies where the attacker can reach it and
 * the real /tmp's names are never touched.
 *
 * Each attack used to work: the watcher accepted a per-user directory the attacker made (and
 * whoever owns it can rename the victim's work directory away: the epoch went from 3 to 1 at the
 * next start), adopted the epoch of a state file the attacker planted, or accepted a work
 * directory or dangling link the attacker made and then failed every promotion without saying
 * why. Now `start()` refuses each with ERR_FAILOVER_STATE_FILE naming the directory and reason.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childArgs, ROOT } from '../../harness/child-runtime.js';
import { uniqueIpc } from '../../harness/cluster.js';
import { privateDirOf, removeDir, testUsers, twoUserSkipReason, type TestUsers } from '../../harness/os-users.js';
import { runAs, sharedTmpDir } from '../../harness/run-as.js';
import { endpointSlug } from '../../src/transport/zmq/endpoint.js';

const skip = twoUserSkipReason();
const users = (): TestUsers => testUsers() as TestUsers;
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Outcome {
  readonly outcome: 'started' | 'refused' | 'timeout';
  readonly code?: string;
  readonly message?: string;
  readonly epoch?: number;
  readonly role?: string;
  readonly workdir?: string;
}

/** A shared TMPDIR (1777) and a private HOME for each user. */
function setting(): { tmp: string; victimHome: string; attackerHome: string } {
  const tmp = sharedTmpDir();
  const victimHome = privateDirOf(users().victim, 'fw-victim-');
  const attackerHome = privateDirOf(users().attacker, 'fw-attacker-');
  cleanups.push(() => [tmp, victimHome, attackerHome].forEach(removeDir));
  return { tmp, victimHome, attackerHome };
}

/** Runs a shell script as the attacker (it plants what the test describes). */
async function asAttacker(s: ReturnType<typeof setting>, script: string): Promise<void> {
  const r = await runAs(users().attacker, '/bin/sh', ['-ec', script], { home: s.attackerHome, tmp: s.tmp, timeout: 10_000 });
  expect(r.code, r.stderr).toBe(0);
}

/** Starts a watcher as the victim (default workdir unless `workdir`) and returns how start() ended. */
async function victimStarts(s: ReturnType<typeof setting>, endpoint: string, workdir?: string): Promise<Outcome> {
  const args = [...childArgs(join(ROOT, 'harness/workdir-node.ts')), endpoint, ...(workdir !== undefined ? [workdir] : [])];
  const r = await runAs(users().victim, process.execPath, args, { home: s.victimHome, tmp: s.tmp, cwd: ROOT, timeout: 30_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Outcome;
}

/** A state record with epoch 1000, as the library writes it (checksum included). */
const PLANTED = async (): Promise<string> => {
  const { formatRecord } = await import('../../src/runtime/state-file.js');
  return formatRecord({ epoch: 1000, primary: null, updatedAt: 0 }).toString('utf8').trimEnd();
};

describe.skipIf(skip !== undefined)(`two users: the work directory${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  it('default workdir under a clean shared TMPDIR works', async () => {
    // The control: the victim's default workdir is made under the shared TMPDIR, private, and
    // holds the epoch of its first term.
    const s = setting();
    const endpoint = uniqueIpc('fw-2u-ok');
    const r = await victimStarts(s, endpoint);
    expect(r).toMatchObject({ outcome: 'started', role: 'primary', epoch: 1 });
    const parent = join(s.tmp, `failover-watch-${users().victim.name}`);
    expect(r.workdir).toBe(join(parent, endpointSlug(endpoint)));
    for (const dir of [parent, r.workdir as string]) {
      const st = lstatSync(dir);
      expect({ uid: st.uid, mode: st.mode & 0o777 }).toEqual({ uid: users().victim.uid, mode: 0o700 });
    }
    expect(readFileSync(join(r.workdir as string, 'failover-watch.state.json'), 'utf8')).toMatch(/"epoch":1,/);
  });

  it('refuses a per-user directory another user made', async () => {
    // The attacker makes the victim's per-user directory first, writable by all. Before, it was
    // accepted; its owner can rename the victim's work directory away and reset the epoch.
    const s = setting();
    const parent = join(s.tmp, `failover-watch-${users().victim.name}`);
    await asAttacker(s, `mkdir -m 777 '${parent}'`);
    const r = await victimStarts(s, uniqueIpc('fw-2u-parent'));
    expect(r.outcome).toBe('refused');
    expect(r.code).toBe('ERR_FAILOVER_STATE_FILE');
    expect(r.message).toContain(`${parent} belongs to uid ${users().attacker.uid}, not to this user (uid ${users().victim.uid})`);
  });

  it('refuses a per-user directory that is a symbolic link', async () => {
    const s = setting();
    const parent = join(s.tmp, `failover-watch-${users().victim.name}`);
    await asAttacker(s, `mkdir -m 777 '${s.tmp}/elsewhere' && ln -s '${s.tmp}/elsewhere' '${parent}'`);
    const r = await victimStarts(s, uniqueIpc('fw-2u-link'));
    expect(r).toMatchObject({ outcome: 'refused', code: 'ERR_FAILOVER_STATE_FILE' });
    expect(r.message).toContain(`${parent} is a symbolic link, not a directory`);
  });

  it('never adopts the epoch of a planted state file', async () => {
    // The attacker prepares the whole path with a valid record of epoch 1000. Before, the file
    // was read before its directory was checked, and its epoch adopted.
    const s = setting();
    const endpoint = uniqueIpc('fw-2u-plant');
    const leaf = join(s.tmp, `failover-watch-${users().victim.name}`, endpointSlug(endpoint));
    const record = await PLANTED();
    await asAttacker(s, `mkdir -p -m 755 '${leaf}' && printf '%s\\n' '${record}' > '${leaf}/failover-watch.state.json'`);
    const r = await victimStarts(s, endpoint);
    expect(r).toMatchObject({ outcome: 'refused', code: 'ERR_FAILOVER_STATE_FILE' });
    expect(r.message).toContain(`${leaf} belongs to uid ${users().attacker.uid}, not to this user (uid ${users().victim.uid})`);
  });

  it('refuses a work directory another user made first', async () => {
    // A workdir set by the victim in the shared directory, made first by the attacker. Before,
    // it was accepted at start and every promotion failed without saying why.
    const s = setting();
    const workdir = join(s.tmp, 'app-state');
    await asAttacker(s, `mkdir -m 777 '${workdir}'`);
    const r = await victimStarts(s, uniqueIpc('fw-2u-leaf'), workdir);
    expect(r).toMatchObject({ outcome: 'refused', code: 'ERR_FAILOVER_STATE_FILE' });
    expect(r.message).toContain(`${workdir} belongs to uid ${users().attacker.uid}`);
  });

  it('refuses a work directory that is a dangling link', async () => {
    const s = setting();
    const workdir = join(s.tmp, 'app-state');
    await asAttacker(s, `ln -s '${s.tmp}/not-yet' '${workdir}'`);
    const r = await victimStarts(s, uniqueIpc('fw-2u-dangling'), workdir);
    expect(r).toMatchObject({ outcome: 'refused', code: 'ERR_FAILOVER_STATE_FILE' });
    expect(r.message).toContain(`${workdir} is a symbolic link, not a directory`);
  });
});
