/**
 * Every conformance scenario, in the order the kit runs them.
 *
 * @module
 */
import type { Scenario } from '../scenario.js';
import crashLibraryToPeer from './crash-library-to-peer.js';
import crashPeerToLibrary from './crash-peer-to-library.js';
import gracefulLibraryToPeer from './graceful-library-to-peer.js';
import gracefulPeerToLibrary from './graceful-peer-to-library.js';
import higherEpoch from './higher-epoch.js';
import malformedInput from './malformed-input.js';
import malformedUpstream from './malformed-upstream.js';
import pathLockAddress from './path-lock-address.js';
import pathLockCollision from './path-lock-collision.js';
import presence from './presence.js';
import probe from './probe.js';
import staleEpoch from './stale-epoch.js';
import stateFile from './state-file.js';
import welcomeFromPeer from './welcome-from-peer.js';
import welcomeToPeer from './welcome-to-peer.js';

export const SCENARIOS: readonly Scenario[] = [
  gracefulPeerToLibrary,
  crashPeerToLibrary,
  gracefulLibraryToPeer,
  crashLibraryToPeer,
  higherEpoch,
  staleEpoch,
  presence,
  probe,
  malformedInput,
  malformedUpstream,
  pathLockCollision,
  pathLockAddress,
  welcomeFromPeer,
  welcomeToPeer,
  stateFile,
];
