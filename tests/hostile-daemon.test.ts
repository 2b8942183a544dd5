import { spawnSync } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PEERS, itWithPeers } from "./helpers/peers.js";
import { childrenOf, rssMiB } from "./helpers/procs.js";
import { OURS, run, scratch, startOurDropbear, type Server } from "./helpers/servers.js";
import { packet } from "./helpers/wire.js";

// Issue 10: hostile peers against the daemon as a whole (the transport's parsers are covered by
// hostile-transport.test.ts): each case ends that one connection, bounded in memory, with a log
// line, while well-behaved clients are still served.

const work = scratch("dbts-hostiled-");
let server: Server;

beforeAll(async () => {
  const hk = join(work.dir, "hk");
  const r = spawnSync(process.execPath, [OURS.dropbearkey, "-t", "ed25519", "-f", hk], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  server = await startOurDropbear(["-r", hk]);
}, 30_000);

afterAll(async () => {
  await server.stop();
  work.cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A real client completes kex and reaches userauth. */
async function stillServing(): Promise<void> {
  const r = await run(
    PEERS.ssh,
    ["-v", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=none", "-p", String(server.port), "nobody@127.0.0.1", "true"],
    { timeoutMs: 20_000 },
  );
  expect(r.stderr).toMatch(/SSH2_MSG_SERVICE_ACCEPT received/);
}

/** The connection process the daemon started for the one connection made since `before`. */
async function newChild(before: number[]): Promise<number> {
  let pid: number | undefined;
  await expect
    .poll(
      () => {
        pid = childrenOf(server.child.pid!).find((p) => !before.includes(p));
        return pid;
      },
      { timeout: 10_000 },
    )
    .toBeDefined();
  return pid!;
}

describe("hostile peers against the daemon", () => {
  itWithPeers(["ssh"], "the unknown-type reply flood: a peer that never reads grows its connection process by at most 32 MB", async () => {
    const before = childrenOf(server.child.pid!);
    const logBefore = server.log().length;
    const sock = net.connect(server.port, "127.0.0.1");
    sock.on("error", () => undefined);
    await once(sock, "connect");
    // Never read: every SSH_MSG_UNIMPLEMENTED the server answers stays queued on its side.
    sock.pause();
    sock.write("SSH-2.0-flood_1.0\r\n");
    const child = await newChild(before);
    await expect.poll(() => server.log().slice(logBefore), { timeout: 10_000 }).toMatch(/Child connection from/);
    const base = rssMiB(child)!;
    // Type 40 is in the transport range RFC 4253 §7.1 allows during kex: each gets a reply.
    const batch = Buffer.concat(Array<Buffer>(4096).fill(packet(Buffer.of(40))));
    let stop = false;
    const pump = (): void => {
      while (!stop && sock.write(batch));
    };
    sock.on("drain", pump);
    pump();
    let peak = base;
    const end = Date.now() + 6000;
    while (Date.now() < end) {
      await sleep(250);
      peak = Math.max(peak, rssMiB(child) ?? peak);
    }
    // Served meanwhile.
    await stillServing();
    stop = true;
    sock.destroy();
    expect(peak - base).toBeLessThan(32);
    await expect.poll(() => server.log().slice(logBefore), { timeout: 10_000 }).toMatch(/Exit before auth from <127\.0\.0\.1:\d+>/);
  }, 60_000);
});
