import { randomBytes } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import { join } from "node:path";
import { describe, expect } from "vitest";
import { PEERS, itAsRoot, itWithPeers } from "./helpers/peers.js";
import { FIXED_SEED } from "./helpers/fuzz.js";
import { connectionsOf } from "./helpers/procs.js";
import { run, useOurDropbear } from "./helpers/servers.js";
import { kexinit, packet, sshString, u32 } from "./helpers/wire.js";
import { buf_putbytes } from "@dropbear-ts/buffer";
import type { sshsession } from "@dropbear-ts/core";
import { DropbearExit, isempty } from "@dropbear-ts/dbutil";
import { kexfirstinitialise, send_msg_kexinit } from "@dropbear-ts/kex";
import { StreamFd } from "@dropbear-ts/netio";
import { LOCAL_IDENT } from "@dropbear-ts/options";
import { encrypt_packet, write_packet } from "@dropbear-ts/packet";
import { kexClient, pump } from "../packages/kex/test/harness.js";
import { startEchoTarget } from "./helpers/tunnel.js";
import { addTestUser, removeTestUser } from "./helpers/users.js";

// Issue 10's raw-socket fuzzer: our dropbear on loopback gets mutated handshakes (ident lines,
// KEXINITs, KEXDH_INITs and stray packets, before the first NEWKEYS where everything is clear
// text), then, from a client of our own code that completed a real key exchange, mutated
// packets under the new keys (service and auth requests, rekeys, channel and global requests),
// and, logged in as a test user, mutated channel and global traffic (never exec or shell), for
// a bounded number of connections and time. Every connection process must end with a
// DropbearExit's log line, never an uncaught error, and the daemon must still serve a real
// client afterwards. `npm test` runs a short round; `npm run fuzz` a long one (FUZZ_SCALE,
// FUZZ_SECONDS); FUZZ_SEED gives a round's inputs again (connection n of each phase gets the
// same bytes; the keys of the exchange differ, and which connections run depends on timing).

const envNumber = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};
const ITERATIONS = Math.ceil(150 * envNumber("FUZZ_SCALE", 1));
const SECONDS = envNumber("FUZZ_SECONDS", 15);
// npm test's short round replays the same inputs each time; `npm run fuzz` draws a seed.
const SEED = envNumber("FUZZ_SEED", process.env["FUZZ_SCALE"] === undefined ? FIXED_SEED : randomBytes(4).readUInt32BE(0) || 1);
/** Connections in flight at once: below MAX_UNAUTH_PER_IP, so none is refused for that. */
const PARALLEL = 4;
/** How long the server may take to close a connection after our EOF before it counts as hung. */
const HANG_MS = 5000;

/** mulberry32: a small seeded generator, so a failing round can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n bytes from the generator, so a round's inputs depend on its seed alone. */
function bytes(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** Connection i of a phase draws from its own generator: its inputs do not depend on timing. */
function rngFor(phase: number, i: number): () => number {
  return rng((SEED ^ Math.imul(phase, 0x9e3779b1)) + Math.imul(i, 7919));
}

const KEX = ["curve25519-sha256", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256", "mlkem768x25519-sha256", "sntrup761x25519-sha512", "bogus-kex"];
const IDENT = "SSH-2.0-fuzz_1.0\r\n";

/** Streams a client could open with, before NEWKEYS; each is a mutation seed. */
function seeds(r: () => number): Buffer[] {
  const kex = KEX[Math.floor(r() * KEX.length)]!;
  const init = packet(Buffer.concat([Buffer.of(30), sshString(bytes(r, kex.startsWith("ecdh") ? 65 : 32))]));
  const ki = packet(kexinit(kex, r() < 0.5));
  return [
    Buffer.concat([Buffer.from(IDENT), ki]),
    Buffer.concat([Buffer.from(IDENT), ki, init]),
    Buffer.concat([Buffer.from(IDENT), ki, init, packet(Buffer.of(21))]),
    Buffer.concat([Buffer.from(IDENT), packet(Buffer.of(2, 0, 0, 0, 0)), ki, init]),
    Buffer.concat([Buffer.from("junk before\r\nmore junk\r\n"), Buffer.from(IDENT), ki]),
    Buffer.concat([Buffer.from(IDENT), ki, packet(Buffer.concat([Buffer.of(5), sshString("ssh-userauth")])), packet(Buffer.of(200, 1, 2, 3))]),
    Buffer.concat([Buffer.from(IDENT), ki, packet(Buffer.concat([Buffer.of(80), sshString("tcpip-forward"), Buffer.of(1), sshString(""), u32(0)]))]),
  ];
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0xfe];
const INTERESTING32 = [0, 1, 4, 0x7fffffff, 0x80000000, 0xffffffff, 35000, 256 * 1024, 1 << 24];

/** One to four random edits: bit flips, interesting bytes and lengths, inserts, deletes, repeats, a cut. */
function mutate(input: Buffer, r: () => number): Buffer {
  let b = Buffer.from(input);
  const at = (): number => Math.floor(r() * Math.max(1, b.length));
  const edits = 1 + Math.floor(r() * 4);
  for (let i = 0; i < edits; i++) {
    switch (Math.floor(r() * 8)) {
      case 0:
        b[at()]! ^= 1 << Math.floor(r() * 8);
        break;
      case 1:
        b[at()] = INTERESTING[Math.floor(r() * INTERESTING.length)]!;
        break;
      case 2: {
        const p = at();
        if (p + 4 <= b.length) b.writeUInt32BE(INTERESTING32[Math.floor(r() * INTERESTING32.length)]! >>> 0, p);
        break;
      }
      case 3: {
        const p = at();
        b = Buffer.concat([b.subarray(0, p), bytes(r, 1 + Math.floor(r() * 16)), b.subarray(p)]);
        break;
      }
      case 4: {
        const p = at();
        b = Buffer.concat([b.subarray(0, p), b.subarray(p + 1 + Math.floor(r() * 32))]);
        break;
      }
      case 5: {
        const p = at();
        const piece = b.subarray(p, p + 1 + Math.floor(r() * 64));
        b = Buffer.concat([b.subarray(0, p), piece, piece, b.subarray(p + piece.length)]);
        break;
      }
      case 6:
        b = b.subarray(0, at());
        break;
      default:
        b = Buffer.concat([b, bytes(r, Math.floor(r() * 64))]);
    }
  }
  return b;
}

/**
 * Send `data` in a few writes, then EOF, and wait for the server to close: "closed", or "hung"
 * if it has not HANG_MS after our EOF (it must end a connection whose peer has gone). "refused":
 * closed before the server said a word, which is the daemon turning the connection away (too
 * many unauthenticated ones still counted), not a connection process's answer.
 */
async function poke(port: number, data: Buffer, r: () => number): Promise<"closed" | "hung" | "refused"> {
  const sock = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  sock.on("error", () => undefined);
  let heard = false;
  let timer: NodeJS.Timeout | undefined;
  const outcome = new Promise<"closed" | "hung" | "refused">((resolve) => {
    sock.on("data", () => (heard = true));
    sock.on("close", () => resolve(heard ? "closed" : "refused"));
    sock.once("finish", () => (timer = setTimeout(() => resolve("hung"), HANG_MS)));
  });
  try {
    await Promise.race([once(sock, "connect"), outcome]);
    const cuts = [0, Math.floor(r() * data.length), Math.floor(r() * data.length), data.length].sort((x, y) => x - y);
    for (let i = 0; i + 1 < cuts.length && !sock.destroyed; i++) {
      sock.write(data.subarray(cuts[i], cuts[i + 1]));
    }
    if (!sock.destroyed) sock.end();
    return await outcome;
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}

/**
 * What an uncaught error leaves in the daemon's output (a connection process shares it). A
 * "Failed assertion" is dropbear_exit's, a clean end of that one connection as in Dropbear.
 */
const CRASH = /internal error|Uncaught|^\s+at .+:\d+:\d+\)?$|FATAL ERROR|heap out of memory|TypeError|RangeError|ReferenceError/m;

/** Until the daemon has room again: its connection processes from closed clients gone (bounded). */
async function room(): Promise<void> {
  const by = Date.now() + 10_000;
  while (connectionsOf(ours.server.child.pid!).length >= PARALLEL) {
    if (Date.now() > by) throw new Error("the daemon's connection processes did not end within 10 s");
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** keyedClient, or null when the daemon turned the connection away before the key exchange. */
async function keyedOrRefused(port: number): Promise<Awaited<ReturnType<typeof keyedClient>> | null> {
  try {
    return await keyedClient(port);
  } catch (e) {
    if (!(e instanceof DropbearExit)) throw e;
    await room();
    return null;
  }
}

/** Connections the daemon handed to a connection process that never logged its exit. */
function silentConnections(log: string): string[] {
  const exited = new Set([...log.matchAll(/(?:Exit|Early exit)[^\n]* from <([^>]+)>/g)].map((m) => m[1]!));
  return [...log.matchAll(/Child connection from (\S+)/g)].map((m) => m[1]!).filter((a) => !exited.has(a));
}

const ours = useOurDropbear("dbts-fuzzd-");

/**
 * A client of our own code on a real connection to `port`, through the first key exchange:
 * what follows is encrypted, so mutated plaintext reaches the server's parsers past the MAC.
 */
async function keyedClient(port: number): Promise<{ ses: sshsession; sock: net.Socket; seen: number[] }> {
  const sock = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  sock.on("error", () => undefined);
  // The server's version line, read by hand; what follows it is the first packet. A reset or
  // close before it is the daemon turning the connection away.
  let head = Buffer.alloc(0);
  try {
    await once(sock, "connect");
    sock.write(`${LOCAL_IDENT}\r\n`);
    while (!head.includes(0x0a)) {
      const [d] = (await Promise.race([once(sock, "data"), once(sock, "close").then(() => [null])])) as [Buffer | null];
      if (d === null) throw new Error("closed");
      head = Buffer.concat([head, d]);
    }
  } catch {
    sock.destroy();
    throw new DropbearExit(1, "closed before its version line");
  }
  sock.pause();
  const nl = head.indexOf(0x0a);
  sock.unshift(head.subarray(nl + 1));
  const seen: number[] = [];
  const ses = kexClient(new StreamFd(sock), [], [
    // What the server answers is noted and dropped; USERAUTH_SUCCESS lets it send the rest.
    ...[5, 6, 51, 52, 53, 60, 61, 80, 81, 82, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100].map((type) => ({
      type,
      handler: (s: sshsession) => {
        seen.push(type);
        if (type === 52) s.authstate.authdone = true;
      },
    })),
  ]);
  ses.remoteident = head.subarray(0, nl).toString("latin1").replace(/\r$/, "");
  kexfirstinitialise(ses);
  send_msg_kexinit(ses);
  await pump([ses], () => ses.kexstate.donefirstkex && ses.newkeys === null);
  return { ses, sock, seen };
}

/** Queue one payload (type byte first) under the session's keys and write it out. */
function sendPayload(ses: sshsession, sock: net.Socket, p: Buffer): void {
  buf_putbytes(ses.writepayload, p);
  encrypt_packet(ses);
  while (!isempty(ses.writequeue) && !sock.destroyed) write_packet(ses);
}

/**
 * EOF, then read (and drop) what the server still says until it closes the connection:
 * "closed", or "hung" if it has not HANG_MS later.
 */
async function finish(sock: net.Socket): Promise<"closed" | "hung"> {
  const closed = new Promise<"closed">((res) => (sock.destroyed ? res("closed") : sock.once("close", () => res("closed"))));
  sock.end();
  sock.on("readable", () => {
    while (sock.read() !== null);
  });
  sock.read(0);
  let timer: NodeJS.Timeout | undefined;
  const o = await Promise.race([closed, new Promise<"hung">((res) => (timer = setTimeout(() => res("hung"), HANG_MS)))]);
  clearTimeout(timer);
  sock.destroy();
  return o;
}

/** Payloads a client sends once keyed (type byte first): each is a mutation seed. */
function keyedSeeds(r: () => number): Buffer[] {
  const user = ["root", "nobody", "no-such-user-dbts", ""][Math.floor(r() * 4)]!;
  const req = (...rest: Buffer[]): Buffer => Buffer.concat([Buffer.of(50), sshString(user), sshString("ssh-connection"), ...rest]);
  return [
    Buffer.concat([Buffer.of(5), sshString("ssh-userauth")]),
    req(sshString("none")),
    req(sshString("password"), Buffer.of(0), sshString("hunter2")),
    req(sshString("publickey"), Buffer.of(0), sshString("ssh-ed25519"), sshString(Buffer.concat([sshString("ssh-ed25519"), sshString(bytes(r, 32))]))),
    req(sshString("publickey"), Buffer.of(1), sshString("ssh-ed25519"), sshString(Buffer.concat([sshString("ssh-ed25519"), sshString(bytes(r, 32))])), sshString(bytes(r, 83))),
    req(sshString("keyboard-interactive"), sshString(""), sshString("")),
    Buffer.concat([Buffer.of(2), sshString(bytes(r, 20))]),
    Buffer.concat([Buffer.of(4), Buffer.of(1), sshString("debug"), sshString("")]),
    kexinit(KEX[Math.floor(r() * KEX.length)]!, false),
    Buffer.concat([Buffer.of(80), sshString("tcpip-forward"), Buffer.of(1), sshString(""), u32(0)]),
    Buffer.concat([Buffer.of(90), sshString("session"), u32(0), u32(1 << 20), u32(32768)]),
    Buffer.concat([Buffer.of(Math.floor(r() * 256)), bytes(r, Math.floor(r() * 40))]),
  ];
}

/** Channel and global traffic of a logged-in client (no exec or shell: nothing is run). */
function sessionSeeds(r: () => number, echoPort: number, home: string): Buffer[] {
  // The server numbers channels from 0 in the order they are opened: the first two seeds.
  const chan = u32(r() < 0.9 ? Math.floor(r() * 2) : Math.floor(r() * 2 ** 32));
  const req = (name: string, want: number, ...rest: Buffer[]): Buffer => Buffer.concat([Buffer.of(98), chan, sshString(name), Buffer.of(want), ...rest]);
  return [
    Buffer.concat([Buffer.of(90), sshString("session"), u32(0), u32(1 << 20), u32(32768)]),
    Buffer.concat([Buffer.of(90), sshString("direct-tcpip"), u32(1), u32(65536), u32(16384), sshString("127.0.0.1"), u32(echoPort), sshString("127.0.0.1"), u32(5555)]),
    req("pty-req", 1, sshString("xterm"), u32(80), u32(24), u32(0), u32(0), sshString(Buffer.of(3, 0, 0, 0, 127, 0))),
    req("env", 1, sshString("LANG"), sshString("C")),
    req("window-change", 0, u32(100), u32(30), u32(0), u32(0)),
    req("signal", 0, sshString("TERM")),
    req("auth-agent-req@openssh.com", 1),
    req("x11-req", 1, Buffer.of(0), sshString("MIT-MAGIC-COOKIE-1"), sshString("00"), u32(0)),
    Buffer.concat([Buffer.of(94), chan, sshString(bytes(r, Math.floor(r() * 3000)))]),
    Buffer.concat([Buffer.of(95), chan, u32(1), sshString(bytes(r, 20))]),
    Buffer.concat([Buffer.of(93), chan, u32(INTERESTING32[Math.floor(r() * INTERESTING32.length)]!)]),
    Buffer.concat([Buffer.of(96), chan]),
    Buffer.concat([Buffer.of(97), chan]),
    Buffer.concat([Buffer.of(80), sshString("tcpip-forward"), Buffer.of(1), sshString("127.0.0.1"), u32(0)]),
    Buffer.concat([Buffer.of(80), sshString("cancel-tcpip-forward"), Buffer.of(1), sshString("127.0.0.1"), u32(1 + Math.floor(r() * 65535))]),
    Buffer.concat([Buffer.of(80), sshString("streamlocal-forward@openssh.com"), Buffer.of(1), sshString(join(home, `s${Math.floor(r() * 4)}`))]),
    Buffer.concat([Buffer.of(80), sshString("keepalive@openssh.com"), Buffer.of(1)]),
    Buffer.concat([Buffer.of(2), sshString(bytes(r, 8))]),
  ];
}

describe(`raw-socket fuzzing of our dropbear (seed ${SEED}, ${ITERATIONS} connections or ${SECONDS} s)`, () => {
  itWithPeers(
    ["ssh"],
    "every mutated handshake ends its connection cleanly, and a real client is served after",
    async () => {
      const end = Date.now() + SECONDS * 1000;
      const outcomes = { closed: 0, hung: 0, refused: 0 };
      let served = 0;
      let attempts = 0;
      const worker = async (): Promise<void> => {
        while (served < ITERATIONS && Date.now() < end) {
          const r = rngFor(1, attempts++);
          const pool = seeds(r);
          const data = mutate(pool[Math.floor(r() * pool.length)]!, r);
          const o = await poke(ours.server.port, data, r);
          outcomes[o]++;
          if (o === "refused") await room();
          else served++;
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      // Each connection reached a connection process (after waiting for room if need be),
      // which ended it.
      expect(outcomes.closed).toBe(served);
      expect(outcomes.hung).toBe(0);
      expect(served).toBeGreaterThan(0);
      // Every connection process is gone once its client is (they saw EOF at worst), and each
      // said why in its exit line: one that died of anything else would say nothing.
      await expect.poll(() => connectionsOf(ours.server.child.pid!).length, { timeout: 15_000 }).toBe(0);
      await expect.poll(() => silentConnections(ours.server.log()), { timeout: 10_000 }).toEqual([]);
      expect(ours.server.log()).toMatch(/Exit before auth from </);
      expect(ours.server.child.exitCode).toBeNull();
      const crash = CRASH.exec(ours.server.log());
      expect(crash === null ? "" : ours.server.log().slice(Math.max(0, crash.index - 400), crash.index + 800), `seed ${SEED}`).toBe("");
      const ssh = await run(
        PEERS.ssh,
        ["-v", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=none", "-p", String(ours.server.port), "nobody@127.0.0.1", "true"],
        { timeoutMs: 20_000 },
      );
      expect(ssh.stderr).toMatch(/SSH2_MSG_SERVICE_ACCEPT received/);
    },
    (SECONDS + 60) * 1000,
  );

  itWithPeers(
    ["ssh"],
    "after a real key exchange, mutated service, auth and other packets end each connection cleanly",
    async () => {
      const end = Date.now() + SECONDS * 1000;
      const before = ours.server.log().length;
      const outcomes = { closed: 0, hung: 0, sent: 0 };
      let connections = 0;
      const worker = async (): Promise<void> => {
        while (connections < Math.ceil(ITERATIONS / 5) && Date.now() < end) {
          const c = await keyedOrRefused(ours.server.port);
          if (c === null) continue;
          const r = rngFor(2, connections++);
          const { ses, sock } = c;
          // A real service request first, so userauth is reached; then mutated packets.
          const payloads = [keyedSeeds(r)[0]!, ...Array.from({ length: 1 + Math.floor(r() * 12) }, () => {
            const pool = keyedSeeds(r);
            const m = mutate(pool[Math.floor(r() * pool.length)]!, r);
            return m.length > 0 ? m : Buffer.of(2);
          })];
          try {
            for (const p of payloads) {
              if (sock.destroyed) break;
              sendPayload(ses, sock, p);
              outcomes.sent++;
            }
          } catch (e) {
            // The server ended it already: our write saw the socket go.
            if (!(e instanceof DropbearExit)) throw e;
          }
          outcomes[await finish(sock)]++;
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      expect(outcomes.hung).toBe(0);
      expect(outcomes.closed).toBe(connections);
      expect(outcomes.sent).toBeGreaterThan(connections);
      await expect.poll(() => connectionsOf(ours.server.child.pid!).length, { timeout: 15_000 }).toBe(0);
      await expect.poll(() => silentConnections(ours.server.log()), { timeout: 10_000 }).toEqual([]);
      const log = ours.server.log().slice(before);
      const crash = CRASH.exec(log);
      expect(crash === null ? "" : log.slice(Math.max(0, crash.index - 400), crash.index + 800), `seed ${SEED}`).toBe("");
      expect(ours.server.child.exitCode).toBeNull();
    },
    (SECONDS + 60) * 1000,
  );

  itAsRoot(
    ["ssh"],
    "logged in, mutated channel and global requests end each connection cleanly",
    async () => {
      const USER = "dbtsfuzz";
      const PASSWORD = "fuzz-pw-1";
      const { home } = addTestUser(USER, { password: PASSWORD });
      const echo = await startEchoTarget();
      try {
        const end = Date.now() + SECONDS * 1000;
        const before = ours.server.log().length;
        const outcomes = { closed: 0, hung: 0, sent: 0, loggedIn: 0 };
        let connections = 0;
        const worker = async (): Promise<void> => {
          while (connections < Math.ceil(ITERATIONS / 5) && Date.now() < end) {
            const c = await keyedOrRefused(ours.server.port);
            if (c === null) continue;
            const r = rngFor(3, connections++);
            const { ses, sock, seen } = c;
            try {
              sendPayload(ses, sock, Buffer.concat([Buffer.of(5), sshString("ssh-userauth")]));
              sendPayload(ses, sock, Buffer.concat([Buffer.of(50), sshString(USER), sshString("ssh-connection"), sshString("password"), Buffer.of(0), sshString(PASSWORD)]));
              await pump([ses], () => seen.includes(52));
              outcomes.loggedIn++;
              // A session channel and a direct-tcpip one (to the echo target) first, as they are.
              for (const p of sessionSeeds(r, echo.port, home).slice(0, 2)) sendPayload(ses, sock, p);
              for (let i = 0; i < 1 + Math.floor(r() * 15) && !sock.destroyed; i++) {
                const pool = sessionSeeds(r, echo.port, home);
                const p = pool[Math.floor(r() * pool.length)]!;
                // Half go as they are, to get the channels open the rest pick at.
                const m = r() < 0.5 ? p : mutate(p, r);
                sendPayload(ses, sock, m.length > 0 ? m : Buffer.of(2));
                outcomes.sent++;
              }
            } catch (e) {
              // The server ended it already: our read or write saw the socket go.
              if (!(e instanceof DropbearExit)) throw e;
            }
            outcomes[await finish(sock)]++;
          }
        };
        await Promise.all(Array.from({ length: PARALLEL }, worker));
        expect(outcomes.hung).toBe(0);
        expect(outcomes.closed).toBe(connections);
        expect(outcomes.loggedIn).toBe(connections);
        await expect.poll(() => connectionsOf(ours.server.child.pid!).length, { timeout: 15_000 }).toBe(0);
        await expect.poll(() => silentConnections(ours.server.log()), { timeout: 10_000 }).toEqual([]);
        const log = ours.server.log().slice(before);
        expect(log).toMatch(new RegExp(`Exit \\(${USER}\\) from <`));
        const crash = CRASH.exec(log);
        expect(crash === null ? "" : log.slice(Math.max(0, crash.index - 400), crash.index + 800), `seed ${SEED}`).toBe("");
        expect(ours.server.child.exitCode).toBeNull();
      } finally {
        await echo.close();
        removeTestUser(USER);
      }
    },
    (SECONDS + 60) * 1000,
  );
});
