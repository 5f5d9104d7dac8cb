/**
 * The in-memory endpoint keeps what the one-primary guarantee rests on (see memory-endpoint.ts):
 * an exclusive bind, connections that report presence and end with `disconnected`, a farewell
 * that arrives before the disconnect that follows it. Driven by hand on a FakeClock.
 */
import { expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.js';
import { MemoryEndpoint } from '../../../src/testing/memory-endpoint.js';
import { NodeClock } from '../../../src/testing/node-clock.js';
import type { Frames, TransportHandlers } from '../../../src/transport/transport.js';

const frames = (text: string): Frames => [Buffer.from('instance.heartbeat'), Buffer.from(text)];

function recorder(log: string[], name: string): TransportHandlers {
  return {
    onMessage: (f) => log.push(`${name} got ${f[1]?.toString()}`),
    onEvent: (e) => log.push(`${name} ${e.type}`),
    onPresence: (joined, topic) => log.push(`${name} sees ${topic} ${joined ? 'join' : 'leave'}`),
    onSubscribed: () => log.push(`${name} subscribed`),
  };
}

it('binds exclusively and frees the bind on release', async () => {
  const clock = new FakeClock();
  const endpoint = new MemoryEndpoint(clock, { latency: 0, reconnectDelay: 10 });
  const a = endpoint.transport('a', new NodeClock(clock));
  const b = endpoint.transport('b', new NodeClock(clock));
  expect(await a.bind()).toEqual({ outcome: 'bound' });
  expect(await b.bind()).toEqual({ outcome: 'in-use' });
  await a.release(undefined);
  expect(await b.bind()).toEqual({ outcome: 'bound' });
  a.crash();
  expect(await a.bind()).toMatchObject({ outcome: 'failed' });
});

it('delivers in order, the farewell before the disconnect', async () => {
  const clock = new FakeClock();
  const endpoint = new MemoryEndpoint(clock, { latency: 1, reconnectDelay: 10 });
  const log: string[] = [];
  const a = endpoint.transport('a', new NodeClock(clock));
  const b = endpoint.transport('b', new NodeClock(clock));
  await a.open(recorder(log, 'a'), 'presence.1.a');
  await b.open(recorder(log, 'b'), 'presence.1.b');
  await a.bind();
  await a.publish(frames('lost')); // nobody connected yet
  clock.advance(11);
  await a.publish(frames('one'));
  await a.publish(frames('two'));
  await a.release(frames('bye'));
  clock.advance(5);
  expect(log.filter((l) => l.startsWith('b'))).toEqual(['b connected', 'b got one', 'b got two', 'b got bye', 'b disconnected']);
  expect(log.filter((l) => l.startsWith('a sees') || l === 'a subscribed')).toEqual([
    'a sees presence.1.a join',
    'a subscribed',
    'a sees presence.1.b join',
    'a subscribed',
    'a sees presence.1.a leave',
    'a sees presence.1.b leave',
  ]);
});

it('a stalled node gets its timers, then arrivals, on waking', () => {
  const clock = new FakeClock();
  const node = new NodeClock(clock);
  const ran: string[] = [];
  node.setTimer(() => ran.push(`timer@${clock.now()}`), 100);
  node.arrive(() => ran.push(`message@${clock.now()}`), 50);
  node.freeze();
  clock.advance(500);
  expect(ran).toEqual([]);
  node.thaw();
  clock.advance(0);
  expect(ran).toEqual(['timer@500', 'message@500']);
  node.kill();
  node.setTimer(() => ran.push('dead'), 1);
  clock.advance(10);
  expect([ran.length, clock.pending]).toEqual([2, 0]);
});
