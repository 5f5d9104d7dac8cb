/**
 * A dry run of the takeover paths on a scratch copy of the machine, for a process that is about
 * to wait as a secondary.
 *
 * V8 compiles a function the first time it runs. A secondary may follow for hours without ever
 * running the code of a takeover, so its first takeover would pay for compiling every step of
 * it, on the clock: about half a millisecond on a busy host. The machine is pure, so the same
 * steps can be run once at start on a throwaway state, with made-up inputs, and their effects
 * dropped: nothing is bound, written, published or called.
 *
 * @module
 */
import { PROTOCOL_VERSION, type WireMessage } from '../protocol/messages.js';
import { initialState, step, type Input, type MachineConfig, type MachineState } from './heartbeat-machine.js';

/**
 * Runs a crash takeover and a graceful takeover, each followed by a graceful exit, on scratch
 * states. Returns how many steps ran, how many of the two rehearsals reached the primary role,
 * and how many then left it with a farewell. Never throws (a rehearsal that fails costs only
 * speed).
 */
export function rehearseTakeovers(config: MachineConfig): { readonly steps: number; readonly promoted: number; readonly farewells: number } {
  let steps = 0;
  let promoted = 0;
  let farewells = 0;
  try {
    for (const cause of ['disconnect', 'shutdown'] as const) {
      let s: MachineState = initialState({ ...config, initialRole: 'secondary' }, true, 0);
      let now = 1_000_000;
      const feed = (input: Input): void => {
        now += 1;
        const result = step(s, input, { now, random: () => 0.5 });
        s = result.state;
        steps++;
        if (result.effects.some((e) => e.type === 'release' && e.farewellSeq !== undefined)) farewells++;
      };
      const from = (topic: WireMessage['topic'], seq: number): Input => ({
        type: 'message',
        wallNow: now,
        message: {
          topic,
          version: PROTOCOL_VERSION,
          instanceId: `${config.instanceId}~rehearsal`,
          epoch: 1,
          seq,
          sentAt: now,
          pid: 0,
          host: 'rehearsal',
          heartbeatInterval: config.heartbeatInterval,
        },
      });
      feed({ type: 'start' });
      feed({ type: 'bindResult', outcome: 'in-use' });
      feed(from('instance.heartbeat', 1));
      feed(cause === 'disconnect' ? { type: 'disconnected' } : from('instance.shutdown', 2));
      feed({ type: 'bindResult', outcome: 'bound' });
      feed({ type: 'epochLoaded', fileEpoch: 1 });
      feed({ type: 'stateSaved', ok: true });
      feed({ type: 'promoteSettled', term: s.term, ok: true });
      if (s.role === 'primary') promoted++;
      feed({ type: 'tick' });
      // And a primary's graceful exit: onDemote settles, then the farewell and the close.
      feed({ type: 'shutdown' });
      feed({ type: 'demoteSettled', term: s.term });
    }
  } catch {
    // Only a rehearsal.
  }
  return { steps, promoted, farewells };
}
