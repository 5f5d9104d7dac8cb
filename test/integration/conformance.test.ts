/**
 * The conformance kit run with the library playing both sides, on tcp: the reference peer
 * (conformance/library-peer.ts) as the peer under test, library nodes beside it. Each test runs
 * one scenario through the kit's runner, in this process.
 *
 * The set keeps this file near 40 s on a 2-core host (every scenario starts two to four node
 * processes through tsx): the graceful takeover peer -> library, the crash takeover
 * library -> peer (higher-epoch also takes over from a crashed peer primary), epochs, presence,
 * probe and garbage; graceful-library-to-peer and crash-peer-to-library are left to
 * `npm run conformance`. conformance-ipc-path.test.ts runs the path-lock and state-file
 * scenarios. welcome-from-peer and welcome-to-peer check the welcome heartbeat (issue 16 item 1).
 */
import { describe } from 'vitest';
import { libraryPeerCommand } from '../../conformance/library-peer-command.js';
import { passes } from './conformance-kit.js';

const peer = (): string => libraryPeerCommand();

describe('conformance kit, library on both sides, tcp', () => {
  passes(peer, 'graceful-peer-to-library', 'tcp');
  passes(peer, 'crash-library-to-peer', 'tcp');
  passes(peer, 'higher-epoch', 'tcp');
  passes(peer, 'stale-epoch', 'tcp');
  passes(peer, 'presence', 'tcp');
  passes(peer, 'probe', 'tcp');
  passes(peer, 'malformed-input', 'tcp');
  passes(peer, 'welcome-from-peer', 'tcp');
  passes(peer, 'welcome-to-peer', 'tcp');
});
