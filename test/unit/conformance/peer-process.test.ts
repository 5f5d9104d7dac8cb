/**
 * The conformance kit's command template: split into words like a shell would for the simple
 * cases the contract allows, and filled in, never run through a shell.
 */
import { describe, expect, it } from 'vitest';
import { fillTemplate, splitTemplate, type PeerConfig } from '../../../conformance/peer-process.js';

const config: PeerConfig = {
  endpoint: 'tcp://127.0.0.1:5555',
  id: 'peer-1',
  priority: 3,
  workdir: '/tmp/w d',
  heartbeatInterval: 200,
  heartbeatTimeout: 1000,
};

describe('splitTemplate', () => {
  it('splits at whitespace runs', () => {
    expect(splitTemplate('  python3   peer.py\tnode\n--x ')).toEqual(['python3', 'peer.py', 'node', '--x']);
  });

  it('keeps quoted words whole, quotes removed', () => {
    expect(splitTemplate(`"/opt/my peer/bin" --name 'a b' x"y z"`)).toEqual(['/opt/my peer/bin', '--name', 'a b', 'xy z']);
    expect(splitTemplate(`run ""`)).toEqual(['run', '']);
  });

  it('rejects an unclosed quote and an empty template', () => {
    expect(() => splitTemplate(`run "oops`)).toThrow(/unclosed "/);
    expect(() => splitTemplate('   ')).toThrow(/empty/);
  });
});

describe('fillTemplate', () => {
  it('fills every placeholder inside words', () => {
    expect(
      fillTemplate('peer --endpoint={endpoint} {id} {priority} {workdir} {heartbeatInterval}/{heartbeatTimeout}', config),
    ).toEqual(['peer', '--endpoint=tcp://127.0.0.1:5555', 'peer-1', '3', '/tmp/w d', '200/1000']);
  });

  it('rejects an unknown placeholder by name', () => {
    expect(() => fillTemplate('peer {endPoint}', config)).toThrow(/unknown placeholder \{endPoint\}/);
  });
});
