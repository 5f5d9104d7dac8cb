/**
 * The conformance case "sends before a release arrive" in a loop, outside the suite: one holder
 * and one subscriber on tcp, 50 sends and a release with a farewell per round; prints the
 * rounds that lost messages. `npx tsx bench/release-loss.ts [rounds]` (docs/TRANSPORT.md).
 */
import { createZmqTransport } from '../src/transport.js';
import { freePort } from '../harness/cluster.js';
const TOPIC = 'instance.test';
const frame = (l: string): [Buffer, Buffer] => [Buffer.from(TOPIC), Buffer.from(l)];
let fails = 0;
const N = Number(process.argv[2] ?? 100);
for (let round = 0; round < N; round++) {
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const mk = async () => {
    const t = createZmqTransport(endpoint);
    const heard: string[] = [];
    await t.open({ onMessage: (f: Buffer[]) => heard.push(f[1]!.toString()), onEvent: (e: { type: string }) => heard.push(`<${e.type}>`) } as never);
    return { t, heard };
  };
  const a = await mk(); const b = await mk();
  await a.t.bind();
  for (let n = 0; n < 2000 && !b.heard.some((h) => h.startsWith('marker')); n++) { await a.t.publish(frame(`marker-${n}`)); await new Promise((r) => setTimeout(r, 5)); }
  const start = b.heard.length;
  for (let i = 0; i < 50; i++) void a.t.publish(frame(`last-${i}`));
  await a.t.release(frame('farewell'));
  for (let n = 0; n < 400 && !b.heard.slice(start).includes('<disconnected>'); n++) await new Promise((r) => setTimeout(r, 5));
  const got = b.heard.slice(start).filter((h) => h.startsWith('last') || h === 'farewell');
  if (got.length !== 51) { fails++; console.log('round', round, 'got', got.length, 'last', got.at(-1), b.heard.slice(start).filter(h=>h.startsWith('<')).join(',')); }
  await a.t.close(); await b.t.close();
}
console.log('fails', fails, 'of', N);
