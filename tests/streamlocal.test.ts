import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, statSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, itAsRoot } from "./helpers/peers.js";
import { opensshKeygen, freePort, ourKeygen, scratch, startOurDropbear, terminate, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";
import { payload, startEchoTarget } from "./helpers/tunnel.js";

// Issue 9: unix-socket forwarding on our server (svr-streamfwd.c), driven by OpenSSH's ssh:
// `-L port:/path` (direct-streamlocal@openssh.com) and `-R /path:host:port`
// (streamlocal-forward@openssh.com, its cancel through a control master). The socket is the
// user's, 0600, and goes when the forward or the session ends; bad requests are refused and
// the session goes on.

const USER = "dbtsstream";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-stream-");
const keys = { openssh: "", host: "" };
const user = { home: "", uid: 0, gid: 0 };
const cleanups: (() => Promise<void>)[] = [];
let ours: Server;

const itStream = itAsRoot;

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  if (!isRoot) return;
  ({ home: user.home, uid: user.uid, gid: user.gid } = addTestUser(USER));
  keys.openssh = join(work.dir, "id_openssh");
  opensshKeygen(keys.openssh, { comment: "stream" });
  keys.host = join(work.dir, "host_ed25519");
  ourKeygen(keys.host);
  authorizeKeys(user, `${keys.openssh}.pub`);
  ours = await startOurDropbear(["-r", keys.host]);
  cleanups.push(() => ours.stop());
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  if (isRoot) removeTestUser(USER);
  work.cleanup();
}, 60_000);

function sshBase(extra: string[]): string[] {
  return [
    "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-i", keys.openssh, "-p", String(ours.port), ...extra, `${USER}@127.0.0.1`,
  ];
}

/** A unix-socket echo server at `path` (mode 0777 so the user's connection process may connect). */
async function unixEcho(path: string): Promise<{ received: string[]; close: () => Promise<void> }> {
  const received: string[] = [];
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash("sha256");
    s.on("data", (d: Buffer) => {
      h.update(d);
      s.write(d);
    });
    s.on("end", () => {
      received.push(h.digest("hex"));
      s.end();
    });
    s.on("error", () => undefined);
  });
  srv.listen(path);
  await once(srv, "listening");
  chmodSync(path, 0o777);
  return { received, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

/** Send `data` to a connection (TCP port or unix path), collect what comes back until EOF. */
async function roundTrip(where: number | string, data: Buffer): Promise<Buffer> {
  const s = typeof where === "number" ? net.connect({ port: where, host: "127.0.0.1", allowHalfOpen: true }) : net.connect({ path: where, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  s.on("data", (d: Buffer) => chunks.push(d));
  await once(s, "connect");
  s.end(data);
  await once(s, "end");
  s.destroy();
  return Buffer.concat(chunks);
}

/** Start ssh in the background with forwards and a command that prints "up" and waits; resolves once it printed. */
async function sshWithForward(args: string[], cmd = "echo up; sleep 60"): Promise<{ child: ChildProcess; stderr: () => string; stop: () => Promise<void> }> {
  const child = spawn(PEERS.ssh, [...sshBase(args), cmd], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  let out = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const up = new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("up")) resolve();
    });
    child.once("exit", (c) => reject(new Error(`ssh exited ${c}: ${err}`)));
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 55_000);
  await up;
  const stop = async (): Promise<void> => {
    clearTimeout(timer);
    await terminate(child);
  };
  cleanups.push(stop);
  return { child, stderr: () => err, stop };
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe("direct-streamlocal@openssh.com (ssh -L port:/path)", () => {
  itStream(["ssh"], "reaches a unix socket (a UTF-8 name) through our server, 1 MB each way intact", async () => {
    // The connection process runs as the user: the socket's directory must let it in.
    const dir = join(work.dir, "pub");
    mkdirSync(dir, { recursive: true });
    chmodSync(work.dir, 0o755);
    chmodSync(dir, 0o755);
    // Not ASCII: the path's bytes must reach connect() as the client sent them.
    const sockPath = join(dir, "écho.sock");
    const echo = await unixEcho(sockPath);
    const lport = await freePort();
    const s = await sshWithForward(["-o", "ExitOnForwardFailure=yes", "-L", `${lport}:${sockPath}`]);
    try {
      const data = payload(1 << 20);
      const back = await roundTrip(lport, data);
      expect(sha(back)).toBe(sha(data));
      expect(echo.received).toEqual([sha(data)]);
    } finally {
      await s.stop();
      await echo.close();
    }
  });

  itStream(["ssh"], "a socket that is not there: that connection is refused, the session goes on", async () => {
    const lport = await freePort();
    const s = await sshWithForward(["-L", `${lport}:${join(work.dir, "nothing-here.sock")}`]);
    try {
      const back = await roundTrip(lport, Buffer.from("x")).catch(() => Buffer.alloc(0));
      expect(back.length).toBe(0);
      await waitFor(() => /open failed/.test(s.stderr()), 5000);
      expect(s.stderr()).toMatch(/open failed/);
      // The session is still up: the refusal ended only that channel.
      expect(s.child.exitCode).toBeNull();
    } finally {
      await s.stop();
    }
  });
});

describe("streamlocal-forward@openssh.com (ssh -R /path:host:port)", () => {
  itStream(["ssh"], "the socket (a UTF-8 name) is the user's, 0600, carries 1 MB intact, and goes when the session ends", async () => {
    const echo = await startEchoTarget();
    const sockPath = join(user.home, "fwd-é.sock");
    const s = await sshWithForward(["-o", "ExitOnForwardFailure=yes", "-R", `${sockPath}:127.0.0.1:${echo.port}`]);
    try {
      expect(await waitFor(() => existsSync(sockPath))).toBe(true);
      const st = statSync(sockPath);
      expect(st.isSocket()).toBe(true);
      expect(st.uid).toBe(user.uid);
      expect(st.mode & 0o777).toBe(0o600);
      const data = payload(1 << 20);
      const back = await roundTrip(sockPath, data);
      expect(sha(back)).toBe(sha(data));
      expect(echo.received).toEqual([sha(data)]);
    } finally {
      await s.stop();
      await echo.close();
    }
    expect(await waitFor(() => !existsSync(sockPath))).toBe(true);
  });

  itStream(["ssh"], "cancel through a control master removes the socket; the session goes on", async () => {
    const echo = await startEchoTarget();
    const sockPath = join(user.home, "cancel.sock");
    const ctl = join(work.dir, "ctl");
    const s = await sshWithForward(["-o", "ControlMaster=yes", "-o", `ControlPath=${ctl}`, "-R", `${sockPath}:127.0.0.1:${echo.port}`]);
    try {
      expect(await waitFor(() => existsSync(sockPath))).toBe(true);
      const r = spawnSync(PEERS.ssh, ["-o", `ControlPath=${ctl}`, "-O", "cancel", "-R", `${sockPath}:127.0.0.1:${echo.port}`, `${USER}@127.0.0.1`], { encoding: "utf8", timeout: 20_000 });
      // ssh -O cancel exits 0 even when refused; its stderr tells.
      expect(r.stderr).not.toMatch(/fail|not found/i);
      expect(await waitFor(() => !existsSync(sockPath))).toBe(true);
      // The master still runs commands.
      const again = spawnSync(PEERS.ssh, ["-o", `ControlPath=${ctl}`, `${USER}@127.0.0.1`, "echo still-here"], { encoding: "utf8", timeout: 20_000 });
      expect(again.stdout).toBe("still-here\n");
      expect(s.child.exitCode).toBeNull();
    } finally {
      await s.stop();
      await echo.close();
    }
  });

  // (OpenSSH's ssh refuses paths too long for sockaddr_un itself, so that check of ours is not
  // reached from here.)
  itStream(["ssh"], "a path the user cannot write: refused, logged, and the command still runs", async () => {
    const path = "/root/dbts-not-yours.sock";
    const r = spawnSync(PEERS.ssh, [...sshBase(["-R", `${path}:127.0.0.1:1`]), "echo ran"], { encoding: "utf8", timeout: 30_000 });
    expect(r.stdout, r.stderr).toBe("ran\n");
    expect(r.stderr).toMatch(/forwarding failed/i);
    expect(existsSync(path)).toBe(false);
    await waitFor(() => /Streamlocal forward failed: bind\(\) failed/.test(ours.log()), 5000);
    expect(ours.log()).toMatch(/Streamlocal forward failed: bind\(\) failed: Permission denied/);
  });

  itStream(["ssh"], "a path in a directory that does not exist: bind()'s ENOENT is logged as such (libuv calls it EACCES)", async () => {
    const path = `/tmp/dbts-no-such-dir-${process.pid}/x.sock`;
    const r = spawnSync(PEERS.ssh, [...sshBase(["-R", `${path}:127.0.0.1:1`]), "echo ran"], { encoding: "utf8", timeout: 30_000 });
    expect(r.stdout, r.stderr).toBe("ran\n");
    await waitFor(() => /Streamlocal forward failed: bind\(\) failed: No such file/.test(ours.log()), 5000);
    expect(ours.log()).toMatch(/Streamlocal forward failed: bind\(\) failed: No such file or directory/);
  });
});

describe("cancel-tcpip-forward (Dropbear's test_canceltcplisten shape, through a control master)", () => {
  itStream(["ssh"], "four -R 0 forwards, each reachable, each cancelled in turn frees its port; the session goes on", async () => {
    // Four targets: the mux answers an identical -R spec with the forward it already has.
    const echoes = await Promise.all([0, 1, 2, 3].map(() => startEchoTarget()));
    const ctl = join(work.dir, "ctl-tcp");
    const s = await sshWithForward(["-o", "ControlMaster=yes", "-o", `ControlPath=${ctl}`]);
    const mux = (args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(PEERS.ssh, ["-o", `ControlPath=${ctl}`, ...args, `${USER}@127.0.0.1`], { encoding: "utf8", timeout: 20_000 });
    const refused = (p: number): Promise<boolean> =>
      new Promise<boolean>((resolve) => {
        const c = net.connect(p, "127.0.0.1");
        c.once("connect", () => (c.destroy(), resolve(false)));
        c.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
      });
    try {
      const ports: number[] = [];
      for (const echo of echoes) {
        const r = mux(["-O", "forward", "-R", `0:127.0.0.1:${echo.port}`]);
        expect(r.status, String(r.stderr)).toBe(0);
        const port = Number(String(r.stdout).trim());
        expect(port).toBeGreaterThan(0);
        ports.push(port);
      }
      expect(new Set(ports).size).toBe(4);
      for (const p of ports) {
        const back = await roundTrip(p, Buffer.from(`hello ${p}`));
        expect(back.toString()).toBe(`hello ${p}`);
      }
      // Shuffled, as Dropbear's test does, in case list order matters.
      for (const i of [2, 0, 3, 1]) {
        const p = ports[i]!;
        // The mux names a port-0 forward by its spec and sends the allocated port itself (and
        // exits 0 even when it refuses: its stderr tells).
        const r = mux(["-O", "cancel", "-R", `0:127.0.0.1:${echoes[i]!.port}`]);
        expect(String(r.stderr)).not.toMatch(/fail|not found/i);
        // ssh sends the cancel without asking for a reply: wait for it to land.
        let gone = false;
        for (let t = 0; t < 100 && !gone; t++) {
          gone = await refused(p);
          if (!gone) await new Promise((res) => setTimeout(res, 50));
        }
        expect(gone, `port ${p} still open after cancel`).toBe(true);
        // The others stay up until their own cancel.
        for (const j of [2, 0, 3, 1].slice([2, 0, 3, 1].indexOf(i) + 1)) {
          expect(await refused(ports[j]!)).toBe(false);
        }
      }
      const again = spawnSync(PEERS.ssh, ["-o", `ControlPath=${ctl}`, `${USER}@127.0.0.1`, "echo still-here"], { encoding: "utf8", timeout: 20_000 });
      expect(again.stdout).toBe("still-here\n");
    } finally {
      await s.stop();
      for (const e of echoes) await e.close();
    }
  });
});

describe("-R listeners of a server started with -l", () => {
  itStream(["ssh"], "ssh -R 0 through `dropbear -l lo`: the allocated port is bound to lo and carries data", async () => {
    const srv = await startOurDropbear(["-r", keys.host, "-l", "lo"]);
    cleanups.push(() => srv.stop());
    const echo = await startEchoTarget();
    const child = spawn(
      PEERS.ssh,
      [
        "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "ExitOnForwardFailure=yes", "-i", keys.openssh, "-p", String(srv.port), "-R", `0:127.0.0.1:${echo.port}`, "-N", `${USER}@127.0.0.1`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      expect(await waitFor(() => /Allocated port (\d+)/.test(err))).toBe(true);
      const port = Number(/Allocated port (\d+)/.exec(err)![1]);
      const socks = execFileSync("ss", ["-Hltn", `sport = :${port}`], { encoding: "utf8" }).trim().split("\n").map((l) => l.split(/\s+/)[3]!);
      expect(socks.length).toBeGreaterThan(0);
      for (const l of socks) expect(l).toMatch(/%lo:/);
      const back = await roundTrip(port, Buffer.from("through lo"));
      expect(back.toString()).toBe("through lo");
    } finally {
      clearTimeout(timer);
      await terminate(child);
      await echo.close();
    }
  });
});
