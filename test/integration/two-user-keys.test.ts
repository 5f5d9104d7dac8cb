/**
 * CURVE key directories against another user of the host (issue 15, item 4, first bullet).
 *
 * The victim has keys as `failover-watch keygen` writes them; the attacker, who can write where the
 * victim let it (a `clients/` directory open to others, or a `.pub` file others may write),
 * adds or replaces a public key with its own. `readCurveKeys` used to admit every `.pub` in
 * `clients/` without looking at who owns the directory or the files, so the attacker's key was
 * admitted; now the directory or file is refused by name.
 */
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import * as zmq from 'zeromq';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childArgs, ROOT } from '../../harness/child-runtime.js';
import { privateDirOf, removeDir, testUsers, twoUserSkipReason, type TestUsers } from '../../harness/os-users.js';
import { runAs, sharedTmpDir } from '../../harness/run-as.js';
import { formatKeyFile, writeCurveKeys } from '../../src/transport/zmq/curve-key-files.js';

const skip = twoUserSkipReason();
const users = (): TestUsers => testUsers() as TestUsers;
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Setting {
  readonly tmp: string;
  readonly victimHome: string;
  readonly attackerHome: string;
  readonly keys: string;
  /** The attacker's own public key, and its `.pub` file in the attacker's home. */
  readonly attackerKey: string;
  readonly attackerPub: string;
}

/** The victim's key directory as keygen writes it (nodes a and b), and the attacker's own key. */
async function setting(): Promise<Setting> {
  const tmp = sharedTmpDir();
  const victimHome = privateDirOf(users().victim, 'fw-victim-');
  const attackerHome = privateDirOf(users().attacker, 'fw-attacker-');
  cleanups.push(() => [tmp, victimHome, attackerHome].forEach(removeDir));
  // keygen's own code, run here and handed to the victim (cheaper than two more processes).
  const keys = join(victimHome, 'curve');
  for (const name of ['a', 'b']) await writeCurveKeys(keys, name, false);
  const files = ['server.key', 'clients/a.key', 'clients/a.pub', 'clients/b.key', 'clients/b.pub'].map((f) => join(keys, f));
  for (const path of [keys, join(keys, 'clients'), ...files]) chownSync(path, users().victim.uid, users().victim.gid);
  const attackerKey = zmq.curveKeyPair().publicKey;
  const attackerPub = join(attackerHome, 'mallory.pub');
  writeFileSync(attackerPub, formatKeyFile('client mallory', { publicKey: attackerKey }), { mode: 0o644 });
  chownSync(attackerPub, users().attacker.uid, users().attacker.gid);
  return { tmp, victimHome, attackerHome, keys, attackerKey, attackerPub };
}

async function asAttacker(s: Setting, script: string): Promise<void> {
  const r = await runAs(users().attacker, '/bin/sh', ['-ec', script], { home: s.attackerHome, tmp: s.tmp, timeout: 10_000 });
  expect(r.code, r.stderr).toBe(0);
}

async function victimReads(s: Setting): Promise<{ ok: boolean; allowed?: string[]; code?: string; message?: string }> {
  const args = [...childArgs(join(ROOT, 'harness/read-keys-node.ts')), s.keys, 'a'];
  const r = await runAs(users().victim, process.execPath, args, { home: s.victimHome, tmp: s.tmp, cwd: ROOT, timeout: 30_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim()) as { ok: boolean; allowed?: string[]; code?: string; message?: string };
}

describe.skipIf(skip !== undefined)(`two users: CURVE key files${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  it('refuses a clients/ directory others may write', async () => {
    // The victim opened its home and clients/ to others (say, for a deploy tool); the attacker
    // drops its own public key in.
    const s = await setting();
    const clients = join(s.keys, 'clients');
    chmodSync(s.victimHome, 0o755);
    chmodSync(s.keys, 0o755);
    chmodSync(clients, 0o777);
    await asAttacker(s, `cp '${s.attackerPub}' '${clients}/mallory.pub' && chmod 644 '${clients}/mallory.pub'`);
    const r = await victimReads(s);
    expect(r.allowed ?? []).not.toContain(s.attackerKey);
    expect(r).toMatchObject({ ok: false, code: 'ERR_FAILOVER_INVALID_OPTION' });
    expect(r.message).toContain(`${clients} has mode 0777: group or others may write to it`);
  });

  it('refuses a .pub file others may write', async () => {
    // The directories are private enough to list, but b.pub is writable by all: the attacker
    // replaces its key with its own.
    const s = await setting();
    const pub = join(s.keys, 'clients', 'b.pub');
    for (const d of [s.victimHome, s.keys, join(s.keys, 'clients')]) chmodSync(d, 0o711);
    chmodSync(pub, 0o666);
    await asAttacker(s, `cat '${s.attackerPub}' > '${pub}'`);
    const r = await victimReads(s);
    expect(r.allowed ?? []).not.toContain(s.attackerKey);
    expect(r).toMatchObject({ ok: false, code: 'ERR_FAILOVER_INVALID_OPTION' });
    expect(r.message).toContain(`${pub} has mode 0666: group or others may write to it`);
  });

  it('admits the keys of a private key directory', async () => {
    // The control: keygen's own layout reads back with both nodes' keys.
    const s = await setting();
    const r = await victimReads(s);
    expect(r.ok).toBe(true);
    expect(r.allowed).toHaveLength(2);
  });
});
