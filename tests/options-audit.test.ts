import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli_getopts, svr_getopts } from "@dropbear-ts/runopts";
import { capture } from "../packages/runopts/test/capture.js";
import { itAsRoot, itWithPeers } from "./helpers/peers.js";
import { OURS, ourKeygen, run, scratch, startOurDropbear, startSshd, type RunResult, type Server } from "./helpers/servers.js";
import { startEchoTarget, type Target } from "./helpers/tunnel.js";
import { addTestUser, removeTestUser, type TestUser } from "./helpers/users.js";

// Issue 9: every option either parser accepts has an effect end to end, or ends the program
// before it connects. The accepted letters are found by asking the parsers themselves (each of
// [A-Za-z0-9], in-process), and dbclient's -o names from its own `-o help`: an option added to a
// parser without a row here fails the first tests. Each row says where its effect is shown:
//  - test: a test elsewhere that shows it (the file must still hold that text);
//  - same: it parses to exactly what other flags give (an alias), checked here;
//  - exits: the program ends before any connection, checked here against a counting listener;
//  - here: an end-to-end check in this file, under that title;
//  - internal: not for users (the server's re-exec channel), used by every connection;
//  - noop: accepted and ignored exactly as Dropbear does, with why.
// There is no row for "parsed and ignored": such an option is a bug to fix, not to list.

const ROOT = fileURLToPath(new URL("..", import.meta.url));

type Evidence =
  | { test: [file: string, text: string] }
  | { same: string[] }
  | { exits: RegExp }
  | { here: string }
  | { internal: [file: string, text: string] }
  | { noop: string };

/** dbclient's letters. */
const CLIENT: Record<string, Evidence> = {
  y: { test: ["tests/hostkeys.test.ts", "-y accepts and records a new host"] },
  q: { here: "-q: the server's banner is not shown" },
  p: { test: ["tests/readconf.test.ts", "flags win: -p on the command line beats the file's Port"] },
  i: { test: ["tests/forwarding.test.ts", `"-i", keys.dropbear`] },
  t: { test: ["tests/sessions-client.test.ts", "no pty for a command by default; -t gets one"] },
  T: { here: "-T: no pty, even after -t" },
  N: { test: ["tests/forwarding.test.ts", "our dbclient -N -R through sshd carries connections back"] },
  f: { test: ["tests/forwarding.test.ts", "-f returns once authenticated and leaves the tunnel running"] },
  // OpenSSH's -n, beyond Dropbear.
  n: { here: "-n: the command reads /dev/null, and our stdin is left unread" },
  s: { test: ["tests/sessions-client.test.ts", "sftp -S with our dbclient: put, get, round trip"] },
  o: { test: ["tests/options-audit.test.ts", "every -o name dbclient accepts has a row"] },
  L: { test: ["tests/forwarding.test.ts", "carries 1000 concurrent connections in one -N session"] },
  g: { test: ["tests/forwarding.test.ts", "listens on IPv4 and IPv6 with -g"] },
  R: { test: ["tests/forwarding.test.ts", "our dbclient -N -R through sshd carries connections back to our side"] },
  B: { test: ["tests/proxy.test.ts", "dbclient -B through our server carries 1 MB each way intact"] },
  J: { test: ["tests/proxy.test.ts", "-J through the user's shell runs a command and returns its exit code"] },
  l: { here: "-l names the user" },
  Q: { exits: /curve25519-sha256/ },
  h: { exits: /Usage: dbclient/ },
  u: { noop: "Dropbear's old urandom option: Dropbear accepts and ignores it too" },
  W: { test: ["tests/forwarding.test.ts", "does not deadlock with 2 MiB windows on both ends"] },
  K: { test: ["tests/sessions-client.test.ts", "-K 1 keeps a quiet session alive and it ends normally"] },
  I: { test: ["tests/sessions-client.test.ts", "-I 1 ends an idle `sleep 30` within seconds"] },
  M: { test: ["tests/sessions-client.test.ts", "-M 2 ends `sleep 30` after about two seconds"] },
  A: { test: ["tests/agent.test.ts", "to OpenSSH sshd: remote ssh-add -l lists the local agent's key"] },
  c: { here: "-c and -m choose the cipher and the MAC (sshd's log names them)" },
  m: { here: "-c and -m choose the cipher and the MAC (sshd's log names them)" },
  v: { test: ["tests/forwarding.test.ts", "traces the seed's path in order on each side (-vvvv)"] },
  // OpenSSH flags Dropbear lacks: Dropbear prints its version and exits, before any connection.
  F: { exits: /Dropbear v/ },
  e: { exits: /Dropbear v/ },
  D: { exits: /Dropbear v/ },
  V: { exits: /Dropbear v/ },
  b: { here: "-b binds the local end: the server logs the client's address" },
  z: { here: "-z leaves the IP TOS alone: the SSH sockets carry AF21 (0x48) while no channel is open, nothing with -z" },
};

/** dbclient's -o names. */
const CLIENT_O: Record<string, Evidence> = {
  BatchMode: { test: ["tests/hostkeys.test.ts", "an unknown host in BatchMode is not validated"] },
  BindAddress: { same: ["-b", "127.0.0.2"] },
  ConnectTimeout: { test: ["tests/hostile-server.test.ts", "-o ConnectTimeout=1: a server that never sends its version line"] },
  Ciphers: { same: ["-c", "aes128-ctr"] },
  Compression: { test: ["tests/transport.test.ts", "our dbclient -o Compression=yes: compresses both ways with sshd"] },
  DisableTrivialAuth: { test: ["packages/auth/test/cli-auth.test.ts", "DisableTrivialAuth refuses a server that lets us in without proof"] },
  ExitOnForwardFailure: { test: ["tests/forwarding.test.ts", "exits on a failed forward with -o ExitOnForwardFailure=yes"] },
  ForwardAgent: { same: ["-A"] },
  GatewayPorts: { same: ["-g"] },
  HostKeyAlgorithms: { test: ["tests/known-hosts.test.ts", "dbclient negotiates ed25519 though -o HostKeyAlgorithms puts ECDSA first"] },
  IdentitiesOnly: { test: ["tests/agent.test.ts", "offers none of the agent's keys but those of its identity files"] },
  IdentityFile: { same: ["-i", "<keyfile>"] },
  KexAlgorithms: { test: ["tests/transport.test.ts", '["-vvv", "-o", `KexAlgorithms=${k}`]'] },
  LocalForward: { same: ["-L", "8080:db:5432"] },
  MACs: { same: ["-m", "hmac-sha2-256"] },
  PasswordAuthentication: { test: ["packages/auth/test/cli-auth.test.ts", "or PasswordAuthentication=no, leaves no method"] },
  Port: { same: ["-p", "2022"] },
  ProxyCommand: { test: ["tests/proxy.test.ts", "-o ProxyCommand=... works the same"] },
  RemoteForward: { same: ["-R", "8080:db:5432"] },
  ServerAliveCountMax: { test: ["tests/hostile-server.test.ts", "-o ServerAliveCountMax=0: a silent server is left after one ServerAliveInterval"] },
  ServerAliveInterval: { same: ["-K", "1"] },
  StrictHostKeyChecking: { test: ["tests/hostkeys.test.ts", "StrictHostKeyChecking=yes refuses it"] },
  UseSyslog: { here: "-o UseSyslog=yes: dbclient's messages go to syslog too" },
  // ssh's User, beyond Dropbear: as -l.
  User: { same: ["-l", "someone"] },
  UserKnownHostsFile: { here: "-o UserKnownHostsFile: host keys are recorded in and checked against that file" },
};

/** The value each -o name is given when compared with its alias. */
const CLIENT_O_VALUE: Record<string, string> = {
  BindAddress: "127.0.0.2",
  ForwardAgent: "yes",
  GatewayPorts: "yes",
  IdentityFile: "<keyfile>",
  Ciphers: "aes128-ctr",
  LocalForward: "8080 db:5432",
  MACs: "hmac-sha2-256",
  RemoteForward: "8080 db:5432",
  Port: "2022",
  ServerAliveInterval: "1",
  User: "someone",
};

/** dropbear's letters. */
const SERVER: Record<string, Evidence> = {
  b: { test: ["tests/auth.test.ts", "-b sends the banner before auth"] },
  c: { test: ["tests/sessions-server.test.ts", "-c replaces the command; SSH_ORIGINAL_COMMAND holds what was asked"] },
  d: { same: ["-r", "<keyfile>"] },
  r: { test: ["tests/hostkeys.test.ts", "-r several keys: the client gets the type it asks for"] },
  D: { here: "-D: authorized_keys is read from that directory" },
  R: { test: ["tests/hostkeys.test.ts", "-R makes the negotiated host key on first use"] },
  F: { test: ["tests/helpers/servers.ts", `"-F", "-E", "-p"`] },
  E: { test: ["tests/hostkeys.test.ts", "Generated hostkey ${defaultKey}, fingerprint is"] },
  e: { here: "-e passes the server's environment to the session" },
  j: { test: ["tests/forwarding.test.ts", "is refused by a server started with -j"] },
  k: { test: ["tests/forwarding.test.ts", "a server started with -k refuses tcpip-forward"] },
  a: { here: "-a lets other addresses reach a remote forward" },
  i: { test: ["tests/daemon-limits.test.ts", "-i: inetd mode serves the connection on its stdin"] },
  "2": { internal: ["apps/dropbear/src/svr-main.ts", `"-2"`] },
  p: { test: ["tests/daemon-limits.test.ts", "several -p (IPv4 and IPv6)"] },
  P: { test: ["tests/daemon-limits.test.ts", "-P written at start and removed at SIGTERM"] },
  l: { test: ["tests/listen-interface.test.ts", "-l lo: every listening socket is bound to lo, and it serves"] },
  m: { test: ["tests/sessions-server.test.ts", "a login shell on a pty shows the MOTD, and -m leaves it out"] },
  w: { test: ["tests/auth.test.ts", "-w refuses root"] },
  // Group membership and root's password are exercised through the server's auth code with a
  // real client session (an end-to-end run would need root's password or group changes).
  G: { test: ["packages/auth/test/svr-auth.test.ts", "-G checks group membership"] },
  g: { test: ["packages/auth/test/svr-auth.test.ts", "-B lets a blank password in through 'none', unless -g for root"] },
  B: { test: ["packages/auth/test/svr-auth.test.ts", "-B lets a blank password in through 'none', unless -g for root"] },
  t: { test: ["packages/auth/test/svr-authpubkey.test.ts", "with -t, a good key is a partial success until the password is given too"] },
  W: { test: ["tests/forwarding.test.ts", `startServer("ours", ["-W", "2097152"])`] },
  K: { test: ["tests/sessions-server.test.ts", "-K 1 sends keepalive requests the client answers"] },
  I: { test: ["tests/sessions-server.test.ts", "-I 1 ends a session that stays idle"] },
  M: { test: ["tests/sessions-server.test.ts", "-M 2 ends a session that keeps talking"] },
  T: { test: ["tests/auth.test.ts", "-T 2 ends the connection at the third failure"] },
  s: { test: ["tests/auth.test.ts", "-s disables password logins"] },
  Q: { exits: /curve25519-sha256/ },
  h: { exits: /Usage: dropbear/ },
  u: { noop: "Dropbear's old urandom option: Dropbear accepts and ignores it too" },
  v: { test: ["tests/forwarding.test.ts", "traces the seed's path in order on each side (-vvvv)"] },
  V: { exits: /Dropbear v/ },
  z: { here: "-z leaves the IP TOS alone: the SSH sockets carry AF21 (0x48) while no channel is open, nothing with -z" },
};

const LETTERS = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"];
const probeHome = mkdtempSync(join(tmpdir(), "dbts-audit-home-"));
const keyfile = join(probeHome, "key");
writeFileSync(keyfile, "a key file (read at auth only)");

/** Parse a command line in-process with HOME pointing at an empty directory. */
function withProbeHome<T>(fn: () => T): ReturnType<typeof capture<T>> {
  const saved = process.env.HOME;
  process.env.HOME = probeHome;
  try {
    return capture(fn);
  } finally {
    process.env.HOME = saved;
  }
}

function clientAccepts(c: string): boolean {
  return !withProbeHome(() => cli_getopts(["dbclient", `-${c}`, "x", "host", "cmd"])).stderr.includes(`Ignoring unknown option -${c}`);
}

function serverAccepts(c: string): boolean {
  return !withProbeHome(() => svr_getopts(["dropbear", `-${c}`, "x"])).stderr.includes(`Invalid option -${c}`);
}

function clientExtendedNames(): string[] {
  const { logs } = withProbeHome(() => cli_getopts(["dbclient", "-o", "help"]));
  const text = logs.join("\n");
  expect(text).toMatch(/Available options:/);
  return [...text.matchAll(/^\t(\S+)$/gm)].map((m) => m[1]!);
}

function sub(args: string[]): string[] {
  return args.map((a) => a.replaceAll("<keyfile>", keyfile));
}

/** What a command line parses to, minus nothing: both option objects whole. */
function parsedClient(args: string[]): unknown {
  const r = withProbeHome(() => cli_getopts(["dbclient", ...sub(args), "host"]));
  expect(r.exit, r.stderr).toBeUndefined();
  return r.result;
}

function parsedServer(args: string[]): unknown {
  const r = withProbeHome(() => svr_getopts(["dropbear", ...sub(args)]));
  expect(r.exit, r.stderr).toBeUndefined();
  return r.result;
}

afterAll(() => rmSync(probeHome, { recursive: true, force: true }));

describe("option audit: the tables are the parsers' own lists", () => {
  it("every letter dbclient accepts has a row, and every row is a letter it accepts", () => {
    expect(LETTERS.filter(clientAccepts).sort()).toEqual(Object.keys(CLIENT).sort());
  });

  it("every letter dropbear accepts has a row, and every row is a letter it accepts", () => {
    expect(LETTERS.filter(serverAccepts).sort()).toEqual(Object.keys(SERVER).sort());
  });

  it("every -o name dbclient accepts has a row, and every row is a name it accepts", () => {
    expect(clientExtendedNames().sort()).toEqual(Object.keys(CLIENT_O).sort());
  });
});

const ALL: Array<[string, Evidence]> = [
  ...Object.entries(CLIENT).map(([k, v]) => [`dbclient -${k}`, v] as [string, Evidence]),
  ...Object.entries(CLIENT_O).map(([k, v]) => [`dbclient -o ${k}`, v] as [string, Evidence]),
  ...Object.entries(SERVER).map(([k, v]) => [`dropbear -${k}`, v] as [string, Evidence]),
];

describe("option audit: each row's evidence", () => {

  it("the tests named still exist and hold that text", () => {
    const self = readFileSync(fileURLToPath(import.meta.url), "utf8");
    for (const [name, ev] of ALL) {
      if ("test" in ev || "internal" in ev) {
        const [file, text] = "test" in ev ? ev.test : ev.internal;
        expect(readFileSync(join(ROOT, file), "utf8"), `${name}: ${file}`).toContain(text);
      }
      if ("here" in ev) {
        // The end-to-end check is in this file under exactly that title.
        expect(self, name).toContain(`"${ev.here}"`);
      }
    }
  });

  it("aliases parse to exactly what their flags give", () => {
    for (const [name, ev] of Object.entries(CLIENT_O)) {
      if ("same" in ev) {
        expect(parsedClient(["-o", `${name}=${CLIENT_O_VALUE[name]}`]), name).toEqual(parsedClient(ev.same));
      }
    }
    for (const [letter, ev] of Object.entries(SERVER)) {
      if ("same" in ev) {
        expect(parsedServer([`-${letter}`, "<keyfile>"]), letter).toEqual(parsedServer(ev.same));
      }
    }
  });

  /** A listener that counts connections: the programs are pointed at it and must not connect. */
  async function counting(): Promise<{ port: number; count: () => number; close: () => void }> {
    let n = 0;
    const s = net.createServer((c) => {
      n++;
      c.destroy();
    });
    s.listen(0, "127.0.0.1");
    await once(s, "listening");
    return { port: (s.address() as net.AddressInfo).port, count: () => n, close: () => s.close() };
  }

  it("options that end the program do so at once, exit 0, and connect nowhere", async () => {
    const l = await counting();
    try {
      for (const [letter, ev] of Object.entries(CLIENT)) {
        if (!("exits" in ev)) continue;
        const args = letter === "Q" ? ["-Q", "kex"] : [`-${letter}`];
        const r = await run(process.execPath, [OURS.dbclient, ...args, "-p", String(l.port), "127.0.0.1", "true"], { env: { HOME: probeHome }, timeoutMs: 20_000 });
        expect(r.status, `dbclient -${letter}`).toBe(0);
        expect(r.stdout + r.stderr, `dbclient -${letter}`).toMatch(ev.exits);
      }
      for (const [letter, ev] of Object.entries(SERVER)) {
        if (!("exits" in ev)) continue;
        const args = letter === "Q" ? ["-Q", "kex"] : [`-${letter}`];
        const r = await run(process.execPath, [OURS.dropbear, ...args, "-F", "-E", "-p", `127.0.0.1:${l.port}`], { timeoutMs: 20_000 });
        expect(r.status, `dropbear -${letter}`).toBe(0);
        expect(r.stdout + r.stderr, `dropbear -${letter}`).toMatch(ev.exits);
      }
      expect(l.count()).toBe(0);
    } finally {
      l.close();
    }
  });
});

// The end-to-end checks for rows marked "here".

const USER = "dbtsaudit";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-audit-");
let user: TestUser;
let plain: Server; // no -e, no -a, no -D; a banner
let tuned: Server; // -e -a -D ~/audit_keys, host key by -d
let sshd: Server | null = null;
let notos: Server; // -z
let echo: Target;
const clientKey = join(work.dir, "id_audit");
const altKey = join(work.dir, "id_alt");
const BANNER = "audit banner line";
// NODE_EXTRA_CA_CERTS (an empty bundle) is one the daemon holds back from its connection
// processes' start (svr-main.ts HELD_ENV) and gives back for -e.
const SERVER_ENV = { AUDIT_ENV: "from-the-server", NODE_EXTRA_CA_CERTS: join(work.dir, "extra-ca.pem") };

function dropbearkey(f: string): string {
  ourKeygen(f);
  return readFileSync(`${f}.pub`, "utf8");
}

function userFile(rel: string, text: string): void {
  const f = join(user.home, rel);
  writeFileSync(f, text);
  chownSync(f, user.uid, user.gid);
  chmodSync(f, 0o600);
}

beforeAll(async () => {
  if (!isRoot) return;
  user = addTestUser(USER);
  userFile(".ssh/authorized_keys", dropbearkey(clientKey));
  // The key only -D's directory lists.
  const alt = join(user.home, "audit_keys");
  mkdirSync(alt, { mode: 0o700 });
  chownSync(alt, user.uid, user.gid);
  userFile("audit_keys/authorized_keys", dropbearkey(altKey));
  const hk = join(work.dir, "hk");
  dropbearkey(hk);
  const banner = join(work.dir, "banner");
  writeFileSync(banner, `${BANNER}\n`);
  writeFileSync(SERVER_ENV.NODE_EXTRA_CA_CERTS, "");
  plain = await startOurDropbear(["-r", hk, "-b", banner], SERVER_ENV);
  tuned = await startOurDropbear(["-d", hk, "-e", "-a", "-D", "~/audit_keys"], SERVER_ENV);
  notos = await startOurDropbear(["-r", hk, "-z"]);
  echo = await startEchoTarget();
}, 60_000);

afterAll(async () => {
  await plain?.stop();
  await tuned?.stop();
  await notos?.stop();
  await sshd?.stop();
  await echo?.close();
  if (isRoot) removeTestUser(USER);
  work.cleanup();
}, 60_000);

function ours(server: Server, args: string[], cmd: string, key = clientKey): Promise<RunResult> {
  return run(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(server.port), ...args, `${USER}@127.0.0.1`, cmd], { env: { HOME: probeHome }, timeoutMs: 30_000 });
}

/** Our client with no key at all, as nobody: it gets through kex and the banner, then gives up. */
function keyless(server: Server, args: string[]): Promise<RunResult> {
  return run(process.execPath, [OURS.dbclient, "-y", "-y", "-o", "BatchMode=yes", "-p", String(server.port), ...args, "nobody@127.0.0.1", "true"], { env: { HOME: probeHome }, timeoutMs: 30_000 });
}

/** Whether a TCP connection to host:port is accepted. */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

describe("option audit: end-to-end checks", () => {
  itAsRoot([], "-q: the server's banner is not shown", async () => {
    expect((await keyless(plain, [])).stderr).toContain(BANNER);
    const quiet = await keyless(plain, ["-q"]);
    expect(quiet.stderr).toMatch(/No auth methods could be used/);
    expect(quiet.stderr).not.toContain(BANNER);
  });

  itAsRoot([], "-T: no pty, even after -t", async () => {
    const r = await ours(plain, ["-t", "-T"], "tty; true");
    expect(r.stdout).toBe("not a tty\n");
    expect(r.status).toBe(0);
  });

  itAsRoot([], "-n: the command reads /dev/null, and our stdin is left unread", async () => {
    // As in `while read h; do dbclient -n ...; done <list`: the lines after the first stay ours.
    const script = `printf 'one\\ntwo\\n' | { read a; "$@" 'cat; echo done'; read b; echo "$a $b"; }`;
    const r = await run("/bin/sh", ["-c", script, "sh", process.execPath, OURS.dbclient, "-n", "-y", "-y", "-i", clientKey, "-p", String(plain.port), `${USER}@127.0.0.1`], {
      env: { HOME: probeHome },
      timeoutMs: 30_000,
    });
    expect(r.stdout, `${r.status} ${r.stderr}`).toBe("done\none two\n");
  });

  itAsRoot([], "-o UserKnownHostsFile: host keys are recorded in and checked against that file", async () => {
    const kh = join(probeHome, "kh-audit");
    const base = [OURS.dbclient, "-i", clientKey, "-p", String(plain.port), "-o", `UserKnownHostsFile=${kh}`];
    const first = await run(process.execPath, [...base, "-y", `${USER}@127.0.0.1`, "true"], { env: { HOME: probeHome }, timeoutMs: 30_000 });
    expect(first.status, first.stderr).toBe(0);
    expect(readFileSync(kh, "utf8")).toContain(`[127.0.0.1]:${plain.port} `);
    expect(existsSync(join(probeHome, ".ssh", "known_hosts")) && readFileSync(join(probeHome, ".ssh", "known_hosts"), "utf8").includes(`[127.0.0.1]:${plain.port} `)).toBe(false);
    // Known there now: no -y needed. Another key there for the host: refused.
    const again = await run(process.execPath, [...base, "-o", "StrictHostKeyChecking=yes", `${USER}@127.0.0.1`, "true"], { env: { HOME: probeHome }, timeoutMs: 30_000 });
    expect(again.status, again.stderr).toBe(0);
    const line = readFileSync(kh, "utf8").trim().split(" ");
    const other = Buffer.from(line[2]!, "base64");
    other[other.length - 1]! ^= 1;
    writeFileSync(kh, `${line[0]} ${line[1]} ${other.toString("base64")}\n`);
    const bad = await run(process.execPath, [...base, "-o", "StrictHostKeyChecking=yes", `${USER}@127.0.0.1`, "true"], { env: { HOME: probeHome }, timeoutMs: 30_000 });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/host key mismatch for 127\.0\.0\.1/);
    // Several files, as ssh allows, are refused before connecting.
    const two = await run(process.execPath, [OURS.dbclient, "-o", `UserKnownHostsFile=${kh} ${kh}2`, "-p", String(plain.port), "127.0.0.1", "true"], { env: { HOME: probeHome }, timeoutMs: 30_000 });
    expect(two.stderr).toMatch(/Bad UserKnownHostsFile/);
    expect(two.status).toBe(1);
    // ssh's "none": no file read or written, not one named "none" in the current directory.
    const cwd = join(probeHome, "kh-none");
    mkdirSync(cwd, { recursive: true });
    const none = await run(process.execPath, [OURS.dbclient, "-y", "-i", clientKey, "-p", String(plain.port), "-o", "UserKnownHostsFile=none", `${USER}@127.0.0.1`, "true"], { env: { HOME: probeHome }, timeoutMs: 30_000, cwd });
    expect(none.status, none.stderr).toBe(0);
    expect(existsSync(join(cwd, "none"))).toBe(false);
  });

  itAsRoot([], "-l names the user", async () => {
    const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "-i", clientKey, "-p", String(plain.port), "-l", USER, "127.0.0.1", "id -un"], { env: { HOME: probeHome }, timeoutMs: 30_000 });
    expect(r.stdout, r.stderr).toBe(`${USER}\n`);
  });

  itAsRoot([], "-b binds the local end: the server logs the client's address", async () => {
    await keyless(plain, ["-b", "127.0.0.2"]);
    expect(plain.log()).toMatch(/Child connection from 127\.0\.0\.2:\d+/);
    // And -b address:port fixes the port too.
    const port = 20000 + (process.pid % 20000);
    await keyless(plain, ["-b", `127.0.0.3:${port}`]);
    expect(plain.log()).toContain(`Child connection from 127.0.0.3:${port}`);
  });

  itWithPeers(["sshd", "ssh-keygen"], "-c and -m choose the cipher and the MAC (sshd's log names them)", async () => {
    const d = join(work.dir, "sshd");
    mkdirSync(d, { recursive: true });
    sshd ??= await startSshd(d);
    await keyless(sshd, ["-c", "aes256-ctr", "-m", "hmac-sha2-512"]);
    await expect.poll(() => sshd!.log()).toMatch(/kex: client->server cipher: aes256-ctr MAC: hmac-sha2-512 /);
    expect(sshd.log()).toMatch(/kex: server->client cipher: aes256-ctr MAC: hmac-sha2-512 /);
  });

  itAsRoot([], "-D: authorized_keys is read from that directory", async () => {
    // The key listed only in ~/audit_keys gets in where -D names it, and not elsewhere.
    const r = await ours(tuned, [], "echo in", altKey);
    expect(r.stdout, r.stderr).toBe("in\n");
    expect((await ours(plain, [], "echo in", altKey)).stdout).toBe("");
    // ... and ~/.ssh/authorized_keys is not read there.
    expect((await ours(tuned, [], "echo in")).stdout).toBe("");
  });

  itAsRoot([], "-e passes the server's environment to the session", async () => {
    // Not what the daemon adds for its connection processes' own start (svr-main.ts
    // connectionLibcEnv), and with what it holds back from that start (HELD_ENV).
    const cmd = 'echo "[$AUDIT_ENV][${MALLOC_ARENA_MAX-unset}][${MALLOC_TOP_PAD_-unset}][${MALLOC_MMAP_THRESHOLD_-unset}][${GLIBC_TUNABLES-unset}][${DROPBEAR_TS_CONNECTION_ENV-unset}][$NODE_EXTRA_CA_CERTS][${DROPBEAR_TS_HELD_NODE_EXTRA_CA_CERTS-unset}][${DROPBEAR_TS_START_DIR-unset}][${DROPBEAR_TS_NOFILE-unset}]"';
    expect((await ours(tuned, [], cmd, altKey)).stdout).toBe(`[${SERVER_ENV.AUDIT_ENV}][unset][unset][unset][unset][unset][${SERVER_ENV.NODE_EXTRA_CA_CERTS}][unset][unset][unset]\n`);
    expect((await ours(plain, [], "echo \"[$AUDIT_ENV]\"")).stdout).toBe("[]\n");
  });

  itAsRoot([], "-a lets other addresses reach a remote forward", async () => {
    // The client asks for every address (0.0.0.0); without -a the server binds localhost only.
    for (const [server, key, open] of [
      [tuned, altKey, true],
      [plain, clientKey, false],
    ] as const) {
      const port = await new Promise<number>((resolve) => {
        const s = net.createServer().listen(0, "127.0.0.1", () => {
          const p = (s.address() as net.AddressInfo).port;
          s.close(() => resolve(p));
        });
      });
      const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-N", "-i", key, "-p", String(server.port), "-R", `0.0.0.0:${port}:127.0.0.1:${echo.port}`, `${USER}@127.0.0.1`], { env: { ...process.env, HOME: probeHome }, stdio: "ignore" });
      try {
        const end = Date.now() + 15_000;
        while (!(await reachable("127.0.0.1", port))) {
          if (Date.now() > end) throw new Error("the remote forward never listened");
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(await reachable("127.0.0.2", port), `other address, -a ${open}`).toBe(open);
      } finally {
        child.kill();
        await once(child, "exit");
      }
    }
  });

  /** The TOS byte of the established socket matching an ss filter, or null while there is none. */
  function tosOf(filter: string): number | null {
    const out = spawnSync("ss", ["-Htn", "--tos", "state", "established", filter], { encoding: "utf8" }).stdout;
    const m = /tos:(0x[0-9a-f]+|\d+)/.exec(out);
    return m === null ? null : Number(m[1]);
  }

  itAsRoot([], "-z leaves the IP TOS alone: the SSH sockets carry AF21 (0x48) while no channel is open, nothing with -z", async () => {
    for (const [server, args, clientTos, serverTos] of [
      [plain, [], 0x48, 0x48],
      [plain, ["-z"], 0, 0x48],
      [notos, [], 0x48, 0],
    ] as const) {
      // -N: no channel, so both ends keep the low-delay class of the session's setup.
      const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-N", ...args, "-i", clientKey, "-p", String(server.port), `${USER}@127.0.0.1`], { env: { ...process.env, HOME: probeHome }, stdio: "ignore" });
      try {
        const what = `client ${args.join(" ")}, server ${server === notos ? "-z" : "plain"}`;
        const clientSide = `( dport = :${server.port} )`;
        const serverSide = `( sport = :${server.port} )`;
        await expect.poll(() => [tosOf(clientSide), tosOf(serverSide)], { timeout: 15_000, message: what }).toEqual([clientTos, serverTos]);
      } finally {
        child.kill();
        await once(child, "exit");
      }
      // The next round must not see this connection.
      await expect.poll(() => tosOf(`( dport = :${server.port} )`), { timeout: 10_000 }).toBeNull();
    }
  });

  itAsRoot([], "-o UseSyslog=yes: dbclient's messages go to syslog too", async () => {
    // A datagram socket at /dev/log (or bound over it in a private mount namespace) catches
    // what libc's syslog() sends.
    const dir = mkdtempSync(join(tmpdir(), "dbts-syslog-"));
    const sock = existsSync("/dev/log") ? join(dir, "log") : "/dev/log";
    const out = join(dir, "got");
    const py = spawn("/usr/bin/python3", ["-c", `import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(20)
open(sys.argv[3],"w").close()
with open(sys.argv[2],"wb") as f:
  while True:
    try: f.write(s.recv(65536)+b"\\n"); f.flush()
    except socket.timeout: break`, sock, out, join(dir, "ready")], { stdio: "ignore" });
    try {
      const end = Date.now() + 10_000;
      while (!existsSync(join(dir, "ready"))) {
        if (Date.now() > end) throw new Error("the syslog catcher did not start");
        await new Promise((r) => setTimeout(r, 50));
      }
      const client = [process.execPath, OURS.dbclient, "-y", "-y", "-o", "BatchMode=yes", "-o", "UseSyslog=yes", "-p", String(plain.port), "nobody@127.0.0.1", "true"];
      const r =
        sock === "/dev/log"
          ? await run(client[0]!, client.slice(1), { env: { HOME: probeHome }, timeoutMs: 30_000 })
          : await run("/usr/bin/unshare", ["-m", "sh", "-c", `mount --bind "${sock}" /dev/log && exec "$@"`, "sh", ...client], { env: { HOME: probeHome }, timeoutMs: 30_000 });
      expect(r.stderr).toMatch(/No auth methods could be used/);
      await expect.poll(() => readFileSync(out, "latin1"), { timeout: 10_000 }).toMatch(/No auth methods could be used/);
    } finally {
      py.kill();
      await once(py, "exit");
      if (sock === "/dev/log") rmSync(sock, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
