/**
 * `resolveOptions`: frozen defaults, and one validation pass whose errors name the option, what
 * was expected and what was received.
 */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { describe as describeValue, FailoverError, InvalidOptionError } from '../../src/errors.js';
import { DEFAULTS, resolveOptions, type WatcherOptions } from '../../src/options.js';
import { Watcher } from '../../src/watcher.js';
import { MAX_PRESENCE_TOPIC_BYTES, presenceTopic } from '../../src/protocol/messages.js';

const ENDPOINT = 'tcp://127.0.0.1:5555';

/** Calls `fn`, which must throw an InvalidOptionError, and returns it. */
function thrown(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError, nothing was thrown');
}

/** Options typed loosely, to pass what the types would refuse. */
function loose(extra: Record<string, unknown>): WatcherOptions {
  return { endpoint: ENDPOINT, ...extra } as unknown as WatcherOptions;
}

/** The error names the option, what was expected and what was received, in fields and message. */
function expectNamed(error: InvalidOptionError, option: string, expected: string | RegExp, received: unknown): void {
  expect(error).toBeInstanceOf(FailoverError);
  expect(error.code).toBe('ERR_FAILOVER_INVALID_OPTION');
  expect(error.name).toBe('InvalidOptionError');
  expect(error.option).toBe(option);
  if (typeof expected === 'string') expect(error.expected).toBe(expected);
  else expect(error.expected).toMatch(expected);
  expect(error.received).toStrictEqual(received);
  expect(error.message).toBe(`Invalid option \`${option}\`: expected ${error.expected}, received ${describeValue(received)}`);
}

describe('resolveOptions: defaults', () => {
  it('fills in the documented defaults and freezes the result', () => {
    const o = resolveOptions({ endpoint: ENDPOINT });
    expect(o).toMatchObject({
      heartbeatInterval: 5000,
      heartbeatTimeout: 15000,
      enabled: false,
      role: 'auto',
      retryInterval: 1000,
      maxRetryInterval: 30000,
      shutdownTimeout: 5000,
      notificationBuffer: 64,
      rehearsals: 100,
      priority: 1,
      priorityStagger: 20,
      preempt: false,
      preemptDelay: 1000,
      fencing: false,
      livenessProbeTimeout: 1000,
      onPromote: undefined,
      onDemote: undefined,
      logger: undefined,
      clock: undefined,
    });
    expect(o.endpoint).toEqual({ kind: 'tcp', address: ENDPOINT, host: '127.0.0.1', port: 5555 });
    expect(o.instanceId).toBe(`${hostname()}-${process.pid}`);
    expect(o.workdir).toContain('failover-watch-');
    expect(o.workdir).toContain('tcp_127.0.0.1_5555');
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('the defaults object is frozen and matches the README numbers', () => {
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
    expect(DEFAULTS).toMatchObject({ heartbeatInterval: 5000, heartbeatTimeout: 15000, enabled: false, role: 'auto' });
  });

  it('keeps what it was given', () => {
    const onPromote = async (): Promise<void> => {};
    const logger = { debug() {}, info() {}, warn() {}, error() {} };
    const o = resolveOptions({
      endpoint: 'ipc://@cluster-a',
      role: 'secondary',
      instanceId: 'node-1',
      workdir: '/var/lib/app',
      heartbeatInterval: 100,
      heartbeatTimeout: 101,
      enabled: true,
      onPromote,
      logger,
    });
    expect(o).toMatchObject({
      role: 'secondary',
      instanceId: 'node-1',
      workdir: '/var/lib/app',
      heartbeatInterval: 100,
      heartbeatTimeout: 101,
      enabled: true,
    });
    expect(o.onPromote).toBe(onPromote);
    expect(o.logger).toBe(logger);
    expect(o.endpoint).toEqual({ kind: 'ipc-abstract', address: 'ipc://@cluster-a', name: 'cluster-a' });
  });

  it('two nodes of one endpoint share the default workdir; other endpoints do not', () => {
    const a = resolveOptions({ endpoint: ENDPOINT, instanceId: 'a' });
    const b = resolveOptions({ endpoint: ENDPOINT, instanceId: 'b' });
    const other = resolveOptions({ endpoint: 'tcp://127.0.0.1:5556' });
    expect(a.workdir).toBe(b.workdir);
    expect(other.workdir).not.toBe(a.workdir);
  });
});

describe('resolveOptions: endpoints', () => {
  it.each([
    ['tcp://127.0.0.1:5555', { kind: 'tcp', host: '127.0.0.1', port: 5555 }],
    ['tcp://localhost:1', { kind: 'tcp', host: 'localhost', port: 1 }],
    ['tcp://[::1]:65535', { kind: 'tcp', host: '[::1]', port: 65535 }],
    ['ipc://@name', { kind: 'ipc-abstract', name: 'name' }],
    ['ipc:///tmp/app/cluster.sock', { kind: 'ipc-path', path: '/tmp/app/cluster.sock' }],
  ])('accepts %s', (address, parsed) => {
    expect(resolveOptions({ endpoint: address }).endpoint).toEqual({ address, ...parsed });
  });

  it.each([
    ['tcp://127.0.0.1', /^tcp:\/\/HOST:PORT/],
    ['tcp://:5555', /^tcp:\/\/HOST:PORT/],
    ['tcp://127.0.0.1:port', /^tcp:\/\/HOST:PORT/],
    ['tcp://0.0.0.0:5555', 'a tcp host that peers can connect to (not the wildcard address)'],
    ['tcp://[::]:5555', 'a tcp host that peers can connect to (not the wildcard address)'],
    ['tcp://127.0.0.1:0', 'a tcp port between 1 and 65535'],
    ['tcp://127.0.0.1:65536', 'a tcp port between 1 and 65535'],
    ['tcp://127.0.0.1:99999', 'a tcp port between 1 and 65535'],
    ['ipc://@', 'ipc://@NAME with a name of 1-100 characters'],
    [`ipc://@${'n'.repeat(101)}`, 'ipc://@NAME with a name of 1-100 characters'],
    ['ipc://relative/cluster.sock', 'ipc:///ABSOLUTE/PATH or ipc://@NAME'],
    ['ipc://cluster.sock', 'ipc:///ABSOLUTE/PATH or ipc://@NAME'],
    [`ipc:///${'p'.repeat(100)}`, 'an ipc path of at most 100 characters (the unix socket limit)'],
    ['udp://127.0.0.1:5555', 'an endpoint of the form tcp://HOST:PORT, ipc://@NAME or ipc:///ABSOLUTE/PATH'],
    ['', 'an endpoint of the form tcp://HOST:PORT, ipc://@NAME or ipc:///ABSOLUTE/PATH'],
  ])('rejects %s', (address, expected) => {
    expectNamed(thrown(() => resolveOptions({ endpoint: address })), 'endpoint', expected, address);
  });

  it('rejects a missing or non-string endpoint', () => {
    expectNamed(thrown(() => resolveOptions({} as WatcherOptions)), 'endpoint', 'a string like tcp://127.0.0.1:5555', undefined);
    expectNamed(
      thrown(() => resolveOptions({ endpoint: 5555 } as unknown as WatcherOptions)),
      'endpoint',
      'a string like tcp://127.0.0.1:5555',
      5555,
    );
  });
});

const ID_RULE = 'a string of 1-256 bytes of UTF-8 without control characters';

describe('resolveOptions: instanceId', () => {
  it('accepts 256 bytes of UTF-8, whose presence topic always fits', () => {
    const longest = `${'€'.repeat(85)}x`;
    expect(resolveOptions({ endpoint: ENDPOINT, instanceId: longest }).instanceId).toBe(longest);
    expect(resolveOptions({ endpoint: ENDPOINT, instanceId: 'x'.repeat(256) }).instanceId).toHaveLength(256);
    // With the largest priority (10 digits), within what the primary reads as presence.
    expect(Buffer.byteLength(presenceTopic(longest, 1_000_000_000))).toBeLessThanOrEqual(MAX_PRESENCE_TOPIC_BYTES);
  });

  it('rejects 257 bytes at construction', () => {
    expectNamed(thrown(() => new Watcher({ endpoint: ENDPOINT, instanceId: `${'€'.repeat(85)}xy` })), 'instanceId', ID_RULE, `${'€'.repeat(85)}xy`);
  });
});

describe('resolveOptions: invalid options', () => {
  const fn = (): void => {};
  const durationOf = (min: number): string => `an integer number of milliseconds from ${min} to ${2 ** 31 - 1}`;

  it.each<[string, Record<string, unknown>, string, string | RegExp, unknown]>([
    ['role', { role: 'leader' }, 'role', "'auto', 'primary' or 'secondary'", 'leader'],
    ['empty instanceId', { instanceId: '' }, 'instanceId', ID_RULE, ''],
    ['long instanceId', { instanceId: 'x'.repeat(257) }, 'instanceId', ID_RULE, 'x'.repeat(257)],
    ['numeric instanceId', { instanceId: 7 }, 'instanceId', ID_RULE, 7],
    // 256 characters but 768 bytes: its presence topic was longer than the primary reads.
    ['instanceId over 256 bytes', { instanceId: '€'.repeat(256) }, 'instanceId', ID_RULE, '€'.repeat(256)],
    ['instanceId with NUL', { instanceId: 'a\u0000b' }, 'instanceId', ID_RULE, 'a\u0000b'],
    ['instanceId with a newline', { instanceId: 'a\nb' }, 'instanceId', ID_RULE, 'a\nb'],
    ['instanceId with DEL', { instanceId: 'a\u007fb' }, 'instanceId', ID_RULE, 'a\u007fb'],
    ['instanceId with a C1 control', { instanceId: 'a\u0085b' }, 'instanceId', ID_RULE, 'a\u0085b'],
    ['instanceId with a lone surrogate', { instanceId: 'a\ud800b' }, 'instanceId', ID_RULE, 'a\ud800b'],
    ['empty workdir', { workdir: '' }, 'workdir', 'a directory path', ''],
    ['zero heartbeatInterval', { heartbeatInterval: 0 }, 'heartbeatInterval', durationOf(1), 0],
    ['fractional heartbeatInterval', { heartbeatInterval: 1.5 }, 'heartbeatInterval', durationOf(1), 1.5],
    ['string heartbeatInterval', { heartbeatInterval: '100' }, 'heartbeatInterval', durationOf(1), '100'],
    ['NaN heartbeatTimeout', { heartbeatTimeout: Number.NaN }, 'heartbeatTimeout', durationOf(2), Number.NaN],
    ['huge heartbeatTimeout', { heartbeatTimeout: 2 ** 31 }, 'heartbeatTimeout', durationOf(2), 2 ** 31],
    ['non-boolean enabled', { enabled: 'yes' }, 'enabled', 'a boolean', 'yes'],
    ['non-function onPromote', { onPromote: 'promote()' }, 'onPromote', 'a function', 'promote()'],
    ['non-function onDemote', { onDemote: {} }, 'onDemote', 'a function', {}],
    ['logger without error', { logger: { debug: fn, info: fn, warn: fn } }, 'logger', 'an object with debug, info, warn and error methods', { debug: fn, info: fn, warn: fn }],
    ['logger with a non-function debug', { logger: { debug: 1, info: fn, warn: fn, error: fn } }, 'logger', 'an object with debug, info, warn and error methods', { debug: 1, info: fn, warn: fn, error: fn }],
    ['null logger', { logger: null }, 'logger', 'an object with debug, info, warn and error methods', null],
    ['negative retryInterval', { retryInterval: -1 }, 'retryInterval', durationOf(1), -1],
    ['maxRetryInterval below retryInterval', { retryInterval: 500, maxRetryInterval: 499 }, 'maxRetryInterval', 'a duration of at least retryInterval (500 ms)', 499],
    ['negative shutdownTimeout', { shutdownTimeout: -5 }, 'shutdownTimeout', durationOf(0), -5],
    ['zero notificationBuffer', { notificationBuffer: 0 }, 'notificationBuffer', 'an integer from 1 to 1000000', 0],
    ['negative rehearsals', { rehearsals: -1 }, 'rehearsals', 'an integer from 0 to 10000', -1],
    ['fractional rehearsals', { rehearsals: 2.5 }, 'rehearsals', 'an integer from 0 to 10000', 2.5],
    ['string rehearsals', { rehearsals: '100' }, 'rehearsals', 'an integer from 0 to 10000', '100'],
    ['too many rehearsals', { rehearsals: 10_001 }, 'rehearsals', 'an integer from 0 to 10000', 10_001],
    ['negative priority', { priority: -1 }, 'priority', 'an integer from 0 to 1000000000 (lower is preferred)', -1],
    ['fractional priority', { priority: 1.5 }, 'priority', 'an integer from 0 to 1000000000 (lower is preferred)', 1.5],
    ['negative priorityStagger', { priorityStagger: -1 }, 'priorityStagger', durationOf(0), -1],
    ['non-boolean preempt', { preempt: 1 }, 'preempt', 'a boolean', 1],
    ['negative preemptDelay', { preemptDelay: -1 }, 'preemptDelay', durationOf(0), -1],
    ['non-boolean fencing', { fencing: 'on' }, 'fencing', 'a boolean', 'on'],
    ['zero livenessProbeTimeout', { livenessProbeTimeout: 0 }, 'livenessProbeTimeout', durationOf(1), 0],
    ['clock without now', { clock: { wallNow: fn } }, 'clock', 'a Clock (now, wallNow, setTimer, clearTimer)', { wallNow: fn }],
  ])('rejects a %s', (_title, extra, option, expected, received) => {
    expectNamed(thrown(() => resolveOptions(loose(extra))), option, expected, received);
  });

  it('rejects heartbeatTimeout <= heartbeatInterval with a message naming both', () => {
    for (const [interval, timeout] of [
      [5000, 5000],
      [5000, 4000],
      [100, 99],
    ] as const) {
      const error = thrown(() => resolveOptions({ endpoint: ENDPOINT, heartbeatInterval: interval, heartbeatTimeout: timeout }));
      expectNamed(error, 'heartbeatTimeout', `a duration greater than heartbeatInterval (${interval} ms)`, timeout);
      expect(error.message).toContain('heartbeatTimeout');
      expect(error.message).toContain('heartbeatInterval');
      expect(error.message).toContain(`${interval} ms`);
      expect(error.message).toContain(`number ${timeout}`);
    }
    // The default timeout (15000) against a larger interval is caught too.
    const error = thrown(() => resolveOptions({ endpoint: ENDPOINT, heartbeatInterval: 20000 }));
    expectNamed(error, 'heartbeatTimeout', 'a duration greater than heartbeatInterval (20000 ms)', 15000);
    // Just above is fine.
    expect(resolveOptions({ endpoint: ENDPOINT, heartbeatInterval: 100, heartbeatTimeout: 101 }).heartbeatTimeout).toBe(101);
  });

  it('rejects an unknown option key, naming it and listing the known ones', () => {
    const error = thrown(() => resolveOptions(loose({ hearbeatInterval: 100 })));
    expect(error.option).toBe('hearbeatInterval');
    expect(error.received).toBe('hearbeatInterval');
    expect(error.expected).toMatch(/^one of the known options \(.*\)$/);
    for (const known of ['endpoint', 'heartbeatInterval', 'heartbeatTimeout', 'enabled', 'onPromote', 'logger']) {
      expect(error.expected).toContain(known);
    }
    expect(error.message).toBe(`Invalid option \`hearbeatInterval\`: expected ${error.expected}, received "hearbeatInterval"`);
  });

  it('rejects options that are not an object', () => {
    for (const value of [null, undefined, 'tcp://127.0.0.1:5555', 42]) {
      expectNamed(thrown(() => resolveOptions(value as unknown as WatcherOptions)), 'options', 'an object', value);
    }
  });

  it('describes what it received without dumping it', () => {
    const long = `udp://${'h'.repeat(200)}:1`;
    const error = thrown(() => resolveOptions({ endpoint: long }));
    expect(error.message.length).toBeLessThan(300);
    expect(error.message).toContain('..."');
    expect(thrown(() => resolveOptions(loose({ onDemote: [1, 2] }))).message).toContain('received an array of length 2');
    expect(thrown(() => resolveOptions(loose({ enabled: () => true }))).message).toContain('received a function');
  });
});

describe('Watcher constructor', () => {
  it('throws the same InvalidOptionError as resolveOptions, before touching the network', () => {
    const cases: WatcherOptions[] = [
      { endpoint: 'tcp://0.0.0.0:5555' },
      { endpoint: 'ipc://relative' },
      { endpoint: ENDPOINT, heartbeatInterval: 1000, heartbeatTimeout: 1000 },
      loose({ onPromote: 'nope' }),
      loose({ logger: { info() {} } }),
      loose({ unknownKey: true }),
    ];
    for (const options of cases) {
      const direct = thrown(() => resolveOptions(options));
      const viaWatcher = thrown(() => new Watcher(options));
      expect(viaWatcher.option).toBe(direct.option);
      expect(viaWatcher.expected).toBe(direct.expected);
      expect(viaWatcher.received).toStrictEqual(direct.received);
      expect(viaWatcher.message).toBe(direct.message);
    }
    expect(thrown(() => Watcher.forPrimary({ endpoint: 'tcp://127.0.0.1:0' })).option).toBe('endpoint');
    expect(thrown(() => Watcher.forSecondary(loose({ enabled: 1 }))).option).toBe('enabled');
  });
});
