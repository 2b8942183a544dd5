import { once } from "node:events";
import { readFileSync } from "node:fs";
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

/** Whether a connect to 127.0.0.1:`port` is refused. */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
}

/**
 * A loopback port where connections are refused, for a test's "nothing listens" target. Taken
 * below the kernel's ephemeral range, from which every listen(0), unusedPort and connect's own
 * port comes, so no other test running meanwhile can start listening there or connect from it.
 */
export async function refusedPort(): Promise<number> {
  const ephemeralLow = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  const low = 10_000;
  const high = Number.isInteger(ephemeralLow) && ephemeralLow > low + 1000 ? ephemeralLow : 32_768;
  for (let i = 0; i < 50; i++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (await refuses(port)) return port;
  }
  throw new Error(`no port refusing connections found in ${low}-${high - 1}`);
}

/**
 * A loopback server that accepts and never says a word (a peer that hangs before its version
 * line). `accepted` holds its side of each connection; `close` destroys them and stops it.
 */
export async function silentServer(): Promise<{ port: number; accepted: net.Socket[]; close: () => Promise<void> }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.on("error", () => undefined);
    accepted.push(s);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    close: async () => {
      for (const s of accepted) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
