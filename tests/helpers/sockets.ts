import { once } from "node:events";
import * as net from "node:net";

/**
 * A connected pair of loopback TCP sockets (the test's stand-in for socketpair(2)). `a` is the
 * connecting side, `b` the accepted side; `b` starts paused so nothing is read before the test
 * wraps it.
 */
export async function tcpPair(): Promise<{ a: net.Socket; b: net.Socket; close: () => void }> {
  // Half-open allowed on both ends, as SSH channels need: EOF one way, data still the other.
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, "connection") as Promise<[net.Socket]>;
  const a = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  await once(a, "connect");
  const [b] = await accepted;
  server.close();
  return {
    a,
    b,
    close: () => {
      a.destroy();
      b.destroy();
    },
  };
}

/** A loopback port that nothing listens on (bound, then released). */
export async function unusedPort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
