// What the benchmark scripts share: strict flags, a free loopback port, and a throw-away login
// user with an ed25519 key in OpenSSH's format and in Dropbear's. Root only (useradd).
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";

const sh = (cmd, args, input) => execFileSync(cmd, args, { encoding: "utf8", input });

/**
 * The script's flags (parseArgs `options`), strictly: `--help` prints `usage`; an unknown flag,
 * a flag without its value or a count that is not a positive number ends the script before it
 * starts anything (a mistyped flag once ran the whole bench and would have rewritten the report).
 * A string flag's value may start with a dash (`--node-args "--cpu-prof ..."`). `counts` names
 * the string flags that hold numbers; they come back as numbers. Returns parseArgs' answer and
 * `fail(msg)`, which ends the script the same way for the script's own checks.
 */
export function benchArgs(usage, options, { counts = [], positionals = false } = {}) {
  const fail = (msg) => {
    process.stderr.write(`${msg}\n${usage}\n`);
    process.exit(2);
  };
  const args = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith("--") ? argv[i].slice(2) : null;
    if (name !== null && options[name]?.type === "string" && i + 1 < argv.length) args.push(`${argv[i]}=${argv[++i]}`);
    else args.push(argv[i]);
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: "boolean" } }, allowPositionals: positionals, strict: true });
  } catch (e) {
    fail(e.message);
  }
  if (parsed.values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  for (const name of counts) {
    const v = parsed.values[name];
    if (v === undefined) continue;
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n <= 0) fail(`--${name} wants a positive number, not '${v}'`);
    parsed.values[name] = n;
  }
  return { ...parsed, fail };
}

/** A loopback port free right now. */
export async function freePort() {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A fresh account `user` (an earlier run's removed first) whose authorized_keys holds a new
 * ed25519 key made in `work`: its OpenSSH file (`key`) and the same key for dbclient (`dbKey`).
 */
export function benchUser(user, work) {
  if (process.getuid() !== 0) throw new Error("run as root: the benchmark logs in as a throw-away user");
  spawnSync("userdel", ["-r", "-f", user], { stdio: "ignore" });
  sh("useradd", ["-m", "-s", "/bin/sh", user]);
  // A locked account ("!" password) is refused by sshd even for keys.
  sh("chpasswd", [], `${user}:bench-${randomBytes(8).toString("hex")}\n`);
  const home = sh("getent", ["passwd", user]).split(":")[5];
  const uid = Number(sh("id", ["-u", user]).trim());
  const key = join(work, "id_ed25519");
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  mkdirSync(join(home, ".ssh"), { mode: 0o700 });
  writeFileSync(join(home, ".ssh/authorized_keys"), readFileSync(`${key}.pub`), { mode: 0o600 });
  chownSync(join(home, ".ssh"), uid, uid);
  chownSync(join(home, ".ssh/authorized_keys"), uid, uid);
  const dbKey = join(work, "id_dropbear");
  sh("dropbearconvert", ["openssh", "dropbear", key, dbKey]);
  chmodSync(dbKey, 0o600);
  return { key, dbKey };
}
