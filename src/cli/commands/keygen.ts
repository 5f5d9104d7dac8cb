/**
 * `failover-watch keygen`: writes the CURVE key files of a cluster (see
 * `transport/zmq/curve-key-files.ts` for the layout): the shared server pair, made once and kept, and
 * one client pair per `--name`. Directories get mode 0700, files 0600; nothing is overwritten
 * unless `--force`. Prints the files written, never a key.
 *
 * @module
 */
import { defineOptions, HELP_OPTION } from '../args.js';
import { defineCommand, EXIT, USAGE_EXIT } from '../command.js';
import { KEY_NAME, writeCurveKeys, type CurveKeysWritten } from '../../transport/zmq/curve-key-files.js';

export const keygenOptions = defineOptions({
  out: {
    type: 'string',
    alias: 'o',
    value: 'DIR',
    required: true,
    description: 'The key directory: created with mode 0700 if missing; holds server.key and clients/NAME.key, clients/NAME.pub.',
    example: '/etc/my-app/curve',
  },
  name: {
    type: 'string',
    alias: 'n',
    value: 'NAME',
    description: "A node's key name (letters, digits, '.', '_', '-'): writes its client pair. Without it, only the server pair.",
    example: 'node-a',
  },
  force: { type: 'boolean', description: "Replace the node's existing client pair (the server pair is never replaced)." },
  json: { type: 'boolean', description: 'Print one JSON object listing the files instead of lines.' },
  ...HELP_OPTION,
});

export const keygenCommand = defineCommand({
  name: 'keygen',
  summary: 'Write CURVE key files (server pair, one client pair per node) with mode 0600.',
  description:
    'Creates the key directory (mode 0700) with the cluster\'s server key pair if it has none, ' +
    'and with --name a client key pair for that node: clients/NAME.key (secret) and ' +
    'clients/NAME.pub (its public key, which the primary admits). Copy the directory to every ' +
    'node, minus the other nodes\' .key files, and pass it to readCurveKeys({ dir, name }). ' +
    'Files are 0600 and never replaced, except a client pair with --force. No key is printed. ' +
    'An existing directory must belong to this user or root and is tightened to 0700; a path that ' +
    'cannot be created (under /proc, say) fails at once.',
  options: keygenOptions,
  examples: [
    'failover-watch keygen --out ./curve',
    'failover-watch keygen --out ./curve --name node-a',
    'failover-watch keygen -o ./curve -n node-b --json',
  ],
  exitCodes: [
    { code: EXIT.ok, meaning: 'the key files exist (written now or kept)' },
    { code: EXIT.failure, meaning: "the node's pair exists (use --force), or a file could not be written" },
    USAGE_EXIT,
  ],

  async run({ values }, context) {
    const { out, name, force, json } = values;
    if (name !== undefined && !KEY_NAME.test(name)) {
      context.warn(`--name must be 1-64 letters, digits, '.', '_' or '-' (not starting with '.' or '-'); received ${JSON.stringify(name.slice(0, 80))}`);
      return EXIT.usage;
    }
    let result: CurveKeysWritten | { exists: string };
    try {
      result = await writeCurveKeys(out, name, force);
    } catch (error) {
      context.warn(`cannot write the keys: ${error instanceof Error ? error.message : String(error)}`);
      return EXIT.failure;
    }
    if ('exists' in result) {
      context.warn(`${result.exists} exists; pass --force to replace this node's key pair`);
      return EXIT.failure;
    }
    if (json) {
      context.out(`${JSON.stringify(result)}\n`);
    } else {
      for (const f of result.files) context.out(`${f.action === 'written' ? 'wrote' : 'kept '} ${f.path} (${f.kind})\n`);
    }
    return EXIT.ok;
  },
});
