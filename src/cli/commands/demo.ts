/**
 * `failover-watch demo`: see it work. Argument handling only; the demo is `demo-runner.ts`.
 *
 * @module
 */
import { defineOptions, HELP_OPTION } from '../args.js';
import { defineCommand, EXIT, USAGE_EXIT } from '../command.js';
import { runDemo } from './demo-runner.js';

export const demoOptions = defineOptions({
  json: { type: 'boolean', description: 'Non-interactive: one JSON object per line (started, nodeStarted, takeover, summary).' },
  interval: {
    type: 'integer',
    value: 'MS',
    unit: 'milliseconds',
    min: 10,
    max: 5000,
    default: 200,
    description: 'Heartbeat interval of the demo nodes.',
  },
  ...HELP_OPTION,
});

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'See it work: a 3-node cluster, a crash and a graceful stop, with measured takeovers.',
  description:
    'Starts three nodes as separate processes on a private local endpoint, shows them live, ' +
    'crashes the primary with SIGKILL, restarts it, stops the next primary gracefully, and prints ' +
    'each takeover with its measured latency. Nothing to configure; ends by itself in about 10 s ' +
    'and leaves nothing running.',
  options: demoOptions,
  examples: ['failover-watch demo', 'failover-watch demo --json'],
  exitCodes: [
    { code: EXIT.ok, meaning: 'every takeover happened' },
    { code: EXIT.failure, meaning: 'a node did not start or a takeover did not happen in time' },
    USAGE_EXIT,
  ],
  async run({ values }, context) {
    const style = context.style(values.json);
    return runDemo(
      { json: values.json, heartbeatInterval: values.interval, heartbeatTimeout: values.interval * 5 },
      {
        out: (text) => context.io.stdout(text),
        err: (text) => context.io.stderr(text),
        isTTY: context.io.isTTY && !values.json,
        color: style.enabled,
      },
    );
  },
});
