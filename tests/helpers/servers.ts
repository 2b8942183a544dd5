import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import type { Readable } from "node:stream";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { PEERS } from "./peers.js";
import { connectionsOf } from "./procs.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Our programs' launchers (compiled JS run by plain node, as users run them). */
export const OURS = {
  dropbear: join(ROOT, "apps/dropbear/bin/dropbear"),
  dbclient: join(ROOT, "apps/dbclient/bin/dbclient"),
  dropbearkey: join(ROOT, "apps/dropbearkey/bin/dropbearkey"),
  dropbearconvert: join(ROOT, "apps/dropbearconvert/bin/dropbearconvert"),
} as const;

/** Generate a key with our dropbearkey at `path` (its public half at `path`.pub); throws if it fails. */
export function ourKeygen(path: string, type = "ed25519"): string {
  const r = spawnSync(process.execPath, [OURS.dropbearkey, "-t", type, "-f", path], { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`dropbearkey -t ${type} -f ${path}: ${r.stderr}`);
  }
  return path;
}

/**
 * Generate an OpenSSH key with ssh-keygen at `path` (0600, its public half at `path`.pub); throws
 * if it fails.
 */
export function opensshKeygen(path: string, opts: { type?: string; bits?: number; passphrase?: string; comment?: string } = {}): string {
  const args = ["-q", "-t", opts.type ?? "ed25519", "-N", opts.passphrase ?? "", "-f", path];
  if (opts.bits !== undefined) args.push("-b", String(opts.bits));
  if (opts.comment !== undefined) args.push("-C", opts.comment);
  const r = spawnSync(PEERS["ssh-keygen"], args, { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`ssh-keygen ${args.join(" ")}: ${r.stderr}`);
  }
  chmodSync(path, 0o600);
  return path;
}

/** A scratch directory removed by the returned cleanup. */
export function scratch(prefix = "dbts-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export { privateScratch } from "./private-scratch.js";

/**
 * Where freePort looks: below the kernel's ephemeral range (32768-60999 by default), which an
 * outgoing connection of another test can take between freePort's check and the server's bind
 * (it did: "Address already in use"), and in a slice of its own for each vitest worker.
 */
const FREE_PORT_BASE = 12_000;
const FREE_PORT_SLICE = 2_500;
const FREE_PORT_SLICES = 8;
let nextFreePort = -1;

/** Whether `port` can be bound on 127.0.0.1 now (the listener is closed at once). */
async function bindable(port: number): Promise<boolean> {
  const s = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", resolve);
    });
  } catch {
    return false;
  }
  await new Promise<void>((r) => s.close(() => r()));
  return true;
}

/** A loopback port free right now, from this worker's slice (FREE_PORT_BASE). */
export async function freePort(): Promise<number> {
  const slice = Number(process.env.VITEST_POOL_ID ?? 0) % FREE_PORT_SLICES;
  const first = FREE_PORT_BASE + slice * FREE_PORT_SLICE;
  // A random start, so that runs one after another do not meet their own TIME_WAITs first.
  if (nextFreePort < 0) nextFreePort = Math.floor(Math.random() * FREE_PORT_SLICE);
  for (let tries = 0; tries < FREE_PORT_SLICE; tries++) {
    const port = first + (nextFreePort++ % FREE_PORT_SLICE);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${first}-${first + FREE_PORT_SLICE - 1}`);
}

/** Whether a connect to `to` succeeds now (the connection is closed at once). */
function accepts(to: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(to);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Resolves once something accepts on port (bounded), rejects if `child` exits or dies first. */
export async function waitPort(port: number, child: ChildProcess | null, log: () => string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // A signal's death (a crash) too: it leaves exitCode null.
    if (child !== null && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`process ${child.pid} exited (${child.exitCode ?? child.signalCode}) before listening:\n${log()}`);
    }
    if (await accepts({ port, host: "127.0.0.1" })) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${port} after ${ms} ms:\n${log()}`);
}

/**
 * An OpenSSH ssh-agent in the foreground with its socket at `sock`, resolved once it accepts there.
 * The socket file appears at bind, before listen: waiting for the file alone lets a quick ssh-add
 * find it refusing connections.
 */
export async function startSshAgent(sock: string, ms = 15_000, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const agent = spawn(PEERS["ssh-agent"], ["-D", "-a", sock], { stdio: "ignore", env: { ...process.env, ...env } });
  const end = Date.now() + ms;
  for (;;) {
    if (agent.exitCode !== null || agent.signalCode !== null) throw new Error(`ssh-agent exited (${agent.exitCode ?? agent.signalCode}) before listening on ${sock}`);
    if (await accepts({ path: sock })) return agent;
    if (Date.now() > end) {
      agent.kill();
      throw new Error(`ssh-agent not accepting on ${sock} after ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Resolves once the server has logged "Not backgrounding" (Dropbear's -F line, written after
 * every listener is bound; what Dropbear's own test suite waits for), rejects if it exits first.
 * A port probe alone can be answered by another test's process that took the port meanwhile.
 */
async function waitListening(s: Server, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!/Not backgrounding/.test(s.log())) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) {
      throw new Error(`server exited (${s.child.exitCode ?? s.child.signalCode}) before listening:\n${s.log()}`);
    }
    if (Date.now() > end) {
      throw new Error(`server not listening after ${ms} ms:\n${s.log()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A server process under test: its port, what it logged, and a stop. */
export interface Server {
  port: number;
  child: ChildProcess;
  log: () => string;
  stop: () => Promise<void>;
}

function track(child: ChildProcess, port: number): Server {
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  return {
    port,
    child,
    log: () => out,
    stop: () => terminate(child),
  };
}

/**
 * Our dropbear in the foreground, logging to stderr, on a fresh loopback port. `launcher` runs
 * it through another program that execs it (e.g. `prlimit --nofile=56:56`), keeping the pid.
 * Without `probe`, returned once it says it listens, with no connection made to it.
 */
export async function startOurDropbear(args: string[], env: NodeJS.ProcessEnv = {}, launcher: string[] = [], probe = true): Promise<Server> {
  const port = await freePort();
  const argv = [...launcher, process.execPath, OURS.dropbear, "-F", "-E", "-p", `127.0.0.1:${port}`, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const s = track(child, port);
  await waitListening(s);
  if (!probe) return s;
  await waitPort(port, child, s.log);
  // waitPort's probe was a connection: its process holds one of the daemon's unauthenticated
  // slots (MAX_UNAUTH_CLIENTS, and MAX_UNAUTH_PER_IP for 127.0.0.1) until it has gone.
  const probeGone = (): boolean => /Exit before auth from <127\.0\.0\.1:/.test(s.log()) && connectionsOf(child.pid!).length === 0;
  for (const end = Date.now() + 10_000; !probeGone() && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return s;
}

/** Our dropbear with a fresh ed25519 host key made in `dir`: the usual server under test. */
export async function startOurDropbearWithHostKey(dir: string, args: string[] = []): Promise<Server> {
  return (await startOurDropbearWithHostKeys(dir, ["ed25519"], args)).server;
}

/**
 * Our dropbear with a fresh host key of each of `types` made in `dir` (hk_<type>, its public
 * half beside it), given to it with -r in that order; the key files come back with it.
 */
export async function startOurDropbearWithHostKeys(dir: string, types: readonly string[], args: string[] = []): Promise<{ server: Server; hostKeys: string[] }> {
  const hostKeys = types.map((t) => ourKeygen(join(dir, `hk_${t}`), t));
  const server = await startOurDropbear([...hostKeys.flatMap((k) => ["-r", k]), ...args]);
  return { server, hostKeys };
}

/**
 * One such server for a whole test file: started in beforeAll, stopped (and its scratch
 * directory removed) in afterAll. Read `.server` inside tests.
 */
export function useOurDropbear(prefix: string): { readonly server: Server } {
  const work = scratch(prefix);
  let server: Server | null = null;
  beforeAll(async () => {
    server = await startOurDropbearWithHostKey(work.dir);
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
    work.cleanup();
  });
  return {
    get server(): Server {
      if (server === null) throw new Error("useOurDropbear: the server is read before beforeAll ran");
      return server;
    },
  };
}

/** Debian's dropbear in the foreground on a fresh loopback port. */
export async function startDebianDropbear(args: string[]): Promise<Server> {
  const port = await freePort();
  const child = spawn(PEERS.dropbear, ["-F", "-E", "-p", `127.0.0.1:${port}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const s = track(child, port);
  await waitListening(s);
  await waitPort(port, child, s.log);
  return s;
}

/**
 * OpenSSH's sshd on a fresh loopback port, logging at DEBUG1 to stderr, with `config` lines
 * appended to a minimal config. Host keys are made for it in `dir`.
 */
export async function startSshd(dir: string, config: string[] = []): Promise<Server> {
  mkdirSync("/run/sshd", { recursive: true });
  const port = await freePort();
  const keys: string[] = [];
  for (const [t, bits] of [
    ["ed25519", ""],
    ["ecdsa", "256"],
    ["rsa", "2048"],
  ]) {
    const f = join(dir, `ssh_host_${t}_key`);
    keys.push(f);
    if (!existsSync(f)) {
      const args = ["-q", "-t", t!, "-N", "", "-f", f];
      if (bits) args.push("-b", bits);
      const r = spawn(PEERS["ssh-keygen"], args, { stdio: "ignore" });
      await once(r, "exit");
    }
  }
  const cfg = join(dir, `sshd_config_${port}`);
  writeFileSync(
    cfg,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      ...keys.map((k) => `HostKey ${k}`),
      `PidFile ${join(dir, `sshd_${port}.pid`)}`,
      "UsePAM no",
      "StrictModes no",
      "LogLevel DEBUG1",
      ...config,
    ].join("\n") + "\n",
  );
  const child = spawn(PEERS.sshd, ["-D", "-e", "-f", cfg], { stdio: ["ignore", "pipe", "pipe"] });
  const s = track(child, port);
  await waitPort(port, child, s.log);
  return s;
}


/** What a client run printed and how it ended. */
export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * End a child: SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves on its exit.
 * The grace matters for OpenSSH 9.2's ssh: it checks its quit flag and then calls poll() without
 * a signal mask, so a SIGTERM landing between the two waits for the next event (for a session
 * running `sleep 60`, a minute).
 */
export async function terminate(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(timer);
}

/**
 * A child's exit status, once it has exited and its stdout and stderr have been read to the
 * end: "exit" can come before the last of its output has been read. A descendant that still
 * holds the pipes (a daemon that kept them) is not waited for beyond `drainMs`.
 */
export async function exited(child: ChildProcess, drainMs = 2000): Promise<number | null> {
  const [status] = (await once(child, "exit")) as [number | null];
  const open = [child.stdout, child.stderr].filter((s): s is Readable => s !== null && !s.readableEnded && !s.destroyed);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(open.map((s) => once(s, "end").catch(() => undefined))),
    new Promise((r) => {
      timer = setTimeout(r, drainMs);
    }),
  ]);
  clearTimeout(timer);
  return status;
}

/** Run a program to completion (bounded by `timeoutMs`, then killed). */
export async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  const r = await runBytes(cmd, args, opts);
  return { status: r.status, stdout: r.out.toString(), stderr: r.err };
}

/** What a program run by runBytes printed, as bytes, and how it ended. */
export interface BytesResult {
  status: number | null;
  out: Buffer;
  err: string;
}

/** Run a program to completion with `input` (bytes) on its stdin; its stdout kept as bytes (bounded by `timeoutMs`, then killed). */
export async function runBytes(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: Buffer | string; timeoutMs?: number; cwd?: string } = {}): Promise<BytesResult> {
  const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"], cwd: opts.cwd });
  const out: Buffer[] = [];
  let err = "";
  child.stdout.on("data", (d: Buffer) => out.push(d));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  // A program that exits without reading its input (EPIPE) is not the caller's error.
  child.stdin.on("error", () => undefined);
  child.stdin.end(opts.input ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const status = await exited(child);
  clearTimeout(timer);
  return { status, out: Buffer.concat(out), err };
}

/**
 * Run a program that leaves a background copy holding its stdout and stderr (as C's daemon(0, 1)
 * leaves them), with both written to `file`: its status comes once the program itself has
 * exited, where through pipes exited() waited out its 2 s for an end the copy holds off.
 * `output` reads the file as it is when called (the copy may write to it later).
 */
export async function runDetaching(
  cmd: string,
  args: string[],
  file: string,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<{ status: number | null; output: () => string }> {
  const fd = openSync(file, "w");
  const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ["pipe", fd, fd], cwd: opts.cwd });
  closeSync(fd);
  // (A pipe ended at once, as runBytes gives; spawn's types leave it nullable with fds beside it.)
  child.stdin?.on("error", () => undefined);
  child.stdin?.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const status = await exited(child);
  clearTimeout(timer);
  return { status, output: () => readFileSync(file, "utf8") };
}

/**
 * A TCP server on 127.0.0.1 that reads each connection to its end and answers with the SHA-256
 * (hex) of what it read: the far end of a forwarded connection.
 */
export async function startHashSink(): Promise<{ port: number; close: () => void }> {
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    const h = createHash("sha256");
    sock.on("data", (d: Buffer) => h.update(d));
    sock.on("end", () => sock.end(h.digest("hex")));
    sock.on("error", () => undefined);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** A fresh HOME in `dir` (named `name`) whose ~/.ssh/known_hosts holds `lines`. */
export function homeWithKnownHosts(dir: string, name: string, lines: string[]): string {
  const h = join(dir, name);
  mkdirSync(join(h, ".ssh"), { recursive: true, mode: 0o700 });
  writeFileSync(join(h, ".ssh", "known_hosts"), lines.map((l) => `${l}\n`).join(""));
  return h;
}

/** The "type base64" of an OpenSSH public key file, without its comment: a known_hosts entry's key. */
export function publicKeyLine(pubPath: string): string {
  return readFileSync(pubPath, "utf8").trim().split(" ").slice(0, 2).join(" ");
}

/** SHA-256 of `b`, in hex. */
export const sha256hex = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/**
 * A peer helper (tests/helpers/*-peer.*) that listens and prints {"port":N} as its first line,
 * then serves until its stdin closes: its port, and a stop that closes its stdin and waits for
 * its exit.
 */
export async function startPeerServer(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const [line] = (await once(lines, "line")) as [string];
  lines.close();
  return {
    port: (JSON.parse(line) as { port: number }).port,
    stop: async () => {
      child.stdin.end();
      await exited(child);
    },
  };
}

/**
 * Our dropbear with an Ed25519, an ECDSA and an RSA host key (made in `dir`), for a peer that
 * is to check each: with the SHA256 fingerprint (as ssh-keygen -l prints it) of the key each
 * host key algorithm shows.
 */
export async function startOurDropbearForEveryHostKey(dir: string): Promise<{ server: Server; fingerprints: Map<string, string> }> {
  const { server, hostKeys } = await startOurDropbearWithHostKeys(dir, ["ed25519", "ecdsa", "rsa"]);
  const fingerprints = new Map<string, string>();
  for (const [i, algos] of [["ssh-ed25519"], ["ecdsa-sha2-nistp256"], ["rsa-sha2-256", "rsa-sha2-512"]].entries()) {
    const fp = spawnSync(PEERS["ssh-keygen"], ["-l", "-f", `${hostKeys[i]!}.pub`], { encoding: "utf8" });
    for (const a of algos) fingerprints.set(a, fp.stdout.split(" ")[1]!);
  }
  return { server, fingerprints };
}

/** Our dbclient, run by node. */
export function runOurClient(args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  return run(process.execPath, [OURS.dbclient, ...args], opts);
}
