/**
 * `failover-watch run -- <command>`: joins the cluster and runs the command only while this node
 * is primary. Started after promotion (inside onPromote, so the role is announced once it runs),
 * stopped on demotion or shutdown (inside onDemote, so a successor starts only after it is gone).
 *
 * The command is one unit, its process group (`child.ts`). If this process dies without stopping
 * it (SIGKILL, the OOM killer, a crash), the guardian (`guardian.ts`) kills the group at once, and
 * the next `run` of the cluster on this host fences any of it that is left before it starts its
 * own command (`unit-record.ts`).
 *
 * @module
 */
import type { SupervisorBackend, SupervisorCallbacks } from './backends.js';
import type { Election } from '../../election/contract.js';
import { runHook, SupervisedChild, type ChildExit } from './child.js';
import { Guardian } from './guardian.js';
import { startHealthServer, type HealthServer, type SupervisorMetrics } from './health-server.js';
import { UnitRecordFile } from './unit-record.js';

/** What to do when the command exits on its own while this node is primary. */
export type OnExit = 'stepdown' | 'restart' | 'exit';

export interface SupervisorOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly stopTimeout: number;
  readonly onExit: OnExit;
  readonly onPromoteHook: string | undefined;
  readonly onDemoteHook: string | undefined;
  readonly json: boolean;
  readonly health: { readonly host: string; readonly port: number } | undefined;
}

export interface SupervisorIo {
  /** One line to stdout (JSON events with --json). */
  out(line: string): void;
  /** One line to stderr (human messages). */
  err(line: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborts on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
}

/** Longest an --on-promote or --on-demote hook may run, ms. */
export const HOOK_TIMEOUT = 30_000;

/**
 * How long the election may wait for the supervisor's callbacks when it leaves (the Watcher's
 * `shutdownTimeout`): an --on-promote hook under way, then stopping the command (up to
 * `stopTimeout`, then SIGKILL) and the --on-demote hook, with a margin. A successor must not
 * start its command while this one may still be running.
 */
export function leaveBudget(stopTimeout: number): number {
  // Node timers (and the option) stop at 2^31 - 1 ms.
  return Math.min(stopTimeout + 2 * HOOK_TIMEOUT + 5000, 2 ** 31 - 1);
}
const wall = (): number => performance.timeOrigin + performance.now();

/** What a `primaryLost` means for this node, by its `reason`. */
const LOST_OUTLOOK: Readonly<Record<string, string>> = {
  'taking-over': '',
  suspected: '; suspected (it may still hold the endpoint): taking over only if a bind succeeds',
  disabled: '; --observe-only: not taking over',
  observer: '; the endpoint is not on this host: observing only',
  'epoch-exhausted': '; no valid epoch left: not taking over (README, "Resetting the epoch")',
};

/**
 * Runs until SIGINT/SIGTERM (exit 0), or until the command exits with `--on-exit exit` (its
 * exit code). `makeBackend` builds the election with the supervisor's callbacks (the contract's
 * `onPromote`/`onDemote`, passed on unchanged); the supervisor then drives and listens to it
 * through the `Election` contract alone, whatever the backend.
 */
export async function runSupervisor(
  options: SupervisorOptions,
  makeBackend: (callbacks: SupervisorCallbacks) => SupervisorBackend | Promise<SupervisorBackend>,
  io: SupervisorIo,
): Promise<number> {
  const emit = (event: string, fields: Record<string, unknown>): void => {
    if (options.json) io.out(JSON.stringify({ event, ...fields }));
  };
  const say = (text: string): void => {
    if (!options.json) io.err(`failover-watch: ${text}`);
  };

  let child: SupervisedChild | undefined;
  let exitCode: number | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const metrics: SupervisorMetrics = { childRestarts: 0 };
  let backend: SupervisorBackend | undefined;
  let restartDelay = 100;
  /** Set once the supervisor is leaving: no command starts from then on. */
  let leaving = false;
  const guardian = new Guardian((text) => {
    emit('guardian', { note: text, at: wall() });
    say(text);
  });
  let records: UnitRecordFile | undefined;

  const env = (role: string, epoch: number, reason: string): NodeJS.ProcessEnv => ({
    ...io.env,
    FAILOVER_ROLE: role,
    FAILOVER_EPOCH: String(epoch),
    FAILOVER_INSTANCE_ID: backend?.election.instanceId ?? '',
    FAILOVER_REASON: reason,
  });

  const hook = async (name: 'onPromote' | 'onDemote', command: string | undefined, hookEnv: NodeJS.ProcessEnv): Promise<void> => {
    if (command === undefined) return;
    const result = await runHook(command, hookEnv, HOOK_TIMEOUT);
    emit('hook', { name, command, exitCode: result.code, signal: result.signal, at: wall() });
    if (result.code !== 0) say(`${name} hook "${command}" exited with ${result.code ?? result.signal ?? result.error}`);
  };

  const startChild = async (epoch: number, reason: string): Promise<void> => {
    const unitRecord = records as UnitRecordFile;
    // Whatever a previous holder on this host left running is gone before this command starts.
    const fenced = await unitRecord.fence();
    if (fenced.action === 'killed') {
      const r = fenced.record;
      emit('fenced', { pgid: r.pgid, pids: fenced.pids, supervisorPid: r.supervisorPid, at: wall() });
      say(`killed what was left of the previous command (process group ${r.pgid}, pids ${fenced.pids.join(', ')}) before starting`);
    } else if (fenced.action === 'skipped') {
      say(`not fencing the unit record ${unitRecord.path}: ${fenced.detail}`);
    }
    const started = await SupervisedChild.start({
      command: options.command,
      args: options.args,
      env: env('primary', epoch, reason),
      stdoutToStderr: options.json,
      stopTimeout: options.stopTimeout,
      onEnd: (exit, group) => {
        guardian.release(group);
        if (exit.lingering.length === 0) unitRecord.remove(group);
        else say(`process group ${group.pgid} still runs after SIGKILL (pids ${exit.lingering.join(', ')}); the next start fences it`);
      },
    });
    // The gate opens only once the unit is guarded and recorded.
    try {
      await guardian.watch(started.group);
      unitRecord.write(started.group, wall());
    } catch (error) {
      await started.stop(0);
      throw error;
    }
    started.release();
    child = started;
    emit('childStarted', { pid: started.pid, command: [options.command, ...options.args], epoch, at: wall() });
    say(`started ${options.command} (pid ${started.pid}) as primary, epoch ${epoch}`);
    void started.exited.then((exit) => onChildExit(started, exit, epoch));
  };

  const onChildExit = (which: SupervisedChild, exit: ChildExit, epoch: number): void => {
    const onItsOwn = !which.stopping;
    emit('childExited', { pid: which.pid, code: exit.code, signal: exit.signal, onItsOwn, lingering: exit.lingering, at: wall() });
    if (!onItsOwn || child !== which || backend?.election.role !== 'primary') return;
    say(`${options.command} exited on its own (${exit.code ?? exit.signal}); --on-exit ${options.onExit}`);
    if (options.onExit === 'stepdown') {
      child = undefined;
      backend.election.stepDown();
    } else if (options.onExit === 'restart') {
      metrics.childRestarts++;
      const delay = restartDelay;
      restartDelay = Math.min(restartDelay * 2, 5000);
      setTimeout(() => {
        if (backend?.election.role === 'primary' && child === which) {
          startChild(epoch, 'restart').catch((error: unknown) => {
            say(`cannot restart ${options.command}: ${String(error)}; stepping down`);
            backend?.election.stepDown();
          });
        }
      }, delay).unref();
    } else {
      exitCode = exit.code ?? 1;
      finish();
    }
  };

  const callbacks: SupervisorCallbacks = {
    async onPromote({ epoch, reason, signal }) {
      await hook('onPromote', options.onPromoteHook, env('primary', epoch, reason));
      // The role may be gone, or the supervisor leaving, by the time the hook is done: then the
      // command must not run (a successor may already run its own).
      const gone = (): boolean => leaving || signal.aborted;
      if (gone()) throw new Error('the primary role was lost before the command started');
      restartDelay = 100;
      await startChild(epoch, reason);
      if (gone()) {
        const started = child;
        child = undefined;
        await started?.stop(options.stopTimeout);
        throw new Error('the primary role was lost while the command started; stopped it');
      }
    },
    async onDemote({ epoch, reason }) {
      const running = child;
      child = undefined;
      if (running !== undefined) {
        const budget = Math.min(options.stopTimeout, backend?.stopBudget ?? options.stopTimeout);
        const exit = await running.stop(budget);
        say(`stopped ${options.command} (${exit.signal ?? exit.code}) on ${reason}`);
      }
      await hook('onDemote', options.onDemoteHook, env('secondary', epoch, reason));
    },
  };

  backend = await makeBackend(callbacks);
  const b = backend;
  const election = b.election;
  // The contract's events, the same for every backend.
  election.on('roleChanged', (c) => {
    emit('roleChanged', { from: c.from, to: c.to, epoch: c.epoch, at: c.at, instanceId: c.instanceId, reason: c.reason });
    // A start that failed ends starting -> stopped: the error line says why.
    if (c.from !== 'starting' || c.to !== 'stopped') say(`${c.from} -> ${c.to} (${c.reason}, epoch ${c.epoch})`);
  });
  election.on('primaryChanged', (e) => {
    emit('primaryChanged', { instanceId: e.instanceId, epoch: e.epoch, metadata: e.metadata ?? null, at: e.at });
  });
  election.on('primaryLost', (e) => {
    emit('primaryLost', { instanceId: e.instanceId, cause: e.cause, willPromote: e.willPromote, reason: e.reason, at: e.at });
    say(`primary ${e.instanceId ?? '(none heard)'} lost (${e.cause})${LOST_OUTLOOK[e.reason] ?? ''}`);
  });
  election.on('promotionFailed', (e) => {
    emit('promotionFailed', { error: e.error, retryInMs: e.retryInMs, at: e.at });
    say(`could not take over: ${e.error}; retrying in ${e.retryInMs} ms`);
  });
  b.onEndpointStolen?.((e) => {
    emit('endpointStolen', { path: e.path, found: e.found, detail: e.detail, at: e.at });
    // Always on stderr, with --json too: an error the operator must see.
    io.err(`failover-watch: error: the endpoint's socket file was taken (${e.detail}); nodes connecting now do not reach this primary (/healthz answers 503)`);
  });
  records = new UnitRecordFile(b.workdir, b.cluster);
  await guardian.start();
  let health: HealthServer | undefined;
  let failed = false;
  emit('started', {
    instanceId: election.instanceId,
    pid: process.pid,
    ...b.settings,
    command: [options.command, ...options.args],
    onExit: options.onExit,
    stopTimeout: options.stopTimeout,
    health: options.health === undefined ? null : `${options.health.host}:${options.health.port}`,
    guardian: guardian.pid ?? null,
    at: wall(),
  });

  const onSignal = (): void => finish();
  io.signal.addEventListener('abort', onSignal, { once: true });
  if (io.signal.aborted) finish();
  try {
    if (options.health !== undefined) {
      const source = { status: () => election.status(), health: () => election.health(), onElection: (fn: (e: Election) => void) => fn(election) };
      health = await startHealthServer(options.health.host, options.health.port, source, metrics, (text) => io.err(`failover-watch: warning: ${text}`));
      emit('healthListening', { host: options.health.host, port: health.port, at: wall() });
    }
    await Promise.race([election.start(), finished]);
    await finished;
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    leaving = true;
    io.signal.removeEventListener('abort', onSignal);
    // A graceful handover: onDemote stops the command, then the others are told at once.
    await election.shutdown().catch((error: unknown) => {
      if (!failed) say(`leaving: ${error instanceof Error ? error.message : String(error)}`);
    });
    if (child !== undefined) await child.stop(options.stopTimeout);
    await health?.close();
    await guardian.close();
    if (!failed) {
      emit('stopped', { exitCode: exitCode ?? 0, at: wall() });
      say('stopped');
    }
  }
  return exitCode ?? 0;
}
