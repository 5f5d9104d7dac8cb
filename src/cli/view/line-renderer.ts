/**
 * Renders cluster events one per line: plain text for logs and pipes, or one JSON object per
 * line (`--json`). Pure functions from an event to a line, without the trailing newline.
 *
 * @module
 */
import { createStyle, type Style } from '../style.js';
import type { ClusterEvent } from './cluster-view.js';
import { formatMetadata } from '../../protocol/metadata.js';

/** One JSON object: the event exactly as the view reports it. */
export function eventToJson(event: ClusterEvent): string {
  return JSON.stringify(event);
}

/** One plain line: `<ISO time> <event> <details>`. */
export function eventToText(event: ClusterEvent, style: Style = createStyle(false)): string {
  const time = style.dim(new Date(event.at).toISOString());
  switch (event.event) {
    case 'heartbeat':
    case 'promoted':
    case 'shutdown': {
      const name = event.event === 'heartbeat' ? event.event : event.event === 'promoted' ? style.green(event.event) : style.yellow(event.event);
      const every = event.event !== 'shutdown' && event.heartbeatInterval !== null ? ` every ${event.heartbeatInterval} ms` : '';
      return `${time} ${name} ${style.bold(event.instanceId)} epoch ${event.epoch} seq ${event.seq} pid ${event.pid}@${event.host}${every}`;
    }
    case 'gap':
      return event.kind === 'late'
        ? `${time} ${style.red('gap')} ${style.bold(event.instanceId)} silent ${Math.round(event.silentMs)} ms (heartbeat every ${event.heartbeatInterval} ms) before seq ${event.seq}`
        : `${time} ${style.red('gap')} ${style.bold(event.instanceId)} seq ${event.seq} after ${event.expectedSeq - 1} (${event.missed} missed)`;
    case 'endpointStolen':
      return `${time} ${style.red('endpoint stolen')} ${style.bold(event.instanceId)} epoch ${event.epoch} pid ${event.pid}@${event.host}: its socket file is ${event.found === 'gone' ? 'gone' : event.found === 'replaced' ? 'replaced by another file' : event.found}; nodes connecting now do not reach it`;
    case 'primaryChanged': {
      const was = event.previous === null ? '' : ` (was ${event.previous})`;
      const meta = Object.keys(event.metadata).length === 0 ? '' : `; metadata ${formatMetadata(event.metadata)}`;
      if (event.pid !== null) {
        return `${time} ${style.green('primaryChanged')} ${style.bold(event.instanceId)} epoch ${event.epoch} pid ${event.pid}@${event.host}${was}${meta}`;
      }
      const left = event.ttlMs === null ? '' : `, lease ${event.ttlMs} ms left`;
      return `${time} ${style.green('primaryChanged')} ${style.bold(event.instanceId)} revision ${event.epoch}${was}${left}${meta}`;
    }
    case 'primaryMetadataChanged': {
      const meta = Object.keys(event.metadata).length === 0 ? 'none' : formatMetadata(event.metadata);
      return `${time} ${style.green('primaryMetadataChanged')} ${style.bold(event.instanceId)} ${event.seq === null ? 'revision' : 'epoch'} ${event.epoch}: metadata ${meta}`;
    }
    case 'primaryLost':
      return `${time} ${style.yellow('primaryLost')} ${style.bold(event.instanceId)} revision ${event.epoch}: the lease is free`;
    case 'dropped':
      return `${time} ${style.red('dropped')} invalid message (${event.reason}: ${event.detail}); ${event.dropped} dropped so far`;
  }
}
