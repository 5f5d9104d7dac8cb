/**
 * A TCP relay on a free loopback port that can cut the network without closing anything: while
 * cut, both sockets of every relayed connection stay open (the kernels still acknowledge TCP and
 * keepalive probes) but no byte crosses either way, as in a partition where neither side sees a
 * reset. `heal()` forwards again what was held back; `failover(port)` closes every relayed
 * connection and sends new ones to another server (a server failover behind one address);
 * `close()` destroys every socket.
 *
 * @module
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class PartitionProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut = false;
  #target = 0;

  private constructor(server: Server, port: number, target: number) {
    this.#server = server;
    this.port = port;
    this.#target = target;
  }

  /** Relays 127.0.0.1:<free port> to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<PartitionProxy> {
    let proxy: PartitionProxy | undefined;
    const server = createServer((inbound) => proxy!.#relay(inbound));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    proxy = new PartitionProxy(server, typeof address === 'object' && address !== null ? address.port : 0, targetPort);
    return proxy;
  }

  get cut(): boolean {
    return this.#cut;
  }

  #relay(inbound: Socket): void {
    const outbound = connect(this.#target, '127.0.0.1');
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      this.#sockets.add(from);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.#sockets.delete(from);
        to.destroy();
      });
      from.on('data', (chunk: Buffer) => void to.write(chunk));
    }
    if (this.#cut) {
      inbound.pause();
      outbound.pause();
    }
  }

  /** Stops forwarding both ways; every socket stays open. */
  partition(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.pause();
  }

  /** Forwards again, held-back bytes first. */
  heal(): void {
    this.#cut = false;
    for (const s of this.#sockets) s.resume();
  }

  /** Closes every relayed connection and relays new ones to 127.0.0.1:`targetPort`. */
  failover(targetPort: number): void {
    this.#target = targetPort;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
