/**
 * `failover-watch/testing` is a public path: the exports map points at what tsconfig.build.json
 * emits from src/testing/index.ts (rootDir src, outDir dist), and the names tsc, tsx and vitest
 * resolve it by (tsconfig paths, vitest aliases) point at that same source.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as viaAlias from 'failover-watch/testing';
import * as viaSource from '../../../src/testing/index.js';

const json = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

it('exports failover-watch/testing from the built src/testing', () => {
  const pkg = json('package.json') as { exports: Record<string, { types: string; default: string }>; files: string[] };
  expect(pkg.exports['./testing']).toEqual({ types: './dist/testing/index.d.ts', default: './dist/testing/index.js' });
  const build = json('tsconfig.build.json') as { compilerOptions: { rootDir: string; outDir: string }; include: string[] };
  expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
  expect(build.include).toContain('src');
  expect(pkg.files).toContain('docs/TESTING.md');
  // The alias the suite (and so examples/testing-kit.test.ts) imports by is the source itself.
  expect(viaAlias.createTestCluster).toBe(viaSource.createTestCluster);
});
