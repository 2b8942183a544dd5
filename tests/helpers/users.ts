import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// Throw-away system accounts for the end-to-end tests (root only, as CI runs). Test files run in
// parallel and each makes its own account, so the account tools can find /etc/passwd locked
// by another file's: they are retried.

export interface TestUser {
  name: string;
  home: string;
  uid: number;
  gid: number;
}

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** Run an account tool, retrying while another test file holds the passwd/group lock. */
function shRetry(cmd: string, args: string[], input?: string): void {
  for (let i = 0; ; i++) {
    const r = spawnSync(cmd, args, { encoding: "utf8", input });
    if (r.status === 0) return;
    if (i >= 50) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
}

/**
 * A fresh account `name` (an earlier run's is removed first) with /bin/sh, a home and an empty
 * ~/.ssh (0700, the user's). Without a password the account is left unlocked ("*"): sshd
 * without PAM refuses locked ("!") accounts even for keys.
 */
export function addTestUser(name: string, opts: { password?: string; groups?: string[] } = {}): TestUser {
  removeTestUser(name);
  for (const g of opts.groups ?? []) {
    spawnSync("groupdel", [g], { stdio: "ignore" });
    shRetry("groupadd", [g]);
  }
  const groups = opts.groups?.length ? ["-G", opts.groups.join(",")] : [];
  const useradd = (uid: string[] = []): string[] => ["-m", "-s", "/bin/sh", ...uid, ...groups, name];
  shRetry("useradd", useradd());
  // useradd gives the highest uid + 1, often the uid of an account another test file has just
  // removed, whose processes (a connection process still closing) would then count against this
  // one's RLIMIT_NPROC (tests/client-limits.test.ts's Node could not start its threads). Such a
  // uid is given up for a higher one that is free and has none (usermod -u refuses a busy uid).
  for (let next = Number(sh("id", ["-u", name]).trim()) + 1, tries = 0; uidBusy(name) && tries < 100; next++, tries++) {
    if (spawnSync("getent", ["passwd", String(next)], { stdio: "ignore" }).status === 0 || uidBusy(String(next))) continue;
    shRetry("userdel", ["-f", "-r", name]);
    // Another file's account may take `next` first: then the loop goes on from there.
    if (spawnSync("useradd", useradd(["-u", String(next)]), { stdio: "ignore" }).status !== 0) {
      shRetry("useradd", useradd());
    }
  }
  if (opts.password !== undefined) {
    shRetry("chpasswd", [], `${name}:${opts.password}\n`);
  } else {
    shRetry("usermod", ["-p", "*", name]);
  }
  const home = sh("getent", ["passwd", name]).split(":")[5]!;
  const uid = Number(sh("id", ["-u", name]).trim());
  const gid = Number(sh("id", ["-g", name]).trim());
  mkdirSync(join(home, ".ssh"), { mode: 0o700 });
  chownSync(join(home, ".ssh"), uid, gid);
  return { name, home, uid, gid };
}

/** Whether any process (a zombie too) runs under the account's or a number's uid. */
function uidBusy(user: string): boolean {
  return spawnSync("pgrep", ["-U", user], { stdio: "ignore" }).status === 0;
}

/** Point the account's home at `dir`, given as bytes (usermodPath). */
export function setTestUserHome(name: string, dir: Buffer): void {
  usermodPath(name, "-d", dir);
}

/** Give the account the login shell `shell`, given as bytes (usermodPath). */
export function setTestUserShell(name: string, shell: Buffer): void {
  usermodPath(name, "-s", shell);
}

/** Set the account's expiry day (`chage -E`: days since 1970, -1 for never). */
export function setTestUserExpiry(name: string, day: number): void {
  shRetry("chage", ["-E", String(day), name]);
}

/**
 * usermod's path option `flag` with a path given as bytes: one that is not UTF-8 cannot be an
 * argument from Node, so sh's printf makes it from octal escapes.
 */
function usermodPath(name: string, flag: "-d" | "-s", path: Buffer): void {
  const escaped = [...path].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("");
  shRetry("/bin/sh", ["-c", 'exec usermod "$1" "$(printf "$2")" "$3"', "sh", flag, escaped, name]);
}

/**
 * Remove the account and its home. -f: a process of the user's left over from an earlier run (a
 * background `sleep`, or a zombie no init reaps in a container) must not keep the account.
 */
export function removeTestUser(name: string, groups: string[] = []): void {
  spawnSync("userdel", ["-f", "-r", name], { stdio: "ignore" });
  for (const g of groups) {
    spawnSync("groupdel", [g], { stdio: "ignore" });
  }
}

/** An authorized_keys entry: a public key file, or one with options in front ("no-agent-forwarding"). */
export type AuthorizedKey = string | { pub: string; options: string };

/**
 * Write the user's ~/.ssh/authorized_keys (theirs, mode 0600), one line per key: the public key
 * file's key, its options first where given. Returns the file's path.
 */
export function authorizeKeys(user: Pick<TestUser, "home" | "uid" | "gid">, ...keys: AuthorizedKey[]): string {
  const lines = keys.map((k) => {
    const [pub, options] = typeof k === "string" ? [k, ""] : [k.pub, `${k.options} `];
    return `${options}${readFileSync(pub, "utf8").trim()}\n`;
  });
  const ak = join(user.home, ".ssh", "authorized_keys");
  writeFileSync(ak, lines.join(""));
  chownSync(ak, user.uid, user.gid);
  chmodSync(ak, 0o600);
  return ak;
}
