/**
 * Which tcp endpoints this host could bind, and so which nodes are observers. The host's
 * addresses and the name lookup are injected: nothing here touches the network.
 */
import { describe, expect, it } from 'vitest';
import { parseEndpoint, type Endpoint } from '../../../../src/transport/zmq/endpoint.js';
import {
  canonicalAddress,
  endpointLocality,
  isLoopbackAddress,
  systemLocalityProbe,
  type LocalityProbe,
} from '../../../../src/transport/zmq/endpoint-locality.js';

const endpoint = (address: string): Endpoint => {
  const e = parseEndpoint(address);
  if (typeof e === 'string') throw new Error(e);
  return e;
};

/** A host with loopback and 10.1.2.3 / fd00::5, and a small DNS. */
const probe: LocalityProbe = {
  isLocalAddress: (a) => isLoopbackAddress(a) || ['10.1.2.3', 'fd00::5'].includes(canonicalAddress(a)),
  lookup: async (host) => {
    const names: Record<string, string[]> = { 'me.example': ['192.0.2.9', '10.1.2.3'], 'db.example': ['192.0.2.1', '2001:db8::1'], 'empty.example': [] };
    const found = names[host];
    if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found;
  },
};

describe('endpointLocality', () => {
  it('ipc endpoints are always local', async () => {
    expect((await endpointLocality(endpoint('ipc://@x'), probe)).local).toBe(true);
    expect((await endpointLocality(endpoint('ipc:///tmp/x.sock'), probe)).local).toBe(true);
  });

  it('loopback literals and localhost are local', async () => {
    for (const a of ['tcp://127.0.0.1:1', 'tcp://127.8.9.10:1', 'tcp://[::1]:1', 'tcp://localhost:1', 'tcp://LOCALHOST:1']) {
      expect((await endpointLocality(endpoint(a), probe)).local, a).toBe(true);
    }
  });

  it('an interface address is local, another is not', async () => {
    expect((await endpointLocality(endpoint('tcp://10.1.2.3:5555'), probe)).local).toBe(true);
    expect((await endpointLocality(endpoint('tcp://[fd00:0:0::5]:5555'), probe)).local).toBe(true);
    const remote = await endpointLocality(endpoint('tcp://192.0.2.1:5555'), probe);
    expect(remote).toEqual({ local: false, detail: '192.0.2.1 is not an address of this host' });
  });

  it('a name is local when any of its addresses is', async () => {
    expect(await endpointLocality(endpoint('tcp://me.example:1'), probe)).toMatchObject({ local: true, detail: expect.stringContaining('10.1.2.3') });
    expect(await endpointLocality(endpoint('tcp://db.example:1'), probe)).toMatchObject({ local: false, detail: expect.stringContaining('192.0.2.1, 2001:db8::1') });
  });

  it('a name that does not resolve is unknown, not an observer', async () => {
    expect(await endpointLocality(endpoint('tcp://nowhere.example:1'), probe)).toMatchObject({ local: 'unknown', detail: expect.stringContaining('ENOTFOUND') });
    expect((await endpointLocality(endpoint('tcp://empty.example:1'), probe)).local).toBe('unknown');
  });

  it('an injected probe can make 127.0.0.2 not local', async () => {
    const only1: LocalityProbe = { isLocalAddress: (a) => a === '127.0.0.1', lookup: probe.lookup };
    expect((await endpointLocality(endpoint('tcp://127.0.0.2:1'), only1)).local).toBe(false);
  });
});

describe('addresses', () => {
  it('loopback is 127/8, ::1 and 127/8 mapped into IPv6', () => {
    expect(['127.0.0.1', '127.255.0.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '[::1]'].every(isLoopbackAddress)).toBe(true);
    expect(['128.0.0.1', '10.0.0.1', '::2', '::ffff:10.0.0.1', 'fe80::1'].some(isLoopbackAddress)).toBe(false);
  });

  it('one spelling per address', () => {
    expect(canonicalAddress('FD00:0000::0005')).toBe('fd00::5');
    expect(canonicalAddress('::FFFF:127.0.0.1')).toBe('::ffff:127.0.0.1');
    expect(canonicalAddress('[::1]')).toBe('::1');
    expect(canonicalAddress('10.1.2.3')).toBe('10.1.2.3');
  });

  it("the system probe: loopback and interfaces, not TEST-NET-1", () => {
    expect(systemLocalityProbe.isLocalAddress('127.0.0.2')).toBe(true);
    expect(systemLocalityProbe.isLocalAddress('::1')).toBe(true);
    // 192.0.2.0/24 is reserved for documentation: no host has it.
    expect(systemLocalityProbe.isLocalAddress('192.0.2.1')).toBe(false);
  });
});
