// What the benchmark scripts share: a free loopback port, and a throw-away login user with an
// ed25519 key in OpenSSH's format and in Dropbear's. Root only (useradd).
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";

const sh = (cmd, args, input) => execFileSync(cmd, args, { encoding: "utf8", input });

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
