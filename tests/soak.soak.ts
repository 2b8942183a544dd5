import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, chownSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, itAsRoot } from "./helpers/peers.js";
import { connectionsOf, openFds, rssMiB } from "./helpers/procs.js";
import { exited, freePort, opensshKeygen, OURS, scratch, sha256hex, type Server, startOurDropbearWithHostKey } from "./helpers/servers.js";
import { echoRoundTrip, seededPayload, nextSeed, startEchoTarget, startTunnel, type Target } from "./helpers/tunnel.js";
import { addTestUser, removeTestUser, type TestUser } from "./helpers/users.js";
import { packet, u32 } from "./helpers/wire.js";

// `npm run soak` (not part of `npm test`): one daemon of ours for SOAK_SECONDS (default 60) while
// SOAK_CLIENTS workers (default 6; ours and OpenSSH's clients) connect, run commands that echo
// their stdin, open -L tunnels, push bytes through and disconnect, and a hostile worker keeps
// sending junk, floods and silent connections. At the end: every transfer arrived intact, the
// daemon's RSS stayed bounded, and its descriptors are back to where they were.

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 6);
const USER = "dbtssoak";
const work = scratch("dbts-soak-");
const key = join(work.dir, "id_ed25519");
let user: TestUser;
let server: Server;
let echo: Target;

beforeAll(async () => {
  if (process.getuid?.() !== 0) return;
  user = addTestUser(USER);
  opensshKeygen(key);
  const ak = join(user.home, ".ssh", "authorized_keys");
  writeFileSync(ak, readFileSync(`${key}.pub`, "utf8"));
  chownSync(ak, user.uid, user.gid);
  chmodSync(ak, 0o600);
  server = await startOurDropbearWithHostKey(work.dir);
  echo = await startEchoTarget();
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await echo?.close();
  if (process.getuid?.() === 0) removeTestUser(USER);
  work.cleanup();
}, 60_000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type ClientKind = "ours" | "ssh";

/** Client arguments up to the destination, from a source address of the worker's own. */
function clientArgs(kind: ClientKind, from: string, extra: string[]): [string, string[]] {
  if (kind === "ours") {
    return [process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-b", from, "-p", String(server.port), ...extra, `${USER}@127.0.0.1`]];
  }
  return [PEERS.ssh, ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-i", key, "-b", from, "-p", String(server.port), ...extra, `${USER}@127.0.0.1`]];
}

/** `cat` on the server: what comes back must be what was sent. */
async function execRoundTrip(kind: ClientKind, from: string, n: number): Promise<boolean> {
  const data = seededPayload(nextSeed(), n);
  const [cmd, args] = clientArgs(kind, from, []);
  const child = spawn(cmd, [...args, "cat"], { stdio: ["pipe", "pipe", "pipe"] });
  const out: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => out.push(d));
  child.stderr.on("data", () => undefined);
  child.stdin.on("error", () => undefined);
  child.stdin.end(data);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const status = await exited(child);
  clearTimeout(timer);
  return status === 0 && sha256hex(Buffer.concat(out)) === sha256hex(data);
}

/** A -N -L tunnel up, three echoes through it, down. */
async function tunnelRoundTrips(kind: ClientKind, from: string): Promise<boolean> {
  const lport = await freePort();
  const [cmd, args] = clientArgs(kind, from, ["-N", "-L", `127.0.0.1:${lport}:127.0.0.1:${echo.port}`]);
  const t = await startTunnel(cmd, args, lport);
  try {
    const rs = await Promise.all([0, 1, 2].map(() => echoRoundTrip(lport, 512 * 1024, "127.0.0.1", 60_000)));
    return rs.every((r) => r.got === 512 * 1024 && r.gotHash === r.sentHash);
  } finally {
    await t.stop();
  }
}

/** One hostile connection of several kinds, from an address of its own. */
async function hostileOnce(i: number): Promise<void> {
  const from = `127.0.9.${2 + (i % 200)}`;
  const s = net.connect({ port: server.port, host: "127.0.0.1", localAddress: from });
  s.on("error", () => undefined);
  s.on("data", () => undefined);
  await once(s, "connect").catch(() => undefined);
  switch (i % 4) {
    case 0:
      s.write("GET / HTTP/1.1\r\n\r\n");
      break;
    case 1:
      s.write("SSH-2.0-soak\r\n");
      s.write(Buffer.concat([u32(0xffffffff), Buffer.alloc(12)]));
      break;
    case 2: {
      // The unknown-type reply flood, never reading, for a second.
      s.pause();
      s.write("SSH-2.0-soak\r\n");
      const batch = Buffer.concat(Array<Buffer>(1024).fill(packet(Buffer.of(40))));
      const end = Date.now() + 1000;
      while (Date.now() < end && s.write(batch)) await sleep(10);
      break;
    }
    default:
      // Silent for two seconds.
      break;
  }
  await sleep(2000);
  s.destroy();
}

describe("soak", () => {
  itAsRoot(["ssh"], `${CLIENTS} clients and a hostile worker for ${SECONDS} s: transfers intact, daemon memory bounded, no descriptor leak`, async () => {
    const daemon = server.child.pid!;
    await sleep(2000); // the first spare is up
    const fd0 = openFds(daemon)!;
    const rss0 = rssMiB(daemon)!;
    let rssMax = rss0;
    const deadline = Date.now() + SECONDS * 1000;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMiB(daemon) ?? 0)), 500);
    const counts = { exec: 0, tunnel: 0, hostile: 0 };
    const failures: string[] = [];
    const worker = async (w: number): Promise<void> => {
      const from = `127.0.1.${2 + w}`;
      for (let round = 0; Date.now() < deadline; round++) {
        const kind: ClientKind = (w + round) % 2 === 0 ? "ours" : "ssh";
        try {
          if (round % 3 === 2) {
            if (!(await tunnelRoundTrips(kind, from))) failures.push(`tunnel ${kind} worker ${w} round ${round}`);
            counts.tunnel++;
          } else {
            if (!(await execRoundTrip(kind, from, 256 * 1024))) failures.push(`exec ${kind} worker ${w} round ${round}`);
            counts.exec++;
          }
        } catch (e) {
          failures.push(`${kind} worker ${w} round ${round}: ${String(e)}`);
        }
      }
    };
    const hostile = async (): Promise<void> => {
      for (let i = 0; Date.now() < deadline; i++) {
        await Promise.all([0, 1, 2].map((k) => hostileOnce(i * 3 + k)));
        counts.hostile += 3;
      }
    };
    try {
      await Promise.all([...Array.from({ length: CLIENTS }, (_, w) => worker(w)), hostile()]);
    } finally {
      clearInterval(sampler);
    }
    console.log(`soak: ${counts.exec} exec, ${counts.tunnel} tunnel and ${counts.hostile} hostile connections; daemon RSS ${rss0.toFixed(1)} -> max ${rssMax.toFixed(1)} MiB, fds ${fd0}`);
    expect(failures).toEqual([]);
    expect(counts.exec).toBeGreaterThan(0);
    expect(counts.tunnel).toBeGreaterThan(0);
    // Every connection process ends, and the daemon holds what it held before.
    await expect.poll(() => connectionsOf(daemon).length, { timeout: 30_000 }).toBe(0);
    await expect.poll(() => openFds(daemon), { timeout: 15_000 }).toBeLessThanOrEqual(fd0);
    // The daemon only accepts and hands over: its memory must not follow the traffic.
    expect(rssMax - rss0).toBeLessThan(64);
    expect(server.log()).not.toMatch(/TypeError|RangeError|internal error|Error forking/);
  }, (SECONDS + 180) * 1000);
});
