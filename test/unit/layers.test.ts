import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The import check of docs/ARCHITECTURE.md: every module belongs to a layer, and no import
// (type-only imports included) runs from a lower layer to a higher one. Lowest first:
//   base       errors.ts, protocol/, election/contract.ts (what everything speaks)
//   core       core/ (pure state machines: no I/O, no timers, no packages)
//   runtime    runtime/ (clock, files, processes, notifications)
//   transport  transport/ (ZeroMQ sockets, Redis stores, in-memory fakes)
//   backend    everything else in src/: the elections, their options, the entry points
//   cli        cli/ (the command line, on top of everything)
const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

const LAYERS = ['base', 'core', 'runtime', 'transport', 'backend', 'cli'] as const;
type Layer = (typeof LAYERS)[number];

function layerOf(file: string): Layer {
  const rel = relative(src, file).split('\\').join('/');
  if (rel === 'errors.ts' || rel.startsWith('protocol/') || rel === 'election/contract.ts') return 'base';
  if (rel.startsWith('core/')) return 'core';
  if (rel.startsWith('runtime/')) return 'runtime';
  if (rel.startsWith('transport/')) return 'transport';
  if (rel.startsWith('cli/')) return 'cli';
  return 'backend';
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

// Static imports and re-exports (type-only too), and dynamic import() of relative paths.
const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

interface Edge {
  readonly from: string;
  readonly spec: string;
  readonly target: string | undefined;
}

function edges(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const out: Edge[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = (m[1] ?? m[2])!;
    const target = spec.startsWith('.') ? resolve(dirname(file), spec).replace(/\.js$/, '.ts') : undefined;
    out.push({ from: file, spec, target });
  }
  return out;
}

const files = sources(src);
const all = files.flatMap(edges);

describe('layers', () => {
  it('finds the modules and their imports', () => {
    // Guards the check itself: a regex that matched nothing would pass everything below.
    expect(files.length).toBeGreaterThan(40);
    expect(all.filter((e) => e.target !== undefined).length).toBeGreaterThan(150);
    expect(layerOf(join(src, 'core/heartbeat-machine.ts'))).toBe('core');
    expect(layerOf(join(src, 'cli/main.ts'))).toBe('cli');
  });

  it('no import runs up the layers', () => {
    const up = all
      .filter((e) => e.target !== undefined)
      .filter((e) => LAYERS.indexOf(layerOf(e.target!)) > LAYERS.indexOf(layerOf(e.from)))
      .map((e) => `${relative(src, e.from)} (${layerOf(e.from)}) imports ${e.spec} (${layerOf(e.target!)})`);
    expect(up).toEqual([]);
  });

  it('base and core import no package and no node module', () => {
    // The state machines are pure; the wire codec alone may use msgpackr, and the contract the
    // event emitter's types.
    const allowed: Record<string, readonly string[]> = {
      'protocol/codec.ts': ['msgpackr/pack'],
      'election/contract.ts': ['eventemitter3'],
    };
    const impure = all
      .filter((e) => e.target === undefined && ['base', 'core'].includes(layerOf(e.from)))
      .filter((e) => !(allowed[relative(src, e.from)] ?? []).includes(e.spec))
      .map((e) => `${relative(src, e.from)} imports ${e.spec}`);
    expect(impure).toEqual([]);
  });

  it('the check sees an upward import', () => {
    // The rule above, on a made-up edge: a core module importing a runtime one.
    const from = join(src, 'core/x.ts');
    const target = join(src, 'runtime/clock.ts');
    expect(LAYERS.indexOf(layerOf(target)) > LAYERS.indexOf(layerOf(from))).toBe(true);
  });
});
