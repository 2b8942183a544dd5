// The daemon's process model, measured (docs/process-model.md): our dropbear with its warm
// spare, against a Node process started per connection (our dropbear -i under a tiny inetd,
// which is what the daemon did before the spare: spawn, load, then serve) and Debian's dropbear
// (fork). Timings are reported, never asserted. Brief by default (about a minute): the
// machine may be shared.
//
//   node bench/daemon.mjs [--rounds N] [--burst N] [--idle N]
//
// Per implementation:
//   - connect latency: TCP connect until the server's version line arrives, one connection at a
//     time with a pause between (the spare is back by then), median of --rounds;
//   - burst: --burst connections one after another, each closed once its version line came;
//     connections per second (after the first, no spare is ready: this is the fallback path);
//   - idle memory: RSS per connection process with --idle silent connections open, and the
//     spare's own RSS (the price of keeping one ready).
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchArgs, freePort } from "./common.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const DROPBEAR = join(root, "apps/dropbear/bin/dropbear");
const DROPBEARKEY = join(root, "apps/dropbearkey/bin/dropbearkey");
const DEBIAN_DROPBEAR = "/usr/sbin/dropbear";

const str = { type: "string" };
const { values: A } = benchArgs("usage: node bench/daemon.mjs [--rounds N] [--burst N] [--idle N]", { rounds: str, burst: str, idle: str }, { counts: ["rounds", "burst", "idle"] });
const ROUNDS = A.rounds ?? 10;
const BURST = A.burst ?? 20;
const IDLE = A.idle ?? 5;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function ppidOf(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return -1;
  }
}

function rssKiB(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
  } catch {
    return 0;
  }
}

function tcpInodes() {
  const out = new Set();
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(f, "utf8").split("\n").slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode && inode !== "0") out.add(inode);
    }
  }
  return out;
}

/** Children of `pid`, split into those holding a TCP connection and the others (a spare). */
function children(pid) {
  const tcp = tcpInodes();
  const conn = [];
  const other = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || ppidOf(Number(d)) !== pid) continue;
    let holds = false;
    try {
      holds = readdirSync(`/proc/${d}/fd`).some((fd) => {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${d}/fd/${fd}`));
        return m !== null && tcp.has(m[1]);
      });
    } catch {
      continue;
    }
    (holds ? conn : other).push(Number(d));
  }
  return { conn, other };
}


/** Connect and wait for the version line; resolves with the ms it took and the open socket. */
function ident(port) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    s.on("error", reject);
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\n")) {
        s.removeAllListeners("data");
        s.on("data", () => undefined);
        resolve({ ms: performance.now() - t0, sock: s });
      }
    });
    s.on("close", () => reject(new Error(`closed before a version line: ${JSON.stringify(got)}`)));
  });
}

async function waitListening(port) {
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), r(true)));
      s.once("error", () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listening on ${port}`);
}

const work = mkdtempSync(join(tmpdir(), "dbts-bench-daemon-"));
const hk = join(work, "hk");
spawnSync(process.execPath, [DROPBEARKEY, "-t", "ed25519", "-f", hk], { stdio: "ignore" });

/** Each implementation: start it, return { port, pid (whose children serve), stop }. */
const IMPLS = {
  "ours (warm spare)": async () => {
    const port = await freePort();
    const p = spawn(process.execPath, [DROPBEAR, "-F", "-E", "-r", hk, "-p", `127.0.0.1:${port}`], { stdio: "ignore" });
    await waitListening(port);
    await sleep(1500); // the first spare loads
    return { port, pid: p.pid, stop: () => p.kill() };
  },
  "ours, a process per connection (dropbear -i)": async () => {
    const port = await freePort();
    const inetd = net.createServer({ pauseOnConnect: true }, (sock) => {
      const c = spawn(process.execPath, [DROPBEAR, "-i", "-E", "-r", hk], { stdio: [sock, sock, "ignore"] });
      c.on("error", () => undefined);
      sock.destroy();
    });
    inetd.listen(port, "127.0.0.1");
    await once(inetd, "listening");
    return { port, pid: process.pid, stop: () => inetd.close() };
  },
  "Debian dropbear (fork)": async () => {
    const port = await freePort();
    const p = spawn(DEBIAN_DROPBEAR, ["-F", "-E", "-r", hk, "-p", `127.0.0.1:${port}`], { stdio: "ignore" });
    await waitListening(port);
    return { port, pid: p.pid, stop: () => p.kill() };
  },
};

const results = {};
try {
  for (const [name, start] of Object.entries(IMPLS)) {
    const srv = await start();
    try {
      // Our own probe connection may still be ending.
      await sleep(500);
      const lat = [];
      for (let i = 0; i < ROUNDS; i++) {
        const { ms, sock } = await ident(srv.port);
        lat.push(ms);
        sock.destroy();
        await sleep(700);
      }
      const t0 = performance.now();
      for (let i = 0; i < BURST; i++) {
        const { sock } = await ident(srv.port);
        sock.destroy();
      }
      const rate = BURST / ((performance.now() - t0) / 1000);
      await sleep(1500);
      const before = new Set(children(srv.pid).conn);
      const held = [];
      for (let i = 0; i < IDLE; i++) held.push((await ident(srv.port)).sock);
      await sleep(1000);
      const { conn, other } = children(srv.pid);
      const mine = conn.filter((p) => !before.has(p));
      const perConn = mine.reduce((a, p) => a + rssKiB(p), 0) / Math.max(mine.length, 1) / 1024;
      const spare = srv.pid === process.pid ? 0 : other.reduce((a, p) => a + rssKiB(p), 0) / 1024;
      for (const s of held) s.destroy();
      results[name] = { lat: median(lat), rate, perConn, spare };
      console.log(`${name}: connect-to-version median ${median(lat).toFixed(1)} ms; burst ${rate.toFixed(1)} conn/s; ${perConn.toFixed(1)} MB RSS per idle connection process; spare ${spare.toFixed(1)} MB`);
    } finally {
      srv.stop();
      await sleep(500);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
