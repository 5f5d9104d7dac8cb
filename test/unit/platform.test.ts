/**
 * The platform matrix (src/platform.ts), with macOS and Windows injected on Linux so their
 * branches run in every CI job: the constructor's ERR_FAILOVER_UNSUPPORTED for what the platform
 * cannot do, run's refusal on Windows, and the README's and PLATFORMS.md's table kept equal to
 * the data.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { UnsupportedError, isFailoverError } from '../../src/errors.js';
import { Watcher } from '../../src/index.js';
import { resolveOptions } from '../../src/options.js';
import {
  PLATFORM_MATRIX,
  assertSupported,
  platformColumn,
  platformSupport,
  renderPlatformTable,
  type PlatformFeature,
} from '../../src/platform.js';

/** What the constructor throws, or undefined. */
function thrown(make: () => unknown): unknown {
  try {
    make();
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('platform matrix', () => {
  it('maps other POSIX platforms to the macOS column', () => {
    expect(platformColumn('linux')).toBe('linux');
    expect(platformColumn('win32')).toBe('win32');
    expect(platformColumn('darwin')).toBe('darwin');
    expect(platformColumn('freebsd')).toBe('darwin');
  });

  it('supports everything on Linux', () => {
    for (const feature of Object.keys(PLATFORM_MATRIX) as PlatformFeature[]) {
      expect(platformSupport(feature, 'linux').supported, feature).toBe(true);
      expect(() => assertSupported(feature, 'linux')).not.toThrow();
    }
  });

  it('names a replacement for every unsupported cell', () => {
    for (const [feature, row] of Object.entries(PLATFORM_MATRIX)) {
      const missing = [row.linux, row.darwin, row.win32].some((c) => !c.supported);
      if (missing) expect(row.instead, feature).not.toBe('');
    }
  });

  it('keeps README and PLATFORMS.md tables equal to the data', () => {
    // Both documents quote the rendered table verbatim, so a changed cell fails here until the docs follow.
    const table = renderPlatformTable();
    expect(readFileSync('README.md', 'utf8')).toContain(table);
    expect(readFileSync('docs/PLATFORMS.md', 'utf8')).toContain(table);
  });
});

describe('watcher construction per platform', () => {
  const cases: Array<{ platform: NodeJS.Platform; endpoint: string; fencing?: boolean; option: string | undefined }> = [
    { platform: 'darwin', endpoint: 'tcp://127.0.0.1:5555', option: undefined },
    { platform: 'win32', endpoint: 'tcp://127.0.0.1:5555', option: undefined },
    { platform: 'darwin', endpoint: 'ipc://@fw-platform', option: 'endpoint' },
    { platform: 'win32', endpoint: 'ipc://@fw-platform', option: 'endpoint' },
    { platform: 'darwin', endpoint: 'ipc:///tmp/fw-platform.sock', option: 'endpoint' },
    { platform: 'win32', endpoint: 'ipc:///tmp/fw-platform.sock', option: 'endpoint' },
    { platform: 'darwin', endpoint: 'tcp://127.0.0.1:5555', fencing: true, option: 'fencing' },
    { platform: 'win32', endpoint: 'tcp://127.0.0.1:5555', fencing: true, option: 'fencing' },
    { platform: 'freebsd', endpoint: 'ipc://@fw-platform', option: 'endpoint' },
    { platform: 'linux', endpoint: 'ipc:///tmp/fw-platform.sock', fencing: true, option: undefined },
  ];
  for (const c of cases) {
    const what = `${c.endpoint}${c.fencing === true ? ' + fencing' : ''}`;
    it(`${c.platform}: ${what} ${c.option === undefined ? 'constructs' : 'throws UNSUPPORTED'}`, () => {
      const options = { endpoint: c.endpoint, ...(c.fencing === undefined ? {} : { fencing: c.fencing }) };
      const fromWatcher = thrown(() => new Watcher(options, { platform: c.platform }));
      const fromOptions = thrown(() => resolveOptions(options, c.platform));
      if (c.option === undefined) {
        expect(fromWatcher).toBeUndefined();
        expect(fromOptions).toBeUndefined();
        return;
      }
      for (const error of [fromWatcher, fromOptions]) {
        expect(isFailoverError(error, 'ERR_FAILOVER_UNSUPPORTED')).toBe(true);
        expect(error).toBeInstanceOf(UnsupportedError);
        const e = error as UnsupportedError;
        expect(e.option).toBe(c.option);
        expect(e.message).toContain(`\`${c.option}\``);
        expect(e.message).toMatch(c.platform === 'win32' ? /Windows/ : c.platform === 'darwin' ? /macOS/ : /freebsd/);
        expect(e.message).toContain(`use ${e.instead} instead`);
        expect(e.instead).not.toBe('');
      }
    });
  }

  it('checks an invalid option before the platform', () => {
    // A typo stays a typo on every platform: InvalidOptionError, not UNSUPPORTED.
    const error = thrown(() => resolveOptions({ endpoint: 'ipc://relative' }, 'win32'));
    expect(isFailoverError(error, 'ERR_FAILOVER_INVALID_OPTION')).toBe(true);
  });
});

describe('failover-watch commands per platform', () => {
  function fakeIo(platform: NodeJS.Platform) {
    const err: string[] = [];
    const io: CliIo = {
      stdout: () => undefined,
      stderr: (t) => err.push(t),
      isTTY: false,
      env: {},
      signal: new AbortController().signal,
      platform,
    };
    return { io, stderr: () => err.join('') };
  }

  it('refuses run on Windows with exit 1 and the reason', async () => {
    const { io, stderr } = fakeIo('win32');
    const code = await main(['run', '--endpoint', 'tcp://127.0.0.1:5555', '--', 'true'], io);
    expect(code).toBe(1);
    expect(stderr()).toContain('Unsupported `run` on Windows (win32)');
    expect(stderr()).toContain('ERR_FAILOVER_UNSUPPORTED');
    expect(stderr()).toContain('WSL');
  });

  it('passes run on macOS on to its usual checks', async () => {
    // No backend given: the usage error proves the platform check let it through.
    const { io, stderr } = fakeIo('darwin');
    const code = await main(['run', '--', 'true'], io);
    expect(code).toBe(2);
    expect(stderr()).toContain('give exactly one backend');
  });

  for (const command of ['status', 'watch']) {
    it(`rejects ${command} -e ipc://@NAME on macOS as bad usage`, async () => {
      const { io, stderr } = fakeIo('darwin');
      const code = await main([command, '--endpoint', 'ipc://@fw-platform-cli', '--timeout', '1'], io);
      expect(code).toBe(2);
      expect(stderr()).toContain('Unsupported `endpoint` on macOS (darwin)');
      expect(stderr()).toContain('use tcp://127.0.0.1:PORT instead');
    });
  }

  it('rejects status -e ipc:///PATH on Windows as bad usage', async () => {
    const { io, stderr } = fakeIo('win32');
    const code = await main(['status', '--endpoint', 'ipc:///tmp/fw-platform-cli.sock', '--timeout', '1'], io);
    expect(code).toBe(2);
    expect(stderr()).toContain('Unsupported `endpoint` on Windows (win32)');
  });
});
