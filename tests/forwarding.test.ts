import { spawnSync } from "node:child_process";
import { chmodSync, readlinkSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, type PeerName, itAsRoot } from "./helpers/peers.js";
import { opensshKeygen, OURS, freePort, ourKeygen, runDetaching, runOurClient, scratch, startDebianDropbear, startOurDropbear, startSshd, type Server } from "./helpers/servers.js";
import { refusedPort } from "./helpers/sockets.js";
import { connectionsOf } from "./helpers/procs.js";
import { tcpConnectionsOf } from "./helpers/procs.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";
import {
  connectExpectClose,
  echoRoundTrip,
  halfCloseRequest,
  ownBytesBothWays,
  payloadHash,
  rssOf,
  slowReader,
  startEchoTarget,
  startReplyTarget,
  startSourceTarget,
  startTunnel,
  type Target,
  type Tunnel,
} from "./helpers/tunnel.js";

// Issue 5: local port forwarding (-L) end to end, every byte checked both ways, between our
// client and server and OpenSSH's and Debian Dropbear's.

const USER = "dbtsfwd";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-fwd-");
const keys = { dropbear: "", openssh: "", host: "" };
const cleanups: (() => Promise<void>)[] = [];

const itFwd = itAsRoot;

beforeAll(() => {
  if (!isRoot) return;
  // A user of our own: its authorized_keys serves all three servers (Debian's dropbear has no -D).
  const user = addTestUser(USER, { password: `fwd-${process.pid}-pass` });

  keys.dropbear = join(work.dir, "id_dropbear");
  ourKeygen(keys.dropbear);
  keys.openssh = join(work.dir, "id_openssh");
  opensshKeygen(keys.openssh, { comment: "fwd" });
  keys.host = join(work.dir, "host_ed25519");
  ourKeygen(keys.host);

  authorizeKeys(user, `${keys.dropbear}.pub`, `${keys.openssh}.pub`);
  chmodSync(keys.openssh, 0o600);
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  if (isRoot) removeTestUser(USER);
  work.cleanup();
}, 60_000);

/** -L arguments for our dbclient, Debian's dbclient and OpenSSH's ssh. */
function ourClientArgs(server: Server, forwards: string[], extra: string[] = []): string[] {
  return [OURS.dbclient, "-N", "-y", "-y", "-i", keys.dropbear, "-p", String(server.port), ...forwards.flatMap((f) => ["-L", f]), ...extra, `${USER}@127.0.0.1`];
}
function debianClientArgs(server: Server, forwards: string[]): string[] {
  return ["-N", "-y", "-y", "-i", keys.dropbear, "-p", String(server.port), ...forwards.flatMap((f) => ["-L", f]), `${USER}@127.0.0.1`];
}
function sshArgs(server: Server, forwards: string[]): string[] {
  return [
    "-N",
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "ExitOnForwardFailure=yes",
    "-i",
    keys.openssh,
    "-p",
    String(server.port),
    ...forwards.flatMap((f) => ["-L", f]),
    `${USER}@127.0.0.1`,
  ];
}

/** Our dbclient with -f (runDetaching: the copy left running keeps its stdout and stderr). */
function runOurClientBackgrounding(args: string[]): ReturnType<typeof runDetaching> {
  return runDetaching(process.execPath, [OURS.dbclient, ...args], join(work.dir, `bg-${process.hrtime.bigint()}.txt`));
}

type ServerKind = "ours" | "sshd" | "dropbear";
type ClientKind = "ours" | "ssh" | "dbclient";

async function startServer(kind: ServerKind, extra: string[] = []): Promise<Server> {
  let s: Server;
  if (kind === "ours") {
    s = await startOurDropbear(["-r", keys.host, ...extra]);
  } else if (kind === "dropbear") {
    s = await startDebianDropbear(["-r", keys.host, ...extra]);
  } else {
    const d = scratch("dbts-fwd-sshd-");
    cleanups.push(async () => d.cleanup());
    s = await startSshd(d.dir, extra);
  }
  cleanups.push(() => s.stop());
  return s;
}

async function startClient(kind: ClientKind, server: Server, forwards: string[], firstPort: number, extra: string[] = []): Promise<Tunnel> {
  let t: Tunnel;
  if (kind === "ours") {
    t = await startTunnel(process.execPath, ourClientArgs(server, forwards, extra), firstPort);
  } else if (kind === "dbclient") {
    t = await startTunnel(PEERS.dbclient, debianClientArgs(server, forwards), firstPort);
  } else {
    t = await startTunnel(PEERS.ssh, sshArgs(server, forwards), firstPort);
  }
  cleanups.push(() => t.stop());
  return t;
}

async function startTargets(): Promise<{ echo: Target; reply: Target; refused: number }> {
  const echo = await startEchoTarget();
  const reply = await startReplyTarget(1024 * 1024);
  cleanups.push(echo.close, reply.close);
  // Nothing listens here: the server's connect is refused.
  const refused = await refusedPort();
  return { echo, reply, refused };
}

const MiB = 1024 * 1024;
/**
 * The big single transfer (each way) and the number of concurrent connections per pair: 64 MiB
 * spans some 2000 packets and 32 of our 2 MiB windows each way.
 */
const BIG = 64 * MiB;
/** What the stalled reader's source offers: far more than the windows and queues may hold. */
const STALLED_SOURCE = 256 * MiB;
const MANY = 200;
/**
 * Debian's dbclient moves about 16 MB/s here, so through it the same checks use less data: the
 * big transfer still spans some 700 of its 24 KiB windows, and the connections stay 200.
 */
const sizesFor = (client: ClientKind): { big: number; each: number } =>
  client === "dbclient" ? { big: 16 * MiB, each: 128 * 1024 } : { big: BIG, each: 512 * 1024 };

/** The four basic checks through one tunnel: one big transfer, many at once, half-close, a refused target. */
function tunnelSuite(client: ClientKind, server: ServerKind): void {
  const peers: PeerName[] = [];
  if (client === "ssh") peers.push("ssh");
  if (client === "dbclient") peers.push("dbclient");
  if (server === "sshd") peers.push("sshd", "ssh-keygen");
  if (server === "dropbear") peers.push("dropbear");
  if (!peers.includes("ssh-keygen")) peers.push("ssh-keygen");

  const { big, each } = sizesFor(client);
  describe(`${client} -N -L through ${server}`, () => {
    let tunnel: Tunnel;
    let targets: Awaited<ReturnType<typeof startTargets>>;
    let srv: Server;
    const ports = { echo: 0, reply: 0, refused: 0 };

    const ready = async (): Promise<void> => {
      if (tunnel !== undefined) return;
      srv = await startServer(server);
      targets = await startTargets();
      ports.echo = await freePort();
      ports.reply = await freePort();
      ports.refused = await freePort();
      tunnel = await startClient(client, srv, [
        `${ports.echo}:127.0.0.1:${targets.echo.port}`,
        `${ports.reply}:127.0.0.1:${targets.reply.port}`,
        `${ports.refused}:127.0.0.1:${targets.refused}`,
      ], ports.echo);
    };

    itFwd(peers, `moves ${big / MiB} MiB each way intact`, async () => {
      await ready();
      const r = await echoRoundTrip(ports.echo, big);
      expect(r.got).toBe(big);
      expect(r.gotHash).toBe(r.sentHash);
      expect(targets.echo.received).toContain(r.sentHash);
    });

    itFwd(peers, `carries ${MANY} concurrent ${each / 1024} KiB connections`, async () => {
      await ready();
      const rs = await Promise.all(Array.from({ length: MANY }, () => echoRoundTrip(ports.echo, each)));
      expect(ownBytesBothWays(rs, each, targets.echo)).toEqual([]);
    });

    itFwd(peers, "delivers the full reply to a client that half-closed", async () => {
      await ready();
      const r = await halfCloseRequest(ports.reply, 3 * MiB + 17);
      expect(r.requestHashOk).toBe(true);
      expect(r.replyLen).toBe(MiB);
      expect(r.replyOk).toBe(true);
    });

    itFwd(peers, "fails a refused target cleanly and stays up", async () => {
      await ready();
      expect(await connectExpectClose(ports.refused)).toBe(0);
      expect(tunnel.alive()).toBe(true);
      const r = await echoRoundTrip(ports.echo, 100_000);
      expect(r.gotHash).toBe(r.sentHash);
    });
  });
}

tunnelSuite("ssh", "ours");
tunnelSuite("ours", "sshd");
tunnelSuite("ours", "dropbear");
tunnelSuite("ours", "ours");
tunnelSuite("dbclient", "ours");

describe("remote forwarding (-R)", () => {
  itFwd(["sshd", "ssh-keygen"], "our dbclient -N -R through sshd carries connections back to our side", async () => {
    const srv = await startServer("sshd");
    const { echo } = await startTargets();
    const rport = await freePort();
    const t = await startClient("ours", srv, [], rport, ["-R", `${rport}:127.0.0.1:${echo.port}`]);
    const r = await echoRoundTrip(rport, 8 * MiB);
    expect(r.gotHash).toBe(r.sentHash);
    expect(t.alive()).toBe(true);
  });

  itFwd(["ssh", "ssh-keygen"], "ssh -N -R through our server carries connections back to ssh's side", async () => {
    const srv = await startServer("ours");
    const { echo } = await startTargets();
    const rport = await freePort();
    const args = sshArgs(srv, []);
    const t = await startTunnel(PEERS.ssh, [...args.slice(0, -1), "-R", `${rport}:127.0.0.1:${echo.port}`, args.at(-1)!], rport);
    cleanups.push(() => t.stop());
    const rs = await Promise.all(Array.from({ length: 20 }, () => echoRoundTrip(rport, MiB)));
    expect(ownBytesBothWays(rs, MiB, echo)).toEqual([]);
    expect(t.alive()).toBe(true);
  });

  itFwd(["ssh-keygen"], "our dbclient -R 0:... through our server learns the allocated port", async () => {
    const srv = await startServer("ours");
    const { echo } = await startTargets();
    const lport = await freePort();
    // A -L as well, only so the tunnel has a known port to wait on.
    const t = await startClient("ours", srv, [`${lport}:127.0.0.1:${echo.port}`], lport, ["-R", `0:127.0.0.1:${echo.port}`]);
    await expect.poll(() => t.log(), { timeout: 10_000 }).toMatch(/Allocated port \d+ for remote forward to 127\.0\.0\.1:\d+/);
    const rport = Number(/Allocated port (\d+)/.exec(t.log())![1]);
    const r = await echoRoundTrip(rport, 4 * MiB);
    expect(r.gotHash).toBe(r.sentHash);
  });

  itFwd(["ssh", "ssh-keygen"], "a server started with -k refuses tcpip-forward: ssh warns and its -L keeps working", async () => {
    const srv = await startServer("ours", ["-k"]);
    const { echo } = await startTargets();
    const lport = await freePort();
    const rport = await freePort();
    const args = sshArgs(srv, [`${lport}:127.0.0.1:${echo.port}`]).map((a) => (a === "ExitOnForwardFailure=yes" ? "ExitOnForwardFailure=no" : a));
    const t = await startTunnel(PEERS.ssh, [...args.slice(0, -1), "-R", `${rport}:127.0.0.1:${echo.port}`, args.at(-1)!], lport);
    cleanups.push(() => t.stop());
    await expect.poll(() => t.log(), { timeout: 10_000 }).toContain(`remote port forwarding failed for listen port ${rport}`);
    const r = await echoRoundTrip(lport, MiB);
    expect(r.gotHash).toBe(r.sentHash);
    expect(t.alive()).toBe(true);
  });
});

describe("ours <-> ours", () => {
  // C's accept() failing with EMFILE leaves the rest in the kernel's queue until descriptors
  // are free; libuv would accept and reset them (its reserve-descriptor trick). 100 at once
  // through a process allowed 40 or 50 descriptors: every one must be carried, none reset.
  itFwd(["ssh-keygen"], "a -L listener out of descriptors lets the rest wait, as C's does: 100 at once under ulimit -n 40", async () => {
    const srv = await startServer("ours");
    const { echo } = await startTargets();
    const lport = await freePort();
    const t = await startTunnel("prlimit", ["--nofile=40:40", ...ourClientArgs(srv, [`${lport}:127.0.0.1:${echo.port}`])], lport);
    cleanups.push(() => t.stop());
    const rs = await Promise.all(Array.from({ length: 100 }, () => echoRoundTrip(lport, 256 * 1024, "127.0.0.1", 60_000)));
    expect(ownBytesBothWays(rs, 256 * 1024, echo)).toEqual([]);
    expect(t.alive()).toBe(true);
  }, 120_000);

  itFwd(["ssh-keygen"], "a -R listener in a connection process out of descriptors lets the rest wait: 100 at once under ulimit -n 50", async () => {
    const srv = await startOurDropbear(["-r", keys.host], {}, ["prlimit", "--nofile=50:50"]);
    cleanups.push(() => srv.stop());
    const { echo } = await startTargets();
    const rport = await freePort();
    const t = await startClient("ours", srv, [], rport, ["-R", `${rport}:127.0.0.1:${echo.port}`]);
    const rs = await Promise.all(Array.from({ length: 100 }, () => echoRoundTrip(rport, 256 * 1024, "127.0.0.1", 60_000)));
    expect(ownBytesBothWays(rs, 256 * 1024, echo)).toEqual([]);
    expect(t.alive()).toBe(true);
  }, 120_000);

  // An app that sends and at once resets (SO_LINGER 0) can do so before libuv accepts the
  // connection, when its address can no longer be read (getpeername: ENOTCONN). C (from
  // accept()) and OpenSSH (a stand-in originator) still forward what it sent; we dropped it.
  itFwd(["ssh-keygen"], "forwards what a connection sent before resetting at once, through -L and -R listeners", async () => {
    const srv = await startServer("ours");
    const got: string[] = [];
    const sink = net.createServer((c) => {
      let d = "";
      c.on("data", (b) => (d += b.toString()));
      c.on("error", () => {});
      c.on("close", () => got.push(d));
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => sink.close(() => r())));
    const sinkPort = (sink.address() as net.AddressInfo).port;
    const [lport, rport] = [await freePort(), await freePort()];
    await startClient("ours", srv, [`${lport}:127.0.0.1:${sinkPort}`], lport);
    await startClient("ours", srv, [], rport, ["-R", `${rport}:127.0.0.1:${sinkPort}`]);
    const sent: string[] = [];
    for (const port of [lport, rport]) {
      for (let i = 0; i < 5; i++) {
        const msg = `request ${port} ${i}`;
        sent.push(msg);
        await new Promise<void>((resolve, reject) => {
          const c = net.connect(port, "127.0.0.1", () => c.write(msg, () => (c.resetAndDestroy(), resolve())));
          c.on("error", reject);
        });
      }
    }
    // The tunnels' readiness probes reached the sink too, sending nothing.
    const requests = (): string[] => got.filter((d) => d !== "").sort();
    await expect.poll(() => requests().length, { timeout: 15_000 }).toBe(sent.length);
    expect(requests()).toEqual(sent.sort());
  }, 60_000);

  itFwd(["ssh-keygen"], "does not deadlock with 2 MiB windows on both ends and 200 concurrent connections", async () => {
    const srv = await startServer("ours", ["-W", "2097152"]);
    const { echo } = await startTargets();
    const lport = await freePort();
    const t = await startClient("ours", srv, [`${lport}:127.0.0.1:${echo.port}`], lport, ["-W", "2097152"]);
    const rs = await Promise.all(Array.from({ length: 200 }, () => echoRoundTrip(lport, MiB)));
    expect(ownBytesBothWays(rs, MiB, echo)).toEqual([]);
    expect(t.alive()).toBe(true);
  }, 120_000);

  itFwd(["ssh-keygen"], "carries 1000 concurrent connections in one -N session (MAX_CHANNELS)", async () => {
    const srv = await startServer("ours");
    const { echo } = await startTargets();
    const lport = await freePort();
    const t = await startClient("ours", srv, [`${lport}:127.0.0.1:${echo.port}`], lport);
    // Let the readiness probe's channel finish first (1000 is the whole channel table): the
    // client then holds no TCP connection but its transport.
    await expect.poll(() => tcpConnectionsOf(t.child.pid!), { timeout: 10_000 }).toBe(1);
    const rs = await Promise.all(Array.from({ length: 1000 }, () => echoRoundTrip(lport, 64 * 1024)));
    expect(ownBytesBothWays(rs, 64 * 1024, echo)).toEqual([]);
    expect(t.alive()).toBe(true);
  }, 120_000);

  itFwd(["ssh-keygen"], "keeps memory flat for a reader that stalls (RSS of client and server)", async () => {
    const srv = await startServer("ours");
    const source = await startSourceTarget(STALLED_SOURCE);
    cleanups.push(source.close);
    const lport = await freePort();
    const t = await startClient("ours", srv, [`${lport}:127.0.0.1:${source.port}`], lport);
    const [child] = connectionsOf(srv.child.pid!);
    expect(child).toBeDefined();
    const base = { cli: rssOf(t.child.pid!), srv: rssOf(child!) };
    const samples: { cli: number; srv: number }[] = [];
    const r = await slowReader(lport, 3000, () => samples.push({ cli: rssOf(t.child.pid!), srv: rssOf(child!) }));
    expect(r.got).toBe(STALLED_SOURCE);
    expect(r.gotHash).toBe(payloadHash(STALLED_SOURCE));
    // The 256 MiB source is held back by the windows: neither side grows by more than a few
    // windows' worth (1 MiB default) plus allocator noise, and it stops growing.
    const late = samples.slice(Math.floor(samples.length / 2));
    const peak = { cli: Math.max(...samples.map((x) => x.cli)), srv: Math.max(...samples.map((x) => x.srv)) };
    expect(peak.cli - base.cli).toBeLessThan(48 * MiB);
    expect(peak.srv - base.srv).toBeLessThan(48 * MiB);
    expect(Math.max(...late.map((x) => x.cli)) - late[0]!.cli).toBeLessThan(8 * MiB);
    expect(Math.max(...late.map((x) => x.srv)) - late[0]!.srv).toBeLessThan(8 * MiB);
  }, 120_000);

  itFwd(["ssh-keygen"], "listens on IPv4 and IPv6 with -g", async () => {
    const srv = await startServer("ours");
    const { echo } = await startTargets();
    const lport = await freePort();
    await startClient("ours", srv, [`${lport}:127.0.0.1:${echo.port}`], lport, ["-g"]);
    for (const host of ["127.0.0.1", "::1"]) {
      const r = await echoRoundTrip(lport, 200_000, host);
      expect(r.gotHash).toBe(r.sentHash);
    }
  });

  itFwd(["ssh-keygen"], "-f returns once authenticated and leaves the tunnel running in the background", async () => {
    const srv = await startServer("ours");
    const { echo } = await startTargets();
    const lport = await freePort();
    // The background copy is nobody's child here: it is found by its -L and always stopped.
    const stopCopy = () => spawnSync("pkill", ["-f", `127\\.0\\.0\\.1:${lport}:127`]).status;
    try {
      // The command line's warnings once: the copy parses it again, quietly.
      const warned = ["-Z", "-o", "NoSuchOption=1", "-i", "/nonexistent/no-such-identity"];
      const r = await runOurClientBackgrounding(ourClientArgs(srv, [`127.0.0.1:${lport}:127.0.0.1:${echo.port}`], ["-f", ...warned]).slice(1));
      expect(r.status, r.output()).toBe(0);
      const rt = await echoRoundTrip(lport, 1 << 20);
      expect(rt.gotHash).toBe(rt.sentHash);
      // (Read once the copy has served a connection: by then it has long parsed its command line.)
      const stderr = r.output();
      for (const warning of ["WARNING: Ignoring unknown option -Z", "Ignoring unknown configuration option 'NoSuchOption=1'", "Failed loading keyfile"]) {
        expect(stderr.split(warning).length - 1, stderr).toBe(1);
      }
      // The copy has left the working directory, as C's daemon(0, 1) does.
      const copy = spawnSync("pgrep", ["-f", `127\\.0\\.0\\.1:${lport}:127`], { encoding: "utf8" }).stdout.trim().split("\n");
      expect(copy).toHaveLength(1);
      expect(readlinkSync(`/proc/${copy[0]}/cwd`)).toBe("/");
    } finally {
      expect(stopCopy()).toBe(0);
    }
  });

  itFwd(["ssh-keygen"], "exits on a failed forward with -o ExitOnForwardFailure=yes, warns without", async () => {
    const srv = await startServer("ours");
    const busy = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => busy.on("listening", r));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const fwd = `${port}:127.0.0.1:9`;
      const r = await runOurClient(ourClientArgs(srv, [fwd], ["-o", "ExitOnForwardFailure=yes"]).slice(1), { timeoutMs: 30_000 });
      expect(r.status).toBe(1);
      // Dropbear prints the entry's own listen address, NULL when none was given.
      expect(r.stderr).toContain("TCP forward failed: Error listening: Address already in use");
      expect(r.stderr).toContain(`Failed local port forward (null):${port}:127.0.0.1:9`);
      // Without the option the client warns and stays up (here: still running after a second).
      const other = await freePort();
      const t = await startClient("ours", srv, [fwd, `${other}:127.0.0.1:9`], other);
      expect(t.log()).toContain(`Failed local port forward (null):${port}:127.0.0.1:9`);
      expect(t.alive()).toBe(true);
    } finally {
      busy.close();
    }
  });

  itFwd(["ssh-keygen"], "-f with -o ExitOnForwardFailure=yes returns once every -R is answered: 1 for a refusal, as ssh", async () => {
    // C daemon()s before the server's answer, so a refused -R left `dbclient -f` at status 0
    // while the copy died in the background; OpenSSH's ssh defers its fork until the answers.
    const remoteArgs = (srv: Server, rport: number): string[] =>
      ["-N", "-y", "-y", "-i", keys.dropbear, "-p", String(srv.port), "-f", "-o", "ExitOnForwardFailure=yes", "-R", `${rport}:127.0.0.1:9`, `${USER}@127.0.0.1`];
    const refusing = await startServer("ours", ["-k"]);
    const refused = await runOurClient(remoteArgs(refusing, await freePort()), { timeoutMs: 30_000 });
    expect(refused.status, refused.stderr).toBe(1);
    expect(refused.stderr).toContain("Remote TCP forward request failed");
    // Granted: status 0, and the server is listening by the time dbclient -f returns.
    const srv = await startServer("ours");
    const rport = await freePort();
    const stopCopy = () => spawnSync("pkill", ["-f", `R ${rport}:127\\.0\\.0\\.1:9`]).status;
    try {
      const granted = await runOurClientBackgrounding(remoteArgs(srv, rport));
      expect(granted.status, granted.output()).toBe(0);
      expect(await connectExpectClose(rport)).toBe(0);
    } finally {
      expect(stopCopy()).toBe(0);
    }
  });

  itFwd(["ssh-keygen"], "is refused by a server started with -j", async () => {
    const srv = await startServer("ours", ["-j"]);
    const { echo } = await startTargets();
    const lport = await freePort();
    const t = await startClient("ours", srv, [`${lport}:127.0.0.1:${echo.port}`], lport);
    expect(await connectExpectClose(lport)).toBe(0);
    expect(echo.accepted()).toBe(0);
    expect(t.alive()).toBe(true);
  });

  itFwd(["ssh-keygen"], "without -N runs the command beside the forwards and exits with its status", async () => {
    const srv = await startServer("ours");
    const args = ourClientArgs(srv, []).slice(1).filter((a) => a !== "-N");
    const r = await runOurClient([...args, "exit 5"], { timeoutMs: 30_000 });
    expect(r.status, r.stderr).toBe(5);
    expect(r.stderr).not.toContain("not yet implemented");
  });

  itFwd(["ssh-keygen"], "traces the seed's path in order on each side (-vvvv)", async () => {
    const srv = await startServer("ours", ["-vvvv"]);
    const { echo } = await startTargets();
    const lport = await freePort();
    const t = await startClient("ours", srv, [`${lport}:127.0.0.1:${echo.port}`], lport, ["-vvvv"]);
    const r = await echoRoundTrip(lport, 1000);
    expect(r.gotHash).toBe(r.sentHash);
    await t.stop();
    await srv.stop();
    const inOrder = (log: string, steps: string[]): string[] => {
      const found: string[] = [];
      let at = 0;
      for (const step of steps) {
        const i = log.indexOf(`: ${step}`, at);
        if (i < 0) break;
        found.push(step.split(/[ :(]/)[step.startsWith("enter ") ? 1 : 0]!);
        at = i;
      }
      return found;
    };
    expect(inOrder(t.log(), ["enter setup_localtcp", "enter cli_localtcp", "enter listen_tcpfwd", "enter dropbear_listen", "enter tcp_acceptor", "enter send_msg_channel_open_init"])).toEqual([
      "setup_localtcp",
      "cli_localtcp",
      "listen_tcpfwd",
      "dropbear_listen",
      "tcp_acceptor",
      "send_msg_channel_open_init",
    ]);
    expect(inOrder(srv.log(), ["enter recv_msg_channel_open", "newtcpdirect channel", "enter connect_remote", "enter connect_try_next", "enter channel_connect_done"])).toEqual([
      "recv_msg_channel_open",
      "newtcpdirect",
      "connect_remote",
      "connect_try_next",
      "channel_connect_done",
    ]);
  });
});
