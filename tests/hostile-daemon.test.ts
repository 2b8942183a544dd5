import { once } from "node:events";
import { mkdirSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PEERS, itWithPeers } from "./helpers/peers.js";
import { childrenOf, connectionsOf, procStat, rssMiB, socketInodes, threadNices } from "./helpers/procs.js";
import { run, scratch, startOurDropbearWithHostKey, useOurDropbear } from "./helpers/servers.js";
import { kexinit, packet, sshString, u32 } from "./helpers/wire.js";

// Issue 10: hostile peers against the daemon as a whole (the transport's parsers are covered by
// hostile-transport.test.ts): each case ends that one connection, bounded in memory, with a log
// line, while well-behaved clients are still served.

const ours = useOurDropbear("dbts-hostiled-");

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A real client completes kex and reaches userauth. */
async function stillServing(): Promise<void> {
  const r = await run(
    PEERS.ssh,
    ["-v", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=none", "-p", String(ours.server.port), "nobody@127.0.0.1", "true"],
    { timeoutMs: 20_000 },
  );
  expect(r.stderr).toMatch(/SSH2_MSG_SERVICE_ACCEPT received/);
}

/**
 * Resolves when `sock` closes. Not events.once(): it rejects on 'error', and a server that exits
 * with our packets unread ends the connection with a reset (ECONNRESET) as often as with a FIN.
 */
function closeOf(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => sock.once("close", () => resolve()));
}

/**
 * Connect, send `ident` and then `frames`, and wait for the server to close the connection.
 * Returns what the server logged for that connection.
 */
async function hostile(frames: Buffer[], ident = "SSH-2.0-hostile_1.0\r\n", from = "127.0.0.1"): Promise<string> {
  const before = ours.server.log().length;
  const sock = net.connect({ port: ours.server.port, host: "127.0.0.1", localAddress: from });
  sock.on("error", () => undefined);
  sock.on("data", () => undefined);
  await once(sock, "connect");
  const me = `${from}:${sock.localPort}`;
  sock.write(ident);
  for (const f of frames) sock.write(f);
  const closed = closeOf(sock);
  const timer = setTimeout(() => sock.destroy(), 15_000);
  await closed;
  clearTimeout(timer);
  // This connection's own line: another one's (an earlier test's client) may come meanwhile.
  await expect.poll(() => ours.server.log().slice(before), { timeout: 5000 }).toContain(`Exit before auth from <${me}>`);
  return ours.server.log().slice(before);
}

/**
 * The connection process the daemon started for the one connection made since `before`. Bounded
 * at 30 s: the first connection after the daemon's start may wait for its spare's start, which
 * a machine loaded by parallel test files can stretch past 10 s. If none comes, the error says
 * what the daemon's children were doing and what it logged.
 */
async function newChild(before: number[]): Promise<number> {
  const daemon = ours.server.child.pid!;
  let pid: number | undefined;
  try {
    await expect
      .poll(
        () => {
          pid = connectionsOf(daemon).find((p) => !before.includes(p));
          return pid;
        },
        { timeout: 30_000 },
      )
      .toBeDefined();
  } catch (e) {
    const kids = childrenOf(daemon).map((p) => `${p} ${JSON.stringify(procStat(p))} nices ${[...threadNices(p).values()].join(",")} sockets ${socketInodes(p).length}`);
    throw new Error(`no new connection process (before: ${before.join(",")}); children:\n${kids.join("\n")}\nlog:\n${ours.server.log()}`, { cause: e });
  }
  return pid!;
}

describe("hostile peers against the daemon", () => {
  itWithPeers(["ssh"], "the unknown-type reply flood: a peer that never reads grows its connection process by at most 64 MB", async () => {
    const before = connectionsOf(ours.server.child.pid!);
    const logBefore = ours.server.log().length;
    const sock = net.connect(ours.server.port, "127.0.0.1");
    sock.on("error", () => undefined);
    await once(sock, "connect");
    // Never read: every SSH_MSG_UNIMPLEMENTED the server answers stays queued on its side.
    sock.pause();
    sock.write("SSH-2.0-flood_1.0\r\n");
    // Ended whatever happens: a flood left running would count as a connection in the next test.
    let stop = false;
    let peak: number;
    let base: number;
    try {
      const child = await newChild(before);
      await expect.poll(() => ours.server.log().slice(logBefore), { timeout: 10_000 }).toMatch(/Child connection from/);
      base = rssMiB(child)!;
      // Type 40 is in the transport range RFC 4253 §7.1 allows during kex: each gets a reply.
      const batch = Buffer.concat(Array<Buffer>(4096).fill(packet(Buffer.of(40))));
      const pump = (): void => {
        while (!stop && sock.write(batch));
      };
      sock.on("drain", pump);
      pump();
      peak = base;
      const end = Date.now() + 6000;
      while (Date.now() < end) {
        await sleep(250);
        peak = Math.max(peak, rssMiB(child) ?? peak);
      }
      // Served meanwhile.
      await stillServing();
    } finally {
      stop = true;
      sock.destroy();
    }
    // The queue itself stays at Dropbear's 32 KiB; what RSS gains is the collector's slack for
    // the garbage of ~100k packets a second, larger on Node 24 (whose V8 sizes the young
    // generation by the heap). Unbounded, this was +460 MB in 14 s.
    expect(peak - base).toBeLessThan(64);
    await expect.poll(() => ours.server.log().slice(logBefore), { timeout: 10_000 }).toMatch(/Exit before auth from <127\.0\.0\.1:\d+>/);
  }, 60_000);
  it("junk instead of a version line", async () => {
    const log = await hostile([], "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // The server gives up on the first line that is not a version line (svr_remoteclosed:
    // "Exited normally", as Dropbear says); depending on timing the reason can instead be our
    // socket's reset while it was still sending its own version.
    expect(log).toMatch(/Exit before auth from <127\.0\.0\.1:\d+>: (Exited normally|Remote closed the connection|Error writing: .+)/);
  });

  it("a version line longer than 255 bytes with no end", async () => {
    const log = await hostile([], "SSH-2.0-" + "x".repeat(600));
    expect(log).toMatch(/Exit before auth from <127\.0\.0\.1:\d+>/);
  });

  it("no version line at all: the peer just closes", async () => {
    const before = ours.server.log().length;
    const sock = net.connect(ours.server.port, "127.0.0.1");
    sock.on("error", () => undefined);
    await once(sock, "connect");
    sock.end();
    await expect.poll(() => ours.server.log().slice(before), { timeout: 10_000 }).toMatch(/Exit before auth from <127\.0\.0\.1:\d+>/);
  });

  it("packet length 0 and 2^32-1", async () => {
    expect(await hostile([Buffer.concat([u32(0), Buffer.alloc(12)])])).toMatch(/Integrity error \(bad packet size 4\)|Bad packet size/);
    expect(await hostile([Buffer.concat([u32(0xffffffff), Buffer.alloc(12)])])).toMatch(/Integrity error \(bad packet size \d+\)/);
  });

  it("padding shorter than 4 bytes", async () => {
    // 12 bytes after the length: padding length 2, a KEXINIT type byte and 9 bytes of it.
    const body = Buffer.concat([Buffer.of(2), Buffer.of(20), Buffer.alloc(10)]);
    const log = await hostile([Buffer.concat([u32(body.length), body])]);
    expect(log).toMatch(/Exit before auth from <127\.0\.0\.1:\d+>: .+/);
  });

  it("message types above 60 before auth", async () => {
    for (const t of [61, 90, 200]) {
      const log = await hostile([packet(Buffer.concat([Buffer.of(t), sshString("x")]))]);
      expect(log).toMatch(new RegExp(`Unexpected packet type ${t}, expected 20`));
    }
  });

  it("a KEXINIT storm without strict kex", async () => {
    const storm = Array.from({ length: 50 }, () => packet(kexinit("curve25519-sha256", false)));
    const log = await hostile(storm);
    expect(log).toMatch(/Unexpected packet type 20, expected 30/);
  });

  it("a huge name-list in KEXINIT", async () => {
    const list = Array.from({ length: 3000 }, (_, i) => `algo${i}@example.com`).join(",");
    const payload = Buffer.concat([Buffer.of(20), Buffer.alloc(16), sshString(list), ...Array.from({ length: 9 }, () => sshString("none")), Buffer.of(0), u32(0)]);
    const log = await hostile([packet(payload)]);
    expect(log).toMatch(/Exit before auth from <127\.0\.0\.1:\d+>: .+/);
  });

  itWithPeers(["ssh"], "100 slow pre-auth connections from one address: five hold slots, the rest are dropped, others are served", async () => {
    const socks: net.Socket[] = [];
    let closedEarly = 0;
    for (let i = 0; i < 100; i++) {
      const s = net.connect({ port: ours.server.port, host: "127.0.0.1", localAddress: "127.0.0.9" });
      s.on("error", () => undefined);
      s.on("data", () => undefined);
      s.on("close", () => closedEarly++);
      socks.push(s);
    }
    // Slowloris: one byte of the version line now and then.
    const drip = setInterval(() => {
      for (const s of socks) if (!s.destroyed) s.write("S");
    }, 500);
    try {
      await expect.poll(() => closedEarly, { timeout: 15_000 }).toBe(95);
      // The five kept are handed to their connection processes meanwhile.
      await expect.poll(() => connectionsOf(ours.server.child.pid!).length, { timeout: 10_000 }).toBe(5);
      await stillServing();
    } finally {
      clearInterval(drip);
      for (const s of socks) s.destroy();
    }
    await expect.poll(() => connectionsOf(ours.server.child.pid!).length, { timeout: 10_000 }).toBe(0);
    await stillServing();
  }, 60_000);
});

describe("-I and -M against a peer that never sends its version line", () => {
  const work = scratch("dbts-hostiled-idle-");
  afterAll(() => work.cleanup());

  for (const [flag, reason] of [
    ["-I", "Idle timeout"],
    ["-M", "Max duration reached"],
  ] as const) {
    it(`${flag} 2: the connection process ends it with "${reason}" (Dropbear's spins until AUTH_TIMEOUT)`, async () => {
      const dir = join(work.dir, flag.slice(1));
      mkdirSync(dir);
      const srv = await startOurDropbearWithHostKey(dir, [flag, "2"]);
      try {
        const logBefore = srv.log().length;
        const sock = net.connect(srv.port, "127.0.0.1");
        sock.on("error", () => undefined);
        sock.on("data", () => undefined);
        await once(sock, "connect");
        const me = sock.localPort;
        const closed = closeOf(sock);
        const timer = setTimeout(() => sock.destroy(), 15_000);
        await closed;
        clearTimeout(timer);
        await expect.poll(() => srv.log().slice(logBefore), { timeout: 5000 }).toMatch(new RegExp(`Exit before auth from <127\\.0\\.0\\.1:${me}>: ${reason}`));
      } finally {
        await srv.stop();
      }
    }, 30_000);
  }
});
