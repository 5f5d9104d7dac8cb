/**
 * `npm run conformance`: runs a peer implementation in mixed clusters with library nodes through
 * the conformance scenarios and reports which hold (docs/CONFORMANCE.md).
 *
 *   npm run conformance -- --peer "python3 mypeer.py --endpoint {endpoint} --id {id} ..."
 *   npm run conformance -- --peer "..." --only graceful-peer-to-library,probe --transport ipc-path
 *
 * Exit code: 0 when every selected scenario passed (in a run of all of them, those that do not
 * apply to the transport are skipped), 1 when one failed or a scenario named in --only could not
 * run on the transport, 2 for bad arguments.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { fillTemplate } from './peer-process.js';
import { formatReport, runConformance, selectScenarios } from './runner.js';
import { TRANSPORTS, type Transport } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

const HELP = `Usage: npm run conformance -- --peer "<command template>" [options]

  --peer TEMPLATE     how to start the peer under test; placeholders {endpoint} {id} {priority}
                      {workdir} {heartbeatInterval} {heartbeatTimeout} (docs/CONFORMANCE.md)
  --only A,B          run only these scenarios (repeatable):
                      ${SCENARIOS.map((s) => s.name).join(', ')}
  --transport T       ${TRANSPORTS.join(' | ')} (default tcp)
  --json              print the report as JSON instead of a table
  -h, --help          this text
`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        peer: { type: 'string' },
        only: { type: 'string', multiple: true },
        transport: { type: 'string', default: 'tcp' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.peer === undefined || values.peer.trim() === '') {
    process.stderr.write(`--peer is required\n\n${HELP}`);
    return 2;
  }
  if (!(TRANSPORTS as readonly string[]).includes(values.transport)) {
    process.stderr.write(`--transport must be one of ${TRANSPORTS.join(', ')}, got ${values.transport}\n`);
    return 2;
  }
  try {
    fillTemplate(values.peer, { endpoint: 'tcp://127.0.0.1:1', id: 'x', priority: 1, workdir: '/', heartbeatInterval: 1, heartbeatTimeout: 2 });
  } catch (error) {
    process.stderr.write(`--peer: ${(error as Error).message}\n`);
    return 2;
  }
  const only = (values.only ?? []).flatMap((o) => o.split(',')).map((o) => o.trim()).filter((o) => o !== '');
  try {
    selectScenarios(only);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  const report = await runConformance({
    peer: values.peer,
    transport: values.transport as Transport,
    only,
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  return report.ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
