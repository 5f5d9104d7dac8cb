/**
 * What works on which operating system: the platform matrix as data, and the one check that
 * turns "not here" into a clear {@link UnsupportedError} when a watcher or a CLI command is
 * constructed, before anything is bound, spawned or written.
 *
 * The platform is a parameter everywhere (default `process.platform`), so tests exercise the
 * macOS and Windows branches on Linux and they cannot rot unseen. `docs/PLATFORMS.md` gives the
 * reasons behind each cell; the README's table is {@link renderPlatformTable}'s output (a test
 * keeps both in step with this data).
 *
 * Columns: `linux`; `darwin` (macOS, and the column used for any other POSIX platform Node runs
 * on: FreeBSD, OpenBSD, illumos, AIX, which are untested); `win32` (Windows).
 *
 * @module
 */
import { UnsupportedError } from './errors.js';

/** A column of the matrix. Node's other POSIX platforms use the `darwin` column. */
export type PlatformColumn = 'linux' | 'darwin' | 'win32';

/** A row of the matrix: one endpoint kind, option or command. */
export type PlatformFeature =
  | 'endpoint-tcp'
  | 'endpoint-ipc-abstract'
  | 'endpoint-ipc-path'
  | 'fencing'
  | 'state-file'
  | 'two-user-checks'
  | 'redis'
  | 'cli-run'
  | 'cli-status-watch';

/** One cell: whether it works, and in a few words how (or why not). */
export interface PlatformCell {
  readonly supported: boolean;
  readonly note: string;
}

/** One row: what it is, where it is set (for the error), its cells and what to use instead. */
export interface PlatformRow {
  /** As the README's table names it. */
  readonly label: string;
  /** The option or command the error names. */
  readonly option: string;
  readonly linux: PlatformCell;
  readonly darwin: PlatformCell;
  readonly win32: PlatformCell;
  /** What to use where the row is not supported. */
  readonly instead: string;
}

const yes = (note: string): PlatformCell => Object.freeze({ supported: true, note });
const no = (note: string): PlatformCell => Object.freeze({ supported: false, note });

/** The matrix. Order is the README table's order. */
export const PLATFORM_MATRIX: Readonly<Record<PlatformFeature, PlatformRow>> = Object.freeze({
  'endpoint-tcp': {
    label: '`tcp://127.0.0.1:PORT` endpoint',
    option: 'endpoint',
    linux: yes('yes'),
    darwin: yes('yes'),
    win32: yes('yes'),
    instead: '',
  },
  'endpoint-ipc-abstract': {
    label: '`ipc://@NAME` endpoint (abstract socket)',
    option: 'endpoint',
    linux: yes('yes'),
    darwin: no('no: abstract sockets are Linux only'),
    win32: no('no: abstract sockets are Linux only'),
    instead: 'tcp://127.0.0.1:PORT',
  },
  'endpoint-ipc-path': {
    label: '`ipc:///PATH` endpoint (socket file)',
    option: 'endpoint',
    linux: yes('yes (lock: an abstract socket)'),
    darwin: no('no: no crash-safe lock yet (docs/PLATFORMS.md)'),
    win32: no('no: libzmq ipc needs unix sockets (docs/PLATFORMS.md)'),
    instead: 'tcp://127.0.0.1:PORT',
  },
  fencing: {
    label: '`fencing` (kill a hung primary)',
    option: 'fencing',
    linux: yes('yes (`/proc` start time)'),
    darwin: no('no: no exact start time without `/proc`'),
    win32: no('no: no start time, no SIGKILL'),
    instead: 'fencing: false (a hung primary is waited for; heartbeatTimeout bounds the wait)',
  },
  'state-file': {
    label: 'State file (`workdir`, epochs)',
    option: 'workdir',
    linux: yes('yes'),
    darwin: yes('yes'),
    win32: yes('yes'),
    instead: '',
  },
  'two-user-checks': {
    label: 'Owner and mode checks (SECURITY.md)',
    option: 'workdir',
    linux: yes('yes'),
    darwin: yes('yes'),
    win32: yes('skipped: no POSIX owner; the default workdir is under the per-user %TEMP%'),
    instead: '',
  },
  redis: {
    label: 'Redis backend (`failover-watch/redis`)',
    option: 'redis',
    linux: yes('yes'),
    darwin: yes('yes'),
    win32: yes('yes'),
    instead: '',
  },
  'cli-run': {
    label: '`failover-watch run`',
    option: 'run',
    linux: yes('yes (process group, guardian, setpriv)'),
    darwin: yes('yes (process group, guardian; no parent-death signal)'),
    win32: no('no: needs POSIX process groups and signals'),
    instead: 'the library in your own process (onPromote / onDemote), or run under WSL',
  },
  'cli-status-watch': {
    label: '`failover-watch status`, `watch`, `keygen`',
    option: 'status',
    linux: yes('yes'),
    darwin: yes('yes'),
    win32: yes('yes'),
    instead: '',
  },
});

/** The column for a Node platform name: `linux`, `win32`, else `darwin` (POSIX without Linux's extras). */
export function platformColumn(platform: NodeJS.Platform | string): PlatformColumn {
  if (platform === 'linux' || platform === 'win32') return platform;
  return 'darwin';
}

/** A readable name for error messages. */
export function platformName(platform: NodeJS.Platform | string): string {
  if (platform === 'darwin') return 'macOS (darwin)';
  if (platform === 'win32') return 'Windows (win32)';
  if (platform === 'linux') return 'Linux';
  return `${platform} (treated as macOS: POSIX without Linux's /proc and abstract sockets)`;
}

/** The cell of `feature` on `platform`. */
export function platformSupport(feature: PlatformFeature, platform: NodeJS.Platform | string = process.platform): PlatformCell {
  return PLATFORM_MATRIX[feature][platformColumn(platform)];
}

/**
 * Throws {@link UnsupportedError} when `feature` does not work on `platform`, naming the option
 * (or command), the platform, why, and what to use instead.
 */
export function assertSupported(feature: PlatformFeature, platform: NodeJS.Platform | string = process.platform): void {
  const row = PLATFORM_MATRIX[feature];
  const cell = row[platformColumn(platform)];
  if (cell.supported) return;
  throw new UnsupportedError(row.option, platformName(platform), `${row.label}: ${cell.note}`, row.instead);
}

/** The row of an endpoint kind (`Endpoint['kind']` of transport/zmq/endpoint.ts). */
export function endpointFeature(kind: 'tcp' | 'ipc-abstract' | 'ipc-path'): PlatformFeature {
  return kind === 'tcp' ? 'endpoint-tcp' : kind === 'ipc-abstract' ? 'endpoint-ipc-abstract' : 'endpoint-ipc-path';
}

/** The matrix as a Markdown table (the README's and docs/PLATFORMS.md's). */
export function renderPlatformTable(): string {
  const cell = (c: PlatformCell): string => (c.supported ? c.note : `**${c.note}**`);
  const lines = ['| | Linux | macOS | Windows |', '|---|---|---|---|'];
  for (const row of Object.values(PLATFORM_MATRIX)) {
    lines.push(`| ${row.label} | ${cell(row.linux)} | ${cell(row.darwin)} | ${cell(row.win32)} |`);
  }
  return `${lines.join('\n')}\n`;
}
