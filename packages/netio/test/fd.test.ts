import { once } from "node:events";
import * as net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { randomBytes } from "node:crypto";
import { CLOSE_LINGER_MS, FdError, ListenerFd, STAGING_SLAB_SIZE, STAGING_SLABS_MAX, SignalPipeFd, StreamFd, WRITEV_MAX_BYTES } from "../src/fd.js";
import { tcpPair, unusedPort } from "../../../tests/helpers/sockets.js";
import { nodePair, ownPair, until } from "./own-pair.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe("StreamFd over a TCP socket", () => {
  it("reports readable only when data waits, and reads at most max bytes", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.b);
    expect(fd.readReady()).toBe(false);
    expect(fd.read(10)).toBeNull();
    p.a.write(Buffer.from("hello world"));
    await until(() => fd.readReady());
    const first = fd.read(5)!;
    expect(first.toString()).toBe("hello");
    expect(fd.readReady()).toBe(true);
    expect(fd.read(100)!.toString()).toBe(" world");
    expect(fd.read(100)).toBeNull();
    expect(fd.readReady()).toBe(false);
  });

  it("reports EOF as readable with an empty read, and stays so", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.b);
    p.a.end("last");
    await until(() => fd.readReady());
    expect(fd.read(100)!.toString()).toBe("last");
    await until(() => fd.readReady());
    expect(fd.read(100)!.length).toBe(0);
    expect(fd.readReady()).toBe(true);
    expect(fd.read(100)!.length).toBe(0);
  });

  // The session loop reads more packets in a turn only while bytes wait (dataReady): the end of
  // the transport is left to the next turn's select, as Dropbear meets it.
  for (const [name, pair] of [["Node's stream", nodePair], ["our own ring", ownPair]] as const) {
    it(`dataReady: bytes wait, not the end of file or an error that readReady also counts (${name})`, async () => {
      const p = await pair();
      cleanups.push(p.close);
      expect(p.fd.dataReady()).toBe(false);
      p.a.end("last");
      await until(() => p.fd.readReady());
      expect(p.fd.dataReady()).toBe(true);
      expect(p.fd.read(100)!.toString()).toBe("last");
      await until(() => p.fd.readReady());
      expect(p.fd.dataReady()).toBe(false);
      expect(p.fd.read(100)!.length).toBe(0);
    });
  }

  it("shutdownRead discards input and is never read-ready again", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.b);
    fd.shutdownRead();
    p.a.write(Buffer.alloc(100_000));
    await new Promise((r) => setTimeout(r, 50));
    expect(fd.readReady()).toBe(false);
    expect(p.b.readableLength).toBe(0);
    expect(() => fd.read(1)).toThrow(/closed/);
  });

  it("stops accepting writes above the high-water mark and says so", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.b); // peer never reads
    const chunk = Buffer.alloc(64 * 1024);
    let accepted = 0;
    let refusals = 0;
    // A write a turn: each turn's goes to the kernel as the turn ends.
    for (let i = 0; i < 2000 && refusals === 0; i++) {
      const n = fd.write(chunk);
      if (n === 0) refusals++;
      accepted += n;
      await null;
    }
    expect(refusals).toBe(1);
    expect(fd.writeReady()).toBe(false);
    // Only what the kernel took plus one chunk over the mark is held in our process.
    expect(fd.writePending).toBeLessThanOrEqual(p.b.writableHighWaterMark + chunk.length);
    expect(accepted).toBeLessThan(2000 * chunk.length);
  });

  it("writev takes whole chunks in order and stops at the mark", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.a);
    const chunks = [Buffer.from("ab"), Buffer.from("cd"), Buffer.from("ef")];
    expect(fd.writev(chunks)).toBe(6);
    const r = new StreamFd(p.b);
    await until(() => r.readReady() && p.b.readableLength >= 6);
    expect(r.read(10)!.toString()).toBe("abcdef");
  });

  it("writev hands several packets past the mark in one call, up to WRITEV_MAX_BYTES", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.a);
    const packet = Buffer.alloc(20 * 1024, 1);
    // Each is above the 16 KiB mark on its own: before, one per call (one per loop turn).
    const many = Array.from({ length: 40 }, () => packet);
    const took = fd.writev(many);
    expect(took).toBe(Math.floor(WRITEV_MAX_BYTES / packet.length) * packet.length);
    // The turn has handed over all it may: one more would pass WRITEV_MAX_BYTES.
    expect(fd.writev([packet])).toBe(0);
    const r = new StreamFd(p.b);
    let got = 0;
    await until(() => {
      for (let b = r.readReady() ? r.read(1 << 20) : null; b !== null && b.length > 0; b = r.readReady() ? r.read(1 << 20) : null) got += b.length;
      return got === took;
    });
    expect(fd.writeReady()).toBe(true);
  });

  it("a turn's writes reach the kernel together, in one writev, as the turn ends", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.a);
    const gathered = vi.spyOn(p.a as unknown as { _writev: (...a: unknown[]) => void }, "_writev");
    const single = vi.spyOn(p.a as unknown as { _write: (...a: unknown[]) => void }, "_write");
    const parts = [Buffer.from("one "), Buffer.alloc(40 * 1024, 0x32), Buffer.from(" three")];
    for (const part of parts) expect(fd.write(part)).toBe(part.length);
    // Held until the turn's synchronous run ends; counted as pending meanwhile.
    expect(gathered).not.toHaveBeenCalled();
    expect(single).not.toHaveBeenCalled();
    expect(fd.writePending).toBe(4 + 40 * 1024 + 6);
    await null;
    expect(gathered).toHaveBeenCalledTimes(1);
    expect(single).not.toHaveBeenCalled();
    expect(fd.flushed).toBe(fd.handed);
    const r = new StreamFd(p.b);
    let got = Buffer.alloc(0);
    await until(() => {
      const b = r.readReady() ? r.read(1 << 20) : null;
      if (b !== null) got = Buffer.concat([got, b]);
      return got.length === 4 + 40 * 1024 + 6;
    });
    expect(got.equals(Buffer.concat(parts))).toBe(true);
  });

  it("staging hands a slab out again only once the stream has written what was copied into it", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.a);
    const sent: Buffer[] = [];
    const slabs = new Set<ArrayBufferLike>();
    // Staged writes of a byte value each: a slab reused while Node still holds an earlier write
    // from it would change what arrives.
    const turn = (i: number): number => {
      const len = STAGING_SLAB_SIZE - (i % 7) * 1000;
      const copy = fd.staging(len);
      copy.fill(i & 0xff);
      const n = fd.writev([copy]);
      if (n === 0) {
        fd.unstage();
      } else {
        sent.push(Buffer.from(copy));
        slabs.add(copy.buffer);
      }
      return n;
    };
    // The peer reads nothing yet: the kernel fills, then Node holds the last writes.
    let refused = 0;
    for (let i = 0; i < 2000 && refused < 3; i++) {
      if (turn(i) === 0) refused++;
      await null;
    }
    expect(refused).toBe(3);
    expect(fd.writePending).toBeGreaterThan(0);
    const got: Buffer[] = [];
    p.b.on("data", (d: Buffer) => got.push(d));
    p.b.resume();
    // Then several a turn, all held by Node until the turn ends.
    for (let i = 2000; i < 2600; i += 3) {
      turn(i);
      turn(i + 1);
      turn(i + 2);
      await new Promise((r) => setImmediate(r));
    }
    const want = Buffer.concat(sent);
    await until(() => got.reduce((n, b) => n + b.length, 0) >= want.length);
    expect(Buffer.concat(got).equals(want)).toBe(true);
    // Most writes went through the fd's few slabs, not a Buffer each.
    expect(slabs.size).toBeLessThan(sent.length / 4);
  });

  it("the staging slabs are one pool for the process: sockets that fall behind together share STAGING_SLABS_MAX of them", async () => {
    const slabs = new Set<ArrayBufferLike>();
    let ownBuffers = 0;
    // Each fills its kernel buffer and leaves Node holding its last slab: more sockets than slabs.
    for (let k = 0; k < STAGING_SLABS_MAX + 2; k++) {
      const p = await tcpPair();
      cleanups.push(p.close);
      const fd = new StreamFd(p.a);
      // The peer never reads: every slab this fd is lent stays held.
      for (let i = 0; i < 200; i++) {
        const copy = fd.staging(STAGING_SLAB_SIZE - 1000);
        if (fd.writev([copy]) === 0) {
          fd.unstage();
          break;
        }
        if (copy.buffer.byteLength === STAGING_SLAB_SIZE) {
          slabs.add(copy.buffer);
        } else {
          ownBuffers++;
        }
        await null;
      }
    }
    expect(slabs.size).toBeLessThanOrEqual(STAGING_SLABS_MAX);
    expect(ownBuffers).toBeGreaterThan(0);
  });

  it("a shutdown in the same turn sends the turn's writes first", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.a);
    expect(fd.write(Buffer.from("last words"))).toBe(10);
    fd.shutdownWrite();
    const r = new StreamFd(p.b);
    let got = "";
    await until(() => {
      const b = r.readReady() ? r.read(100) : null;
      if (b !== null && b.length > 0) got += b.toString();
      return b !== null && b.length === 0;
    });
    expect(got).toBe("last words");
  });

  it("a connect in progress is not writable; a refused one becomes writable with its error", async () => {
    const port = await unusedPort();
    const sock = net.connect(port, "127.0.0.1");
    const fd = new StreamFd(sock);
    cleanups.push(() => fd.close());
    expect(fd.connecting).toBe(true);
    expect(fd.writeReady()).toBe(false);
    await until(() => fd.writeReady());
    expect(fd.error?.code).toBe("ECONNREFUSED");
  });

  it("a completed connect becomes writable", async () => {
    const held: net.Socket[] = [];
    const server = net.createServer((s) => held.push(s));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanups.push(() => {
      held.forEach((s) => s.destroy());
      server.close();
    });
    const sock = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    const fd = new StreamFd(sock);
    cleanups.push(() => fd.close());
    await until(() => fd.writeReady());
    expect(fd.error).toBeNull();
  });

  it("close is idempotent and makes the fd never ready", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.b);
    p.a.write("x");
    await until(() => fd.readReady());
    fd.close();
    fd.close();
    expect(fd.readReady()).toBe(false);
    expect(fd.writeReady()).toBe(false);
    expect(p.b.destroyed).toBe(true);
  });
});

// The same contract whether Node's stream or our own buffer (own-read.test.ts) takes the reads.
for (const [kind, pair] of [
  ["a Node-read TCP socket", nodePair],
  ["a socket read into our own buffer", ownPair],
] as const) {
  describe(`StreamFd over ${kind}`, () => {
    it("reports a reset as readable and writable, the read and write throwing the error", async () => {
      const p = await pair();
      cleanups.push(p.close);
      const { fd } = p;
      p.a.resetAndDestroy();
      await until(() => fd.error !== null);
      expect(fd.readReady()).toBe(true);
      expect(fd.writeReady()).toBe(true);
      expect(() => fd.read(10)).toThrow(FdError);
      expect(() => fd.readInto(Buffer.alloc(1), 0, 1)).toThrow(FdError);
      expect(fd.error!.code).toBe("ECONNRESET");
      expect(() => fd.write(Buffer.from("x"))).toThrow(FdError);
    });

    it("half-closes with shutdownWrite while reads go on", async () => {
      const p = await pair();
      cleanups.push(p.close);
      const { fd } = p;
      fd.write(Buffer.from("request"));
      fd.shutdownWrite();
      expect(fd.writeReady()).toBe(false);
      const got: Buffer[] = [];
      p.a.on("data", (d: Buffer) => got.push(d));
      await once(p.a, "end");
      expect(Buffer.concat(got).toString()).toBe("request");
      p.a.end("reply");
      await until(() => fd.readReady());
      expect(fd.read(100)!.toString()).toBe("reply");
    });

    it("close with output still flushing, the peer still sending: all the output arrives, none of the input is read", async () => {
      const p = await pair();
      cleanups.push(p.close);
      const { fd } = p;
      p.a.write(randomBytes(200_000));
      await until(() => fd.readReady());
      const big = randomBytes(4 * 1024 * 1024);
      expect(fd.writev([big])).toBe(big.length);
      fd.close();
      expect(fd.readReady()).toBe(false);
      const got: Buffer[] = [];
      p.a.on("data", (d: Buffer) => got.push(d));
      // Still sending after our close: answered with a reset, this would cut the output short.
      p.a.end(randomBytes(1024 * 1024));
      await once(p.a, "end");
      expect(Buffer.concat(got).equals(big)).toBe(true);
      // Our side goes once the peer's EOF has come (no later than CLOSE_LINGER_MS).
      await until(() => p.b.destroyed, CLOSE_LINGER_MS + 3000);
    });
  });
}

describe("StreamFd lifecycle details", () => {
  it("close still delivers what was written (like close(2) on a socket) before the socket goes", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    const fd = new StreamFd(p.b);
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    expect(fd.writev([big])).toBe(big.length);
    fd.close();
    expect(fd.closed).toBe(true);
    let got = 0;
    p.a.on("data", (d: Buffer) => (got += d.length));
    await once(p.a, "end");
    expect(got).toBe(big.length);
  });

  it("sees an EOF that happened before it wrapped the socket", async () => {
    const p = await tcpPair();
    cleanups.push(p.close);
    p.b.resume();
    p.a.end();
    await once(p.b, "end");
    const fd = new StreamFd(p.b);
    expect(fd.readReady()).toBe(true);
    expect(fd.read(10)).toEqual(Buffer.alloc(0));
  });
});

describe("ListenerFd", () => {
  it("is readable while connections wait and accepts them one at a time", async () => {
    const server = net.createServer({ pauseOnConnect: true });
    const lfd = new ListenerFd(server, 2);
    cleanups.push(() => lfd.close());
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as net.AddressInfo).port;
    expect(lfd.readReady()).toBe(false);
    expect(lfd.accept()).toBeNull();
    const clients = [0, 1, 2].map(() => net.connect(port, "127.0.0.1"));
    cleanups.push(() => clients.forEach((c) => c.destroy()));
    const closed = clients.map((c) => new Promise<void>((r) => c.on("close", () => r())).then(() => c));
    clients.forEach((c) => c.on("error", () => {}));
    await until(() => lfd.readReady());
    // The third is over the backlog of 2 and is dropped.
    const dropped = await Promise.race(closed);
    expect(dropped).toBeDefined();
    const s1 = lfd.accept();
    const s2 = lfd.accept();
    expect(s1).not.toBeNull();
    expect(s2).not.toBeNull();
    expect(lfd.accept()).toBeNull();
    expect(lfd.readReady()).toBe(false);
    s1!.destroy();
    s2!.destroy();
  });

  it("wraps each accepted connection once, read into our own ring with acceptOwnRead, before or after listen", async () => {
    for (const listenFirst of [true, false]) {
      const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true });
      let nodeMade = 0;
      server.on("connection", () => nodeMade++);
      let lfd: ListenerFd | null = null;
      if (!listenFirst) lfd = new ListenerFd(server, 4);
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      lfd ??= new ListenerFd(server, 4);
      const l = lfd;
      cleanups.push(() => l.close());
      const port = (server.address() as net.AddressInfo).port;
      const c = net.connect(port, "127.0.0.1");
      cleanups.push(() => c.destroy());
      await until(() => l.readReady());
      const fd = l.acceptOwnRead()!;
      cleanups.push(() => fd.close());
      expect(fd.stream.remotePort).toBe(c.localPort);
      c.end("ping");
      const got = Buffer.alloc(4);
      await until(() => fd.readReady());
      expect(fd.readInto(got, 0, 4)).toBe(4);
      expect(got.toString()).toBe("ping");
      fd.write(Buffer.from("pong"));
      const [reply] = (await once(c, "data")) as [Buffer];
      expect(reply.toString()).toBe("pong");
      // net.Server never made a Socket of its own for it.
      expect(nodeMade).toBe(0);
    }
  });

  it("reports a failed accept once, as net.Server would emit it ('accept EMFILE')", async () => {
    const server = net.createServer({ pauseOnConnect: true });
    const lfd = new ListenerFd(server, 2);
    cleanups.push(() => lfd.close());
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    // libuv's accept callback with an error status, as the listening handle gets it.
    (server as unknown as { _handle: { onconnection: (status: number) => void } })._handle.onconnection(-24);
    expect(lfd.readReady()).toBe(true);
    expect(() => lfd.accept()).toThrow(expect.objectContaining({ code: "EMFILE", message: "accept EMFILE", syscall: "accept" }));
    expect(lfd.readReady()).toBe(false);
    expect(lfd.accept()).toBeNull();
  });
});

describe("SignalPipeFd", () => {
  it("is readable after raise until drained", () => {
    const sp = new SignalPipeFd();
    expect(sp.readReady()).toBe(false);
    sp.raise();
    sp.raise();
    expect(sp.readReady()).toBe(true);
    expect(sp.drain()).toBe(true);
    expect(sp.readReady()).toBe(false);
    expect(sp.drain()).toBe(false);
  });
});
