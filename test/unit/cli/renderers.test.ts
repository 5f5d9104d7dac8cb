/**
 * Renderers of the cluster view: JSON lines, plain lines, and the in-place terminal frame.
 */
import { describe, expect, it } from 'vitest';
import { initialView, reduce, type ClusterView, type ViewInput } from '../../../src/cli/view/cluster-view.js';
import { eventToJson, eventToText } from '../../../src/cli/view/line-renderer.js';
import { renderFrame, TtyScreen } from '../../../src/cli/view/tty-renderer.js';
import { createStyle, stripAnsi, truncateVisible } from '../../../src/cli/style.js';
import type { WireMessage } from '../../../src/protocol/messages.js';

const WALL = Date.UTC(2030, 0, 2, 3, 4, 5, 678);
const msg = (fields: Partial<WireMessage>): ViewInput => ({
  type: 'message',
  at: WALL,
  message: { topic: 'instance.heartbeat', version: 1, instanceId: 'n1', epoch: 3, seq: 17, sentAt: 0, pid: 123, host: 'box', heartbeatInterval: 100, ...fields },
});

function feed(inputs: ReadonlyArray<readonly [ViewInput, number]>): ClusterView {
  let view = initialView('ipc://@t', 0);
  for (const [input, now] of inputs) view = reduce(view, input, now);
  return view;
}

describe('line renderer', () => {
  it('prints each event as one JSON object with the documented keys', () => {
    const view = feed([
      [msg({ seq: 1 }), 0],
      [msg({ seq: 3 }), 1000],
    ]);
    const lines = view.emitted.map(eventToJson);
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toContain('\n');
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(parsed)).toEqual(expect.arrayContaining(['event', 'instanceId', 'epoch', 'seq', 'pid', 'host', 'at']));
      expect(Object.keys(parsed)[0]).toBe('event');
      expect(parsed.at).toBe(WALL);
    }
    expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['gap', 'gap', 'heartbeat']);
  });

  it('prints plain lines with an ISO time and the facts, colored only when asked', () => {
    const view = feed([[msg({}), 0]]);
    const event = view.emitted[0]!;
    expect(eventToText(event)).toBe('2030-01-02T03:04:05.678Z heartbeat n1 epoch 3 seq 17 pid 123@box every 100 ms');
    const colored = eventToText(event, createStyle(true));
    expect(colored).toContain('\u001b[');
    expect(stripAnsi(colored)).toBe(eventToText(event));
  });

  it('describes gaps, shutdowns and drops in words', () => {
    const view = feed([
      [msg({ seq: 1 }), 0],
      [msg({ seq: 4 }), 400],
      [msg({ topic: 'instance.shutdown', seq: 5 }), 410],
      [{ type: 'dropped', reason: 'shape', detail: 'pid is not a positive integer', at: WALL }, 420],
    ]);
    const text = view.recent.map((e) => eventToText(e));
    expect(text).toContain('2030-01-02T03:04:05.678Z gap n1 seq 4 after 1 (2 missed)');
    expect(text).toContain('2030-01-02T03:04:05.678Z gap n1 silent 400 ms (heartbeat every 100 ms) before seq 4');
    expect(text).toContain('2030-01-02T03:04:05.678Z shutdown n1 epoch 3 seq 5 pid 123@box');
    expect(text).toContain('2030-01-02T03:04:05.678Z dropped invalid message (shape: pid is not a positive integer); 1 dropped so far');
  });
});

describe('terminal frame', () => {
  const plain = createStyle(false);

  it('shows the primary, its age moving with now, and counts', () => {
    const view = feed([
      [{ type: 'connection', state: 'connected', at: WALL }, 0],
      [msg({ members: [['s1', 1]] }), 1000],
    ]);
    const frame = renderFrame(view, 1040, plain);
    expect(frame[0]).toBe('failover-watch watch  ipc://@t  connected  watching for 1.0 s');
    expect(frame).toContain('primary  n1  pid 123@box  epoch 3  seq 17');
    expect(frame).toContain('         last heartbeat 0.0 s ago, every 100 ms');
    expect(frame).toContain('members  s1 (priority 1)');
    expect(frame).toContain('counts   1 heartbeats, 0 gaps, 0 promoted, 0 shutdowns, 0 dropped');
    expect(frame.at(-1)).toBe('Ctrl-C to stop');
    expect(renderFrame(view, 1400, plain)).toContain('         last heartbeat 0.4 s ago (late), every 100 ms');
    expect(renderFrame(view, 1400, plain, true).at(-1)).toBe('stopped after 1.4 s');
  });

  it('says when no primary was heard, or which one shut down', () => {
    expect(renderFrame(initialView('ipc://@t', 0), 0, plain)).toContain('primary  none heard yet');
    const view = feed([
      [msg({ seq: 1 }), 0],
      [msg({ topic: 'instance.shutdown', seq: 2 }), 100],
    ]);
    const frame = renderFrame(view, 2100, plain);
    expect(frame).toContain('primary  none: n1 (epoch 3) shut down 2.0 s ago');
    expect(frame).toContain('recent');
    expect(frame.some((l) => l.includes('shutdown n1 epoch 3 seq 2'))).toBe(true);
  });

  it('has no escape sequences without colors', () => {
    const view = feed([[msg({}), 0]]);
    expect(renderFrame(view, 10, plain).join('\n')).not.toContain('\u001b');
    expect(renderFrame(view, 10, createStyle(true)).join('\n')).toContain('\u001b[');
  });
});

describe('TtyScreen', () => {
  it('draws the first frame as is and later ones over the previous frame', () => {
    const writes: string[] = [];
    const screen = new TtyScreen((t) => writes.push(t));
    screen.draw(['a', 'b', 'c']);
    screen.draw(['d']);
    expect(writes[0]).toBe('\u001b[2Ka\n\u001b[2Kb\n\u001b[2Kc\n\u001b[J');
    expect(writes[1]).toBe('\r\u001b[3A\u001b[2Kd\n\u001b[J');
  });

  it('cuts lines to the terminal width so the cursor arithmetic holds', () => {
    const writes: string[] = [];
    const screen = new TtyScreen((t) => writes.push(t), () => 6);
    screen.draw(['abcdefghij']);
    expect(writes[0]).toBe('\u001b[2Kabcde\n\u001b[J');
  });

  it('truncates by visible characters, keeping escape sequences and resetting at the end', () => {
    const red = createStyle(true).red('abcdef');
    const cut = truncateVisible(`x${red}`, 3);
    expect(stripAnsi(cut)).toBe('xab');
    expect(cut.endsWith('\u001b[0m')).toBe(true);
    expect(truncateVisible('short', 10)).toBe('short');
  });
});

describe('a stolen endpoint', () => {
  it('is one plain line, and a line under the primary in a TTY', () => {
    const view = feed([[msg({ seq: 1, endpointStolen: 'replaced' }), 0]]);
    const stolen = view.emitted.find((e) => e.event === 'endpointStolen');
    expect(stolen).toBeDefined();
    expect(stripAnsi(eventToText(stolen!))).toBe(
      '2030-01-02T03:04:05.678Z endpoint stolen n1 epoch 3 pid 123@box: its socket file is replaced by another file; nodes connecting now do not reach it',
    );
    expect(renderFrame(view, 10, createStyle(false)).join('\n')).toContain('ENDPOINT STOLEN (replaced)');
  });
});

describe('lease events', () => {
  it('frame shows the leader, since when and the lease left', () => {
    const lease = (nodeId: string | undefined): ViewInput => ({
      type: 'lease',
      leader: nodeId === undefined ? undefined : { nodeId, revision: 4, priority: 1, ttlMs: 900 },
      at: WALL,
    });
    const style = createStyle(false);
    const held = feed([[lease('a'), 1000]]);
    const lines = renderFrame(held, 1300, style);
    expect(lines[1]).toBe('leader   a  revision 4  priority 1');
    expect(lines[2]).toBe(`         since ${new Date(WALL).toISOString()}, lease 600 ms left`);
    const free = feed([[lease('a'), 1000], [lease(undefined), 2000]]);
    expect(renderFrame(free, 2100, style)[1]).toBe('leader   none: the lease of a (revision 4) is free');
  });

  it('print a leader change and a free lease in words', () => {
    const at = Date.UTC(2026, 0, 1);
    expect(
      eventToText({ event: 'primaryChanged', instanceId: 'b', epoch: 2, seq: null, pid: null, host: null, at, previous: 'a', ttlMs: 999, metadata: {} }),
    ).toBe('2026-01-01T00:00:00.000Z primaryChanged b revision 2 (was a), lease 999 ms left');
    expect(eventToText({ event: 'primaryLost', instanceId: 'a', epoch: 1, seq: null, pid: null, host: null, at })).toBe(
      '2026-01-01T00:00:00.000Z primaryLost a revision 1: the lease is free',
    );
  });

  it('a holder without a lease (PostgreSQL) prints no lease time', () => {
    const at = Date.UTC(2026, 0, 1);
    expect(
      eventToText({ event: 'primaryChanged', instanceId: 'b', epoch: 2, seq: null, pid: null, host: null, at, previous: 'a', ttlMs: null, metadata: {} }),
    ).toBe('2026-01-01T00:00:00.000Z primaryChanged b revision 2 (was a)');
    const held = feed([[{ type: 'lease', leader: { nodeId: 'b', revision: 2, priority: null, ttlMs: null }, at: WALL }, 1000]]);
    const lines = renderFrame(held, 1300, createStyle(false));
    expect(lines[1]).toBe('leader   b  revision 2');
    expect(lines[2]).toBe(`         since ${new Date(WALL).toISOString()}`);
  });
});

describe('primary metadata', () => {
  it('shows in lines and under the primary in a TTY', () => {
    const style = createStyle(false);
    const first = feed([[msg({ seq: 1, metadata: { port: '7001', zone: 'a' } }), 0]]);
    const changed = first.emitted.find((e) => e.event === 'primaryChanged');
    expect(eventToText(changed!)).toBe('2030-01-02T03:04:05.678Z primaryChanged n1 epoch 3 pid 123@box; metadata port=7001 zone=a');
    expect(renderFrame(first, 10, style)).toContain('metadata port=7001 zone=a');
    const next = reduce(first, msg({ seq: 2, metadata: { port: '8001' } }), 100);
    const update = next.emitted.find((e) => e.event === 'primaryMetadataChanged');
    expect(eventToText(update!)).toBe('2030-01-02T03:04:05.678Z primaryMetadataChanged n1 epoch 3: metadata port=8001');
    const lease = reduce(initialView('e', 0), { type: 'lease', leader: { nodeId: 'a', revision: 4, priority: 1, ttlMs: 900, metadata: { port: '7001' } }, at: WALL }, 0);
    expect(renderFrame(lease, 10, style)[3]).toBe('metadata port=7001');
    expect(eventToText(lease.emitted[0]!)).toBe('2030-01-02T03:04:05.678Z primaryChanged a revision 4, lease 900 ms left; metadata port=7001');
  });
});
