import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { it } from "vitest";

/**
 * The Debian programs our interop tests talk to, by absolute path: `npm test` puts our own
 * `dropbear`/`dbclient` first on PATH, so a PATH lookup would find ours, not Debian's.
 */
export const PEERS = {
  ssh: "/usr/bin/ssh",
  sshd: "/usr/sbin/sshd",
  "ssh-keygen": "/usr/bin/ssh-keygen",
  dropbear: "/usr/sbin/dropbear",
  dbclient: "/usr/bin/dbclient",
  dropbearkey: "/usr/bin/dropbearkey",
  dropbearconvert: "/usr/bin/dropbearconvert",
  sshpass: "/usr/bin/sshpass",
  scp: "/usr/bin/scp",
  sftp: "/usr/bin/sftp",
  "sftp-server": "/usr/lib/openssh/sftp-server",
  "ssh-agent": "/usr/bin/ssh-agent",
  "ssh-add": "/usr/bin/ssh-add",
  tmux: "/usr/bin/tmux",
  plink: "/usr/bin/plink",
  pscp: "/usr/bin/pscp",
  psftp: "/usr/bin/psftp",
  puttygen: "/usr/bin/puttygen",
  curl: "/usr/bin/curl",
  rsync: "/usr/bin/rsync",
  git: "/usr/bin/git",
  tinysshd: "/usr/sbin/tinysshd",
  "tinysshd-makekey": "/usr/sbin/tinysshd-makekey",
  "tinysshd-printkey": "/usr/sbin/tinysshd-printkey",
  script: "/usr/bin/script",
  cc: "/usr/bin/cc",
  escript: "/usr/bin/escript",
  go: "/usr/bin/go",
  java: "/usr/bin/java",
  javac: "/usr/bin/javac",
  ruby: "/usr/bin/ruby",
  perl: "/usr/bin/perl",
  proftpd: "/usr/sbin/proftpd",
  // Sources, not programs (see SOURCE_PEERS): for tests/helpers/libssh-peer.c, gossh-peer.go and JschPeer.java.
  "libssh.h": "/usr/include/libssh/libssh.h",
  "x/crypto/ssh": "/usr/share/gocode/src/golang.org/x/crypto/ssh/client.go",
  "jsch.jar": "/usr/share/java/jsch.jar",
  // ProFTPD's SSH server, a module proftpd-mod-crypto installs beside proftpd-core's daemon.
  "mod_sftp.so": "/usr/lib/proftpd/mod_sftp.so",
  // systemd's name service module (libnss-systemd), whose userdb drop-ins give a group that
  // /etc/group does not list: a test reaches getgrnam(3) through it.
  "libnss_systemd.so.2": `/usr/lib/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu/libnss_systemd.so.2`,
} as const;

export type PeerName = keyof typeof PEERS;

/** The peers that are files a test builds against or loads (libssh-dev, golang-golang-x-crypto-dev, libjsch-java, libnss-systemd): readable, not executable. */
const SOURCE_PEERS: ReadonlySet<PeerName> = new Set(["libssh.h", "x/crypto/ssh", "jsch.jar", "mod_sftp.so", "libnss_systemd.so.2"]);

export const IN_CI = process.env.CI === "true";

/** The peer's path, or null if it is not installed (a program must be executable, a source readable). */
export function peer(name: PeerName): string | null {
  try {
    accessSync(PEERS[name], SOURCE_PEERS.has(name) ? constants.R_OK : constants.X_OK);
    return PEERS[name];
  } catch {
    return null;
  }
}

/**
 * A test that needs Debian peers: runs when they are installed; when one is missing it is
 * skipped on a developer's machine but FAILS under CI=true, so CI can never pass by skipping.
 */
export function itWithPeers(names: PeerName[], title: string, fn: () => unknown, timeout?: number): void {
  const missing = names.filter((n) => peer(n) === null);
  if (missing.length === 0) {
    it(title, fn, timeout);
  } else if (IN_CI) {
    it(title, () => {
      throw new Error(`CI=true but Debian peer(s) missing: ${missing.map((n) => PEERS[n]).join(", ")} (.ci/run installs them)`);
    });
  } else {
    it.skip(`${title} [needs ${missing.join(", ")}]`, fn);
  }
}

/** Whether the tests run as root, as CI does (they then make accounts and start servers that switch users). */
export const IS_ROOT = process.getuid?.() === 0;

/**
 * A test that needs root and these peers: as itWithPeers, and when not root it is skipped on a
 * developer's machine but fails under CI=true, like a missing peer.
 */
export function itAsRoot(names: PeerName[], title: string, fn: () => unknown, timeout = 60_000): void {
  if (!IS_ROOT && !IN_CI) {
    itWithPeers(["__needs_root__" as never], title, fn);
    return;
  }
  itWithPeers(names, title, fn, timeout);
}

/** Debian's python3 (asyncssh is installed for it, not for another python on PATH). */
export const PYTHON = "/usr/bin/python3";

/** Whether Debian's python3-<module> is installed for PYTHON. */
function hasPythonModule(module: string): boolean {
  return spawnSync(PYTHON, ["-c", `import ${module}`], { stdio: "ignore" }).status === 0;
}

/** Whether Debian's python3-asyncssh is installed (for clients that send raw, hostile requests). */
export const hasAsyncssh = hasPythonModule("asyncssh");

/** Root and Debian's `pkg` (a python3 module): skipped without them on a developer's machine, failed under CI. */
function itPythonPeer(pkg: string, installed: boolean, title: string, fn: () => Promise<void>, timeout: number): void {
  if (IS_ROOT && installed) {
    it(title, fn, timeout);
  } else if (IN_CI) {
    it(title, () => {
      throw new Error(`CI=true but ${IS_ROOT ? `${pkg} is missing (apt-get install ${pkg})` : "not root"}`);
    });
  } else {
    it.skip(`${title} [needs root and ${pkg}]`, fn);
  }
}

/** Root and python3-asyncssh (see itPythonPeer). */
export function itAsyncssh(title: string, fn: () => Promise<void>, timeout = 60_000): void {
  itPythonPeer("python3-asyncssh", hasAsyncssh, title, fn, timeout);
}

const hasParamiko = hasPythonModule("paramiko");

/** Root and python3-paramiko (see itPythonPeer). */
export function itParamiko(title: string, fn: () => Promise<void>, timeout = 60_000): void {
  itPythonPeer("python3-paramiko", hasParamiko, title, fn, timeout);
}

/** Whether Debian's python3-cryptography is installed; asked only by the files that use it. */
let hasCryptography: boolean | undefined;

/** Root and python3-cryptography, for scripted peers that encrypt by hand (see itPythonPeer). */
export function itPyCryptography(title: string, fn: () => Promise<void>, timeout = 60_000): void {
  hasCryptography ??= hasPythonModule("cryptography");
  itPythonPeer("python3-cryptography", hasCryptography, title, fn, timeout);
}

/** Whether Debian's python3-twisted (Twisted Conch) is installed; asked only by the file that uses it. */
let hasConch: boolean | undefined;

/** Root and python3-twisted (see itPythonPeer). */
export function itConch(title: string, fn: () => Promise<void>, timeout = 60_000): void {
  hasConch ??= hasPythonModule("twisted.conch.ssh.transport");
  itPythonPeer("python3-twisted", hasConch, title, fn, timeout);
}

/** Whether Debian's ruby with ruby-net-ssh (and its ruby-ed25519), ruby-net-sftp and ruby-net-scp is installed; asked only by the file that uses them. */
let hasNetSsh: boolean | undefined;

/** Root and Ruby's Net::SSH with SFTP, SCP and ed25519 keys (see itPythonPeer). */
export function itNetSsh(title: string, fn: () => Promise<void>, timeout = 60_000): void {
  hasNetSsh ??= spawnSync(PEERS.ruby, ["-e", 'require "net/ssh"; require "net/sftp"; require "net/scp"; require "ed25519"'], { stdio: "ignore" }).status === 0;
  itPythonPeer("ruby ruby-net-ssh ruby-net-sftp ruby-net-scp", hasNetSsh, title, fn, timeout);
}

/** Whether Debian's libnet-ssh2-perl (Perl's binding of libssh2) is installed; asked only by the file that uses it. */
let hasNetSsh2: boolean | undefined;

/** Root and Perl's Net::SSH2 (see itPythonPeer). */
export function itNetSsh2(title: string, fn: () => Promise<void>, timeout = 60_000): void {
  hasNetSsh2 ??= spawnSync(PEERS.perl, ["-MNet::SSH2", "-e", "1"], { stdio: "ignore" }).status === 0;
  itPythonPeer("libnet-ssh2-perl", hasNetSsh2, title, fn, timeout);
}
