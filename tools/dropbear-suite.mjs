// `npm run test:dropbear-suite -- <dropbear checkout>`: run Dropbear's own pytest suite (its
// test/ directory) against our four programs, as Dropbear's CI runs it against its own.
//
// The checkout is a Dropbear work tree or a git directory (a bare clone, e.g. what the search
// tool's `fetch github:mkj/dropbear` leaves); nothing of it is copied into this repository.
// Needs root: the suite logs in over loopback, so a throw-away account (dbtssuite, removed at
// the end if this run made it) gets an authorized key, and the tests run with HOME pointing at a
// scratch directory holding the client keys (dbclient's ~/.ssh/id_dropbear, asyncssh's
// ~/.ssh/id_ecdsa). Needs Debian's
// python3-pytest, python3-psutil and python3-asyncssh (run with /usr/bin/python3, whose
// site-packages apt fills). Extra arguments after the checkout go to pytest (e.g. -k exit).
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(root, "apps", name, "bin", name);
const USER = "dbtssuite";
const PYTHON = "/usr/bin/python3";

function die(msg) {
  process.stderr.write(`dropbear-suite: ${msg}\n`);
  process.exit(2);
}

const [checkout, ...pytestArgs] = process.argv.slice(2);
if (checkout === undefined) {
  die("usage: npm run test:dropbear-suite -- <dropbear work tree or git dir> [pytest args]");
}
if (process.getuid?.() !== 0) {
  die("needs root (it creates the login account the suite uses)");
}
const probe = spawnSync(PYTHON, ["-c", "import pytest, psutil, asyncssh"], { stdio: "ignore" });
if (probe.status !== 0) {
  die("needs Debian's python3-pytest, python3-psutil and python3-asyncssh (apt-get install them)");
}
for (const p of ["dropbear", "dbclient", "dropbearkey", "dropbearconvert"]) {
  if (!existsSync(join(root, "apps", p, "dist"))) {
    die(`apps/${p} is not built: run npm run build first`);
  }
}

const work = mkdtempSync(join(tmpdir(), "dbts-suite-"));
/** The account was made by this run, and is removed again at its end. */
let madeUser = false;
chmodSync(work, 0o755);
try {
  // The suite itself: from a work tree's test/, or exported from a git directory's HEAD.
  const src = resolve(checkout);
  if (existsSync(join(src, "test", "conftest.py"))) {
    execFileSync("cp", ["-r", join(src, "test"), work]);
  } else if (existsSync(join(src, "HEAD")) || existsSync(join(src, ".git"))) {
    const gitdir = existsSync(join(src, ".git")) ? join(src, ".git") : src;
    const tar = execFileSync("git", ["--git-dir", gitdir, "archive", "HEAD", "test"]);
    execFileSync("tar", ["-x", "-C", work], { input: tar });
  } else {
    die(`${checkout}: no test/conftest.py and not a git directory`);
  }
  const testdir = join(work, "test");
  // The remote side runs parent_dropbear_map.py as the test account.
  execFileSync("chmod", ["-R", "a+rX", testdir]);

  // The account, and the keys on both ends.
  if (spawnSync("id", ["-u", USER], { stdio: "ignore" }).status !== 0) {
    execFileSync("useradd", ["-m", "-s", "/bin/sh", USER]);
    madeUser = true;
  }
  const [uid, gid, home] = (() => {
    const f = execFileSync("getent", ["passwd", USER], { encoding: "utf8" }).trim().split(":");
    return [Number(f[2]), Number(f[3]), f[5]];
  })();
  const clientHome = join(work, "home");
  const clientSsh = join(clientHome, ".ssh");
  mkdirSync(clientSsh, { recursive: true, mode: 0o700 });
  // As Dropbear's CI sets it up (build.yml): an ecdsa id_dropbear (and its OpenSSH twin for
  // asyncssh), and key2..key4 whose authorized_keys comments test_svrauth.py reads back as
  // $SSH_PUBKEYINFO.
  const authorized = [];
  const newKey = (name, comment) => {
    const f = join(clientSsh, name);
    const pub = execFileSync(bin("dropbearkey"), ["-t", "ecdsa", "-f", f], { encoding: "utf8" })
      .split("\n")
      .find((l) => l.startsWith("ecdsa-"));
    const fields = pub.split(" ");
    authorized.push(comment === null ? pub : `${fields[0]} ${fields[1]} ${comment}`);
    return f;
  };
  const idDropbear = newKey("id_dropbear", null);
  const idEcdsa = join(clientSsh, "id_ecdsa");
  execFileSync(bin("dropbearconvert"), ["dropbear", "openssh", idDropbear, idEcdsa], { stdio: "ignore" });
  // Dropbear's converter (and ours, byte for byte) pads the private section by a whole block
  // when it is already aligned; Debian's asyncssh 2.10 rejects that (2.17, which Dropbear's CI
  // pins, accepts it). ssh-keygen rewrites the same key with OpenSSH's own padding.
  execFileSync("ssh-keygen", ["-q", "-p", "-P", "", "-N", "", "-f", idEcdsa], { stdio: "ignore" });
  newKey("id_dropbear_key2", "key2 extra");
  newKey("id_dropbear_key3", "key3%char");
  newKey("id_dropbear_key4", "key4,char");
  const userSsh = join(home, ".ssh");
  mkdirSync(userSsh, { recursive: true, mode: 0o700 });
  writeFileSync(join(userSsh, "authorized_keys"), `${authorized.join("\n")}\n`, { mode: 0o600 });
  chownSync(userSsh, uid, gid);
  chownSync(join(userSsh, "authorized_keys"), uid, gid);
  if ((statSync(home).mode & 0o022) !== 0) {
    chmodSync(home, 0o755);
  }
  const hostkey = join(work, "fakekey");
  execFileSync(bin("dropbearkey"), ["-t", "ecdsa", "-f", hostkey], { stdio: "ignore" });
  // The suite's server is 127.0.5.5:2244. Dropbear's dbclient (-y) records it by host alone,
  // ours as "[127.0.5.5]:2244" (OpenSSH's form), which is what asyncssh looks for: an existing
  // file without it makes asyncssh refuse the key. With both entries up front every client
  // knows the key.
  const hostpub = execFileSync(bin("dropbearkey"), ["-y", "-f", hostkey], { encoding: "utf8" })
    .split("\n")
    .find((l) => l.startsWith("ecdsa-"))
    .split(" ")
    .slice(0, 2)
    .join(" ");
  writeFileSync(join(clientSsh, "known_hosts"), `127.0.5.5 ${hostpub}\n[127.0.5.5]:2244 ${hostpub}\n`);

  const args = [
    "-m",
    "pytest",
    "-p",
    "no:cacheprovider",
    `--hostkey=${hostkey}`,
    `--dbclient=${bin("dbclient")}`,
    `--dropbear=${bin("dropbear")}`,
    `--dropbearkey=${bin("dropbearkey")}`,
    `--dropbearconvert=${bin("dropbearconvert")}`,
    `--user=${USER}`,
    testdir,
    ...pytestArgs,
  ];
  process.stdout.write(`dropbear-suite: ${PYTHON} ${args.join(" ")}\n`);
  // asyncssh takes its login name from USER/LOGNAME and its keys from HOME; DBTEST_IN_ACTION
  // turns on the tests that need the keys above, as in Dropbear's CI.
  const env = { ...process.env, HOME: clientHome, USER, LOGNAME: USER, PYTHONDONTWRITEBYTECODE: "1", DBTEST_IN_ACTION: "true" };
  const r = spawnSync(PYTHON, args, { cwd: testdir, env, stdio: "inherit" });
  process.exitCode = r.status ?? 1;
} finally {
  if (madeUser) {
    spawnSync("userdel", ["-r", USER], { stdio: "ignore" });
  }
  rmSync(work, { recursive: true, force: true });
}
