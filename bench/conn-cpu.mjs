// CPU of one connection, A/B of two built checkouts: our dbclient running `true` through our
// daemon, rounds interleaved. Per round: wall time of the client, its CPU (main thread / all
// threads), and the CPU of the daemon's connection process from the handoff to its exit (main
// thread / all threads), from /proc/<pid>/task/<tid>/schedstat read every millisecond (a thread
// that ends keeps its last reading). Needs root (a throw-away login user) and Debian's
// dropbear-bin (dropbearkey, dropbearconvert) and openssh-client (ssh-keygen). Never used by
// tests; docs/process-model.md ("Code cache") has what it measured.
//
//   node bench/conn-cpu.mjs --a DIR --b DIR [--rounds N] [--node PATH] [--node-args "..."]
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parents } from "../tools/procfs.mjs";
import { benchArgs, benchUser, freePort } from "./common.mjs";

const USAGE = 'usage: node bench/conn-cpu.mjs --a DIR --b DIR [--rounds N] [--node PATH] [--node-args "..."]';
const str = { type: "string" };
const { values: A, fail } = benchArgs(USAGE, { a: str, b: str, rounds: str, node: str, "node-args": str }, { counts: ["rounds"] });
const TREES = { A: A.a, B: A.b };
if (!TREES.A || !TREES.B) {
  fail("--a and --b name the two checkouts to compare");
}
const ROUNDS = A.rounds ?? 9;
const NODE = A.node ?? process.execPath;
const NODE_ARGS = (A["node-args"] ?? "").split(" ").filter(Boolean);
const USER = "dbtsconncpu";
// Long enough for a new spare to start and finish its warm-up before the next round.
const SETTLE_MS = 1500;

const work = mkdtempSync(join(tmpdir(), "dbts-conn-cpu-"));
const sh = (cmd, args, input) => execFileSync(cmd, args, { encoding: "utf8", input });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function setup() {
  const { dbKey } = benchUser(USER, work);
  const hostKey = join(work, "host_ed25519");
  sh("dropbearkey", ["-t", "ed25519", "-f", hostKey]);
  return { dbKey, hostKey };
}


const canConnect = (port) =>
  new Promise((res) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), res(true)));
    s.once("error", () => res(false));
  });

/** Nanoseconds on CPU of the main thread and of every thread seen so far (`seen`: tid → ns), or null once gone. */
function cpuNs(pid, seen) {
  try {
    const main = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[0]);
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        seen.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]));
      } catch {
        // That thread just ended: its last reading stays.
      }
    }
    let all = 0;
    for (const ns of seen.values()) all += ns;
    return { main, all };
  } catch {
    return null;
  }
}

const childrenOf = (pid) => [...parents()].filter(([, ppid]) => ppid === pid).map(([p]) => p);

async function round(server, tree, keys) {
  await sleep(SETTLE_MS);
  // The idle spare (or spares) before the connection; the one that serves it uses the most.
  const spares = childrenOf(server.proc.pid).map((pid) => ({ pid, seen: new Map() }));
  for (const s of spares) s.first = s.last = cpuNs(s.pid, s.seen);
  const clientSeen = new Map();
  let client = null;
  const t0 = performance.now();
  const c = spawn(NODE, [...NODE_ARGS, join(tree, "apps/dbclient/bin/dbclient"), "-y", "-y", "-i", keys.dbKey, "-p", String(server.port), `${USER}@127.0.0.1`, "true"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, HOME: work },
  });
  let err = "";
  c.stderr.on("data", (d) => (err = (err + d).slice(-2000)));
  const poll = () => {
    client = cpuNs(c.pid, clientSeen) ?? client;
    for (const s of spares) s.last = cpuNs(s.pid, s.seen) ?? s.last;
  };
  const timer = setInterval(poll, 1);
  const [code] = await once(c, "exit");
  const ms = performance.now() - t0;
  // The connection process ends a little after the client.
  for (let i = 0; i < 300 && spares.some((s) => cpuNs(s.pid, new Map()) !== null); i++) {
    poll();
    await sleep(1);
  }
  clearInterval(timer);
  if (code !== 0 || client === null) return { failed: err.trim().split("\n").pop() ?? `exit ${code}` };
  const used = spares.filter((s) => s.first && s.last).map((s) => ({ main: s.last.main - s.first.main, all: s.last.all - s.first.all }));
  const served = used.sort((a, b) => b.all - a.all)[0] ?? { main: NaN, all: NaN };
  return { ms, clientMain: client.main / 1e6, clientAll: client.all / 1e6, serverMain: served.main / 1e6, serverAll: served.all / 1e6 };
}

async function main() {
  const keys = setup();
  const servers = {};
  for (const [name, tree] of Object.entries(TREES)) {
    const port = await freePort();
    const proc = spawn(NODE, [...NODE_ARGS, join(tree, "apps/dropbear/bin/dropbear"), "-F", "-E", "-r", keys.hostKey, "-p", `127.0.0.1:${port}`], { stdio: "ignore" });
    for (let i = 0; i < 200 && !(await canConnect(port)); i++) await sleep(50);
    servers[name] = { proc, port };
  }
  const results = { A: [], B: [] };
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of r % 2 ? ["B", "A"] : ["A", "B"]) {
        const x = await round(servers[name], TREES[name], keys);
        if (x.failed) {
          console.log(`${name} round ${r + 1}: failed: ${x.failed}`);
          continue;
        }
        results[name].push(x);
        console.log(`${name} round ${r + 1}: ${x.ms.toFixed(0)} ms; CPU ms client ${x.clientMain.toFixed(1)} / ${x.clientAll.toFixed(1)}, connection process ${x.serverMain.toFixed(1)} / ${x.serverAll.toFixed(1)}`);
      }
    }
  } finally {
    for (const s of Object.values(servers)) s.proc.kill("SIGTERM");
    await sleep(500);
    spawnSync("userdel", ["-r", "-f", USER], { stdio: "ignore" });
    rmSync(work, { recursive: true, force: true });
  }
  for (const name of ["A", "B"]) {
    const xs = results[name];
    const m = (f) => median(xs.map(f)).toFixed(1);
    console.log(
      `${name} ${TREES[name]}: ${xs.length} rounds, medians: ${m((x) => x.ms)} ms; CPU ms (main thread / all threads) client ${m((x) => x.clientMain)} / ${m((x) => x.clientAll)}, connection process ${m((x) => x.serverMain)} / ${m((x) => x.serverAll)}`,
    );
  }
}

await main();
