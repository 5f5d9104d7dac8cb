// A bare node process holding a bound ZeroMQ XPUB and, optionally, EXTRA_MB of touched memory.
// Started by bench/teardown.ts; it reports `ready` over IPC and waits to be killed.
import * as zmq from 'zeromq';

const pub = new zmq.XPublisher({ linger: 0 });
const ballast = Array.from({ length: Number(process.env.EXTRA_MB ?? 0) }, () => Buffer.alloc(1 << 20, 1));
await pub.bind(process.argv[2]);
process.send?.({ ready: true, rss: process.memoryUsage().rss, ballast: ballast.length });
process.on('disconnect', () => process.exit(0));
