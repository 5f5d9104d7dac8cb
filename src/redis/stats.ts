/**
 * go-failover's HTML summary of a Redis election (`formatStats`) and the shapes it renders
 * (`NodeInfo`, `ClusterStats`), apart from the election so the library's entry points stay free
 * of presentation. `failover-watch/redis` re-exports them.
 *
 * @module
 */
import type { LeadershipEvent, LiveNode } from '../transport/redis/lease-store.js';

/** What `nodeInfo()` returns (go-failover's NodeInfo). */
export interface NodeInfo {
  readonly nodeId: string;
  readonly priority: number;
  readonly project: string;
  readonly isLeader: boolean;
  readonly revision: number;
}

/** Everything `formatStats` renders. */
export interface ClusterStats {
  readonly node: NodeInfo;
  readonly liveNodes: readonly LiveNode[];
  /** Newest first. */
  readonly events: readonly LeadershipEvent[];
}

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function ago(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

/**
 * A short human-readable HTML summary (Telegram's subset: `<b>`, `<i>`, `<code>`), every value
 * escaped.
 *
 * @example
 * await bot.sendMessage(chatId, formatStats(await cluster.stats()), { parse_mode: 'HTML' });
 */
export function formatStats(stats: ClusterStats, now: number = Date.now()): string {
  const n = stats.node;
  const lines: string[] = [];
  lines.push(
    `<b>${escapeHtml(n.project)}</b>: node <code>${escapeHtml(n.nodeId)}</code> (priority ${n.priority}) is ${n.isLeader ? '<b>leader</b>' : 'standby'}, revision ${n.revision}`,
  );
  const leader = stats.liveNodes.find((l) => l.isLeader);
  lines.push(`Leader: ${leader === undefined ? '<i>none</i>' : `<code>${escapeHtml(leader.nodeId)}</code>`}`);
  lines.push(`Live nodes (${stats.liveNodes.length}):`);
  for (const l of stats.liveNodes) {
    lines.push(`• <code>${escapeHtml(l.nodeId)}</code> p${l.priority}${l.isLeader ? ' ★' : ''}, seen ${ago(now - l.lastSeen)} ago`);
  }
  if (stats.events.length > 0) {
    lines.push('Recent events:');
    for (const e of stats.events) {
      const when = Number.isFinite(e.timestamp) ? new Date(e.timestamp).toISOString().slice(11, 19) : '?';
      lines.push(`• ${when} <code>${escapeHtml(e.nodeId)}</code> ${escapeHtml(e.action)} (rev ${e.revision}${e.reason ? `, ${escapeHtml(e.reason)}` : ''})`);
    }
  }
  return lines.join('\n');
}
