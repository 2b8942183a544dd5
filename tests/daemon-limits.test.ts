import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync } from "node:fs";
import * as net from "node:net";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AMD_COPY_TUNABLES, cpuVendor, printfEscapes } from "@dropbear-ts/dbutil";
import { PEERS, itAsRoot, itWithPeers } from "./helpers/peers.js";
import { capEff, childrenOf, connectionsOf, socketInodes, startTicks, tcpInodes, threadNices, uptimeTicks, waitSpare } from "./helpers/procs.js";
import { OURS, freePort, ourKeygen, run, runDetaching, scratch, startOurDropbear, waitPort, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Issue 10: Dropbear's limits and the daemon's flags, end to end over loopback. Loopback has the
// whole 127/8, so binding a client socket's local address makes it another remote host.

const work = scratch("dbts-limits-");
let hk: string;

beforeAll(() => {
  hk = join(work.dir, "hk");
  ourKeygen(hk);
});

afterAll(() => work.cleanup());

/** Running (not ended, not a zombie waiting for its parent). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

const SSH_NONE = ["-v", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=none", "-o", "ConnectTimeout=5"];

/** A real client from `from` completes kex and reaches userauth. */
async function served(host: string, port: number, from?: string): Promise<void> {
  const r = await run(PEERS.ssh, [...SSH_NONE, ...(from ? ["-b", from] : []), "-p", String(port), `nobody@${host}`, "true"], { timeoutMs: 20_000 });
  expect(r.stderr).toMatch(/SSH2_MSG_SERVICE_ACCEPT received/);
}

/**
 * A silent connection from `from`: resolves with the socket once the server's version line came
 * (a connection process serves it), or with null if the server closed it without one (dropped
 * by the listener).
 */
async function silent(port: number, from: string, host = "127.0.0.1"): Promise<net.Socket | null> {
  const s = net.connect({ port, host, localAddress: from });
  s.on("error", () => undefined);
  return new Promise((resolve) => {
    let got = "";
    const timer = setTimeout(() => resolve(s), 10_000);
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (got.includes("\n")) {
        clearTimeout(timer);
        resolve(s);
      }
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(got.startsWith("SSH-") ? s : null);
    });
  });
}

describe("core files (disallow_core)", () => {
  itWithPeers(["ssh"], "started with core files allowed, the daemon and its spare keep the soft limit at 0", async () => {
    const d = await startOurDropbear(["-r", hk], {}, ["prlimit", "--core=unlimited:unlimited"]);
    try {
      const core = (pid: number): string => /^Max core file size\s+(\S+\s+\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))![1]!.replace(/\s+/, " ");
      expect(core(d.child.pid!)).toBe("0 unlimited");
      expect(core(await waitSpare(d.child.pid!))).toBe("0 unlimited");
    } finally {
      await d.stop();
    }
  }, 30_000);
});

describe("pre-auth limits", () => {
  let server: Server;
  beforeAll(async () => {
    server = await startOurDropbear(["-r", hk]);
  }, 30_000);
  afterAll(async () => {
    await server.stop();
  });

  itWithPeers(["ssh"], "MAX_UNAUTH_PER_IP: the sixth silent connection from 127.0.0.1 is dropped while 127.0.0.2 is served", async () => {
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const s = await silent(server.port, "127.0.0.1");
        expect(s).not.toBeNull();
        held.push(s!);
      }
      expect(await silent(server.port, "127.0.0.1")).toBeNull();
      await served("127.0.0.1", server.port, "127.0.0.2");
      // Still dropped afterwards; one slot freed lets one more in.
      expect(await silent(server.port, "127.0.0.1")).toBeNull();
      held.pop()!.destroy();
      await expect.poll(() => connectionsOf(server.child.pid!).length, { timeout: 10_000 }).toBe(4);
      const again = await silent(server.port, "127.0.0.1");
      expect(again).not.toBeNull();
      held.push(again!);
    } finally {
      for (const s of held) s.destroy();
    }
    await expect.poll(() => connectionsOf(server.child.pid!).length, { timeout: 10_000 }).toBe(0);
  }, 60_000);

  itWithPeers(["ssh"], "MAX_UNAUTH_CLIENTS: with 30 silent connections the 31st is dropped; a freed slot serves again", async () => {
    const held: net.Socket[] = [];
    try {
      const socks = await Promise.all(Array.from({ length: 30 }, (_, i) => silent(server.port, `127.0.4.${2 + i}`)));
      for (const s of socks) {
        expect(s).not.toBeNull();
        held.push(s!);
      }
      expect(await silent(server.port, "127.0.5.2")).toBeNull();
      held.pop()!.destroy();
      await expect.poll(() => connectionsOf(server.child.pid!).length, { timeout: 10_000 }).toBe(29);
      await served("127.0.0.1", server.port, "127.0.5.3");
    } finally {
      for (const s of held) s.destroy();
    }
    await expect.poll(() => connectionsOf(server.child.pid!).length, { timeout: 10_000 }).toBe(0);
  }, 60_000);
});

describe("daemon flags", () => {
  itWithPeers(["ssh"], "several -p (IPv4 and IPv6), -P written at start and removed at SIGTERM, ports freed", async () => {
    const p4 = await freePort();
    const p6 = await freePort();
    const pidfile = join(work.dir, "dropbear.pid");
    const child = spawn(process.execPath, [OURS.dropbear, "-F", "-E", "-r", hk, "-p", `127.0.0.1:${p4}`, "-p", `[::1]:${p6}`, "-P", pidfile], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await waitPort(p4, child, () => out);
      // Written just after the listeners are up, so possibly after the port first answers.
      await expect.poll(() => existsSync(pidfile) && readFileSync(pidfile, "utf8"), { timeout: 10_000 }).toBe(`${child.pid}\n`);
      await served("127.0.0.1", p4);
      await served("::1", p6);
    } finally {
      const gone = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = (await gone) as [number | null];
      expect(code).toBe(0);
    }
    expect(out).toMatch(/Early exit: Terminated by signal/);
    // The IPv6 peer's port whole in the later lines too (C's svr-session.c cuts its last two digits).
    const v6port = /Child connection from \[::1\]:(\d+)/.exec(out)?.[1];
    expect(v6port, out).toBeDefined();
    expect(out).toContain(`from <[::1]:${v6port}>`);
    expect(existsSync(pidfile)).toBe(false);
    // Both ports are free again.
    for (const [port, host] of [
      [p4, "127.0.0.1"],
      [p6, "::1"],
    ] as const) {
      const s = net.createServer().listen(port, host);
      await once(s, "listening");
      await new Promise<void>((r) => s.close(() => r()));
    }
  }, 60_000);

  it("-P relative, in a working directory whose name is not UTF-8 (Latin-1): written there once SIGTERM is caught, and removed at SIGTERM, as C's fopen and unlink of the name do", async () => {
    const dir = Buffer.concat([Buffer.from(join(work.dir, "caf")), Buffer.of(0xe9)]);
    mkdirSync(dir);
    const pidfile = Buffer.concat([dir, Buffer.from("/rel.pid")]);
    const port = await freePort();
    // Node's spawn takes its cwd as UTF-8 text, so sh goes there by the bytes.
    const child = spawn("/bin/sh", ["-c", `cd "$(printf '${printfEscapes(dir)}')" && exec "$0" "$@"`, process.execPath, OURS.dropbear, "-F", "-E", "-r", hk, "-p", `127.0.0.1:${port}`, "-P", "rel.pid"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    try {
      // Watched closely: from the moment the file is there, SIGTERM must find the daemon's
      // handler (C sets it before listening), or the daemon dies with the file left behind.
      const end = Date.now() + 15_000;
      while (!(existsSync(pidfile) && readFileSync(pidfile, "utf8").length > 0) && Date.now() < end && child.exitCode === null) {
        await new Promise((r) => setImmediate(r));
      }
      const caught = BigInt(`0x${/^SigCgt:\s*(\S+)/m.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? "0"}`);
      expect(readFileSync(pidfile, "utf8")).toBe(`${child.pid}\n`);
      expect((caught >> 14n) & 1n, "SIGTERM caught once the pid file exists").toBe(1n);
      await waitPort(port, child, () => out);
    } finally {
      const gone = once(child, "exit");
      child.kill("SIGTERM");
      await gone;
    }
    expect(existsSync(pidfile), out).toBe(false);
  }, 30_000);

  itAsRoot([], "as a PID namespace's first process (a container's), the daemon reaps the orphans given to it, as C's waitpid(-1) does", async () => {
    const user = addTestUser("dbtspidone");
    const id = ourKeygen(join(work.dir, "pid1_id"));
    authorizeKeys(user, `${id}.pub`);
    const port = await freePort();
    const child = spawn("/usr/bin/unshare", ["-p", "-f", "--mount-proc", process.execPath, OURS.dropbear, "-F", "-E", "-r", hk, "-p", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    // unshare ignores SIGTERM while it waits: the daemon, its child, is the one to stop.
    let daemon = 0;
    try {
      await waitPort(port, child, () => out);
      daemon = childrenOf(child.pid!)[0]!;
      // Each ( ... &) leaves a sleep whose parent is gone: it is given to the namespace's init.
      const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "-i", id, "-p", String(port), `${user.name}@127.0.0.1`, "(sleep 0.1 &); (sleep 0.1 &); echo ok"], { env: { HOME: work.dir }, timeoutMs: 20_000 });
      expect(r.stdout, `${r.stderr}\n${out}`).toBe("ok\n");
      await new Promise((res) => setTimeout(res, 1000));
      // Its children, zombies included (which helpers/procs.ts's lists leave out).
      const children = readdirSync(`/proc/${daemon}/task`).flatMap((t) => readFileSync(`/proc/${daemon}/task/${t}/children`, "utf8").split(" ").filter(Boolean).map(Number));
      expect(children.length, out).toBeGreaterThan(0);
      expect(children.filter((pid) => !alive(pid)), out).toEqual([]);
    } finally {
      const gone = once(child, "exit");
      if (daemon > 0) process.kill(daemon, "SIGTERM");
      else child.kill("SIGKILL");
      await gone;
      removeTestUser(user.name);
    }
  });

  itWithPeers(["ssh"], "-i: inetd mode serves the connection on its stdin, a TCP or a Unix-domain socket", async () => {
    const logs: string[] = [];
    // Our own inetd: each connection becomes the stdin and stdout of a dropbear -i.
    const serve = (sock: net.Socket): void => {
      const c = spawn(process.execPath, [OURS.dropbear, "-i", "-E", "-r", hk], { stdio: [sock, sock, "pipe"] });
      c.stderr!.on("data", (d: Buffer) => logs.push(d.toString()));
      c.on("exit", () => sock.destroy());
      // The child has its own copy now.
      sock.destroy();
    };
    const inetd = net.createServer({ pauseOnConnect: true }, serve);
    inetd.listen(0, "127.0.0.1");
    await once(inetd, "listening");
    // On a Unix-domain socket (inetd's unix streams, a proxy command's socketpair) C's
    // getnameinfo names the peer "localhost" with no port; it had been refused as no socket.
    const path = join(work.dir, "inetd.sock");
    const unixInetd = net.createServer({ pauseOnConnect: true }, serve).listen(path);
    await once(unixInetd, "listening");
    try {
      await served("127.0.0.1", (inetd.address() as net.AddressInfo).port);
      await expect.poll(() => logs.join(""), { timeout: 10_000 }).toMatch(/Exit before auth from <127\.0\.0\.1:\d+>/);
      expect(logs.join("")).toMatch(/Child connection from 127\.0\.0\.1:\d+/);
      const u = net.connect(path);
      u.on("error", () => undefined);
      let ident = "";
      u.on("data", (d: Buffer) => (ident += d.toString("latin1")));
      await expect.poll(() => ident, { timeout: 10_000 }).toMatch(/^SSH-2\.0-dropbear_\S+\r\n/);
      u.destroy();
      await expect.poll(() => logs.join(""), { timeout: 10_000 }).toMatch(/Exit before auth from <localhost:>/);
      expect(logs.join("")).toMatch(/Child connection from localhost:\n/);
    } finally {
      await new Promise<void>((r) => inetd.close(() => r()));
      await new Promise<void>((r) => unixInetd.close(() => r()));
    }
  }, 60_000);

  it("-i: the connection leaves its supervisor's session and process group (setsid), as C's main_inetd, so a ^C or hang-up meant for a socat or tcpserver run from a terminal does not end it", async () => {
    let log = "";
    let child: ReturnType<typeof spawn> | null = null;
    const inetd = net.createServer({ pauseOnConnect: true }, (sock) => {
      // Started as socat and tcpserver start it: in their process group and session.
      child = spawn(process.execPath, [OURS.dropbear, "-i", "-E", "-r", hk], { stdio: [sock, sock, "pipe"] });
      child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
      sock.destroy();
    });
    inetd.listen(0, "127.0.0.1");
    await once(inetd, "listening");
    const c = net.connect((inetd.address() as net.AddressInfo).port, "127.0.0.1");
    c.on("error", () => undefined);
    let ident = "";
    c.on("data", (d: Buffer) => (ident += d.toString("latin1")));
    try {
      await expect.poll(() => ident, { timeout: 15_000 }).toMatch(/^SSH-2\.0-/);
      expect(log).toMatch(/Child connection from 127\.0\.0\.1:\d+/);
      const pid = (child as unknown as { pid: number }).pid;
      // /proc/<pid>/stat after the command name: state, ppid, pgrp, session.
      const ids = (): number[] => readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ").slice(2, 4).map(Number);
      expect(ids()).toEqual([pid, pid]);
    } finally {
      c.destroy();
      (child as ReturnType<typeof spawn> | null)?.kill("SIGTERM");
      await new Promise<void>((r) => inetd.close(() => r()));
    }
  }, 60_000);

  it("-i: a command-line error goes to syslog, as C sends it, not to the client when stderr is the connection (inetd's and xinetd's way)", async () => {
    const inetd = net.createServer({ pauseOnConnect: true }, (sock) => {
      spawn(process.execPath, [OURS.dropbear, "-i", "-r", hk, "-K", "abc"], { stdio: [sock, sock, sock] });
      sock.destroy();
    });
    inetd.listen(0, "127.0.0.1");
    await once(inetd, "listening");
    try {
      const c = net.connect((inetd.address() as net.AddressInfo).port, "127.0.0.1");
      c.on("error", () => undefined);
      let got = "";
      c.on("data", (d: Buffer) => (got += d.toString("latin1")));
      await once(c, "close");
      expect(got).toBe("");
    } finally {
      await new Promise<void>((r) => inetd.close(() => r()));
    }
  }, 60_000);

  itWithPeers(["ssh"], "without -F the daemon backgrounds (the launcher exits 0 once it listens, -P names the daemon), and SIGINT ends it and its spare", async () => {
    const port = await freePort();
    const pidfile = join(work.dir, "bg.pid");
    // Relative paths, from where it is started: the daemon then works from /, as C's daemon()
    // leaves it, but reads its host key and writes and removes its pid file where they were named.
    const r = await runDetaching(process.execPath, [OURS.dropbear, "-E", "-r", basename(hk), "-p", `127.0.0.1:${port}`, "-P", basename(pidfile)], join(work.dir, "bg.out"), { timeoutMs: 15_000, cwd: work.dir });
    expect(r.status, r.output()).toBe(0);
    // With -E the background daemon keeps stderr, as C's daemon(0, 1) does: its log is there.
    await expect.poll(r.output, { timeout: 10_000 }).toMatch(/Running in background/);
    // The launcher returns once the daemon listens.
    await served("127.0.0.1", port);
    await expect.poll(() => existsSync(pidfile) && readFileSync(pidfile, "utf8"), { timeout: 15_000 }).toMatch(/^\d+\n$/);
    const pid = Number(readFileSync(pidfile, "utf8"));
    let spare: number | undefined;
    try {
      await served("127.0.0.1", port);
      spare = await waitSpare(pid);
      expect(readlinkSync(`/proc/${pid}/cwd`)).toBe("/");
      // A connection process leaves its start directory once it has read its host key.
      await expect.poll(() => readlinkSync(`/proc/${spare}/cwd`), { timeout: 10_000 }).toBe("/");
      // The background copy's mark is its own: its connection processes do not inherit it.
      expect(readFileSync(`/proc/${spare}/environ`, "latin1").split("\0")).not.toContainEqual(expect.stringMatching(/^DROPBEAR_TS_DETACHED_FD=/));
    } finally {
      process.kill(pid, "SIGINT");
    }
    await expect.poll(() => alive(pid), { timeout: 10_000 }).toBe(false);
    await expect.poll(() => alive(spare!), { timeout: 10_000 }).toBe(false);
    expect(existsSync(pidfile)).toBe(false);
  }, 60_000);

  itWithPeers(["ssh"], "started in a working directory removed since, the daemon serves as C's does (it stopped with a stack trace on Node's failing cwd)", async () => {
    const gone = join(work.dir, "gone");
    mkdirSync(gone);
    // A relative -P there fails to be written, as C's fopen fails, and is no reason to stop.
    const d = await startOurDropbear(["-r", hk, "-P", "rel.pid"], {}, ["sh", "-c", 'cd "$0" && rmdir "$0" && exec "$@"', gone]);
    try {
      await served("127.0.0.1", d.port);
      expect(d.log()).not.toMatch(/internal error|uv_cwd/);
    } finally {
      await d.stop();
    }
  }, 60_000);

  it("without -F, a daemon that cannot start says why on stderr (-E) and the launcher exits 1", async () => {
    const port = await freePort();
    const r = await run(process.execPath, [OURS.dropbear, "-E", "-r", join(work.dir, "no-such-key"), "-p", `127.0.0.1:${port}`], { timeoutMs: 15_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Failed loading .*no-such-key/);
    expect(r.stderr).toMatch(/Early exit: No hostkeys available/);
    // A port already taken: no listening port, so no daemon either.
    const taken = net.createServer().listen(port, "127.0.0.1");
    await once(taken, "listening");
    try {
      const busy = await run(process.execPath, [OURS.dropbear, "-E", "-r", hk, "-p", `127.0.0.1:${port}`], { timeoutMs: 15_000 });
      expect(busy.status).toBe(1);
      expect(busy.stderr).toMatch(/Early exit: No listening ports available/);
    } finally {
      taken.close();
    }
  }, 30_000);

  itWithPeers(["ssh"], "the warm spare: its V8 flags and malloc settings, no listening socket, no NODE_OPTIONS, lowest CPU priority until it has its connection, no IPC channel, no handoff socket after, and it dies with the daemon", async () => {
    const d = await startOurDropbear(["-r", hk], { NODE_OPTIONS: "--max-old-space-size=200" });
    try {
      const spare = await waitSpare(d.child.pid!);
      // What it started with: the daemon's NODE_OPTIONS held back from Node (svr-main.ts HELD_ENV).
      const environ = readFileSync(`/proc/${spare}/environ`, "latin1").split("\0");
      expect(environ).not.toContainEqual(expect.stringMatching(/^NODE_OPTIONS=/));
      expect(environ).toContain("DROPBEAR_TS_HELD_NODE_OPTIONS=--max-old-space-size=200");
      // glibc's settings it starts with (svr-main.ts connectionLibcEnv): malloc's, and on an AMD
      // processor copies without `rep movsb`.
      const amd = cpuVendor() === "AuthenticAMD";
      const libc = ["MALLOC_ARENA_MAX=1", "MALLOC_TOP_PAD_=0", `MALLOC_MMAP_THRESHOLD_=${512 * 1024}`, ...(amd ? [`GLIBC_TUNABLES=${AMD_COPY_TUNABLES}`] : [])];
      expect(environ).toEqual(expect.arrayContaining([...libc, `DROPBEAR_TS_CONNECTION_ENV=${libc.map((kv) => kv.split("=")[0]).join(",")}`]));
      expect(readFileSync(`/proc/${spare}/cmdline`, "latin1").split("\0").slice(1, 6)).toEqual(["--max-semi-space-size=1", "--v8-pool-size=1", "--liftoff-only", "--no-maglev", realpathSync(OURS.dropbear)]);
      const listening = tcpInodes("0A");
      expect(socketInodes(spare).filter((i) => listening.has(i))).toEqual([]);
      expect(socketInodes(d.child.pid!).filter((i) => listening.has(i)).length).toBe(1);
      // A daemon that may raise priorities again (CAP_SYS_NICE) starts it at nice 19 (its
      // start-up must not slow the connections being served) and gives it the daemon's own at
      // the handoff, every thread of it.
      const daemonNice = threadNices(d.child.pid!).get(d.child.pid!);
      const CAP_SYS_NICE = 23n;
      const niced = ((capEff(d.child.pid!)! >> CAP_SYS_NICE) & 1n) === 1n && daemonNice! < 19;
      expect(threadNices(spare).get(spare)).toBe(niced ? 19 : daemonNice);
      // No Node IPC channel (it would load node:child_process and node:v8 into every
      // connection process); the connection comes over the handoff socket on fd 4.
      expect(environ).not.toContainEqual(expect.stringMatching(/^NODE_CHANNEL_FD=/));
      expect(readlinkSync(`/proc/${spare}/fd/4`)).toMatch(/^socket:/);
      // The spare serves the next connection and closes its handoff socket at once (the socket
      // came over it; nothing more will); a new spare takes its place.
      const held = (await silent(d.port, "127.0.0.1"))!;
      expect(held).not.toBeNull();
      await expect.poll(() => connectionsOf(d.child.pid!), { timeout: 10_000 }).toEqual([spare]);
      expect(new Set(threadNices(spare).values())).toEqual(new Set([daemonNice]));
      await expect.poll(() => existsSync(`/proc/${spare}/fd/4`), { timeout: 10_000 }).toBe(false);
      held.destroy();
      await served("127.0.0.1", d.port);
      const next = await waitSpare(d.child.pid!);
      expect(next).not.toBe(spare);
      d.child.kill("SIGKILL");
      await expect.poll(() => alive(next), { timeout: 10_000 }).toBe(false);
    } finally {
      await d.stop();
    }
  }, 60_000);

  itWithPeers(["ssh"], "the next spare waits 300 ms after a handoff while that connection lasts, so its start-up does not take the connection's CPU", async () => {
    const d = await startOurDropbear(["-r", hk]);
    try {
      const spare = await waitSpare(d.child.pid!);
      const connected = uptimeTicks();
      const held = (await silent(d.port, "127.0.0.1"))!;
      expect(held).not.toBeNull();
      await expect.poll(() => connectionsOf(d.child.pid!), { timeout: 10_000 }).toEqual([spare]);
      const next = await waitSpare(d.child.pid!);
      // The handoff came after the connect: 300 ms after it is at least 30 ticks after it (one
      // of slack for /proc/uptime's rounding).
      expect(startTicks(next)! - connected).toBeGreaterThanOrEqual(29);
      held.destroy();
      // Once that spare has served a whole connection, there is a spare again (started at that
      // connection's end or 300 ms after its handoff, whichever came first).
      await served("127.0.0.1", d.port);
      await waitSpare(d.child.pid!);
    } finally {
      await d.stop();
    }
  }, 60_000);

  it("-p on an address that is not ours: warned, and with no port left the daemon exits", async () => {
    const port = await freePort();
    const r = await run(process.execPath, [OURS.dropbear, "-F", "-E", "-r", hk, "-p", `192.0.2.1:${port}`], { timeoutMs: 15_000 });
    expect(r.stderr).toMatch(/Failed listening on '\d+': .*Cannot assign requested address/);
    expect(r.stderr).toMatch(/No listening ports available/);
    expect(r.status).toBe(1);
  });
});
