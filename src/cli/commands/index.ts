/**
 * The command registry: every `failover-watch <command>`, in the order the global help lists
 * them. To add one, write `commands/<name>.ts` exporting a `defineCommand({...})` (see
 * `../command.ts`) and append it here; `main` parses, documents and dispatches it from its table.
 *
 * @module
 */
import type { Command } from '../command.js';
import { demoCommand } from './demo.js';
import { keygenCommand } from './keygen.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { watchCommand } from './watch.js';

/** All commands, in help order. */
export const commands: readonly Command[] = [runCommand, statusCommand, watchCommand, demoCommand, keygenCommand];

/** The command named `name`, if there is one. */
export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.name === name);
}
