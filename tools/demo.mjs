// `npm run demo`: the main job on loopback. Our dropbear serves with a throw-away host key, our
// dbclient opens a `-L` tunnel through it to a local echo service, data goes through and back,
// and its hash is checked. Steps whose program is not built yet report "not yet" and the demo
// stops there with exit 0; any other failure exits 1.
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(root, "apps", name, "bin", name);
const PAYLOAD = 8 * 1024 * 1024;
const NOT_YET = /not yet implemented in dropbear-ts[^\n]*/;

// Not under /tmp: Dropbear refuses authorized_keys below a world-writable directory, checking
// each one up to the login user's home as the password database has it. So that home first,
// not $HOME: a HOME set elsewhere (under /tmp) would have the check walk on up to /tmp. $HOME
// where that home cannot be written.
function makeWorkDir() {
  for (const home of new Set([userInfo().homedir, homedir()])) {
    try {
      const cacheDir = join(home, ".cache");
      mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
      return mkdtempSync(join(cacheDir, "dropbear-ts-demo-"));
    } catch (e) {
      if (home === homedir()) throw e;
    }
  }
}
const work = makeWorkDir();
const children = [];
const servers = [];

function cleanup() {
  for (const c of children) c.kill("SIGTERM");
  for (const s of servers) s.close();
  rmSync(work, { recursive: true, force: true });
}

function step(msg) {
  process.stdout.write(`demo: ${msg}\n`);
}

class NotYet extends Error {}

/** Fail the step, or stop the demo politely if the program says it is not built yet. */
function check(name, status, stderr) {
  const m = NOT_YET.exec(stderr);
  if (m) throw new NotYet(`${name}: ${m[0]}`);
  if (status !== 0) throw new Error(`${name} failed (exit ${status}): ${stderr.trim()}`);
}

function run(name, args) {
  const r = spawnSync(process.execPath, [bin(name), ...args], { encoding: "utf8", cwd: work });
  check(name, r.status, r.stderr);
  return r.stdout;
}

/** Start a long-running program; resolves once `ready()` holds, rejects if it exits first. */
async function start(name, args, env, ready) {
  const child = spawn(process.execPath, [bin(name), ...args], { cwd: work, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = once(child, "exit").then(([code]) => {
    check(name, code ?? 1, stderr);
    throw new Error(`${name} exited early (code ${code}): ${stderr.trim()}`);
  });
  const deadline = Date.now() + 20_000;
  const poll = (async () => {
    while (!(await ready())) {
      if (Date.now() > deadline) throw new Error(`${name} not ready after 20 s: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await Promise.race([poll, exited]);
  return child;
}

async function freePort() {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Send `data` through the tunnel, half-close, and collect the echo until the far end closes. */
async function roundTrip(port, data) {
  const sock = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  await once(sock, "connect");
  const back = createHash("sha256");
  let got = 0;
  sock.on("data", (d) => {
    back.update(d);
    got += d.length;
  });
  sock.end(data);
  await once(sock, "end");
  sock.destroy();
  return { got, digest: back.digest("hex") };
}

async function main() {
  step("generating throw-away host and client keys with dropbearkey");
  const hostKey = join(work, "dropbear_ed25519_host_key");
  const clientKey = join(work, "id_dropbear");
  run("dropbearkey", ["-t", "ed25519", "-f", hostKey]);
  const out = run("dropbearkey", ["-t", "ed25519", "-f", clientKey]);
  const pub = out.split("\n").find((l) => l.startsWith("ssh-ed25519 "));
  if (!pub) throw new Error(`no public key line in dropbearkey output: ${out}`);
  const authDir = join(work, "auth");
  mkdirSync(authDir, { mode: 0o700 });
  writeFileSync(join(authDir, "authorized_keys"), `${pub}\n`);
  chmodSync(join(authDir, "authorized_keys"), 0o600);

  const echo = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  servers.push(echo);
  echo.listen(0, "127.0.0.1");
  await once(echo, "listening");
  const targetPort = echo.address().port;
  const sshPort = await freePort();
  const localPort = await freePort();

  step(`starting dropbear on 127.0.0.1:${sshPort}`);
  await start("dropbear", ["-F", "-E", "-r", hostKey, "-p", `127.0.0.1:${sshPort}`, "-D", authDir], {}, () => accepts(sshPort));

  step(`starting dbclient -N -L 127.0.0.1:${localPort}:127.0.0.1:${targetPort}`);
  const fwd = `127.0.0.1:${localPort}:127.0.0.1:${targetPort}`;
  await start(
    "dbclient",
    ["-N", "-y", "-o", "BatchMode=yes", "-i", clientKey, "-p", String(sshPort), "-l", userInfo().username, "-L", fwd, "127.0.0.1"],
    { HOME: work },
    () => accepts(localPort),
  );

  const data = randomBytes(PAYLOAD);
  const want = createHash("sha256").update(data).digest("hex");
  const t0 = performance.now();
  const { got, digest } = await roundTrip(localPort, data);
  const ms = Math.round(performance.now() - t0);
  if (got !== data.length || digest !== want) {
    throw new Error(`tunnel returned ${got} bytes with sha256 ${digest}, sent ${data.length} with ${want}`);
  }
  step(`OK: ${PAYLOAD >> 20} MiB through dbclient -L -> dropbear -> echo and back in ${ms} ms, sha256 ${want.slice(0, 16)}... matches`);
}

try {
  await main();
  cleanup();
} catch (e) {
  cleanup();
  if (e instanceof NotYet) {
    step(`not yet: ${e.message}`);
    step("the -L tunnel needs the transport, auth and forwarding issues; everything built so far passed");
    process.exit(0);
  }
  step(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
