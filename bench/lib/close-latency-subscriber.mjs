// A subscriber for bench/close-latency.ts: connects to argv[2], reports `ready` over IPC after
// its first message, and ends when its parent goes away.
import * as zmq from 'zeromq';

const sub = new zmq.Subscriber({ linger: 0 });
sub.subscribe('');
sub.connect(process.argv[2]);
process.on('disconnect', () => process.exit(0));
let told = false;
for await (const _ of sub) {
  if (!told) {
    told = true;
    process.send?.({ ready: true });
  }
}
