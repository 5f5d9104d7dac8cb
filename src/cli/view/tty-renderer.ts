/**
 * Renders the cluster view for a terminal: {@link renderFrame} turns (view, now) into lines (pure),
 * {@link TtyScreen} redraws them in place with ANSI cursor movement, so ages tick while nothing
 * else changes.
 *
 * @module
 */
import { truncateVisible, type Style } from '../style.js';
import { eventToText } from './line-renderer.js';
import { formatMetadata, type Metadata } from '../../protocol/metadata.js';
import { ageOf, isOverdue, primaryOf, type ClusterView } from './cluster-view.js';

/** The lines of one frame, without newlines; `final` for the frame left on screen at exit. */
export function renderFrame(view: ClusterView, now: number, style: Style, final = false): string[] {
  const lines: string[] = [];
  const connection =
    view.connection === 'connected'
      ? style.green('connected')
      : view.connection === 'connecting'
        ? style.yellow('connecting')
        : style.red('disconnected');
  lines.push(`${style.bold('failover-watch watch')}  ${view.endpoint}  ${connection}  ${style.dim(`watching for ${seconds(now - view.startedNow)}`)}`);

  const primary = primaryOf(view);
  if (view.lease !== undefined) {
    const l = view.lease;
    const left = l.ttlMs === null ? '' : `, lease ${Math.round(Math.max(0, l.ttlMs - (now - l.seenNow)))} ms left`;
    lines.push(
      `leader   ${style.bold(style.green(l.nodeId))}  revision ${l.revision}${l.priority === null ? '' : `  priority ${l.priority}`}`,
      `         since ${new Date(l.sinceAt).toISOString()}${left}`,
    );
    lines.push(...metadataLine(l.metadata));
  } else if (view.lastLeaseHolder !== undefined) {
    const l = view.lastLeaseHolder;
    lines.push(`leader   ${style.yellow('none')}: the lease of ${l.nodeId} (revision ${l.revision}) is free`);
  } else if (primary !== undefined) {
    const age = ageOf(primary, now);
    const late = isOverdue(primary, now);
    const ageText = `last heartbeat ${seconds(age)} ago`;
    const every = primary.heartbeatInterval === undefined ? 'interval not announced' : `every ${primary.heartbeatInterval} ms`;
    lines.push(
      `primary  ${style.bold(style.green(primary.instanceId))}  pid ${primary.pid}@${primary.host}  epoch ${primary.epoch}  seq ${primary.seq}`,
      `         ${late ? style.yellow(`${ageText} (late)`) : ageText}, ${every}`,
    );
    lines.push(...metadataLine(primary.metadata));
    if (primary.endpointStolen !== undefined) {
      lines.push(`         ${style.red(`ENDPOINT STOLEN (${primary.endpointStolen}): nodes connecting now do not reach this primary`)}`);
    }
    if (primary.members !== undefined) {
      const list = primary.members.map((m) => `${m.instanceId} (priority ${m.priority})`).join(', ');
      lines.push(`members  ${primary.members.length === 0 ? style.dim('none connected') : list}`);
    }
  } else if (view.lastShutdown !== undefined) {
    const s = view.lastShutdown;
    lines.push(`primary  ${style.yellow('none')}: ${s.instanceId} (epoch ${s.epoch}) shut down ${seconds(now - s.seenNow)} ago`);
  } else {
    lines.push(`primary  ${style.yellow('none heard yet')}`);
  }

  const c = view.counts;
  const dropped = view.dropped.total > 0 ? style.red(`${view.dropped.total} dropped`) : '0 dropped';
  const gaps = c.gaps > 0 ? style.red(`${c.gaps} gaps`) : '0 gaps';
  lines.push(`counts   ${c.heartbeats} heartbeats, ${gaps}, ${c.promoted} promoted, ${c.shutdowns} shutdowns, ${dropped}`);

  const notable = view.recent.filter((e) => e.event !== 'heartbeat');
  if (notable.length > 0) {
    lines.push(style.dim('recent'));
    for (const event of notable) lines.push(`  ${eventToText(event, style)}`);
  }
  lines.push(style.dim(final ? `stopped after ${seconds(now - view.startedNow)}` : 'Ctrl-C to stop'));
  return lines;
}

/** `metadata port=7001 zone=a`, or nothing when the primary announces none. */
function metadataLine(metadata: Metadata | undefined): string[] {
  return metadata === undefined || Object.keys(metadata).length === 0 ? [] : [`metadata ${formatMetadata(metadata)}`];
}

function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

/** Redraws a block of lines in place: moves up over the previous frame and overwrites it. */
export class TtyScreen {
  readonly #write: (text: string) => void;
  readonly #columns: () => number | undefined;
  #height = 0;

  constructor(write: (text: string) => void, columns: () => number | undefined = () => undefined) {
    this.#write = write;
    this.#columns = columns;
  }

  /** Replaces the previous frame with `lines`, in one write. */
  draw(lines: readonly string[]): void {
    const width = this.#columns();
    // Lines wider than the terminal would wrap and break the cursor arithmetic: cut them.
    const fitted = width === undefined || width < 2 ? lines : lines.map((l) => truncateVisible(l, width - 1));
    let out = this.#height > 0 ? `\r\u001b[${this.#height}A` : '';
    for (const line of fitted) out += `\u001b[2K${line}\n`;
    out += '\u001b[J';
    this.#height = fitted.length;
    this.#write(out);
  }
}
