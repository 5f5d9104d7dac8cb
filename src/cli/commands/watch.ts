/**
 * `failover-watch watch`: a live view of the cluster as seen on the wire, until SIGINT/SIGTERM
 * or `--timeout`. The view is the pure reducer in `view/cluster-view.ts`; this file only feeds
 * it and picks a renderer: in-place redraw on a terminal, one line per event otherwise, one JSON
 * object per event with `--json`.
 *
 * @module
 */
import { defineOptions, HELP_OPTION } from '../args.js';
import { defineCommand, EXIT, USAGE_EXIT } from '../command.js';
import { CURVE_OPTIONS, curveOrUsageError } from '../curve-options.js';
import { aborted } from '../io.js';
import { initialView, reduce } from '../view/cluster-view.js';
import { eventToJson, eventToText } from '../view/line-renderer.js';
import { renderFrame, TtyScreen } from '../view/tty-renderer.js';
import { listen, type WireListener } from '../wire-listener.js';

/** How often the terminal view is redrawn, so ages move while nothing arrives. */
export const REDRAW_INTERVAL = 250;

export const watchOptions = defineOptions({
  endpoint: {
    type: 'endpoint',
    alias: 'e',
    value: 'E',
    required: true,
    description: "The cluster's endpoint: tcp://HOST:PORT, ipc://@NAME or ipc:///PATH.",
    example: 'tcp://127.0.0.1:5555',
  },
  json: {
    type: 'boolean',
    description:
      'One JSON object per line and event: {"event":"heartbeat"|"promoted"|"shutdown"|"gap"|"endpointStolen"|"dropped", ' +
      '"instanceId","epoch","seq","pid","host","at",...} with "at" the local receive time in ms since the Unix epoch.',
  },
  timeout: {
    type: 'integer',
    alias: 't',
    value: 'MS',
    unit: 'milliseconds',
    min: 1,
    max: 2_147_483_647,
    description: 'Stop after this long (exit 0). Without it, runs until SIGINT/SIGTERM.',
    example: '60000',
  },
  ...CURVE_OPTIONS,
  ...HELP_OPTION,
});

export const watchCommand = defineCommand({
  name: 'watch',
  summary: 'Live view of the cluster as seen on the wire: primary, epoch, heartbeat age, gaps, events.',
  description:
    'Connects to the endpoint without taking part in the election and shows the primary (id, ' +
    'epoch, seq, pid@host, age of its last heartbeat), gaps (a heartbeat later than 1.5x the ' +
    "sender's announced heartbeatInterval, or a skipped seq), shutdown and promoted events, a primary " +
    'whose filesystem socket file was taken by another process (endpointStolen, from its heartbeats), and ' +
    'the count of invalid messages dropped. On a terminal the view is redrawn in place; ' +
    'otherwise one line is printed per event (one JSON object with --json).',
  options: watchOptions,
  examples: [
    'failover-watch watch --endpoint tcp://127.0.0.1:5555',
    'failover-watch watch -e ipc://@my-app --json | jq -c \'select(.event != "heartbeat")\'',
    'failover-watch watch -e ipc://@my-app --timeout 60000 > cluster.log',
  ],
  exitCodes: [
    { code: EXIT.ok, meaning: 'stopped by SIGINT/SIGTERM or at --timeout' },
    { code: EXIT.failure, meaning: 'the socket could not be opened' },
    USAGE_EXIT,
  ],

  async run({ values }, context) {
    const { endpoint, json, timeout } = values;
    const keys = await curveOrUsageError(values['curve-dir'], values['curve-name']);
    if ('error' in keys) {
      context.warn(`${keys.error}; see --help`);
      return EXIT.usage;
    }
    const { curve } = keys;
    const { io } = context;
    const style = context.style(json);
    const mode = json ? 'json' : io.isTTY ? 'tty' : 'lines';
    let view = initialView(endpoint.address, performance.now());

    const screen = mode === 'tty' ? new TtyScreen(io.stdout, io.columns) : undefined;
    const redraw = (final = false): void => screen?.draw(renderFrame(view, performance.now(), style, final));
    if (mode === 'lines') context.warn(`watching ${endpoint.address}; Ctrl-C to stop`);

    let listener: WireListener;
    try {
      listener = await listen(
        endpoint,
        (input) => {
          view = reduce(view, input, performance.now());
          if (screen !== undefined) {
            // Heartbeats show at the next tick; anything else at once.
            if (input.type === 'connection' || view.emitted.some((e) => e.event !== 'heartbeat')) redraw();
            return;
          }
          for (const event of view.emitted) {
            context.out(`${json ? eventToJson(event) : eventToText(event, style)}\n`);
          }
        },
        { probe: true, curve },
      );
    } catch (error) {
      context.warn(error instanceof Error ? error.message : String(error));
      return EXIT.failure;
    }

    redraw();
    const ticker = screen === undefined ? undefined : setInterval(() => redraw(), REDRAW_INTERVAL);
    const stop = aborted(io.signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((resolve) => {
      if (timeout !== undefined) timer = setTimeout(resolve, timeout);
    });
    await Promise.race([stop.promise, timedOut]);
    stop.dispose();
    clearTimeout(timer);
    clearInterval(ticker);
    await listener.close();
    redraw(true);
    return EXIT.ok;
  },
});
