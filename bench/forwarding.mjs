// Side-by-side -L benchmark: OpenSSH (ssh -> sshd), Dropbear (Debian's dbclient -> dropbear) and
// ours (dbclient -> dropbear), in one run on loopback. Prints throughput and connection rate,
// and our ratios to the other two. Needs root (it makes a throw-away user) and Debian's peers.
//
//   node bench/forwarding.mjs [--mib 256] [--conns 200]
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MIB = arg("mib", 256);
const CONNS = arg("conns", 200);
const USER = "dbtsbench";
const work = mkdtempSync(join(tmpdir(), "dbts-bench-"));
const children = [];

function sh(cmd, args, input) {
  return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

async function freePort() {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function waitPort(port) {
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise((res) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), res(true)));
      s.once("error", () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened:\n${children.map((c) => c.errtext()).join("\n")}`);
}

function start(cmd, args, env = {}) {
  const c = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  let err = "";
  c.stderr.on("data", (d) => (err += d));
  c.errtext = () => err;
  children.push(c);
  return c;
}

/** Discard everything, answer with the byte count when the sender half-closes. */
function sinkServer() {
  const s = net.createServer({ allowHalfOpen: true }, (sock) => {
    let n = 0;
    sock.on("data", (d) => (n += d.length));
    sock.on("end", () => sock.end(`${n}\n`));
  });
  return s;
}

async function throughput(port) {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const sock = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  await once(sock, "connect");
  const t0 = performance.now();
  for (let i = 0; i < MIB; i++) {
    if (!sock.write(chunk)) await once(sock, "drain");
  }
  sock.end();
  let reply = "";
  sock.on("data", (d) => (reply += d));
  await once(sock, "end");
  const secs = (performance.now() - t0) / 1000;
  if (Number(reply.trim()) !== MIB << 20) throw new Error(`sink got ${reply.trim()} bytes`);
  return MIB / secs;
}

async function connRate(port) {
  const t0 = performance.now();
  for (let i = 0; i < CONNS; i++) {
    const sock = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    await once(sock, "connect");
    sock.end("x");
    let reply = "";
    sock.on("data", (d) => (reply += d));
    await once(sock, "end");
    if (reply.trim() !== "1") throw new Error(`bad reply ${reply}`);
  }
  return CONNS / ((performance.now() - t0) / 1000);
}

async function main() {
  if (process.getuid() !== 0) throw new Error("run as root: the benchmark logs in as a throw-away user");
  spawnSync("userdel", ["-r", USER], { stdio: "ignore" });
  sh("useradd", ["-m", "-s", "/bin/sh", USER]);
  // A locked account ("!" password) is refused by sshd even for keys.
  sh("chpasswd", [], `${USER}:bench-${Date.now()}\n`);
  const home = sh("getent", ["passwd", USER]).split(":")[5];
  const uid = Number(sh("id", ["-u", USER]).trim());
  const key = join(work, "id_ed25519");
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  mkdirSync(join(home, ".ssh"), { mode: 0o700 });
  writeFileSync(join(home, ".ssh/authorized_keys"), readFileSync(`${key}.pub`), { mode: 0o600 });
  chownSync(join(home, ".ssh"), uid, uid);
  chownSync(join(home, ".ssh/authorized_keys"), uid, uid);
  const dbKey = join(work, "id_dropbear");
  sh("dropbearconvert", ["openssh", "dropbear", key, dbKey]);
  chmodSync(dbKey, 0o600);

  const sink = sinkServer();
  sink.listen(0, "127.0.0.1");
  await once(sink, "listening");
  const target = sink.address().port;

  mkdirSync("/run/sshd", { recursive: true });
  const hk = join(work, "ssh_host_ed25519_key");
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hk]);
  const dhk = join(work, "dropbear_hk");
  sh("dropbearconvert", ["openssh", "dropbear", hk, dhk]);

  const setups = {
    OpenSSH: async (sshPort, lport) => {
      const cfg = join(work, "sshd_config");
      writeFileSync(cfg, `Port ${sshPort}\nListenAddress 127.0.0.1\nHostKey ${hk}\nUsePAM no\nPidFile ${work}/sshd.pid\n`);
      start("/usr/sbin/sshd", ["-D", "-f", cfg]);
      await waitPort(sshPort);
      start("ssh", ["-N", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-i", key, "-L", `127.0.0.1:${lport}:127.0.0.1:${target}`, "-p", String(sshPort), `${USER}@127.0.0.1`]);
    },
    Dropbear: async (sshPort, lport) => {
      start("/usr/sbin/dropbear", ["-F", "-E", "-r", dhk, "-p", `127.0.0.1:${sshPort}`]);
      await waitPort(sshPort);
      start("/usr/bin/dbclient", ["-N", "-y", "-y", "-i", dbKey, "-L", `127.0.0.1:${lport}:127.0.0.1:${target}`, "-p", String(sshPort), `${USER}@127.0.0.1`], { HOME: work });
    },
    "dropbear-ts": async (sshPort, lport) => {
      start(process.execPath, [join(root, "apps/dropbear/bin/dropbear"), "-F", "-E", "-r", dhk, "-p", `127.0.0.1:${sshPort}`]);
      await waitPort(sshPort);
      start(process.execPath, [join(root, "apps/dbclient/bin/dbclient"), "-N", "-y", "-y", "-i", dbKey, "-L", `127.0.0.1:${lport}:127.0.0.1:${target}`, "-p", String(sshPort), `${USER}@127.0.0.1`], { HOME: work });
    },
  };

  const results = {};
  for (const [name, setup] of Object.entries(setups)) {
    const sshPort = await freePort();
    const lport = await freePort();
    await setup(sshPort, lport);
    await waitPort(lport);
    const mbs = await throughput(lport);
    const rate = await connRate(lport);
    results[name] = { mbs, rate };
    process.stdout.write(`${name.padEnd(12)} ${mbs.toFixed(1).padStart(8)} MB/s  ${rate.toFixed(1).padStart(7)} conn/s\n`);
    for (const c of children.splice(0)) c.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
  }
  const ours = results["dropbear-ts"];
  for (const other of ["OpenSSH", "Dropbear"]) {
    const o = results[other];
    process.stdout.write(
      `dropbear-ts / ${other}: throughput ${(ours.mbs / o.mbs).toFixed(2)}x, connection rate ${(ours.rate / o.rate).toFixed(2)}x\n`,
    );
  }
  sink.close();
}

try {
  process.stdout.write(`-L through loopback: ${MIB} MiB one way, ${CONNS} sequential connections\n`);
  await main();
} finally {
  for (const c of children) c.kill("SIGTERM");
  spawnSync("userdel", ["-r", USER], { stdio: "ignore" });
  rmSync(work, { recursive: true, force: true });
}
