/**
 * run-sigkill: `failover-watch run` (ZeroMQ backend, alone) supervising a forking command,
 * `/bin/sh -c 'sleep 600 & sleep 600 & wait'`, is SIGKILLed; how long until no process of the
 * command's unit (the shell and both children) runs any more. The guardian does that kill.
 *
 * unit gone = the parent's poll of /proc (every millisecond) that first finds none of the three
 * running (gone or zombie) − the parent's performance.now() right before the SIGKILL;
 * run gone = the same for `run` itself (its main thread a zombie): the host's own floor, since
 * nothing can act on run's death before the kernel has processed it.
 *
 * Each trial is a fresh `run` (started through tsx, so about a second each under load); every
 * process is killed by pid at the end of its trial if still alive.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniqueIpc } from '../../harness/cluster.js';
import { ROOT } from '../../harness/child-runtime.js';
import { trackChild, trackCleanup } from '../lib/live-processes.js';
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';

const SETTINGS = {
  command: "/bin/sh -c 'sleep 600 & sleep 600 & wait'",
  maxTrials: 20,
  /** From spawn to the command's two children running. */
  startTimeout: 30_000,
  /** From the SIGKILL to the unit gone. */
  goneTimeout: 5000,
} as const;

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Trial {
  readonly trial: number;
  readonly runGoneMs?: number;
  readonly unitGoneMs?: number;
  readonly cause?: string;
}

async function oneTrial(i: number): Promise<Trial> {
  const dir = mkdtempSync(join(tmpdir(), 'fw-bench-run-'));
  const untrack = trackCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const run = spawn(
    process.execPath,
    ['bin/failover-watch.js', 'run', '--endpoint', uniqueIpc('fw-bench-run'), '--workdir', dir, '--json', '--', '/bin/sh', '-c', 'sleep 600 & sleep 600 & wait'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  trackChild(run);
  let unit: number[] = [];
  try {
    let out = '';
    run.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const deadline = performance.now() + SETTINGS.startTimeout;
    for (;;) {
      const leader = Number(/"event":"childStarted","pid":(\d+)/.exec(out)?.[1]);
      if (leader > 0) {
        unit = [leader, ...childrenOf(leader)];
        if (unit.length === 3) break;
      }
      if (performance.now() > deadline || run.exitCode !== null) return { trial: i, cause: 'the command did not start' };
      await pause(10);
    }
    const killedAt = performance.now();
    process.kill(run.pid as number, 'SIGKILL');
    let runGoneMs: number | undefined;
    for (;;) {
      const now = performance.now();
      if (runGoneMs === undefined && !running(run.pid as number)) runGoneMs = now - killedAt;
      if (unit.every((pid) => !running(pid))) return { trial: i, runGoneMs: runGoneMs ?? now - killedAt, unitGoneMs: now - killedAt };
      if (now - killedAt > SETTINGS.goneTimeout) return { trial: i, cause: `the command still ran ${SETTINGS.goneTimeout} ms after the SIGKILL` };
      await pause(1);
    }
  } finally {
    for (const pid of [run.pid as number, ...unit]) {
      try {
        if (running(pid)) process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    rmSync(dir, { recursive: true, force: true });
    untrack();
  }
}

export const runSigkill: Scenario = {
  name: 'run-sigkill',
  description: '`failover-watch run` SIGKILLed → no process of its forking command runs',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const count = Math.min(ctx.trials, SETTINGS.maxTrials);
    const trials: Trial[] = [];
    const failures: TrialFailure[] = [];
    for (let i = 1; i <= count; i++) {
      const t = await oneTrial(i);
      trials.push(t);
      if (t.cause !== undefined) failures.push({ row: `${this.name} unit gone`, trial: i, cause: t.cause });
      if (i % 5 === 0 || i === count) ctx.progress(`  run-sigkill: ${i}/${count} trials, ${failures.length} failed`);
    }
    const unitSamples = trials.flatMap((t) => (t.unitGoneMs === undefined ? [] : [t.unitGoneMs]));
    const runSamples = trials.flatMap((t) => (t.runGoneMs === undefined ? [] : [t.runGoneMs]));
    const unit = summarize(unitSamples);
    const floor = summarize(runSamples);
    const rows: LatencyRow[] = [
      {
        kind: 'latency',
        scenario: this.name,
        label: 'unit gone (sh + 2 children)',
        metric: 'first /proc poll with none of the three running − performance.now() before SIGKILL of run',
        failures: failures.length,
        target: { stat: 'p50', below: 100, text: 'p50 < 100 ms' },
        summary: unit === undefined ? undefined : rounded(unit),
        samples: unitSamples,
      },
      {
        kind: 'latency',
        scenario: this.name,
        label: 'floor: run itself gone',
        metric: "first /proc poll with run's main thread a zombie − the same",
        failures: failures.length,
        target: undefined,
        summary: floor === undefined ? undefined : rounded(floor),
        samples: runSamples,
      },
    ];
    return {
      name: this.name,
      description: this.description,
      settings: { ...SETTINGS, trials: count },
      rows,
      failures,
      trials,
      notes: [],
      durationMs: performance.now() - started,
    };
  },
};
