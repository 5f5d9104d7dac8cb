/**
 * The CLI as the npm package ships it: `bin/failover-watch.js`, `package.json` and `dist/`
 * (compiled JavaScript, no `src/`, so the shim runs `dist/` and loads no TypeScript hooks). Built
 * under `.tmp/` in the checkout, so its imports resolve to the checkout's node_modules.
 *
 * `dist/` is each source file transpiled on its own (TypeScript's `transpileModule` with the
 * project's compiler options): the same JavaScript `npm run build` emits, without the type check
 * (the suite's type-check covers that), in a second or two rather than twenty.
 *
 * @module
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { ROOT } from './child-runtime.js';

/** A built copy: run `bin` with node; `cleanup()` removes it. */
export interface PublishedCli {
  readonly bin: string;
  cleanup(): void;
}

function sources(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...sources(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) found.push(path);
  }
  return found;
}

/** Builds the package layout under `.tmp/`. */
export async function buildPublishedCli(): Promise<PublishedCli> {
  const ts = (await import('typescript')).default;
  const parent = join(ROOT, '.tmp');
  mkdirSync(parent, { recursive: true });
  const root = mkdtempSync(join(parent, 'published-'));
  try {
    const config = ts.readConfigFile(join(ROOT, 'tsconfig.build.json'), (path) => ts.sys.readFile(path));
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const src = join(ROOT, 'src');
    for (const file of sources(src)) {
      const out = join(root, 'dist', relative(src, file)).replace(/\.ts$/, '.js');
      const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
        // ESNext: what NodeNext emits for this `"type": "module"` package (transpileModule cannot see package.json).
        compilerOptions: { ...options, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, sourceMap: false, declaration: false, declarationMap: false, inlineSourceMap: false },
        fileName: file,
      });
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, outputText);
    }
    mkdirSync(join(root, 'bin'));
    copyFileSync(join(ROOT, 'bin', 'failover-watch.js'), join(root, 'bin', 'failover-watch.js'));
    copyFileSync(join(ROOT, 'package.json'), join(root, 'package.json'));
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  return { bin: join(root, 'bin', 'failover-watch.js'), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
