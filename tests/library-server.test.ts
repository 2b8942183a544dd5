import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Client, ExitInfo } from "dropbear-ts";
import { PEERS, itWithPeers } from "./helpers/peers.js";
import { exited, opensshKeygen, freePort, run, runOurClient, scratch, terminate, waitPort } from "./helpers/servers.js";
import { echoRoundTrip, startEchoTarget, startTunnel, type Target } from "./helpers/tunnel.js";

// Issue 13, the library's server: examples/server.mjs (importing `dropbear-ts` by name) serves
// OpenSSH's ssh from inside one Node process with no system accounts — exec through
// /bin/sh -c, a -L tunnel, an unknown key refused — and one process holds many servers and
// many connections and, once they are closed, has nothing left open.

const ROOT = join(import.meta.dirname, "..");
const EXAMPLE = join(ROOT, "examples", "server.mjs");
const work = scratch("dbts-libsvr-");
const hostKey = join(work.dir, "hostkey");
const key = join(work.dir, "id_ed25519");
const otherKey = join(work.dir, "other_ed25519");
const authorized = join(work.dir, "authorized_keys");
let server: ChildProcess | null = null;
let serverLog = "";
let port = 0;
let target: Target | null = null;

/** ssh options for a throw-away server: no known_hosts, no prompts, no config of the machine's. */
function sshArgs(identity: string, p: number, batch = true, logLevel = "ERROR"): string[] {
  return [
    "-F",
    "/dev/null",
    "-p",
    String(p),
    "-i",
    identity,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    `BatchMode=${batch ? "yes" : "no"}`,
    "-o",
    `LogLevel=${logLevel}`,
  ];
}

/** Start examples/server.mjs and wait for its "listening on" line. */
async function startExample(): Promise<void> {
  const child = spawn(process.execPath, [EXAMPLE, "0", hostKey, authorized], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  server = child;
  child.stderr.on("data", (d: Buffer) => (serverLog += d.toString()));
  let out = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server.mjs did not start:\n${out}${serverLog}`)), 30_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        port = Number(m[1]);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server.mjs exited (${code}):\n${out}${serverLog}`));
    });
  });
}

beforeAll(async () => {
  for (const k of [hostKey, key, otherKey]) {
    opensshKeygen(k, { comment: "libsvr" });
  }
  writeFileSync(authorized, `# the one key let in\n${readFileSync(`${key}.pub`, "utf8")}`);
  await startExample();
  target = await startEchoTarget();
}, 60_000);

afterAll(async () => {
  await target?.close();
  if (server !== null) await terminate(server, 10_000);
  work.cleanup();
});

describe("examples/server.mjs with OpenSSH's ssh", () => {
  itWithPeers(["ssh", "ssh-keygen"], "runs `echo hi; exit 3` through /bin/sh -c: stdout hi, stderr apart, status 3", async () => {
    const r = await run(PEERS.ssh, [...sshArgs(key, port), "anyone@127.0.0.1", "echo hi; echo oops >&2; exit 3"]);
    expect(r.stdout).toBe("hi\n");
    expect(r.stderr).toContain("oops");
    expect(r.status).toBe(3);
  });

  itWithPeers(["ssh", "ssh-keygen"], "carries a -L tunnel byte for byte", async () => {
    const lport = await freePort();
    const t = await startTunnel(PEERS.ssh, [...sshArgs(key, port), "-N", "-L", `127.0.0.1:${lport}:127.0.0.1:${target!.port}`, "tunnel@127.0.0.1"], lport);
    try {
      const rts = await Promise.all([echoRoundTrip(lport, 1 << 20), echoRoundTrip(lport, 3 << 20), echoRoundTrip(lport, 1)]);
      for (const rt of rts) {
        expect(rt.gotHash).toBe(rt.sentHash);
      }
    } finally {
      await t.stop();
    }
  });

  itWithPeers(["ssh", "ssh-keygen"], "refuses a key not in AUTHORIZED_KEYS", async () => {
    const r = await run(PEERS.ssh, [...sshArgs(otherKey, port), "anyone@127.0.0.1", "echo should-not-run"]);
    expect(r.status).toBe(255);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/Permission denied \(publickey/);
  });

  itWithPeers(["dbclient", "dropbearconvert", "ssh-keygen"], "serves Debian's dbclient and ours too", async () => {
    const dbKey = join(work.dir, "id_dropbear");
    const conv = await run(PEERS.dropbearconvert, ["openssh", "dropbear", key, dbKey]);
    expect(conv.status).toBe(0);
    const theirs = await run(PEERS.dbclient, ["-y", "-y", "-i", dbKey, "-p", String(port), "deb@127.0.0.1", "echo from-dbclient; exit 4"]);
    expect(theirs.stdout).toBe("from-dbclient\n");
    expect(theirs.status).toBe(4);
    const ours = await runOurClient(["-y", "-y", "-i", key, "-p", String(port), "ts@127.0.0.1", "echo from-ours; exit 5"]);
    expect(ours.stdout).toBe("from-ours\n");
    expect(ours.status).toBe(5);
  });

  itWithPeers(["ssh", "ssh-keygen"], "refuses a shell and a remote forward (no handler for them)", async () => {
    const shell = await run(PEERS.ssh, [...sshArgs(key, port), "-T", "anyone@127.0.0.1"]);
    expect(shell.stdout).toBe("");
    expect(shell.status).not.toBe(0);
    const fwd = await run(PEERS.ssh, [...sshArgs(key, port), "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:9", "anyone@127.0.0.1", "echo no"]);
    expect(fwd.stdout).toBe("");
    expect(fwd.status).toBe(255);
    expect(fwd.stderr).toMatch(/remote port forwarding failed/i);
  });
});

/** Run an ES module script from the repo root (so `dropbear-ts` resolves by name), bounded. */
async function runScript(code: string, args: string[], ms: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", code, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  const status = await exited(child);
  clearTimeout(timer);
  return { status, stdout, stderr };
}

// Two servers in one process, each serving ssh clients at once, one session still running a
// command when close() is called: close() ends it, and the process then exits by itself — no
// socket, timer or child of the library left. (The exit is the proof; the unref'd timer only
// says what was left if it does not happen.)
const MANY_SERVERS = `
import { spawn } from "node:child_process";
import { createServer, runShellCommand } from "dropbear-ts";
const [hostKey, key, ssh, perServer] = process.argv.slice(1);
const lines = [];
const servers = [0, 1].map((n) => createServer({
  hostKeys: [hostKey],
  authenticate: async ({ method }) => method === "publickey",
  onSession: { exec: runShellCommand },
  logger: (level, msg) => lines.push(n + " " + level + " " + msg),
}));
const ports = [];
for (const s of servers) ports.push((await s.listen(0)).port);
// onLine: called once, when the command's first line has arrived.
const sshRun = (port, cmd, onLine = () => {}) => new Promise((resolve) => {
  let lined = false;
  const c = spawn(ssh, ["-F", "/dev/null", "-p", String(port), "-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "u@127.0.0.1", cmd], { stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  c.stdout.on("data", (d) => ((out += d), !lined && out.includes("\\n") && ((lined = true), onLine())));
  // "close", not "exit": the exit can come before the last of stdout has been read.
  c.on("close", (code) => resolve({ code, out }));
});
const runs = [];
for (const [n, port] of ports.entries()) {
  for (let i = 0; i < Number(perServer); i++) runs.push(sshRun(port, "echo s" + n + "c" + i));
}
const results = await Promise.all(runs);
const ok = results.filter((r, i) => r.code === 0 && r.out === "s" + Math.floor(i / Number(perServer)) + "c" + (i % Number(perServer)) + "\\n").length;
// The second ignores the hang-up close() sends: it outlives the server, holding nothing of ours.
// close() comes once both have printed: the survivor's pid must be known, and both running.
let started = 0;
const long = ports.map((port, n) => sshRun(port, n === 0 ? "echo started; sleep 60" : "trap '' HUP; echo $$; exec sleep 60", () => started++));
let gone = false;
Promise.race(long).then(() => (gone = true));
while (started < 2 && !gone) await new Promise((r) => setTimeout(r, 50));
const before = servers.map((s) => s.connections);
await Promise.all(servers.map((s) => s.close()));
const ended = await Promise.all(long);
const failed = results.filter((r) => r.code !== 0).slice(0, 3);
console.log(JSON.stringify({ ok, before, after: servers.map((s) => s.connections), ended: ended.map((e) => e.code), survivor: Number(ended[1].out), failed, log: failed.length ? lines.slice(-10) : [] }));
setTimeout(() => console.log("LEFT " + JSON.stringify(process.getActiveResourcesInfo())), 5000).unref();
`;

describe("many servers and connections in one process", () => {
  itWithPeers(["ssh", "ssh-keygen"], "serves ssh clients on two servers at once, and close() leaves nothing open", async () => {
    const perServer = 10;
    const r = await runScript(MANY_SERVERS, [hostKey, key, PEERS.ssh, String(perServer)], 120_000);
    expect(r.stderr, r.stdout).toBe("");
    expect(r.stdout).not.toContain("LEFT");
    const res = JSON.parse(r.stdout.trim().split("\n")[0]!) as { ok: number; before: number[]; after: number[]; ended: number[]; survivor: number };
    // The command that ignored the hang-up is still running; the process exited without it.
    // (A pid of 0 would signal this whole process group: checked first.)
    expect(res.survivor).toBeGreaterThan(1);
    expect(() => process.kill(res.survivor, "SIGKILL")).not.toThrow();
    expect(res.ok, r.stdout).toBe(2 * perServer);
    expect(res.before).toEqual([1, 1]);
    expect(res.after).toEqual([0, 0]);
    // The long commands' clients saw their connections end (not the 60 s sleep finish).
    for (const code of res.ended) expect(code).not.toBe(0);
    expect(r.status).toBe(0);
  }, 150_000);
});

describe("createServer in this process: callbacks and handlers", () => {
  itWithPeers(["ssh", "ssh-keygen", "sshpass"], "asks authenticate per method (none, password, publickey with the key's fingerprint), awaiting promises", async () => {
    const { createServer } = await import("dropbear-ts");
    const asked: string[] = [];
    const s = createServer({
      hostKeys: [readFileSync(hostKey)],
      authenticate: async (ctx) => {
        asked.push(`${ctx.username}:${ctx.method}${ctx.publicKey ? `:${ctx.publicKey.algo}:${ctx.publicKey.fingerprint}` : ""}`);
        await new Promise((r) => setTimeout(r, 20));
        return ctx.method === "password" && ctx.password === "sesame";
      },
      onSession: {
        exec: (session) => {
          session.stdout.write(`${session.username} ran ${session.command}\n`);
          session.exit(0);
        },
      },
    });
    const { port: p } = await s.listen(0);
    try {
      const good = await run(PEERS.sshpass, ["-p", "sesame", PEERS.ssh, ...sshArgs(key, p, false), "-o", "PreferredAuthentications=none,publickey,password", "pwuser@127.0.0.1", "whoami"]);
      expect(good.stdout).toBe("pwuser ran whoami\n");
      expect(good.status).toBe(0);
      const bad = await run(PEERS.sshpass, ["-p", "wrong", PEERS.ssh, ...sshArgs(key, p, false), "-o", "NumberOfPasswordPrompts=1", "-o", "PreferredAuthentications=password", "pwuser@127.0.0.1", "whoami"]);
      expect(bad.status).not.toBe(0);
      expect(bad.stdout).toBe("");
      const fp = (await run(PEERS["ssh-keygen"], ["-l", "-E", "sha256", "-f", `${key}.pub`])).stdout.split(" ")[1];
      expect(asked).toContain("pwuser:none");
      expect(asked).toContain(`pwuser:publickey:ssh-ed25519:${fp}`);
      expect(asked).toContain("pwuser:password");
    } finally {
      await s.close();
    }
  });

  itWithPeers(["ssh", "ssh-keygen"], "direct-tcpip: a target elsewhere, a refusal; exit-signal, env and the pty from a handler", async () => {
    const { createServer } = await import("dropbear-ts");
    const seen: unknown[] = [];
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      onDirectTcpip: async (req) => {
        seen.push(req.host);
        return req.host === "echo.invalid" ? { host: "127.0.0.1", port: target!.port } : false;
      },
      onSession: {
        exec: (session) => {
          if (session.command === "die") {
            session.signal("TERM");
            return;
          }
          session.stdout.write(`${session.env.LC_ALL ?? "-"} ${session.pty ? `${session.pty.term} ${session.pty.cols}x${session.pty.rows}` : "nopty"}\n`);
          session.exit(5);
        },
      },
    });
    const { port: p } = await s.listen(0);
    try {
      const lport = await freePort();
      const refusedPort = await freePort();
      const t = await startTunnel(PEERS.ssh, [...sshArgs(key, p), "-N", "-L", `127.0.0.1:${lport}:echo.invalid:7`, "-L", `127.0.0.1:${refusedPort}:127.0.0.1:${target!.port}`, "u@127.0.0.1"], lport);
      try {
        // ssh binds its -L ports one after the other; its probe is refused as any connection there.
        await waitPort(refusedPort, t.child, t.log);
        const rt = await echoRoundTrip(lport, 100_000);
        expect(rt.gotHash).toBe(rt.sentHash);
        const refused = await echoRoundTrip(refusedPort, 10).catch(() => null);
        expect(refused === null || refused.got === 0).toBe(true);
      } finally {
        await t.stop();
      }
      expect(seen).toContain("echo.invalid");
      expect(seen).toContain("127.0.0.1");
      const env = await run(PEERS.ssh, [...sshArgs(key, p), "-o", "SetEnv=LC_ALL=C.UTF-8", "u@127.0.0.1", "show"]);
      expect(env.stdout).toBe("C.UTF-8 nopty\n");
      expect(env.status).toBe(5);
      const tty = await run("/usr/bin/script", ["-qec", `${PEERS.ssh} ${sshArgs(key, p).join(" ")} -tt u@127.0.0.1 show`, "/dev/null"], { env: { TERM: "xterm-test", COLUMNS: "100", LINES: "30" } });
      expect(tty.stdout).toMatch(/- xterm-test \d+x\d+/);
      const die = await run(PEERS.ssh, [...sshArgs(key, p), "u@127.0.0.1", "die"]);
      expect(die.status).toBe(255);
      expect(die.stderr).toBe("");
    } finally {
      await s.close();
    }
  });
});

describe("Server.close() and listen()", () => {
  itWithPeers(["ssh", "ssh-keygen"], "close() resolves once nothing of the server is open, its connections' sockets too; a listen() it cuts short rejects", async () => {
    const { createServer } = await import("dropbear-ts");
    // (At most as many as before: an earlier test's socket may finish closing meanwhile.)
    const tcpHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === "TCPServerWrap" || r === "TCPSocketWrap").length;
    const before = tcpHandles();
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    // The command runs until the session goes.
    const s = createServer({ hostKeys: [hostKey], authenticate: () => true, onSession: { exec: () => started() } });
    const { port: p } = await s.listen(0);
    const child = spawn(PEERS.ssh, [...sshArgs(key, p), "u@127.0.0.1", "hold"], { stdio: "ignore" });
    // ssh may well have exited by the time close() resolves: listened for from the start.
    const sshExit = once(child, "exit");
    try {
      const exitedFirst = sshExit.then(() => {
        throw new Error("ssh exited before its command started");
      });
      exitedFirst.catch(() => {});
      await Promise.race([running, exitedFirst]);
      expect(s.connections).toBe(1);
      await s.close();
      // Neither the listener nor the session's socket is still closing.
      expect(tcpHandles()).toBeLessThanOrEqual(before);
      expect((await sshExit)[0]).toBe(255);
    } finally {
      await terminate(child);
    }
    // close() while listen() still looks its host up: Node drops the bind without a callback.
    const s2 = createServer({ hostKeys: [hostKey], authenticate: () => true });
    const cutShort = expect(s2.listen(0, "127.0.0.1")).rejects.toThrow("Server.listen: closed before listening");
    await s2.close();
    await cutShort;
    expect(s2.address()).toBeNull();
  });
});

describe("tcpip-forward through createServer", () => {
  itWithPeers(["ssh", "ssh-keygen"], "asks onTcpipForward, tells ssh the port bound for 0, and carries connections back", async () => {
    const { createServer } = await import("dropbear-ts");
    const asked: string[] = [];
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      onTcpipForward: (req) => {
        asked.push(`${req.username} ${req.address}:${req.port}`);
        return req.address === "127.0.0.1";
      },
    });
    const { port: p } = await s.listen(0);
    const child = spawn(PEERS.ssh, [...sshArgs(key, p, true, "INFO"), "-N", "-R", `127.0.0.1:0:127.0.0.1:${target!.port}`, "-R", `localhost:0:127.0.0.1:${target!.port}`, "fw@127.0.0.1"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    try {
      const allocated = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no allocated port: ${err}`)), 30_000);
        child.stderr.on("data", (d: Buffer) => {
          err += d.toString();
          const m = /Allocated port (\d+) for remote forward/.exec(err);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      const rt = await echoRoundTrip(allocated, 200_000);
      expect(rt.gotHash).toBe(rt.sentHash);
      // The refusal of the second forward reaches ssh's stderr in its own time.
      await expect.poll(() => err, { timeout: 15_000 }).toMatch(/remote port forwarding failed for listen port 0|Warning: remote port forwarding failed/);
      expect(asked).toEqual(["fw 127.0.0.1:0", "fw localhost:0"]);
    } finally {
      await terminate(child);
      await s.close();
    }
  });
});

// Issue 13's "Done when": 50 library clients in one process against examples/server.mjs, each
// running a command and a direct-tcpip stream through it; once all have ended, the clients'
// process exits by itself (nothing left open).
const FIFTY_CLIENTS = `
import { connect } from "dropbear-ts";
const [port, key, echoPort, n] = process.argv.slice(1);
const one = async (i) => {
  const c = await connect({ host: "127.0.0.1", port: Number(port), username: "c" + i, privateKeyPath: key, hostKey: false });
  const ch = c.exec("echo c" + i + "; exit " + (i % 7));
  let out = "";
  ch.stdout.on("data", (d) => (out += d));
  ch.stderr.resume();
  const exit = await ch.exit;
  const s = await c.forwardOut("127.0.0.1", 1, "127.0.0.1", Number(echoPort));
  let echoed = "";
  s.on("data", (d) => (echoed += d));
  const echoEnd = new Promise((r) => s.on("end", r));
  s.end("ping" + i);
  await echoEnd;
  await c.end();
  return out === "c" + i + "\\n" && exit.code === i % 7 && echoed === "ping" + i;
};
const results = await Promise.all(Array.from({ length: Number(n) }, (_, i) => one(i).catch((e) => String(e))));
console.log(JSON.stringify({ ok: results.filter((r) => r === true).length, failures: results.filter((r) => r !== true).slice(0, 3) }));
setTimeout(() => console.log("LEFT " + JSON.stringify(process.getActiveResourcesInfo())), 5000).unref();
`;

describe("50 library clients in one process against examples/server.mjs", () => {
  itWithPeers(["ssh-keygen"], "each runs a command and a tunnelled stream, ends, and the process exits with nothing left open", async () => {
    const r = await runScript(FIFTY_CLIENTS, [String(port), key, String(target!.port), "50"], 150_000);
    expect(r.stderr).toBe("");
    expect(r.stdout).not.toContain("LEFT");
    const res = JSON.parse(r.stdout.trim().split("\n")[0]!) as { ok: number; failures: string[] };
    expect(res.failures).toEqual([]);
    expect(res.ok).toBe(50);
    expect(r.status).toBe(0);
  }, 180_000);
});

describe("createServer's answers that never come and handlers that throw", () => {
  itWithPeers(["ssh", "ssh-keygen"], "a session whose authenticate never answers ends when its client leaves, or at close(); a throwing handler refuses its request", async () => {
    const { createServer } = await import("dropbear-ts");
    let asked = 0;
    const stuck = createServer({
      hostKeys: [hostKey],
      authenticate: () => {
        asked++;
        return new Promise<boolean>(() => {});
      },
    });
    const { port: p } = await stuck.listen(0);
    // A client that leaves while its answer is awaited frees its connection then, not at the
    // answer or the auth timeout.
    const leaving = spawn(PEERS.ssh, [...sshArgs(key, p), "u@127.0.0.1", "true"], { stdio: "ignore" });
    while (asked === 0) await new Promise((r) => setTimeout(r, 50));
    expect(stuck.connections).toBe(1);
    leaving.kill("SIGKILL");
    for (const end = Date.now() + 5_000; stuck.connections > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    expect(stuck.connections).toBe(0);

    const ssh = spawn(PEERS.ssh, [...sshArgs(key, p), "u@127.0.0.1", "true"], { stdio: "ignore" });
    const exited = once(ssh, "exit");
    while (asked === 1) await new Promise((r) => setTimeout(r, 50));
    await stuck.close();
    expect(stuck.connections).toBe(0);
    const [code] = (await exited) as [number | null];
    expect(code).toBe(255);

    const throwing = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      onSession: {
        exec: () => {
          throw new Error("no such command here");
        },
      },
    });
    const { port: q } = await throwing.listen(0);
    try {
      const r = await run(PEERS.ssh, [...sshArgs(key, q), "u@127.0.0.1", "anything"]);
      expect(r.stdout).toBe("");
      expect(r.status).not.toBe(0);
    } finally {
      await throwing.close();
    }
  });
});

describe("streamlocal through createServer", () => {
  itWithPeers(["ssh", "ssh-keygen"], "direct-streamlocal goes where onStreamLocal says; streamlocal-forward listens when onStreamLocalForward allows", async () => {
    const { createServer } = await import("dropbear-ts");
    const net = await import("node:net");
    // A Unix-socket echo target.
    const sockPath = join(work.dir, "echo.sock");
    const unixEcho = net.createServer({ allowHalfOpen: true }, (c) => {
      c.pipe(c);
      c.on("error", () => undefined);
    });
    await new Promise<void>((r) => unixEcho.listen(sockPath, r));
    const asked: string[] = [];
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      onStreamLocal: async ({ path }) => {
        asked.push(`local ${path}`);
        return path === "/nowhere/echo" ? { path: sockPath } : false;
      },
      onStreamLocalForward: ({ path }) => {
        asked.push(`forward ${path}`);
        return path.startsWith(work.dir);
      },
    });
    const { port: p } = await s.listen(0);
    const fwdPath = join(work.dir, "fwd.sock");
    try {
      const lport = await freePort();
      const t = await startTunnel(
        PEERS.ssh,
        [...sshArgs(key, p), "-N", "-L", `127.0.0.1:${lport}:/nowhere/echo`, "-R", `${fwdPath}:127.0.0.1:${target!.port}`, "u@127.0.0.1"],
        lport,
      );
      try {
        const rt = await echoRoundTrip(lport, 50_000);
        expect(rt.gotHash).toBe(rt.sentHash);
        // The -R socket: a connection there reaches the echo target on ssh's side.
        const back = await new Promise<string>((resolve, reject) => {
          const tryConnect = (n: number): void => {
            const c = net.connect(fwdPath);
            let got = "";
            c.on("data", (d) => (got += d.toString()));
            c.on("end", () => resolve(got));
            c.on("connect", () => c.end("via unix socket"));
            c.on("error", (e) => (n > 0 ? setTimeout(() => tryConnect(n - 1), 100) : reject(e)));
          };
          tryConnect(50);
        });
        expect(back).toBe("via unix socket");
      } finally {
        await t.stop();
      }
      expect(asked).toContain("local /nowhere/echo");
      expect(asked).toContain(`forward ${fwdPath}`);
    } finally {
      await s.close();
      await new Promise<void>((r) => unixEcho.close(() => r()));
    }
  });
});

describe("createServer's cap on unauthenticated connections", () => {
  itWithPeers(["ssh-keygen"], "closes a connection beyond maxUnauthenticated.perAddress at once, and takes new ones once below", async () => {
    const { createServer } = await import("dropbear-ts");
    const net = await import("node:net");
    const s = createServer({ hostKeys: [hostKey], authenticate: () => false, maxUnauthenticated: { total: 30, perAddress: 2 } });
    const { port: p } = await s.listen(0);
    /** Connect and wait for the server's first bytes (its version line) or the close. */
    const probe = (): Promise<{ sock: import("node:net").Socket; greeted: boolean }> =>
      new Promise((resolve) => {
        const sock = net.connect(p, "127.0.0.1");
        sock.once("data", () => resolve({ sock, greeted: true }));
        sock.once("close", () => resolve({ sock, greeted: false }));
        sock.on("error", () => undefined);
      });
    try {
      const a = await probe();
      const b = await probe();
      const c = await probe();
      expect([a.greeted, b.greeted, c.greeted]).toEqual([true, true, false]);
      a.sock.destroy();
      while (s.connections > 1) await new Promise((r) => setTimeout(r, 20));
      const d = await probe();
      expect(d.greeted).toBe(true);
      b.sock.destroy();
      d.sock.destroy();
    } finally {
      await s.close();
    }
  });
});

/** Run `command` with its stdin closed: how it ended and what it printed. */
async function execOut(client: Client, command: string): Promise<{ exit: ExitInfo; out: string }> {
  const ch = client.exec(command);
  ch.stdin.end();
  let out = "";
  ch.stdout.on("data", (d: Buffer) => (out += d.toString()));
  return { exit: await ch.exit, out };
}

describe("the library's client against the library's server, in one process", () => {
  itWithPeers(["ssh-keygen"], "onClose is called once per channel: after exit(), and after the client's CLOSE once the handler has ended the command", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    const heard: string[] = [];
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      onSession: {
        exec: (x) => {
          x.onClose = () => void heard.push(x.command ?? "");
          if (x.command === "quick") {
            x.exit(4);
            return;
          }
          // A command that writes on until the client's CLOSE destroys its stdout (its SIGPIPE).
          const tick = setInterval(() => x.stdout.write("tick\n"), 20);
          x.stdout.on("close", () => {
            clearInterval(tick);
            x.exit(9);
          });
        },
      },
    });
    const { port: p } = await s.listen(0);
    const client = await connect({ host: "127.0.0.1", port: p, username: "me", privateKeyPath: key, hostKey: false, kex: ["curve25519-sha256"] });
    try {
      expect((await execOut(client, "quick")).exit).toEqual({ code: 4 });
      const held = client.exec("held");
      held.stdin.end();
      await new Promise((r) => setTimeout(r, 100));
      // The client's stdout gone: at the next output it closes the channel (stdin has ended).
      held.stdout.destroy();
      // The status the handler gave after the client's CLOSE still reaches it, as from the daemon.
      expect(await held.exit).toEqual({ code: 9 });
      expect(heard).toEqual(["quick", "held"]);
    } finally {
      await client.end();
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "runShellCommand sends the exit status once the command exits, as dropbear does, not once a background job holding its stdout and stderr ends; the output written before is all delivered", async () => {
    const { connect, createServer, runShellCommand } = await import("dropbear-ts");
    const s = createServer({ hostKeys: [hostKey], authenticate: () => true, onSession: { exec: runShellCommand } });
    const { port: p } = await s.listen(0);
    const client = await connect({ host: "127.0.0.1", port: p, username: "me", privateKeyPath: key, hostKey: false });
    const jobs: number[] = [];
    try {
      // The job inherits stdout and stderr and outlives the command; 300 kB of output (more
      // than a pipe and a channel window hold) is still to be read when the shell exits.
      const ch = client.exec("sleep 60 & echo $! >&2; head -c 300000 /dev/zero; exit 3");
      ch.stdin.end();
      let out = 0;
      let err = "";
      ch.stdout.on("data", (d: Buffer) => (out += d.length));
      ch.stderr.on("data", (d: Buffer) => (err += d.toString()));
      expect(await ch.exit).toEqual({ code: 3 });
      expect(out).toBe(300_000);
      const job = Number(err.trim());
      jobs.push(job);
      // The status came while the job still runs: it did not wait for the job's end.
      expect(() => process.kill(job, 0)).not.toThrow();
    } finally {
      for (const job of jobs) {
        try {
          process.kill(job, "SIGKILL");
        } catch {
          // Gone already.
        }
      }
      await client.end();
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "forwardRemote while a keepalive's global request is unanswered: the keepalive's REQUEST_FAILURE is not taken for the forward's answer", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    const net = await import("node:net");
    const s = createServer({ hostKeys: [hostKey], authenticate: () => true, onTcpipForward: () => true });
    const { port: p } = await s.listen(0);
    // Once logged in, the server's packets reach the client 300 ms late, so a keepalive's answer
    // is still on its way when a forward is asked for; the first packet the idle client sends
    // then is its keepalive.
    let lag = 0;
    let clientSent: () => void = () => undefined;
    const proxy = net.createServer((c) => {
      const up = net.connect(p, "127.0.0.1");
      c.on("data", (d) => {
        up.write(d);
        clientSent();
      });
      up.on("data", (d) => setTimeout(() => c.destroyed || c.write(d), lag));
      for (const [a, b] of [[c, up], [up, c]] as const) {
        a.on("error", () => b.destroy());
        a.on("close", () => setTimeout(() => b.destroy(), 400));
      }
    });
    proxy.listen(0, "127.0.0.1");
    await once(proxy, "listening");
    const client = await connect({ host: "127.0.0.1", port: (proxy.address() as { port: number }).port, username: "me", privateKeyPath: key, hostKey: false, kex: ["curve25519-sha256"], keepaliveInterval: 1 });
    try {
      lag = 300;
      await new Promise<void>((r) => (clientSent = r));
      // Before, the forward took the keepalive's refusal: "Remote TCP forward request failed".
      const first = await client.forwardRemote({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: 9 });
      expect(first.port).toBeGreaterThan(0);
    } finally {
      await client.end();
      await s.close();
      proxy.close();
    }
  });

  itWithPeers(["ssh-keygen"], "a pipeline from a command's stdout into a sink that fails: the client closes the channel, runShellCommand's command that writes on is ended, and exit settles", async () => {
    const { connect, createServer, runShellCommand } = await import("dropbear-ts");
    const { pipeline } = await import("node:stream/promises");
    const { Writable } = await import("node:stream");
    const s = createServer({ hostKeys: [hostKey], authenticate: () => true, onSession: { exec: runShellCommand } });
    const { port: p } = await s.listen(0);
    const client = await connect({ host: "127.0.0.1", port: p, username: "me", privateKeyPath: key, hostKey: false, kex: ["curve25519-sha256"] });
    let pid = 0;
    try {
      const ch = client.exec("echo $$ >&2; exec yes");
      ch.stdin.end();
      ch.stderr.on("data", (d: Buffer) => (pid ||= Number(d.toString().trim())));
      let taken = 0;
      const sink = new Writable({ write: (chunk: Buffer, _e, cb) => cb((taken += chunk.length) > 1 << 20 ? new Error("sink failed") : null) });
      // pipeline() destroys stdout: our side of the channel can take no more, as dbclient's
      // stdout after EPIPE. Before, its writes went nowhere and the window kept opening (the
      // command's output flowed on, discarded, for ever); then the CLOSE this sends went
      // unanswered, the command blocked on a pipe nobody read.
      await expect(pipeline(ch.stdout, sink)).rejects.toThrow("sink failed");
      const settled = await Promise.race([
        ch.exit.then(
          () => "settled",
          () => "settled",
        ),
        new Promise((resolve) => setTimeout(() => resolve("still waiting"), 5_000)),
      ]);
      expect(settled).toBe("settled");
      expect(pid).toBeGreaterThan(0);
      expect(() => process.kill(pid, 0)).toThrow();
      // The session goes on.
      const next = client.exec("echo next");
      next.stdin.end();
      let out = "";
      next.stdout.on("data", (d: Buffer) => (out += d.toString()));
      expect(await next.exit).toEqual({ code: 0 });
      expect(out).toBe("next\n");
    } finally {
      if (pid > 0) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone, as it should be.
        }
      }
      await client.end();
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "runShellCommand with the process out of descriptors refuses the request, as dropbear refuses it when pipe() fails; the process goes on (the spawn's 'error' event had no listener yet and ended it)", async () => {
    // A fresh Node under `ulimit -n 64` (a client with many channels open takes a shared
    // process's descriptors so), every descriptor taken while runShellCommand spawns.
    const script = `
      import { connect, createServer, runShellCommand } from "dropbear-ts";
      import { closeSync, openSync } from "node:fs";
      const s = createServer({ hostKeys: [${JSON.stringify(hostKey)}], authenticate: () => true, onSession: { exec: (x) => {
        if (x.command !== "starved") return runShellCommand(x);
        const fds = [];
        try { for (;;) fds.push(openSync("/dev/null", "r")); } catch {}
        try { runShellCommand(x); } finally { for (const fd of fds) closeSync(fd); }
      } } });
      const { port } = await s.listen(0);
      const c = await connect({ host: "127.0.0.1", port, username: "me", privateKeyPath: ${JSON.stringify(key)}, hostKey: false, kex: ["curve25519-sha256"] });
      const run = async (cmd) => { const ch = c.exec(cmd); ch.stdin.end(); let out = ""; ch.stdout.on("data", (d) => (out += d)); try { await ch.exit; return out; } catch (e) { return e.message; } };
      const starved = await run("starved");
      await new Promise((r) => setTimeout(r, 100));
      console.log(JSON.stringify([starved, await run("echo after")]));
      await c.end();
      await s.close();`;
    const child = spawn("sh", ["-c", 'ulimit -n 64 && exec "$0" --input-type=module -e "$1"', process.execPath, script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    expect(await new Promise((resolve) => child.on("exit", resolve)), err).toBe(0);
    expect(JSON.parse(out)).toEqual(["exec request refused by the server", "after\n"]);
  });

  itWithPeers(["ssh-keygen"], "a command and env value that are not UTF-8 (Latin-1) reach the handler (commandBytes, envBytes) and runShellCommand's shell as their bytes", async () => {
    const { connect, createServer, runShellCommand } = await import("dropbear-ts");
    const seen: (Buffer | null)[] = [];
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      onSession: {
        exec: (x) => {
          seen.push(x.commandBytes, x.envBytes.LC_DBTS ?? null);
          runShellCommand(x);
        },
      },
    });
    const { port: p } = await s.listen(0);
    const client = await connect({ host: "127.0.0.1", port: p, username: "me", privateKeyPath: key, hostKey: false });
    try {
      const e9 = Buffer.from([0xe9]);
      // A trailing newline, quotes and a "%" in the command must survive too.
      const cmd = Buffer.concat([Buffer.from("printf '%s|%s|%s' \"caf"), e9, Buffer.from('" "$LC_DBTS" "$0:$#"\n')]);
      const ch = client.exec(cmd, { env: { LC_DBTS: Buffer.concat([Buffer.from("r"), e9, Buffer.from("\n")]) } });
      ch.stdin.end();
      const parts: Buffer[] = [];
      ch.stdout.on("data", (d: Buffer) => parts.push(d));
      expect(await ch.exit).toEqual({ code: 0 });
      expect(Buffer.concat(parts)).toEqual(Buffer.concat([Buffer.from("caf"), e9, Buffer.from("|r"), e9, Buffer.from("\n|/bin/sh:0")]));
      expect(seen).toEqual([cmd, Buffer.concat([Buffer.from("r"), e9, Buffer.from("\n")])]);
      // One of 40 000 bytes (dropbear takes up to MAX_EXEC_CMD_LEN): its escapes, four times
      // that, failed with E2BIG as one argument.
      const long = client.exec(Buffer.concat([Buffer.from("printf '%s' \""), Buffer.alloc(40_000, 0xe9), Buffer.from('" | wc -c')]));
      long.stdin.end();
      let count = "";
      long.stdout.on("data", (d: Buffer) => (count += d.toString()));
      expect(await long.exit).toEqual({ code: 0 });
      expect(count.trim()).toBe("40000");
      // A NUL ends the command, as Dropbear's C string does (spawn refused it: the request failed,
      // logged as the handler's failure), in a UTF-8 command and in one that is not.
      for (const head of [Buffer.from("echo a"), Buffer.concat([Buffer.from("echo "), e9])]) {
        const nul = client.exec(Buffer.concat([head, Buffer.from("\0; echo b")]));
        nul.stdin.end();
        const out: Buffer[] = [];
        nul.stdout.on("data", (d: Buffer) => out.push(d));
        expect(await nul.exit).toEqual({ code: 0 });
        expect(Buffer.concat(out)).toEqual(Buffer.concat([head.subarray(5), Buffer.from("\n")]));
      }
    } finally {
      await client.end();
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "misbehaving callbacks and misuse end no process: async rejections, non-boolean answers, a throwing logger, bad arguments", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    const logged: string[] = [];
    const hosts: string[] = [];
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: ({ username }) => (username === "stringly" ? ("yes" as unknown as boolean) : true),
      onDirectTcpip: ({ host }) => {
        hosts.push(host);
        return null as unknown as boolean;
      },
      logger: (_level, msg) => {
        logged.push(msg);
        throw new Error("logger broke");
      },
      onSession: {
        exec: async (session) => {
          if (session.command === "reject") throw new Error("handler gave up");
          session.stdout.write("x\n");
          session.exit(0);
          // Misuse: a write after exit() fails only that write.
          session.stdout.write("after exit\n");
        },
      },
    });
    const { port: p } = await s.listen(0);
    const base = { host: "127.0.0.1", port: p, privateKeyPath: key, hostKey: false as const };
    try {
      await expect(connect({ ...base, username: "stringly" })).rejects.toThrow();
      const client = await connect({ ...base, username: "me" });
      const rejected = client.exec("reject");
      rejected.stdin.end();
      // An async handler that fails ends its command with status 1.
      expect(await rejected.exit).toEqual({ code: 1 });
      expect(logged.some((l) => l.includes("handler gave up"))).toBe(true);
      expect(await execOut(client, "fine")).toEqual({ exit: { code: 0 }, out: "x\n" });
      // onDirectTcpip answering null refuses the channel; the session goes on.
      await expect(client.forwardOut("127.0.0.1", 1, "127.0.0.1\0evil", 9)).rejects.toThrow(/refused/);
      // The host is a C string, as Dropbear reads it: the handler sees what would be connected to.
      expect(hosts).toEqual(["127.0.0.1"]);
      // Bad arguments are the call's TypeError, not the session's end.
      expect(() => client.exec(123 as unknown as string)).toThrow(TypeError);
      expect(() => client.exec("x", { env: { A: 1 as unknown as string } })).toThrow(TypeError);
      await expect(async () => client.forwardOut("127.0.0.1", 1, "127.0.0.1", 99999)).rejects.toThrow(TypeError);
      const again = client.exec("fine");
      again.stdin.end();
      expect(await again.exit).toEqual({ code: 0 });
      await client.end();
    } finally {
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "a callback that throws or rejects with a value String() cannot convert (a null-prototype object) is refused and logged: no unhandled rejection, no stalled auth", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    const logged: string[] = [];
    const odd = (): unknown => Object.create(null);
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: async ({ username }) => (username === "odd" ? Promise.reject(odd()) : true),
      onSession: {
        exec: (session) => {
          if (session.command === "sync") throw odd();
          return Promise.reject(odd());
        },
      },
      logger: (_level, msg) => logged.push(msg),
    });
    const { port: p } = await s.listen(0);
    const base = { host: "127.0.0.1", port: p, privateKeyPath: key, hostKey: false as const, readyTimeout: 20_000 };
    try {
      // Refused at once (EAUTH), not held until readyTimeout by an answer that never came.
      await expect(connect({ ...base, username: "odd" })).rejects.toMatchObject({ code: "EAUTH" });
      expect(logged).toContain("authenticate failed: [object Object]");
      const client = await connect({ ...base, username: "me" });
      const sync = client.exec("sync");
      sync.stdin.end();
      // The request is refused; the session goes on (it was an internal error ending it).
      await expect(sync.exit).rejects.toMatchObject({ code: "ECHANNEL" });
      const late = client.exec("async");
      late.stdin.end();
      expect(await late.exit).toEqual({ code: 1 });
      expect(logged.filter((l) => l === "Session handler failed: [object Object]")).toHaveLength(2);
      expect(logged.join("\n")).not.toMatch(/Internal error/);
      await client.end();
    } finally {
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "a handler that throws after its own exit() has run: its output and status reach the client, and the throw is logged", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    const logged: string[] = [];
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      logger: (_level, msg) => logged.push(msg),
      onSession: {
        exec: (session) => {
          session.stdout.write("partial\n");
          session.exit(3);
          throw new Error("cleanup broke");
        },
      },
    });
    const { port: p } = await s.listen(0);
    const client = await connect({ host: "127.0.0.1", port: p, username: "me", privateKeyPath: key, hostKey: false });
    try {
      expect(await execOut(client, "x")).toEqual({ exit: { code: 3 }, out: "partial\n" });
      expect(logged).toContain("Session handler failed: cleanup broke");
    } finally {
      await client.end();
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "a refused exec, shell or subsystem rejects its exit and leaves the session; oversized arguments are the call's TypeError; a throwing authenticate is logged", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    const logged: string[] = [];
    const ptys: string[] = [];
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: ({ username }) => {
        if (username === "buggy") throw new Error("auth bug");
        return true;
      },
      logger: (_level, msg) => logged.push(msg),
      onSession: {
        exec: (session) => {
          if (session.command === "refuse") throw new Error("not here");
          ptys.push(`${session.pty?.term}`);
          session.exit(0);
        },
        shell: (session) => {
          ptys.push(`${session.pty?.term} ${session.pty?.cols}x${session.pty?.rows}`);
          session.exit(0);
        },
      },
    });
    const { port: p } = await s.listen(0);
    const base = { host: "127.0.0.1", port: p, privateKeyPath: key, hostKey: false as const };
    try {
      await expect(connect({ ...base, username: "buggy" })).rejects.toThrow();
      expect(logged).toContain("authenticate failed: auth bug");
      const client = await connect({ ...base, username: "me" });
      const refused = client.exec("refuse");
      await expect(refused.exit).rejects.toThrow("exec request refused by the server");
      await expect(client.subsystem("sftp").exit).rejects.toThrow("subsystem request refused by the server");
      // The default pty comes with options given too, unless pty: false.
      await client.shell({ env: {} }).exit;
      await client.shell({ pty: false }).exit;
      expect(ptys).toEqual(["xterm 80x24", "undefined undefinedxundefined"]);
      // Strings too long for one packet: the call's TypeError, the session untouched.
      const big = "x".repeat(200_000);
      expect(() => client.exec(big)).toThrow(TypeError);
      expect(() => client.exec("x", { env: { A: big } })).toThrow(TypeError);
      expect(() => client.forwardOut("127.0.0.1", 1, big, 9)).toThrow(TypeError);
      expect(() => client.forwardRemote({ listenHost: big, listenPort: 0, host: "127.0.0.1", port: 9 })).toThrow(TypeError);
      expect(() => client.forwardLocal({ listenPort: 0, host: big, port: 9 })).toThrow(TypeError);
      // Long commands that fit still go (Dropbear's server takes up to MAX_CMD_LEN, 9000).
      expect(await execOut(client, "y".repeat(9000))).toEqual({ exit: { code: 0 }, out: "" });
      await client.end();
    } finally {
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "a handler writing with back pressure stops when its client stops reading and leaves (no endless drain loop); close() resolves", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    let writes = 0;
    let stopped: () => void;
    const writerStopped = new Promise<void>((r) => (stopped = r));
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      onSession: {
        exec: (session) => {
          const chunk = Buffer.alloc(64 * 1024, 97);
          // The usual loop: write until write() says wait, then go on at 'drain'.
          const pump = (): void => {
            while (writes < 1_000_000) {
              writes++;
              if (!session.stdout.write(chunk)) {
                if (session.stdout.destroyed) {
                  stopped();
                  return;
                }
                session.stdout.once("drain", pump);
                return;
              }
            }
            stopped();
          };
          session.stdout.on("close", () => stopped());
          pump();
        },
      },
    });
    const { port: p } = await s.listen(0);
    const client = await connect({ host: "127.0.0.1", port: p, username: "me", privateKeyPath: key, hostKey: false });
    const ch = client.exec("flood");
    ch.stdin.end();
    // Read a little, then stop reading: the window closes and the handler waits for 'drain'.
    await new Promise<void>((r) => ch.stdout.once("data", () => r()));
    ch.stdout.pause();
    await new Promise((r) => setTimeout(r, 300));
    const before = writes;
    await client.end();
    await writerStopped;
    // It stopped at the channel's close, not after a million writes into nothing.
    expect(writes - before).toBeLessThan(100);
    await s.close();
  });

  itWithPeers(["ssh-keygen"], "a pty's size, its window changes and the client's signal() reach the handler; stdin reaches it and its exit status comes back", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: ({ method }) => method === "publickey",
      onSession: {
        exec: (session) => {
          // No pty is made for a handler, which gets pipes: this process holds no pty master.
          const ptmx = readdirSync("/proc/self/fd").filter((fd) => {
            try {
              return readlinkSync(`/proc/self/fd/${fd}`) === "/dev/ptmx";
            } catch {
              return false;
            }
          }).length;
          session.stdout.write(`${session.command} ${session.pty?.term} ${session.pty?.cols}x${session.pty?.rows} ptmx ${ptmx}\n`);
          session.onWindowChange = (cols, rows) => session.stdout.write(`now ${cols}x${rows}\n`);
          session.onSignal = (name) => session.stdout.write(`sig ${name}\n`);
          let input = "";
          session.stdin.on("data", (d: Buffer) => (input += d.toString()));
          session.stdin.on("end", () => {
            session.stdout.write(`got ${input}\n`);
            session.exit(9);
          });
        },
      },
    });
    const { port: p } = await s.listen(0);
    const client = await connect({ host: "127.0.0.1", port: p, username: "me", privateKeyPath: key, hostKey: false });
    try {
      const ch = client.exec("resize-me", { pty: { term: "vt220", cols: 90, rows: 30 } });
      let out = "";
      ch.stdout.on("data", (d: Buffer) => (out += d.toString()));
      while (!out.includes("\n")) await new Promise((r) => setTimeout(r, 20));
      ch.setWindow(120, 40);
      while (!out.includes("now")) await new Promise((r) => setTimeout(r, 20));
      ch.signal("SIGUSR1");
      while (!out.includes("sig")) await new Promise((r) => setTimeout(r, 20));
      ch.stdin.end("bytes in");
      expect(await ch.exit).toEqual({ code: 9 });
      expect(out.replace(/\r/g, "")).toBe("resize-me vt220 90x30 ptmx 0\nnow 120x40\nsig USR1\ngot bytes in\n");
      // Asked for at once, before the channel is open: it follows the server's acceptance.
      const early = client.exec("early");
      early.signal("TERM");
      let earlyOut = "";
      early.stdout.on("data", (d: Buffer) => (earlyOut += d.toString()));
      while (!earlyOut.includes("sig")) await new Promise((r) => setTimeout(r, 20));
      early.stdin.end();
      expect(await early.exit).toEqual({ code: 9 });
      expect(earlyOut).toBe("early undefined undefinedxundefined ptmx 0\nsig TERM\ngot \n");
    } finally {
      await client.end();
      await s.close();
    }
  });

  itWithPeers(["ssh-keygen"], "every promise settles when the session ends; exit and signal misuse, a signal SSH cannot name, and options of the wrong type", async () => {
    const { connect, createServer } = await import("dropbear-ts");
    const misuse = (f: () => void): string => {
      try {
        f();
        return "accepted";
      } catch (e) {
        return (e as Error).name;
      }
    };
    const s = createServer({
      hostKeys: [hostKey],
      authenticate: () => true,
      // Never answers: a forward request stays unanswered until the client ends.
      onTcpipForward: () => new Promise<boolean>(() => {}),
      onSession: {
        exec: (session) => {
          if (session.command === "sys") {
            session.signal("SIGSYS");
          } else if (session.command === "misuse") {
            const names = [() => session.exit(-1), () => session.exit(Number.NaN), () => session.exit(undefined as unknown as number), () => session.signal("BOGUS")].map(misuse);
            session.stdout.write(names.join(","));
            session.exit(0);
          }
          // "sleep": runs until the session goes.
        },
      },
    });
    const { port: p } = await s.listen(0);
    const base = { host: "127.0.0.1", port: p, username: "me", privateKeyPath: key, hostKey: false as const };
    try {
      const client = await connect(base);
      // Killed by a signal SSH has no name for: no exit status at all, as Dropbear sends none.
      const sys = client.exec("sys");
      sys.stdin.end();
      await expect(sys.exit).rejects.toThrow("Channel closed without an exit status");
      expect(await execOut(client, "misuse")).toEqual({ exit: { code: 0 }, out: "TypeError,TypeError,TypeError,TypeError" });
      // Forwards' arguments of the wrong type are the call's TypeError; the session goes on.
      expect(() => client.forwardLocal({ listenPort: 0, host: 42 as unknown as string, port: 9 })).toThrow(TypeError);
      expect(() => client.forwardRemote({ listenHost: 42 as unknown as string, listenPort: 0, host: "127.0.0.1", port: 9 })).toThrow(TypeError);
      expect(() => client.forwardRemote({ listenPort: -5, host: "127.0.0.1", port: 9 })).toThrow(TypeError);
      expect(() => client.forwardRemote(undefined as unknown as { listenPort: number; host: string; port: number })).toThrow(TypeError);
      // A remote forward the server has not answered, a running command, and work still queued
      // when end() is called: each rejects with the session's reason.
      const remote = client.forwardRemote({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: 9 });
      const running = client.exec("sleep");
      await new Promise((r) => setTimeout(r, 300));
      const queued = [
        client.exec("sleep").exit,
        client.forwardOut("127.0.0.1", 1, "127.0.0.1", 9),
        client.forwardLocal({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: 9 }),
        client.forwardRemote({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: 9 }),
      ];
      const settled = [remote, running.exit, ...queued].map((p) => expect(p).rejects.toThrow("Client ended"));
      await client.end();
      await Promise.all(settled);
      // Options of the wrong type fail before connecting, not later or silently.
      await expect(connect({ ...base, passphrase: 42 as unknown as string })).rejects.toThrow("connect: bad passphrase (number)");
      await expect(connect({ ...base, hostKey: "known_hosts" as unknown as false })).rejects.toThrow("connect: bad hostKey (string)");
      await expect(connect({ ...base, readyTimeout: 2 ** 31 })).rejects.toThrow("connect: bad readyTimeout 2147483648");
      expect(() => createServer({ hostKeys: hostKey as unknown as string[], authenticate: () => true })).toThrow(/hostKeys must be an array/);
      expect(() => createServer(null as unknown as Parameters<typeof createServer>[0])).toThrow(new TypeError("createServer: options must be an object"));
      // Misspelt names: a handler left unread would refuse what the caller meant to serve.
      expect(() => createServer({ hostKeys: [hostKey], authenticate: () => true, onDirectTCPIP: () => true } as Parameters<typeof createServer>[0])).toThrow(new TypeError("createServer: unknown option 'onDirectTCPIP'"));
      expect(() => createServer({ hostKeys: [hostKey], authenticate: () => true, onSession: { command: () => undefined } as object })).toThrow(new TypeError("createServer: unknown option 'command'"));
      expect(() => createServer({ hostKeys: [Buffer.from("junk")], authenticate: () => true })).toThrow(
        "createServer: cannot read host key #0: not an RSA, ECDSA or Ed25519 key in Dropbear, OpenSSH or PEM format",
      );
      // The key loader's reason is in the error, where the default logger would drop it.
      const encrypted = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" });
      expect(() => createServer({ hostKeys: [Buffer.from(encrypted)], authenticate: () => true })).toThrow(
        "createServer: cannot read host key #0: Encrypted keys are not supported. Please convert with ssh-keygen first",
      );
      expect(() => createServer({ hostKeys: [hostKey], authenticate: () => true, onSession: { exec: "x" as unknown as () => void } })).toThrow(/onSession must be/);
      expect(() => createServer({ hostKeys: [hostKey], authenticate: () => true, maxUnauthenticated: {} as { total: number; perAddress: number } })).toThrow(/maxUnauthenticated must be/);
      // A host key whose private value cannot sign (an ECDSA k of 0) is refused, with the reason.
      const str = (b: Buffer): Buffer => {
        const len = Buffer.alloc(4);
        len.writeUInt32BE(b.length);
        return Buffer.concat([len, b]);
      };
      // P-256's generator as the public point, beside a k of 0 (an empty mpint).
      const G = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
      const badKey = Buffer.concat([str(Buffer.from("ecdsa-sha2-nistp256")), str(Buffer.from("nistp256")), str(Buffer.from(G, "hex")), str(Buffer.alloc(0))]);
      expect(() => createServer({ hostKeys: [badKey], authenticate: () => true })).toThrow("createServer: cannot use host key #0: ecdsa-sha2-nistp256: private value out of range");
      // A malformed PEM (a negative ASN.1 length) is refused without a word on stdout, where the
      // key tools print Dropbear's complaint.
      const der = Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00]);
      const pem = Buffer.from(`-----BEGIN RSA PRIVATE KEY-----\n${der.toString("base64")}\n-----END RSA PRIVATE KEY-----\n`);
      const write = process.stdout.write;
      let printed = "";
      process.stdout.write = ((chunk: string | Uint8Array) => {
        printed += String(chunk);
        return true;
      }) as typeof process.stdout.write;
      try {
        expect(() => createServer({ hostKeys: [pem], authenticate: () => true })).toThrow("createServer: cannot read host key #0");
      } finally {
        process.stdout.write = write;
      }
      expect(printed).toBe("");
    } finally {
      await s.close();
    }
  });
});
