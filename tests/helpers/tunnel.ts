import { spawn, type ChildProcess } from "node:child_process";
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { terminate, waitPort } from "./servers.js";

// Port-forwarding test helpers: targets behind a tunnel, and clients that push data through it
// and check every byte (sha256 of what was sent against what arrived, both ways). Every client
// connection sends its own bytes, so two channels that swapped streams fail the hash check.

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Random bytes made once per process and reused by every transfer (slices of it). */
let pool: Buffer | null = null;
export function payload(n: number): Buffer {
  if (pool === null || pool.length < n) {
    pool = randomBytes(Math.max(n, 64 * 1024 * 1024));
  }
  return pool.subarray(0, n);
}

/**
 * n bytes fixed by `seed` (an AES-128-CTR keystream under a key derived from it): reproducible,
 * and different for every seed, so each connection's stream can be told from the others'.
 */
export function seededPayload(seed: number, n: number): Buffer {
  const key = createHash("sha256").update(`dropbear-ts tunnel payload ${seed}`).digest().subarray(0, 16);
  const ctr = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  const out = Buffer.allocUnsafe(n);
  const zeros = Buffer.alloc(Math.min(n, 1 << 20));
  for (let off = 0; off < n; off += zeros.length) {
    ctr.update(zeros.subarray(0, Math.min(zeros.length, n - off))).copy(out, off);
  }
  return out;
}

/** The next connection's seed: each round trip in this process gets a fresh one. */
let lastSeed = 0;
export function nextSeed(): number {
  return ++lastSeed;
}

/** A TCP target on 127.0.0.1: its port, the hash of everything each connection sent it, and a close. */
export interface Target {
  port: number;
  /** sha256 of what each finished connection delivered, in completion order. */
  received: string[];
  /** Connections accepted so far. */
  accepted: () => number;
  close: () => Promise<void>;
}

async function listenTarget(onConn: (s: net.Socket, done: (hash: string) => void) => void): Promise<Target> {
  const received: string[] = [];
  const socks = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    socks.add(s);
    s.on("close", () => socks.delete(s));
    s.on("error", () => undefined);
    onConn(s, (h) => received.push(h));
  });
  // A deep backlog: a thousand tunnelled connects may arrive at once.
  server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 });
  await once(server, "listening");
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    accepted: () => accepted,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Echoes every byte back (each direction with its own flow control) and records a hash of what came in. */
export function startEchoTarget(): Promise<Target> {
  return listenTarget((s, done) => {
    const h = createHash("sha256");
    s.on("data", (d: Buffer) => {
      h.update(d);
      if (!s.write(d)) {
        s.pause();
        s.once("drain", () => s.resume());
      }
    });
    s.on("end", () => {
      done(h.digest("hex"));
      s.end();
    });
  });
}

/**
 * Reads the whole request (until the client's EOF), then answers with the request's hash
 * (64 hex chars) followed by `replyBytes` of payload, and closes: the half-close case.
 */
export function startReplyTarget(replyBytes: number): Promise<Target> {
  return listenTarget((s, done) => {
    const h = createHash("sha256");
    s.on("data", (d: Buffer) => h.update(d));
    s.on("end", () => {
      const hex = h.digest("hex");
      done(hex);
      s.write(hex);
      s.end(payload(replyBytes));
    });
  });
}

/** Sends `n` bytes of payload to each connection as fast as it is taken, then closes. */
export function startSourceTarget(n: number): Promise<Target> {
  return listenTarget((s, done) => {
    s.resume();
    s.end(payload(n));
    done("");
  });
}

/** What one connection through the tunnel saw. */
export interface RoundTrip {
  /** The seed of the bytes this connection sent (seededPayload). */
  seed: number;
  sentHash: string;
  gotHash: string;
  got: number;
}

/**
 * Send `n` bytes of this connection's own payload to host:port and read until the far end
 * closes, hashing both; the tunnel must deliver the echo byte for byte. Rejects on socket
 * errors or after `ms`.
 */
export function echoRoundTrip(port: number, n: number, host = "127.0.0.1", ms = 120_000): Promise<RoundTrip> {
  return new Promise((resolve, reject) => {
    const seed = nextSeed();
    const data = seededPayload(seed, n);
    const s = net.connect({ port, host, allowHalfOpen: true });
    const h = createHash("sha256");
    let got = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`timeout after ${ms} ms: got ${got}/${n}`));
    }, ms);
    s.on("connect", () => {
      // Chunks of 256 KiB, so the echo can start while we send.
      let off = 0;
      const pump = (): void => {
        while (off < n) {
          const end = Math.min(n, off + 256 * 1024);
          const ok = s.write(data.subarray(off, end));
          off = end;
          if (!ok) {
            s.once("drain", pump);
            return;
          }
        }
        s.end();
      };
      pump();
    });
    s.on("data", (d: Buffer) => {
      got += d.length;
      h.update(d);
    });
    s.on("end", () => {
      clearTimeout(timer);
      resolve({ seed, sentHash: sha256(data), gotHash: h.digest("hex"), got });
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * Send a request of `n` bytes (this connection's own), half-close, then read the reply to its
 * end: the reply's first 64 bytes are the target's hash of the request, the rest is
 * `replyBytes` of payload.
 */
export function halfCloseRequest(port: number, n: number): Promise<{ requestHashOk: boolean; replyOk: boolean; replyLen: number }> {
  return new Promise((resolve, reject) => {
    const data = seededPayload(nextSeed(), n);
    const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.on("connect", () => s.end(data));
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("end", () => {
      const all = Buffer.concat(chunks);
      const hex = all.subarray(0, 64).toString("latin1");
      const reply = all.subarray(64);
      resolve({ requestHashOk: hex === sha256(data), replyOk: sha256(reply) === sha256(payload(reply.length)), replyLen: reply.length });
    });
    s.on("error", reject);
  });
}

/** Connect and wait for the far end to close: what a refused forward looks like locally. */
export function connectExpectClose(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    let got = 0;
    s.on("data", (d: Buffer) => (got += d.length));
    s.on("close", () => resolve(got));
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? resolve(got) : reject(e)));
  });
}

/** A long-running tunnel client (ssh -N / dbclient -N) and what it printed. */
export interface Tunnel {
  child: ChildProcess;
  log: () => string;
  alive: () => boolean;
  stop: () => Promise<void>;
}

/** Start a client and wait until `port` (its -L) accepts; the probe connection is harmless. */
export async function startTunnel(cmd: string, args: string[], port: number, env: NodeJS.ProcessEnv = {}): Promise<Tunnel> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const t: Tunnel = {
    child,
    log: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: () => terminate(child),
  };
  try {
    await waitPort(port, child, () => out, 30_000);
  } catch (e) {
    // Never leave a client behind: the caller only learns of it on success.
    await t.stop();
    throw e;
  }
  return t;
}

/** Resident memory of a process in bytes (Linux /proc), 0 once it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Connect, read nothing for `stallMs` while sampling `sample()` every 100 ms, then read
 * everything to the end. Returns the samples and the hash and length of what arrived.
 */
export function slowReader(port: number, stallMs: number, sample: () => void): Promise<{ got: number; gotHash: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.pause();
    const h = createHash("sha256");
    let got = 0;
    const timer = setInterval(sample, 100);
    setTimeout(() => {
      clearInterval(timer);
      s.on("data", (d: Buffer) => {
        got += d.length;
        h.update(d);
      });
      s.resume();
    }, stallMs);
    s.on("end", () => resolve({ got, gotHash: h.digest("hex") }));
    s.on("error", reject);
  });
}

/**
 * Check a batch of concurrent round trips through an echo target: all distinct, each got back
 * exactly its own bytes, and the target received exactly each one's bytes (both directions,
 * so two channels that swapped streams fail).
 */
export function ownBytesBothWays(rs: readonly RoundTrip[], n: number, target: Target): string[] {
  const problems: string[] = [];
  const sent = new Set(rs.map((r) => r.sentHash));
  if (sent.size !== rs.length) problems.push(`only ${sent.size} distinct payloads for ${rs.length} connections`);
  for (const r of rs) {
    if (r.got !== n) problems.push(`connection ${r.seed}: got ${r.got}/${n} bytes back`);
    else if (r.gotHash !== r.sentHash) problems.push(`connection ${r.seed}: got back bytes that are not its own`);
    if (!target.received.includes(r.sentHash)) problems.push(`connection ${r.seed}: the target never received its bytes`);
  }
  return problems;
}

/** sha256 of the first n bytes of the shared payload. */
export function payloadHash(n: number): string {
  return sha256(payload(n));
}
