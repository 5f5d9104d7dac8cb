/**
 * How the harness starts its child processes (watcher nodes, comparison nodes).
 *
 * By default a child runs its TypeScript source through tsx, so tests need no build step. When
 * `FW_CHILD_JS_DIR` names a directory holding the compiled harness (the benchmark builds one
 * with `tsconfig.bench.json`), children run that JavaScript on plain node instead: that is how a
 * deployed application runs, and it matters to what is measured. A SIGKILLed process's sockets
 * close only after the kernel has freed its memory, and tsx's loader makes every process about
 * 30 MB larger, which alone adds 2–3 ms to crash detection.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The environment variable naming a directory of compiled harness JavaScript. */
export const CHILD_JS_DIR_ENV = 'FW_CHILD_JS_DIR';

/**
 * The environment variable that sets the watcher children's `rehearsals` option (the bench's
 * `--rehearsals`); unset, they use the library's default.
 */
export const REHEARSALS_ENV = 'FW_CHILD_REHEARSALS';

/** True when children run compiled JavaScript (the bench's default). */
export function childrenCompiled(): boolean {
  return (process.env[CHILD_JS_DIR_ENV] ?? '') !== '';
}

/** Node arguments that run the harness module `tsPath` (an absolute path to a .ts file). */
export function childArgs(tsPath: string): string[] {
  if (childrenCompiled()) {
    const dir = process.env[CHILD_JS_DIR_ENV] as string;
    const js = join(dir, relative(ROOT, tsPath).replace(/\.ts$/, '.js'));
    if (!existsSync(js)) throw new Error(`${CHILD_JS_DIR_ENV}=${dir} has no ${relative(ROOT, js)}: build it with tsconfig.bench.json`);
    return [js];
  }
  return ['--import', 'tsx', tsPath];
}

/** How children run right now, for reports. */
export function childRuntime(): string {
  return childrenCompiled() ? 'node (compiled JavaScript)' : 'node --import tsx (TypeScript source)';
}
