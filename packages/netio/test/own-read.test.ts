// StreamFd over sockets whose reads land in our own buffer (ownReadSocket / ownReadAccepted):
// the same contract as over a Node-made socket, with SOCKET_READ_BOUND bounding unread input.
import { once } from "node:events";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { READ_RING_SIZE, SMALL_READ_RING_SIZE, SOCKET_READ_BOUND, SOCKET_READ_CHUNK, StreamFd, ownReadAccepted, ownReadSocket } from "../src/fd.js";
import { ownPair, until as untilWithin } from "./own-pair.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

/** own-pair's `until`, keeping this file's 10 s default bound. */
const until = (cond: () => boolean, ms = 10000): Promise<void> => untilWithin(cond, ms);


/**
 * The process's 'uncaughtException' listeners are `listeners` until the test's cleanup (vitest
 * has one of its own): reads land in a ring only while an uncaught exception ends the process.
 */
function uncaughtListeners(...listeners: Array<(e: unknown) => void>): void {
  const saved = process.rawListeners("uncaughtException") as Array<(e: unknown) => void>;
  process.removeAllListeners("uncaughtException");
  for (const l of listeners) process.on("uncaughtException", l);
  cleanups.push(() => {
    process.removeAllListeners("uncaughtException");
    for (const l of saved) process.on("uncaughtException", l);
  });
}

/** `n` bytes that show a lost, repeated or reordered byte (position-dependent). */
function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = (x >>> 16) ^ i;
  }
  return b;
}

/** Everything `fd` yields until EOF, read in pieces of `piece` bytes through readInto. */
async function drainToEof(fd: StreamFd, piece: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let eof = false;
  await until(() => {
    while (!eof && fd.readReady()) {
      const dest = Buffer.alloc(piece);
      const n = fd.readInto(dest, 0, piece);
      if (n === null) break;
      if (n === 0) eof = true;
      else parts.push(dest.subarray(0, n));
    }
    return eof;
  }, 20000);
  return Buffer.concat(parts);
}

describe("StreamFd over a socket read into our own buffer", () => {
  it("reports readable only when data waits, reads at most max, and readInto copies in place", async () => {
    const p = await ownPair();
    cleanups.push(p.close);
    const { fd } = p;
    expect(fd.readReady()).toBe(false);
    expect(fd.read(10)).toBeNull();
    expect(fd.readInto(Buffer.alloc(4), 0, 4)).toBeNull();
    p.a.write(Buffer.from("hello world"));
    await until(() => fd.readReady());
    expect(fd.read(5)!.toString()).toBe("hello");
    expect(fd.readReady()).toBe(true);
    const dest = Buffer.alloc(10, 0x2e);
    expect(fd.readInto(dest, 2, 100)).toBe(6);
    expect(dest.toString()).toBe(".. world..");
    expect(fd.read(100)).toBeNull();
    expect(fd.readReady()).toBe(false);
  });

  it("delivers every byte before an EOF that arrived with data still unread, then EOF for good", async () => {
    const p = await ownPair();
    cleanups.push(p.close);
    const { fd } = p;
    const data = pattern(300_000);
    p.a.end(data);
    // Read slowly (small pieces), so the EOF comes while our buffer still holds data.
    await until(() => fd.readReady());
    const got = await drainToEof(fd, 1000);
    expect(got.equals(data)).toBe(true);
    expect(fd.readReady()).toBe(true);
    expect(fd.read(10)).toEqual(Buffer.alloc(0));
    expect(fd.readInto(Buffer.alloc(1), 0, 1)).toBe(0);
  });

  it("reads no more than its bound from a peer we do not read, then loses nothing once read", async () => {
    const p = await ownPair();
    cleanups.push(p.close);
    const { fd } = p;
    const data = pattern(4 * 1024 * 1024, 7);
    p.a.end(data);
    // The peer cannot send it all: our side stops reading the kernel, TCP pushes back.
    await until(() => p.b.bytesRead > SOCKET_READ_BOUND);
    await new Promise((r) => setTimeout(r, 100));
    expect(p.b.bytesRead).toBeLessThanOrEqual(SOCKET_READ_BOUND + SOCKET_READ_CHUNK);
    const got = await drainToEof(fd, 40_000);
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
  });

  it("setReadAhead: 0 leaves the peer's data in the kernel, a small bound holds once set, and nothing is lost", async () => {
    const p = await ownPair();
    cleanups.push(p.close);
    const { fd } = p;
    fd.setReadAhead(0);
    const data = pattern(2 * 1024 * 1024, 11);
    p.a.end(data);
    const parts: Buffer[] = [];
    const readAll = (): void => {
      for (let b = fd.read(SOCKET_READ_CHUNK); b !== null && b.length > 0; b = fd.read(SOCKET_READ_CHUNK)) parts.push(b);
    };
    const waiting = (): number => p.b.bytesRead - parts.reduce((n, b) => n + b.length, 0);
    await new Promise((r) => setTimeout(r, 200));
    // At most the read that was under way when reading stopped.
    expect(p.b.bytesRead).toBeLessThanOrEqual(SOCKET_READ_CHUNK);
    fd.setReadAhead(10_000);
    await new Promise((r) => setTimeout(r, 100));
    // A read's buffer is handed to Node before it is needed: one made for the old bound may land.
    expect(waiting()).toBeLessThanOrEqual(SOCKET_READ_CHUNK);
    for (let i = 0; i < 3; i++) {
      readAll();
      await new Promise((r) => setTimeout(r, 100));
      expect(waiting()).toBeGreaterThan(0);
      expect(waiting()).toBeLessThanOrEqual(10_000);
    }
    fd.setReadAhead(SOCKET_READ_BOUND);
    readAll();
    const rest = await drainToEof(fd, 40_000);
    expect(Buffer.concat([...parts, rest]).equals(data)).toBe(true);
  });

  it("short reads take a small ring, which grows without losing or reordering a byte when a read does not fit", async () => {
    const p = await ownPair();
    cleanups.push(p.close);
    const { fd } = p;
    const ring = (fd as unknown as { ring: { ring: Buffer | null; len: number } }).ring;
    const data = pattern(400_000, 13);
    const got: Buffer[] = [];
    // Short reads (a peer that is not streaming), some of them read: what waits comes to start
    // 45 000 bytes into the small ring, and the next 25 000 bytes wrap around its end.
    let sent = 0;
    const send = async (n: number, read: number): Promise<void> => {
      p.a.write(data.subarray(sent, sent + n));
      sent += n;
      await until(() => ring.len + got.reduce((k, b) => k + b.length, 0) === sent);
      expect(ring.ring!.length).toBe(SMALL_READ_RING_SIZE);
      if (read > 0) got.push(fd.read(read)!);
    };
    await send(20_000, 15_000);
    await send(30_000, 30_000);
    await send(25_000, 0);
    expect(ring.len).toBe(30_000);
    // More than it has room for, unread: it grows to a full ring, up to the bound.
    p.a.end(data.subarray(sent));
    await until(() => ring.len > SMALL_READ_RING_SIZE);
    expect(ring.ring!.length).toBe(READ_RING_SIZE);
    got.push(await drainToEof(fd, 30_000));
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });

  it("under a bound no larger than a small ring, a streaming peer's reads never need more", async () => {
    const p = await ownPair();
    cleanups.push(p.close);
    const { fd } = p;
    const ring = (fd as unknown as { ring: { ring: Buffer | null; len: number } }).ring;
    fd.setReadAhead(40_000);
    const data = pattern(3 * 1024 * 1024, 17);
    p.a.end(data);
    const parts: Buffer[] = [];
    let eof = false;
    await until(() => {
      if (ring.ring !== null) expect(ring.ring.length).toBe(SMALL_READ_RING_SIZE);
      for (let b = fd.read(SOCKET_READ_CHUNK); b !== null; b = fd.read(SOCKET_READ_CHUNK)) {
        if (b.length === 0) {
          eof = true;
          break;
        }
        parts.push(b);
      }
      return eof;
    }, 20000);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it("carries 1 MB there and back intact (an echo through the fd)", async () => {
    const p = await ownPair();
    cleanups.push(p.close);
    const { fd } = p;
    const data = pattern(1024 * 1024, 3);
    const back: Buffer[] = [];
    let backLen = 0;
    p.a.on("data", (d: Buffer) => {
      back.push(d);
      backLen += d.length;
    });
    p.a.write(data);
    let pending: Buffer | null = null;
    await until(() => {
      for (let i = 0; i < 64; i++) {
        if (pending === null && fd.readReady()) pending = fd.read(32 * 1024);
        if (pending === null || !fd.writeReady()) break;
        if (fd.write(pending) === 0) break;
        pending = null;
      }
      return backLen === data.length;
    }, 20000);
    expect(Buffer.concat(back).equals(data)).toBe(true);
  });

  it("a streaming peer's reads land in the socket's own ring, in place; once it ends, the ring is given back", async () => {
    uncaughtListeners();
    const server = net.createServer({ allowHalfOpen: true });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const data = pattern(8 * 1024 * 1024, 11);
    server.once("connection", (s: net.Socket) => s.end(data));
    const port = (server.address() as net.AddressInfo).port;
    // Where each kernel read landed: the shared landing buffer or this socket's ring.
    let inRing = 0;
    let elsewhere = 0;
    const fd = ownReadSocket((onread) =>
      net.connect({
        port,
        host: "127.0.0.1",
        allowHalfOpen: true,
        onread: {
          buffer: onread.buffer,
          callback: (n: number, buf: Uint8Array) => {
            if (buf.buffer.byteLength === READ_RING_SIZE) inRing += n;
            else elsewhere += n;
            return onread.callback(n, buf);
          },
        },
      }),
    );
    cleanups.push(() => {
      fd.stream.destroy();
      server.close();
    });
    const got = await drainToEof(fd, 40_000);
    expect(got.equals(data)).toBe(true);
    expect(inRing + elsewhere).toBe(data.length);
    // Not all: this reader, every 2 ms, lets the ring fill to its bound, and the read after each
    // such stop lands in the shared buffer (the ring had no room when Node asked where).
    expect(inRing).toBeGreaterThan(data.length / 3);
    // Drained to the peer's EOF: no ring held, even when the last read before it was a full one.
    expect((fd as unknown as { ring: { ring: Buffer | null } }).ring.ring).toBeNull();
  });

  it("in a process that catches uncaught exceptions, nextTick callbacks that throw as reads return cost no byte (all reads land in the shared buffer)", async () => {
    // Node then keeps reading into the buffer it had, whatever onread.buffer named next.
    let caught = 0;
    uncaughtListeners(() => caught++);
    const p = await ownPair();
    cleanups.push(p.close);
    const data = pattern(8 * 1024 * 1024, 7);
    p.a.end(data);
    const throwing = setInterval(() => {
      for (let i = 0; i < 3; i++) {
        process.nextTick(() => {
          throw new Error("a host program's bug");
        });
      }
    }, 1);
    cleanups.push(() => clearInterval(throwing));
    const got = await drainToEof(p.fd, 40_000);
    clearInterval(throwing);
    expect(caught).toBeGreaterThan(0);
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
  });

  it("shutdownRead discards input without stalling the peer and is never read-ready again", async () => {
    const p = await ownPair();
    cleanups.push(p.close);
    const { fd } = p;
    const first = SOCKET_READ_BOUND + 200_000;
    p.a.write(pattern(first));
    await until(() => p.b.bytesRead > SOCKET_READ_BOUND);
    fd.shutdownRead();
    const more = pattern(2 * 1024 * 1024, 5);
    p.a.write(more);
    // Everything the peer sent is taken off the wire, though nobody reads it.
    await until(() => p.b.bytesRead === first + more.length);
    expect(fd.readReady()).toBe(false);
    expect(() => fd.read(1)).toThrow(/closed/);
  });

  it("moving an accepted socket leaves the server's count of connections right", async () => {
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as net.AddressInfo;
    const accepted = once(server, "connection") as Promise<[net.Socket]>;
    const a = net.connect({ port, host: "127.0.0.1" });
    cleanups.push(() => a.destroy());
    const [raw] = await accepted;
    const fd = ownReadAccepted(raw);
    const b = fd.stream;
    cleanups.push(() => b.destroy());
    expect(b).not.toBe(raw);
    expect(b.remotePort).toBe(a.localPort);
    await until(() => raw.destroyed);
    const count = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
    expect(count).toBe(0);
    // The server closes as soon as asked: the moved connection does not hold it.
    await new Promise<void>((r) => server.close(() => r()));
    a.end("still here");
    expect((await drainToEof(fd, 64)).toString()).toBe("still here");
  });

  it("a connecting socket made by ownReadSocket reads once connected", async () => {
    const held: net.Socket[] = [];
    const server = net.createServer((s) => {
      held.push(s);
      s.end(pattern(100_000, 11));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanups.push(() => {
      held.forEach((s) => s.destroy());
      server.close();
    });
    const fd = ownReadSocket((onread) => net.connect({ port: (server.address() as net.AddressInfo).port, host: "127.0.0.1", allowHalfOpen: true, onread }));
    cleanups.push(() => fd.close());
    expect(fd.connecting).toBe(true);
    const got = await drainToEof(fd, 5000);
    expect(got.equals(pattern(100_000, 11))).toBe(true);
  });
});
