import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { MAX_UNAUTH_PER_IP } from "@dropbear-ts/options";
import { IS_ROOT, PEERS, PYTHON, hasAsyncssh, itAsyncssh } from "./helpers/peers.js";
import { OURS, freePort, opensshKeygen, ourKeygen, runOurClient, scratch, startOurDropbear, startSshAgent, type RunResult, type Server } from "./helpers/servers.js";
import { refusedPort } from "./helpers/sockets.js";
import { echoRoundTrip, startEchoTarget, startTunnel, type Target } from "./helpers/tunnel.js";
import { addTestUser, authorizeKeys, removeTestUser, type TestUser } from "./helpers/users.js";

// A third SSH implementation, both ways: Debian's python3-asyncssh (2.10) as the client of our
// dropbear and as the server of our dbclient. It is independent of OpenSSH and Dropbear, so
// it finds where we lean on their tolerance rather than on the RFCs. One python process serves
// each direction for the whole file (tests/helpers/asyncssh-client.py answers JSON requests,
// tests/helpers/asyncssh-server.py listens), and one dropbear of ours serves every case but the
// keepalive one. Where asyncssh 2.10 is off-spec the helpers say so and work around it.

const USER = "dbtsinterop";
/** The password tests/helpers/asyncssh-server.py takes from anyone. */
const ASYNCSSH_PASSWORD = "asyncssh-interop-pw";
const PASSWORD = "Interop-pw-4711";
const ready = IS_ROOT && hasAsyncssh;
const work = scratch("dbts-interop-");
const HELPERS = fileURLToPath(new URL("./helpers/", import.meta.url));

/** What both sides have: our tables (`dropbear -Q …`) against asyncssh 2.10's. */
const KEX = [
  "curve25519-sha256",
  "curve25519-sha256@libssh.org",
  "ecdh-sha2-nistp521",
  "ecdh-sha2-nistp384",
  "ecdh-sha2-nistp256",
  "diffie-hellman-group14-sha256",
  "diffie-hellman-group16-sha512",
];
const AEAD = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com"];
const CTR = ["aes256-ctr", "aes128-ctr"];
const MACS = ["hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"];
const CIPHERS: { cipher: string; mac?: string }[] = [...AEAD.map((cipher) => ({ cipher })), ...CTR.flatMap((cipher) => MACS.map((mac) => ({ cipher, mac })))];
/** Host key signature algorithm → the key type the server shows for it. */
const HOSTKEYS: Record<string, string> = {
  "ssh-ed25519": "ssh-ed25519",
  "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
  "rsa-sha2-256": "ssh-rsa",
  "rsa-sha2-512": "ssh-rsa",
};

/** One JSON reply of a python helper: "ok" false carries "error". */
type Reply = { ok: boolean; error?: string } & Record<string, unknown>;

/** The asyncssh client process: JSON requests in, JSON replies out, matched by id. */
class AsyncsshClient {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private stderr = "";

  constructor(port: number, user: string) {
    this.child = spawn(PYTHON, [join(HELPERS, "asyncssh-client.py"), String(port), user], { stdio: ["pipe", "pipe", "pipe"] });
    let buf = "";
    this.child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const reply = JSON.parse(buf.slice(0, nl)) as Reply & { id: number };
        buf = buf.slice(nl + 1);
        this.waiting.get(reply.id)?.resolve(reply);
        this.waiting.delete(reply.id);
      }
    });
    this.child.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.child.on("exit", (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`asyncssh-client.py exited (${code}):\n${this.stderr}`));
      this.waiting.clear();
    });
  }

  /** One request (bounded: the helper bounds each network wait by 30 s, this by 60 s). */
  call(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = ++this.nextId;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`asyncssh ${op} got no answer in 60 s:\n${this.stderr}`));
      }, 60_000);
      this.waiting.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** As call, but a failed request fails the test with asyncssh's error. */
  async ok(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const r = await this.call(op, args);
    expect(r.error, `${op} ${JSON.stringify(args)}`).toBeUndefined();
    return r;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = once(this.child, "exit");
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await gone;
    clearTimeout(timer);
  }
}

let user: TestUser;
let ours: Server;
let echo: Target;
let py: AsyncsshClient;
const edKey = join(work.dir, "id_ed25519");
const rsaKey = join(work.dir, "id_rsa");
const wrongKey = join(work.dir, "id_wrong");

/** A host key of ours (dropbearkey -t type [-s bits]). */
function hostKey(name: string, type: string, bits?: number): string {
  if (bits === undefined) return ourKeygen(join(work.dir, name), type);
  const f = join(work.dir, name);
  const r = spawnSync(process.execPath, [OURS.dropbearkey, "-t", type, "-s", String(bits), "-f", f], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`dropbearkey -t ${type} -s ${bits}: ${r.stderr}`);
  return f;
}

beforeAll(async () => {
  if (!ready) return;
  user = addTestUser(USER, { password: PASSWORD });
  opensshKeygen(edKey);
  opensshKeygen(rsaKey, { type: "rsa" });
  opensshKeygen(wrongKey);
  authorizeKeys(user, `${edKey}.pub`, `${rsaKey}.pub`);
  const keys = [hostKey("hk_ed25519", "ed25519"), hostKey("hk_ecdsa256", "ecdsa", 256), hostKey("hk_ecdsa384", "ecdsa", 384), hostKey("hk_ecdsa521", "ecdsa", 521), hostKey("hk_rsa", "rsa")];
  ours = await startOurDropbear(keys.flatMap((k) => ["-r", k]));
  echo = await startEchoTarget();
  py = new AsyncsshClient(ours.port, USER);
}, 60_000);

afterAll(async () => {
  await py?.close();
  await ours?.stop();
  await echo?.close();
  if (ready) removeTestUser(USER);
  work.cleanup();
}, 60_000);

/** Run every case, then compare all their answers at once (a failure lists every bad case). */
async function matrix(cases: Record<string, Record<string, unknown>>, expected: (name: string) => unknown): Promise<void> {
  const names = Object.keys(cases);
  const replies = await Promise.all(names.map((n, i) => py.call("echo", { word: `case${i}`, keys: [edKey], ...cases[n] })));
  const got = Object.fromEntries(names.map((n, i) => [n, replies[i]!.ok ? { stdout: replies[i]!.stdout, hostkey: replies[i]!.hostkey } : replies[i]!.error]));
  const want = Object.fromEntries(names.map((n, i) => [n, { stdout: `case${i}\n`, hostkey: expected(n) }]));
  expect(got).toEqual(want);
}

describe("asyncssh client → our dropbear", () => {
  itAsyncssh("every key exchange both have", () => matrix(Object.fromEntries(KEX.map((kex) => [kex, { kex }])), () => "ssh-ed25519"));

  itAsyncssh("every cipher and MAC both have", () =>
    matrix(Object.fromEntries(CIPHERS.map((c) => [`${c.cipher} ${c.mac ?? "(aead)"}`, c])), () => "ssh-ed25519"),
  );

  // All at once: rsa-sha2-256 and -512 connections side by side each get their own signature
  // type (asyncssh's server mixes them up; see the client-side case).
  itAsyncssh("every host key type, RSA with rsa-sha2-256 and -512", () =>
    matrix(Object.fromEntries(Object.keys(HOSTKEYS).map((hostkey) => [hostkey, { hostkey }])), (n) => HOSTKEYS[n]),
  );

  itAsyncssh("publickey auth: ed25519, and RSA signing with rsa-sha2-256 and rsa-sha2-512", () =>
    matrix(
      {
        ed25519: { keys: [edKey] },
        "rsa-sha2-256": { keys: [rsaKey], sig: "rsa-sha2-256" },
        "rsa-sha2-512": { keys: [rsaKey], sig: "rsa-sha2-512" },
      },
      () => "ssh-ed25519",
    ),
  );

  itAsyncssh("as many handshakes at once as MAX_UNAUTH_PER_IP allows, each next one as the last is in: none dropped", async () => {
    // The daemon must stop counting a connection as unauthenticated before its client can
    // learn it is in (C's order), or the next connection finds a sixth slot taken.
    const r = await py.ok("handshakes", { count: 30, at_once: MAX_UNAUTH_PER_IP, keys: [edKey] });
    expect({ failed: r.failed, errors: r.errors }).toEqual({ failed: 0, errors: [] });
  });

  itAsyncssh("password auth", async () => {
    await matrix({ password: { keys: null, password: PASSWORD } }, () => "ssh-ed25519");
    expect(ours.log()).toMatch(new RegExp(`Password auth succeeded for '${USER}'`));
  });

  itAsyncssh("a wrong key is refused, then the right one accepted", async () => {
    const refused = await py.call("auth_fails", { keys: [wrongKey] });
    expect(refused).toMatchObject({ ok: true, denied: true });
    const bad = await py.call("auth_fails", { password: "not-the-password" });
    expect(bad).toMatchObject({ ok: true, denied: true });
    await matrix({ "wrong then right": { keys: [wrongKey, edKey] } }, () => "ssh-ed25519");
  });
});

describe("asyncssh client → our dropbear: sessions and forwarding", () => {
  beforeAll(async () => {
    if (ready) await py.ok("connect", { name: "main", keys: [edKey] });
  }, 60_000);

  itAsyncssh("exec: stdout, stderr and a non-zero exit status", async () => {
    const r = await py.ok("run", { conn: "main", cmd: "echo out; echo err >&2; exit 7" });
    expect(r).toMatchObject({ stdout: "out\n", stderr: "err\n", exit: 7, signal: null });
  });

  itAsyncssh("exec: a death by signal is reported as exit-signal", async () => {
    const r = await py.ok("run", { conn: "main", cmd: "kill -TERM $$" });
    expect(r).toMatchObject({ signal: "TERM" });
  });

  itAsyncssh("a signal request ends the command, reported as exit-signal", async () => {
    const r = await py.ok("signal", { conn: "main", cmd: "echo started; exec sleep 30", signal: "INT" });
    expect(r).toMatchObject({ signal: "INT" });
  });

  itAsyncssh("stdin with EOF: cat and wc -c of 1 MB", async () => {
    const [cat, wc] = await Promise.all([
      py.ok("run", { conn: "main", cmd: "cat", size: 1 << 20, seed: 1, hash_stdout: true }),
      py.ok("run", { conn: "main", cmd: "wc -c", size: 1 << 20, seed: 2 }),
    ]);
    expect(cat).toMatchObject({ exit: 0, stdout: 1 << 20, stdout_sha: cat.sent });
    expect(wc).toMatchObject({ exit: 0, stdout: `${1 << 20}\n` });
  });

  itAsyncssh("16 sessions at once on one connection, each cat of 256 KB", async () => {
    const rs = await Promise.all(Array.from({ length: 16 }, (_, i) => py.ok("run", { conn: "main", cmd: "cat", size: 256 * 1024, seed: 100 + i, hash_stdout: true })));
    expect(rs.map((r) => r.stdout_sha === r.sent && r.exit === 0)).toEqual(rs.map(() => true));
  });

  itAsyncssh("a 1000-byte window and 300-byte packets asked by the client are kept to", async () => {
    const r = await py.ok("small_window", { conn: "main", cmd: "cat", size: 300_000, window: 1000, max_pktsize: 300 });
    expect(r).toMatchObject({ exit: 0, stdout_sha: r.sent });
    expect(r.largest).toBeGreaterThan(0);
    expect(r.largest as number).toBeLessThanOrEqual(300);
  });

  itAsyncssh("env: LANG and LC_* are taken, other names refused", async () => {
    // Beyond Dropbear 2026.94 (which refuses every env request): the locale only (docs/deviations.md).
    const r = await py.ok("run", { conn: "main", cmd: 'echo "$LANG|$LC_TIME|$DBTS_OTHER"', env: { LANG: "C.UTF-8", LC_TIME: "C", DBTS_OTHER: "x" } });
    expect(r.stdout).toBe("C.UTF-8|C|\n");
  });

  itAsyncssh("pty-req and shell: TERM, a tty, the size, then a window-change", async () => {
    const r = await py.ok("pty", { conn: "main", term: "xterm-256color" });
    expect(r.first).toMatch(/T=xterm-256color\r\n\/dev\/pts\/\d+\r\n24 80\r\n/);
    expect(r.second).toMatch(/43 132\r\n/);
    expect(r.exit).toBe(3);
  });

  itAsyncssh("pty-req terminal modes and size are applied (ECHO off, VINTR ^E, ICRNL off)", async () => {
    const r = await py.ok("run", { conn: "main", cmd: "stty -a", term: "vt100", modes: { ECHO: 0, VINTR: 5, ICRNL: 0 } });
    const out = r.stdout as string;
    expect(out).toMatch(/rows 30; columns 100;/);
    expect(out).toMatch(/intr = \^E;/);
    expect(out).toMatch(/(^|\s)-echo(\s|$)/m);
    expect(out).toMatch(/(^|\s)-icrnl(\s|$)/m);
  });

  itAsyncssh("subsystem sftp: put, listdir, get", async () => {
    const local = join(work.dir, "sftp-up.bin");
    writeFileSync(local, Buffer.alloc(300_000, "interop sftp "));
    const r = await py.ok("sftp", { conn: "main", local, back: join(work.dir, "sftp-back.bin"), name: "up.bin" });
    expect(r.names).toContain("up.bin");
    expect(r.got).toBe(r.put);
    expect(r.size).toBe(300_000);
  });

  itAsyncssh("direct-tcpip to an echo target: 1 MB intact", async () => {
    const r = await py.ok("direct", { conn: "main", target: echo.port, size: 1 << 20 });
    expect(r).toMatchObject({ bytes: 1 << 20, got: r.sent });
  });

  itAsyncssh("direct-tcpip to a closed port: open failure 'connect failed', the session goes on", async () => {
    const r = await py.ok("direct_refused", { conn: "main", target: await refusedPort() });
    expect(r).toMatchObject({ opened: false, code: 2 });
    expect((await py.ok("run", { conn: "main", cmd: "echo after" })).stdout).toBe("after\n");
  });

  itAsyncssh("tcpip-forward of port 0: a connection to the port it got comes back through; cancel closes it", async () => {
    const r = await py.ok("remote", { conn: "main", target: echo.port, size: 1 << 20 });
    expect(r).toMatchObject({ bytes: 1 << 20, got: r.sent, after_cancel: "refused" });
    expect(r.port).toBeGreaterThan(0);
  });

  itAsyncssh("direct-streamlocal and streamlocal-forward with a Unix socket; the cancel removes the socket", async () => {
    const r = await py.ok("streamlocal", { conn: "main", echo_path: join(user.home, "echo.sock"), listen_path: join(user.home, "fwd.sock"), size: 256 * 1024 });
    const direct = r.direct as Reply;
    const remote = r.remote as Reply;
    expect(direct).toMatchObject({ bytes: 256 * 1024, got: direct.sent });
    expect(remote).toMatchObject({ bytes: 256 * 1024, got: remote.sent });
    expect(r.after_cancel).toBe(false);
  });

  itAsyncssh("agent forwarding: ssh-add -l in the session lists the asyncssh side's agent key", () =>
    withAgent(join(work.dir, "agent-client.sock"), rsaKey, async (fingerprint) => {
      await py.ok("connect", { name: "agent", keys: [edKey], agent: join(work.dir, "agent-client.sock") });
      const r = await py.ok("run", { conn: "agent", cmd: "ssh-add -l" });
      expect(r).toMatchObject({ exit: 0 });
      expect(r.stdout).toContain(fingerprint);
      await py.ok("close", { conn: "agent" });
    }),
  );

  itAsyncssh("keepalive@openssh.com with want-reply is answered (failure, as Dropbear) and the session goes on", async () => {
    const r = await py.ok("global", { conn: "main", request: "keepalive@openssh.com" });
    expect(r.answer).toBe("failure");
    expect((await py.ok("run", { conn: "main", cmd: "echo after" })).stdout).toBe("after\n");
  });

  itAsyncssh("rekeys mid-transfer (every 256 KiB the client sends) keep the data intact, also when asyncssh sends data after its KEXINIT", async () => {
    await py.ok("connect", { name: "rekey", keys: [edKey], rekey_bytes: 256 * 1024 });
    const r = await py.ok("rekey_cat", { conn: "rekey", size: 2 << 20 });
    expect(r).toMatchObject({ exit: 0, stdout: 2 << 20, stdout_sha: r.sent });
    // At least one rekey after the first exchange: asyncssh counts its bytes afresh only once
    // a rekey is done, and sends on meanwhile.
    expect(r.kexinits as number).toBeGreaterThan(1);
    // Uploading, the packet that crosses asyncssh's limit is channel data, and asyncssh sends it
    // right after its KEXINIT (RFC 4253 §7.1 says it must wait): taken as OpenSSH's sshd takes it,
    // where C Dropbear ends the session ("Unexpected packet type 94, expected 30").
    const up = await py.ok("run", { conn: "rekey", cmd: "wc -c", size: 4 << 20, seed: 6 });
    expect(up).toMatchObject({ exit: 0, stdout: `${4 << 20}\n` });
    await py.ok("close", { conn: "rekey" });
  });
});

/** What tests/helpers/asyncssh-server.py reports as a session ends. */
interface Done {
  largest_in: number;
  kexinits: number;
  compression: string;
}

/**
 * The asyncssh server process: its default port, one that pings every second, the sessions it
 * ran.
 */
interface AsyncsshServer {
  port: number;
  keepalive: number;
  /** Channels with a 2000-byte window and 500-byte packets. */
  small: number;
  /** The password asked by keyboard-interactive. */
  kbdint: number;
  /** A key re-exchange every 256 KiB the server sends. */
  rekey: number;
  /** A server-sig-algs of 60 made-up names, then asyncssh's own. */
  sigalgs: number;
  /** Each password the server was given: by which method, and whether it was right. */
  auths: () => { auth: string; ok: boolean }[];
  sessions: () => (string | null)[];
  /** How the session running `command` ended: its largest data packet received, its connection's KEXINITs and compression (client to server). */
  done: (command: string) => Done | undefined;
  stop: () => Promise<void>;
}

async function startAsyncsshServer(dir: string, authorized: string): Promise<AsyncsshServer> {
  mkdirSync(dir, { recursive: true });
  const child = spawn(PYTHON, [join(HELPERS, "asyncssh-server.py"), dir, authorized], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const lines = (): Record<string, unknown>[] =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const end = Date.now() + 30_000;
  while (!lines().some((l) => "port" in l)) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill("SIGKILL");
      throw new Error(`asyncssh-server.py did not start:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const first = lines().find((l) => "port" in l) as { port: number; keepalive: number; small: number; kbdint: number; rekey: number; sigalgs: number };
  return {
    port: first.port,
    keepalive: first.keepalive,
    small: first.small,
    kbdint: first.kbdint,
    rekey: first.rekey,
    sigalgs: first.sigalgs,
    auths: () => lines().flatMap((l) => ("auth" in l ? [l as { auth: string; ok: boolean }] : [])),
    sessions: () => lines().flatMap((l) => ("session" in l ? [l.session as string | null] : [])),
    done: (command) => lines().find((l) => l.done === command) as Done | undefined,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, "exit");
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Run fn with an ssh-agent of our own holding `key`, its socket at `sock`; the agent is stopped after. */
async function withAgent<T>(sock: string, key: string, fn: (fingerprint: string) => Promise<T>): Promise<T> {
  const agent = await startSshAgent(sock);
  try {
    const add = spawnSync(PEERS["ssh-add"], ["-q", key], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: "utf8" });
    expect(add.status, add.stderr).toBe(0);
    return await fn(spawnSync(PEERS["ssh-keygen"], ["-l", "-f", `${key}.pub`], { encoding: "utf8" }).stdout.split(" ")[1]!);
  } finally {
    agent.kill();
  }
}

/** "type base64" of a .pub file, without its comment or newline. */
function pubKey(file: string): string {
  return readFileSync(file, "utf8").trim().split(" ").slice(0, 2).join(" ");
}

/** fn over items, at most n at once (each dbclient is a node process: spare the CPUs). */
async function pool<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

describe("our dbclient → asyncssh server", () => {
  let srv: AsyncsshServer;
  const srvDir = join(work.dir, "asyncssh-server");
  let homeN = 0;
  /** A fresh HOME for dbclient (its known_hosts lives there). */
  const freshHome = (): string => {
    const h = join(work.dir, `home${++homeN}`);
    mkdirSync(join(h, ".ssh"), { recursive: true, mode: 0o700 });
    return h;
  };
  const shared = (): string => join(work.dir, "home0");

  beforeAll(async () => {
    if (!ready) return;
    mkdirSync(join(shared(), ".ssh"), { recursive: true, mode: 0o700 });
    const authorized = join(work.dir, "asyncssh_authorized_keys");
    writeFileSync(authorized, `${pubKey(`${edKey}.pub`)}\n${pubKey(`${rsaKey}.pub`)}\n`);
    srv = await startAsyncsshServer(srvDir, authorized);
  }, 60_000);
  afterAll(async () => {
    await srv?.stop();
  });

  /** dbclient -i our key to the asyncssh server (host key checks off unless `home` and no -y given). */
  function dbclient(args: string[], cmd: string[], opts: { port?: number; home?: string; input?: string } = {}): Promise<RunResult> {
    const check = opts.home === undefined ? ["-y", "-y"] : [];
    return runOurClient([...check, ...args, "-i", edKey, "-p", String(opts.port ?? srv.port), "anyone@127.0.0.1", ...cmd], {
      env: { HOME: opts.home ?? shared() },
      input: opts.input,
      timeoutMs: 30_000,
    });
  }

  /** Each case runs `echo caseN`; every status and output is compared at once. */
  async function clientMatrix(cases: Record<string, { args: string[]; port?: number }>): Promise<void> {
    const names = Object.keys(cases);
    const runs = await pool(names, 3, (n, i) => dbclient(cases[n]!.args, ["echo", `case${i}`], { port: cases[n]!.port }));
    const got = Object.fromEntries(names.map((n, i) => [n, runs[i]!.status === 0 ? runs[i]!.stdout : `status ${runs[i]!.status}: ${runs[i]!.stderr}`]));
    expect(got).toEqual(Object.fromEntries(names.map((n, i) => [n, `case${i}\n`])));
  }

  // Each run pairs a key exchange with a cipher/MAC pair (every one of each is used: fewer
  // dbclient start-ups than one run per algorithm). All go to asyncssh's defaults, which put
  // curve25519-sha256 first: a first-kex guess of any other (RFC 4253 §7: wrong) would be
  // answered by asyncssh 2.10, which judges a guess by the negotiated method alone, and the
  // key exchange would fail on the KEXDH_INIT we then send; -o KexAlgorithms turns the guess off.
  itAsyncssh("every key exchange, cipher and MAC both have (-o KexAlgorithms, -c, -m), against the server's default list", () =>
    clientMatrix(
      Object.fromEntries(
        CIPHERS.map((c, i) => {
          const kex = KEX[i % KEX.length]!;
          return [`${kex} ${c.cipher} ${c.mac ?? "(aead)"}`, { args: ["-o", `KexAlgorithms=${kex}`, "-c", c.cipher, ...(c.mac ? ["-m", c.mac] : [])] }];
        }),
      ),
    ),
  );

  itAsyncssh("every host key type (-o HostKeyAlgorithms), remembered by -y as the server's key", async () => {
    const names = Object.keys(HOSTKEYS);
    const pubOf: Record<string, string> = {
      "ssh-ed25519": "hk_ed25519",
      "ecdsa-sha2-nistp256": "hk_ecdsa256",
      "ecdsa-sha2-nistp384": "hk_ecdsa384",
      "ecdsa-sha2-nistp521": "hk_ecdsa521",
      "rsa-sha2-256": "hk_rsa",
      "rsa-sha2-512": "hk_rsa",
    };
    const homes = names.map(() => freshHome());
    const run1 = (h: string): Promise<RunResult> => {
      const i = names.indexOf(h);
      return runOurClient(["-y", "-o", `HostKeyAlgorithms=${h}`, "-i", edKey, "-p", String(srv.port), "anyone@127.0.0.1", "echo", `case${i}`], { env: { HOME: homes[i] }, timeoutMs: 30_000 });
    };
    // rsa-sha2-512 runs on its own: asyncssh 2.10 sets the signature algorithm on its one RSA
    // key object (shared by all connections) as each connection chooses, so two connections at
    // once, one with rsa-sha2-256 and one with -512, can get each other's signature type, which
    // we (as Dropbear, and as RFC 8332 wants) refuse: "Non-matching signing type".
    const first = await pool(
      names.filter((h) => h !== "rsa-sha2-512"),
      3,
      run1,
    );
    const runs = [...first, await run1("rsa-sha2-512")];
    expect(names[names.length - 1]).toBe("rsa-sha2-512");
    const got = Object.fromEntries(names.map((h, i) => [h, runs[i]!.status === 0 ? [runs[i]!.stdout, readFileSync(join(homes[i]!, ".ssh", "known_hosts"), "utf8")] : runs[i]!.stderr]));
    const pub = (h: string): string => pubKey(join(srvDir, `${pubOf[h]}.pub`));
    expect(got).toEqual(Object.fromEntries(names.map((h, i) => [h, [`case${i}\n`, `[127.0.0.1]:${srv.port} ${pub(h)}\n`]])));
  });

  itAsyncssh("auth: an RSA key (rsa-sha2-* from server-sig-algs), a password, keyboard-interactive", async () => {
    // A HOME without keys: DROPBEAR_PASSWORD answers the password and the prompt.
    const home = freshHome();
    const env = { HOME: home, DROPBEAR_PASSWORD: ASYNCSSH_PASSWORD };
    const via = (port: number, extra: string[] = []): Promise<RunResult> => runOurClient(["-y", "-y", ...extra, "-p", String(port), "anyone@127.0.0.1", "echo", "in"], { env, timeoutMs: 30_000 });
    const [rsa, password, kbdint] = await Promise.all([
      runOurClient(["-y", "-y", "-i", rsaKey, "-p", String(srv.port), "anyone@127.0.0.1", "echo", "in"], { env: { HOME: home }, timeoutMs: 30_000 }),
      via(srv.port),
      via(srv.kbdint),
    ]);
    expect([rsa, password, kbdint].map((r) => [r.status, r.stdout])).toEqual([
      [0, "in\n"],
      [0, "in\n"],
      [0, "in\n"],
    ]);
    expect(kbdint.stderr).toMatch(/Login for anyone@127\.0\.0\.1\nInterop\nType the password\.\n/);
    expect(srv.auths()).toEqual(expect.arrayContaining([{ auth: "password", ok: true }, { auth: "keyboard-interactive", ok: true }]));
  });

  itAsyncssh("a server-sig-algs of more than 50 names is read to its end: an RSA key listed after 60 others logs in (C Dropbear 2026.94's dbclient exits 'Too many remote algorithms')", async () => {
    const r = await runOurClient(["-y", "-y", "-i", rsaKey, "-p", String(srv.sigalgs), "anyone@127.0.0.1", "echo", "in"], { env: { HOME: freshHome() }, timeoutMs: 30_000 });
    expect([r.status, r.stdout], r.stderr).toEqual([0, "in\n"]);
  });

  itAsyncssh("the exit status is dbclient's exit code; stdin is piped with its EOF", async () => {
    const [zero, seven, cat, wc] = await Promise.all([
      dbclient([], ["exit", "0"]),
      dbclient([], ["exit", "42"]),
      dbclient([], ["cat"], { input: "x".repeat(1 << 20) }),
      dbclient([], ["wc"], { input: "y".repeat(1 << 20) }),
    ]);
    expect([zero.status, seven.status, cat.status, wc.status]).toEqual([0, 42, 0, 0]);
    expect(cat.stdout).toBe("x".repeat(1 << 20));
    expect(wc.stdout).toBe(`${1 << 20}\n`);
  });

  // tinysshd's way: its CHANNEL_CLOSE, then at once the end of the TCP connection. Dropbear's
  // loop handler sees the last channel gone before the next read finds the end; ours once read
  // on in the same turn and exited 1 with "Remote closed the connection".
  itAsyncssh("a server that hangs up right behind its CHANNEL_CLOSE still gives the command's exit status", async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => dbclient([], ["hangup", "3"])));
    expect(rs.map((r) => [r.status, r.stderr.includes("Remote closed")])).toEqual(rs.map(() => [3, false]));
  });

  itAsyncssh("a server's 2000-byte window and 500-byte packets are kept to", async () => {
    const input = "z".repeat(300_000);
    const r = await dbclient([], ["cat", "small-window"], { port: srv.small, input });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout === input).toBe(true);
    const largest = srv.done("cat small-window")?.largest_in;
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThanOrEqual(500);
  });

  itAsyncssh("rekeys the server starts mid-transfer (every 256 KiB it sends) keep 2 MB of cat intact", async () => {
    const input = "r".repeat(2 << 20);
    const r = await dbclient([], ["cat", "rekeyed"], { port: srv.rekey, input });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout === input).toBe(true);
    // At least one rekey after the first exchange (asyncssh counts afresh once a rekey is done).
    expect(srv.done("cat rekeyed")?.kexinits).toBeGreaterThan(1);
  });

  itAsyncssh("-o Compression=yes: zlib@openssh.com (delayed until after auth) carries 3.5 MB of cat intact", async () => {
    // Text both ways (run() passes strings): a compressible run, then a random one.
    const input = "compressible ".repeat(230_000) + randomBytes(375_000).toString("base64");
    const r = await dbclient(["-o", "Compression=yes"], ["cat", "compressed"], { input });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout === input).toBe(true);
    expect(srv.done("cat compressed")?.compression).toBe("zlib@openssh.com");
  });

  itAsyncssh("-A: the server reads our agent's key through the forwarded agent; without -A there is none", () =>
    withAgent(join(work.dir, "agent-dbclient.sock"), rsaKey, async (fingerprint) => {
      const env = { HOME: shared(), SSH_AUTH_SOCK: join(work.dir, "agent-dbclient.sock") };
      const args = (a: string[]): string[] => ["-y", "-y", ...a, "-i", edKey, "-p", String(srv.port), "anyone@127.0.0.1", "agent"];
      const [withA, without] = await Promise.all([runOurClient(args(["-A"]), { env, timeoutMs: 30_000 }), runOurClient(args([]), { env, timeoutMs: 30_000 })]);
      expect(withA.status, withA.stderr).toBe(0);
      expect(withA.stdout).toBe(`${fingerprint}\n`);
      expect(without.stdout).toBe("no agent forwarded\n");
    }),
  );

  itAsyncssh("-B netcat mode: stdin to an echo target behind the server and back; multihop through two asyncssh listeners", async () => {
    const input = "n".repeat(256 * 1024);
    const hops = `anyone@127.0.0.1/${srv.port},anyone@127.0.0.1/${srv.small}`;
    const [nc, multihop] = await Promise.all([
      dbclient(["-B", `127.0.0.1:${echo.port}`], [], { input }),
      runOurClient(["-y", "-y", "-i", edKey, hops, "echo", "two hops"], { env: { HOME: shared() }, timeoutMs: 30_000 }),
    ]);
    expect(nc.status, nc.stderr).toBe(0);
    expect(nc.stdout === input).toBe(true);
    expect(multihop.status, multihop.stderr).toBe(0);
    expect(multihop.stdout).toBe("two hops\n");
  });

  itAsyncssh("-N -L: 1 MB through to an echo target, and no session opened", async () => {
    const before = srv.sessions().length;
    const lport = await freePort();
    const t = await startTunnel(process.execPath, [OURS.dbclient, "-N", "-y", "-y", "-i", edKey, "-L", `${lport}:127.0.0.1:${echo.port}`, "-p", String(srv.port), "anyone@127.0.0.1"], lport, { HOME: shared() });
    try {
      const r = await echoRoundTrip(lport, 1 << 20, "127.0.0.1", 30_000);
      expect(r.gotHash).toBe(r.sentHash);
      expect(t.alive()).toBe(true);
    } finally {
      await t.stop();
    }
    expect(srv.sessions().length).toBe(before);
  });

  itAsyncssh("-N -R: 1 MB from the server's port back through to an echo target", async () => {
    const rport = await freePort();
    const t = await startTunnel(process.execPath, [OURS.dbclient, "-N", "-y", "-y", "-i", edKey, "-R", `${rport}:127.0.0.1:${echo.port}`, "-p", String(srv.port), "anyone@127.0.0.1"], rport, { HOME: shared() });
    try {
      const r = await echoRoundTrip(rport, 1 << 20, "127.0.0.1", 30_000);
      expect(r.gotHash).toBe(r.sentHash);
      expect(t.alive()).toBe(true);
    } finally {
      await t.stop();
    }
  });

  itAsyncssh("known_hosts: unknown refused in batch mode, -y remembers it, then a changed key is refused", async () => {
    const h = freshHome();
    const kh = join(h, ".ssh", "known_hosts");
    const unknown = await dbclient(["-o", "BatchMode=yes"], ["echo", "no"], { home: h });
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/not in the trusted hosts file[\s\S]*Didn't validate host key/);
    expect(unknown.stdout).toBe("");
    const accepted = await dbclient(["-y"], ["echo", "yes"], { home: h });
    expect(accepted.stdout).toBe("yes\n");
    expect(accepted.stderr).toMatch(/key accepted unconditionally/);
    const line = readFileSync(kh, "utf8");
    expect(line).toBe(`[127.0.0.1]:${srv.port} ${pubKey(join(srvDir, "hk_ed25519.pub"))}\n`);
    const known = await dbclient(["-o", "BatchMode=yes"], ["echo", "known"], { home: h });
    expect(known.stdout).toBe("known\n");
    // Another ed25519 key on record for this host: a mismatch, refused even with -y.
    const other = join(work.dir, "other_ed25519");
    ourKeygen(other);
    const changed = `[127.0.0.1]:${srv.port} ${pubKey(`${other}.pub`)}\n`;
    writeFileSync(kh, changed);
    const refused = await dbclient(["-y"], ["echo", "changed"], { home: h });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/host key mismatch/);
    expect(refused.stdout).toBe("");
    expect(readFileSync(kh, "utf8")).toBe(changed);
  });

  // Each side pings (every 2 s from ours, every second from asyncssh's) and hangs up after 3
  // (ours) or 5 (asyncssh) unanswered pings; a 7 s command outlives that only if the other side
  // answers them.
  itAsyncssh("keepalives both ways: our dropbear -K 2 with an asyncssh client, our dbclient -K 2 with an asyncssh server that pings too", async () => {
    const pinging = await startOurDropbear(["-r", join(work.dir, "hk_ed25519"), "-K", "2"]);
    try {
      const [viaServer, viaClient] = await Promise.all([
        (async () => {
          await py.ok("connect", { name: "keepalive", keys: [edKey], port: pinging.port });
          return py.ok("run", { conn: "keepalive", cmd: "sleep 7; echo slept" });
        })(),
        dbclient(["-K", "2"], ["sleep", "7"], { port: srv.keepalive }),
      ]);
      expect(viaServer).toMatchObject({ stdout: "slept\n", exit: 0 });
      expect(pinging.log()).not.toMatch(/timeout/i);
      expect(viaClient.status, viaClient.stderr).toBe(0);
      await py.ok("close", { conn: "keepalive" });
    } finally {
      await pinging.stop();
    }
  });
});
