/**
 * `new Watcher(options, { transport })`: the second argument is checked at construction.
 */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, Watcher } from 'failover-watch';
import { createZmqTransport } from 'failover-watch/transport';

const endpoint = 'ipc://@fw-watcher-transport-check';

describe('Watcher transport argument', () => {
  it('accepts a transport of the port', async () => {
    const transport = createZmqTransport(endpoint);
    const watcher = new Watcher({ endpoint }, { transport });
    expect(watcher.options.endpoint.address).toBe(endpoint);
    await transport.close();
  });

  it('refuses a transport without the methods', () => {
    const make = () => new Watcher({ endpoint }, { transport: { open() {} } as never });
    expect(make).toThrow(InvalidOptionError);
    expect(make).toThrow(/`transport`.*missing probe, bind, publish, release, close/);
  });

  it('refuses a second argument that is not an object', () => {
    expect(() => new Watcher({ endpoint }, 42 as never)).toThrow(/`deps`/);
  });

  it('createZmqTransport refuses a bad endpoint', () => {
    expect(() => createZmqTransport('udp://x')).toThrow(InvalidOptionError);
  });
});

describe('failover-watch/transport subpath', () => {
  it('exports the built src/transport.ts', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, unknown>; files: string[] };
    expect(pkg.exports['./transport']).toEqual({ types: './dist/transport.d.ts', default: './dist/transport.js' });
    expect(pkg.files).toContain('docs/TRANSPORT.md');
    const viaAlias = await import('failover-watch/transport');
    const viaSource = await import('../../../src/transport.js');
    expect(viaAlias.transportConformance).toBe(viaSource.transportConformance);
  });
});
