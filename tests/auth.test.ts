import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PEERS, PYTHON, itAsRoot, itPyCryptography, type PeerName } from "./helpers/peers.js";
import { OURS, opensshKeygen, ourKeygen, run, runBytes, runOurClient, scratch, type Server, startDebianDropbear, startOurDropbear, startOurDropbearWithHostKey, startSshd } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser, setTestUserExpiry } from "./helpers/users.js";

// Issue 4: user authentication with the system's real accounts, against real peers.
// Needs root (to create the test user), as CI has; elsewhere these tests skip.

const USER = "dbtsauth";
const PASSWORD = "correct horse 42";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-auth-");
let home = "";
let uid = 0;
let gid = 0;
const servers: Server[] = [];

const itAuth = (peers: PeerName[], title: string, fn: () => Promise<void>): void => itAsRoot(peers, title, fn);

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** Keys: OpenSSH format from ssh-keygen (for ssh and our client), Dropbear format from ours. */
const keys: Record<string, string> = {};

function sshKeygen(name: string, type: string, pass = ""): string {
  const f = join(work.dir, name);
  return opensshKeygen(f, { type, passphrase: pass, comment: name });
}

beforeAll(async () => {
  if (!isRoot) return;
  ({ home, uid, gid } = addTestUser(USER, { password: PASSWORD }));

  keys.ed25519 = sshKeygen("id_ed25519", "ed25519");
  keys.ecdsa = sshKeygen("id_ecdsa", "ecdsa");
  keys.rsa = sshKeygen("id_rsa", "rsa");
  keys.encrypted = sshKeygen("id_encrypted", "ed25519", "sesame");
  keys.unknown = sshKeygen("id_unknown", "ed25519");
  keys.dropbear = join(work.dir, "id_dropbear");
  ourKeygen(keys.dropbear);
  authorizeKeys({ home, uid, gid }, `${keys.ed25519}.pub`, `${keys.ecdsa}.pub`, `${keys.rsa}.pub`, `${keys.encrypted}.pub`, `${keys.dropbear}.pub`);
  for (const k of Object.values(keys)) chmodSync(k, 0o600);
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (isRoot) removeTestUser(USER);
  work.cleanup();
});

let ours: Server | null = null;
async function ourServer(): Promise<Server> {
  if (ours === null) {
    ours = await startOurDropbearWithHostKey(work.dir);
    servers.push(ours);
  }
  return ours;
}

const SSH_COMMON = ["-v", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes"];

/** OpenSSH's ssh against `port`, running `true` once authenticated. */
async function ssh(port: number, extra: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await run(PEERS.ssh, [...SSH_COMMON, "-o", "ConnectTimeout=10", ...extra, "-p", String(port), `${USER}@127.0.0.1`, "true"], { env, timeoutMs: 15_000 });
  return r.stderr;
}

describe("OpenSSH ssh -> our dropbear, a real system account", () => {
  for (const k of ["ed25519", "ecdsa", "rsa"] as const) {
    itAuth(["ssh"], `publickey ${k}`, async () => {
      const s = await ourServer();
      const before = s.log().length;
      const log = await ssh(s.port, ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", "-i", keys[k]!]);
      expect(log).toMatch(/Authenticated to 127\.0\.0\.1/);
      await expect.poll(() => s.log().slice(before)).toMatch(new RegExp(`Pubkey auth succeeded for '${USER}' with \\S+ key SHA256:\\S+ from 127\\.0\\.0\\.1:\\d+`));
    });
  }

  itAuth(["ssh"], "publickey rsa with rsa-sha2-512", async () => {
    const s = await ourServer();
    const log = await ssh(s.port, ["-o", "BatchMode=yes", "-o", "PubkeyAcceptedAlgorithms=rsa-sha2-512", "-i", keys.rsa!]);
    expect(log).toMatch(/Authenticated to 127\.0\.0\.1/);
  });

  itAuth(["ssh", "sshpass"], "password (the system's yescrypt hash)", async () => {
    const s = await ourServer();
    const before = s.log().length;
    const r = await run(PEERS.sshpass, ["-p", PASSWORD, PEERS.ssh, ...SSH_COMMON, "-o", "PreferredAuthentications=password", "-p", String(s.port), `${USER}@127.0.0.1`, "true"], { timeoutMs: 15_000 });
    expect(r.stderr).toMatch(/Authenticated to 127\.0\.0\.1/);
    await expect.poll(() => s.log().slice(before)).toMatch(new RegExp(`Password auth succeeded for '${USER}' from 127\\.0\\.0\\.1:\\d+`));
    expect(s.log()).not.toContain(PASSWORD);
  });

  itAuth(["ssh"], "an unknown key is refused", async () => {
    const s = await ourServer();
    const log = await ssh(s.port, ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", "-i", keys.unknown!]);
    expect(log).toMatch(/Permission denied \(publickey,password\)/);
    expect(log).not.toMatch(/Authenticated to/);
  });

  itAuth(["ssh", "sshpass"], "a wrong password is refused and logged", async () => {
    const s = await ourServer();
    const before = s.log().length;
    const r = await run(PEERS.sshpass, ["-p", "wrong", PEERS.ssh, ...SSH_COMMON, "-o", "NumberOfPasswordPrompts=1", "-o", "PreferredAuthentications=password", "-p", String(s.port), `${USER}@127.0.0.1`, "true"], { timeoutMs: 15_000 });
    expect(r.stderr).not.toMatch(/Authenticated to/);
    await expect.poll(() => s.log().slice(before)).toMatch(new RegExp(`Bad password attempt for '${USER}' from 127\\.0\\.0\\.1:\\d+`));
  });

  itAuth(["ssh"], "eleven bad passwords end the connection (MAX_AUTH_TRIES 10)", async () => {
    const s = await ourServer();
    const before = s.log().length;
    const askpass = join(work.dir, "askpass.sh");
    writeFileSync(askpass, "#!/bin/sh\necho wrong\n", { mode: 0o755 });
    await run(PEERS.ssh, [...SSH_COMMON, "-o", "NumberOfPasswordPrompts=11", "-o", "PreferredAuthentications=password", "-p", String(s.port), `${USER}@127.0.0.1`, "true"], {
      env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: "none" },
      timeoutMs: 30_000,
    });
    await expect.poll(() => s.log().slice(before), { timeout: 10_000 }).toMatch(/Max auth tries reached - user '\w+'/);
  });

  itAuth(["ssh", "sshpass"], "an expired account (chage -E 0) is refused for a key and a password, as Debian's sshd refuses it (C lets it in)", async () => {
    const s = await ourServer();
    const before = s.log().length;
    setTestUserExpiry(USER, 0);
    try {
      const key = await ssh(s.port, ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", "-i", keys.ed25519!]);
      expect(key).toMatch(/Permission denied \(publickey,password\)/);
      const pw = await run(PEERS.sshpass, ["-p", PASSWORD, PEERS.ssh, ...SSH_COMMON, "-o", "NumberOfPasswordPrompts=1", "-o", "PreferredAuthentications=password", "-p", String(s.port), `${USER}@127.0.0.1`, "true"], { timeoutMs: 15_000 });
      expect(pw.stderr).not.toMatch(/Authenticated to/);
    } finally {
      setTestUserExpiry(USER, -1);
    }
    await expect.poll(() => s.log().slice(before)).toMatch(new RegExp(`User account '${USER}' has expired, rejected`));
    expect(await ssh(s.port, ["-o", "BatchMode=yes", "-i", keys.ed25519!])).toMatch(/Authenticated to 127\.0\.0\.1/);
  });

  itAuth(["ssh"], "hostile: a 5000-character user name and 20 keys in a row get a clean refusal; the server stays up", async () => {
    const s = await ourServer();
    const long = await run(PEERS.ssh, [...SSH_COMMON, "-o", "BatchMode=yes", "-p", String(s.port), `${"a".repeat(5000)}@127.0.0.1`, "true"], { timeoutMs: 15_000 });
    expect(long.status).not.toBe(0);
    expect(long.stderr).not.toMatch(/Authenticated to/);
    const many = Array.from({ length: 20 }, (_, i) => sshKeygen(`many_${i}`, "ed25519"));
    const flood = await ssh(s.port, ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", ...many.flatMap((k) => ["-i", k])]);
    expect(flood).not.toMatch(/Authenticated to/);
    const ok = await ssh(s.port, ["-o", "BatchMode=yes", "-i", keys.ed25519!]);
    expect(ok).toMatch(/Authenticated to 127\.0\.0\.1/);
  });
});

describe("sshpass driving our dbclient's password prompt (our dropbear)", () => {
  // sshpass gives dbclient a terminal only as its controlling tty (/dev/tty), stdin untouched.
  const sshpass = async (password: string, extra: string[], cmd: string): Promise<{ status: number | null; stdout: string }> => {
    const s = await ourServer();
    const h = scratch("dbts-sshpass-");
    try {
      return await run(PEERS.sshpass, ["-p", password, process.execPath, OURS.dbclient, "-y", "-y", ...extra, "-p", String(s.port), `${USER}@127.0.0.1`, cmd], { env: { HOME: h.dir }, timeoutMs: 20_000 });
    } finally {
      h.cleanup();
    }
  };

  itAuth(["sshpass"], "the password is typed; a wrong one is sshpass's status 5", async () => {
    const ok = await sshpass(PASSWORD, [], "echo pw-ok");
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe("pw-ok\n");
    expect((await sshpass("wrong", [], "true")).status).toBe(5);
  });

  // The -f copy once ran in a session of its own from the start, with no /dev/tty to prompt on:
  // it read empty answers from stdin until the server gave up. C and ssh prompt, then fork.
  itAuth(["sshpass"], "-f: the background copy prompts on sshpass's terminal, then runs the command", async () => {
    const mark = join(home, "sshpass-f");
    const r = await sshpass(PASSWORD, ["-f"], `echo bg-ok > ${mark}`);
    expect(r.status).toBe(0);
    await expect.poll(() => sh("cat", [mark]), { timeout: 5_000 }).toBe("bg-ok\n");
  });
});

/** Our client's run: authenticated when the session moved past auth to the channel stage. */
async function ourClient(port: number, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<string> {
  const h = scratch("dbts-clienthome-");
  try {
    const r = await runOurClient(["-y", "-y", "-p", String(port), ...args, `${USER}@127.0.0.1`, "true"], { env: { HOME: h.dir, ...opts.env }, input: opts.input, timeoutMs: 15_000 });
    return r.stderr;
  } finally {
    h.cleanup();
  }
}

/** Signs that our client authenticated: the server logged it, and the client did not give up at auth. */
function expectAuthenticated(server: Server, before: number, clientErr: string): Promise<void> {
  expect(clientErr).not.toMatch(/No auth methods could be used|Permission denied/);
  return expect.poll(() => server.log().slice(before), { timeout: 5000 }).toMatch(/Accepted (publickey|password)|auth succeeded/);
}

describe("our dbclient -> OpenSSH sshd and Debian's dropbear, a real system account", () => {
  const cases: Array<[string, () => string[], { env?: NodeJS.ProcessEnv; input?: string }]> = [
    ["an OpenSSH-format key", () => ["-i", keys.ed25519!], {}],
    ["a Dropbear-format key", () => ["-i", keys.dropbear!], {}],
    ["an encrypted OpenSSH key (passphrase on stdin without a tty)", () => ["-i", keys.encrypted!], { input: "sesame\n" }],
    ["a password from DROPBEAR_PASSWORD", () => [], { env: { DROPBEAR_PASSWORD: PASSWORD } }],
  ];
  let sshd: Server | null = null;
  const sd = scratch("dbts-authsshd-");
  afterAll(async () => {
    await sshd?.stop();
    sd.cleanup();
  });
  for (const [what, args, opts] of cases) {
    itAuth(["sshd"], `sshd: ${what}`, async () => {
      sshd ??= await startSshd(sd.dir, ["PasswordAuthentication yes"]);
      const before = sshd.log().length;
      const err = await ourClient(sshd.port, args(), opts);
      await expectAuthenticated(sshd, before, err);
    });
  }

  itAuth(["sshd"], "sshd: an agent key (SSH_AUTH_SOCK)", async () => {
    sshd ??= await startSshd(sd.dir, ["PasswordAuthentication yes"]);
    const agent = sh("ssh-agent", ["-s"]);
    const sock = /SSH_AUTH_SOCK=([^;]+);/.exec(agent)![1]!;
    const pid = /SSH_AGENT_PID=(\d+);/.exec(agent)![1]!;
    try {
      execFileSync("ssh-add", [keys.rsa!], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: "ignore" });
      const before = sshd.log().length;
      const err = await ourClient(sshd.port, [], { env: { SSH_AUTH_SOCK: sock } });
      await expectAuthenticated(sshd, before, err);
    } finally {
      process.kill(Number(pid));
    }
  });

  itAuth(["sshd"], "sshd taking only rsa-sha2-512 signatures (server-sig-algs lists rsa-sha2-256 too): an RSA key", async () => {
    const sd512 = scratch("dbts-authsshd512-");
    const only512 = await startSshd(sd512.dir, ["PubkeyAcceptedAlgorithms rsa-sha2-512"]);
    try {
      const before = only512.log().length;
      const err = await ourClient(only512.port, ["-i", keys.rsa!]);
      await expectAuthenticated(only512, before, err);
    } finally {
      await only512.stop();
      sd512.cleanup();
    }
  });

  let debian: Server | null = null;
  async function debianServer(): Promise<Server> {
    if (debian === null) {
      const hk = join(work.dir, "debian_hk");
      spawnSync(PEERS.dropbearkey, ["-t", "ed25519", "-f", hk]);
      debian = await startDebianDropbear(["-r", hk]);
      servers.push(debian);
    }
    return debian;
  }

  itAuth(["dropbear", "dropbearkey"], "Debian dropbear: an agent key (SSH_AUTH_SOCK)", async () => {
    const server = await debianServer();
    const agent = sh("ssh-agent", ["-s"]);
    const sock = /SSH_AUTH_SOCK=([^;]+);/.exec(agent)![1]!;
    const pid = /SSH_AGENT_PID=(\d+);/.exec(agent)![1]!;
    try {
      execFileSync("ssh-add", [keys.ecdsa!], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: "ignore" });
      const before = server.log().length;
      const err = await ourClient(server.port, [], { env: { SSH_AUTH_SOCK: sock } });
      await expectAuthenticated(server, before, err);
    } finally {
      process.kill(Number(pid));
    }
  });

  for (const [what, args, opts] of cases) {
    itAuth(["dropbear", "dropbearkey"], `Debian dropbear: ${what}`, async () => {
      const server = await debianServer();
      const before = server.log().length;
      const err = await ourClient(server.port, args(), opts);
      await expectAuthenticated(server, before, err);
    });
  }
});

describe("a password that is not UTF-8 (set in a Latin-1 locale)", () => {
  const LATIN1_USER = "dbtsauthl1";
  // "été-pw" in Latin-1: 0xe9 alone is not UTF-8.
  const latin1 = Buffer.from([0xe9, 0x74, 0xe9, 0x2d, 0x70, 0x77]);
  // The same bytes as the passphrase of an encrypted key (Node's argv would pass them as UTF-8).
  const encrypted = join(work.dir, "id_latin1");
  beforeAll(() => {
    if (!isRoot) return;
    const user = addTestUser(LATIN1_USER);
    const r = spawnSync("chpasswd", [], { input: Buffer.concat([Buffer.from(`${LATIN1_USER}:`), latin1, Buffer.from("\n")]) });
    expect(r.status).toBe(0);
    const k = spawnSync("/bin/sh", ["-c", `ssh-keygen -q -t ed25519 -C latin1 -N "$(printf '\\351t\\351-pw')" -f "$1"`, "sh", encrypted]);
    expect(k.status, k.stderr.toString()).toBe(0);
    authorizeKeys(user, `${encrypted}.pub`);
  });
  afterAll(() => {
    if (isRoot) removeTestUser(LATIN1_USER);
  });

  /** Our client logging in as LATIN1_USER to our server, the password's bytes given by `how`. */
  async function login(how: "stdin" | "env" | "passphrase"): Promise<string> {
    const s = await ourServer();
    const before = s.log().length;
    const h = scratch("dbts-clienthome-");
    try {
      const args = ["-y", "-y", "-p", String(s.port), ...(how === "passphrase" ? ["-i", encrypted] : []), `${LATIN1_USER}@127.0.0.1`, "echo logged-in"];
      // Node passes environment values as UTF-8 strings, so the shell puts the raw bytes there.
      const r =
        how !== "env"
          ? await runBytes(process.execPath, [OURS.dbclient, ...args], { env: { HOME: h.dir }, input: Buffer.concat([latin1, Buffer.from("\n")]), timeoutMs: 15_000 })
          : await runBytes("/bin/sh", ["-c", `DROPBEAR_PASSWORD="$(printf '\\351t\\351-pw')" exec "$@"`, "sh", process.execPath, OURS.dbclient, ...args], { env: { HOME: h.dir }, timeoutMs: 15_000 });
      expect(r.out.toString(), r.err).toBe("logged-in\n");
      return s.log().slice(before);
    } finally {
      h.cleanup();
    }
  }

  itAuth([], "typed at the prompt (no terminal: stdin), its bytes are sent as they are", async () => {
    expect(await login("stdin")).toMatch(new RegExp(`Password auth succeeded for '${LATIN1_USER}'`));
  });

  itAuth([], "from DROPBEAR_PASSWORD, its bytes are sent as they are", async () => {
    expect(await login("env")).toMatch(new RegExp(`Password auth succeeded for '${LATIN1_USER}'`));
  });

  itAuth(["ssh-keygen"], "as an encrypted key's passphrase (stdin without a terminal), its bytes open the key", async () => {
    expect(await login("passphrase")).toMatch(new RegExp(`Pubkey auth succeeded for '${LATIN1_USER}'`));
  });
});

describe("a user name that is not UTF-8 (an account named in Latin-1), from our client", () => {
  // "dbtsauth\xe9": 0xe9 alone is not UTF-8. Debian's dropbear looks the name up as its bytes.
  const ASCII_NAME = "dbtsauthn1";
  const latin1Name = Buffer.from([...Buffer.from("dbtsauth"), 0xe9]);
  const printfName = "dbtsauth\\351";
  let debian: Server | null = null;
  beforeAll(async () => {
    if (!isRoot) return;
    spawnSync("/bin/sh", ["-c", `userdel -f -r "$(printf "$1")"`, "sh", printfName], { stdio: "ignore" });
    spawnSync("groupdel", [ASCII_NAME], { stdio: "ignore" });
    const user = addTestUser(ASCII_NAME);
    authorizeKeys(user, `${keys.ed25519}.pub`);
    // Node cannot pass the name as an argument: the shell's printf makes it.
    const r = spawnSync("/bin/sh", ["-c", `exec usermod -l "$(printf "$1")" "$2"`, "sh", printfName, ASCII_NAME]);
    expect(r.status, r.stderr.toString()).toBe(0);
    const hk = join(work.dir, "latin1_name_hk");
    spawnSync(PEERS.dropbearkey, ["-t", "ed25519", "-f", hk]);
    debian = await startDebianDropbear(["-r", hk]);
    servers.push(debian);
  }, 60_000);
  afterAll(() => {
    if (!isRoot) return;
    spawnSync("/bin/sh", ["-c", `userdel -f -r "$(printf "$1")"`, "sh", printfName], { stdio: "ignore" });
    removeTestUser(ASCII_NAME);
    // usermod -l renamed the account, not its group.
    spawnSync("groupdel", [ASCII_NAME], { stdio: "ignore" });
  });

  /** `id -un` through our client, its arguments made by sh (NAME stands for the Latin-1 name). */
  async function idThrough(args: string): Promise<{ out: Buffer; err: string }> {
    const h = scratch("dbts-clienthome-");
    try {
      const script = `NAME="$(printf "$1")"; shift; exec "$@" -y -y -i "${keys.ed25519}" ${args} "id -un"`;
      const r = await runBytes("/bin/sh", ["-c", script, "sh", printfName, process.execPath, OURS.dbclient], { env: { HOME: h.dir }, timeoutMs: 30_000 });
      return { out: r.out, err: r.err };
    } finally {
      h.cleanup();
    }
  }

  for (const [what, args] of [
    ["user@host", () => `-p ${debian!.port} "$NAME@127.0.0.1"`],
    ["-l", () => `-p ${debian!.port} -l "$NAME" 127.0.0.1`],
    ["-o User=", () => `-p ${debian!.port} -o "User=$NAME" 127.0.0.1`],
    ["-o User=\"...\" (as ansible quotes it)", () => `-p ${debian!.port} -o "User=\\"$NAME\\"" 127.0.0.1`],
    ["the last hop of a multihop", () => `"${USER}@127.0.0.1^${debian!.port},$NAME@127.0.0.1^${debian!.port}"`],
  ] as const) {
    itAuth(["dropbear", "dropbearkey"], `${what}: the name's bytes are sent as they are`, async () => {
      const r = await idThrough(args());
      expect(r.out, r.err).toEqual(Buffer.concat([latin1Name, Buffer.from("\n")]));
    });
  }
});

describe("server auth options (-b, -s, -w, -T)", () => {
  async function optServer(...args: string[]): Promise<Server> {
    const hk = join(work.dir, `hk_opts_${servers.length}`);
    ourKeygen(hk);
    const s = await startOurDropbear(["-r", hk, ...args]);
    servers.push(s);
    return s;
  }

  itAuth(["ssh"], "-b sends the banner before auth", async () => {
    const banner = join(work.dir, "banner.txt");
    writeFileSync(banner, "Authorised users only. Be nice.\n");
    const s = await optServer("-b", banner);
    const log = await ssh(s.port, ["-o", "BatchMode=yes", "-o", "LogLevel=INFO", "-i", keys.unknown!]);
    expect(log).toContain("Authorised users only. Be nice.");
  });

  it("-b with a missing file: the daemon says so as it starts, a connection process after its 'Child connection from', as C's re-executed child", async () => {
    const s = await optServer("-b", join(work.dir, "no-banner"));
    // startOurDropbear's probe was a connection; its process's lines, in order, by pid.
    await expect.poll(() => s.log(), { timeout: 10_000 }).toMatch(/Exit before auth/);
    const byPid = new Map<string, string[]>();
    for (const [, pid, msg] of s.log().matchAll(/^\[(\d+)\] \w{3} \d\d \d\d:\d\d:\d\d (.*)$/gm)) {
      byPid.set(pid!, [...(byPid.get(pid!) ?? []), msg!]);
    }
    const missing = "Error opening banner file";
    const daemon = [...byPid.values()].filter((l) => l.some((m) => m.startsWith("Not backgrounding")));
    expect(daemon).toHaveLength(1);
    expect(daemon[0]!.filter((m) => m.startsWith(missing))).toHaveLength(1);
    const conns = [...byPid.values()].filter((l) => l.some((m) => m.startsWith("Child connection from")));
    expect(conns).toHaveLength(1);
    expect(conns[0]![0]).toMatch(/^Child connection from 127\.0\.0\.1:\d+$/);
    expect(conns[0]![1]).toMatch(new RegExp(`^${missing} '.*no-banner'$`));
    // Nothing else (a spare still waiting) has said it yet.
    expect([...byPid.values()].flat().filter((m) => m.startsWith(missing))).toHaveLength(2);
  });

  itAuth(["ssh", "sshpass"], "-s disables password logins", async () => {
    const s = await optServer("-s");
    const r = await run(PEERS.sshpass, ["-p", PASSWORD, PEERS.ssh, ...SSH_COMMON, "-o", "PreferredAuthentications=password", "-p", String(s.port), `${USER}@127.0.0.1`, "true"], { timeoutMs: 15_000 });
    expect(r.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  itAuth(["ssh"], "-w refuses root", async () => {
    const s = await optServer("-w");
    const before = s.log().length;
    const r = await run(PEERS.ssh, [...SSH_COMMON, "-o", "BatchMode=yes", "-p", String(s.port), "root@127.0.0.1", "true"], { timeoutMs: 15_000 });
    expect(r.stderr).not.toMatch(/Authenticated to/);
    await expect.poll(() => s.log().slice(before)).toMatch(/root login rejected/);
  });

  itAuth(["libnss_systemd.so.2"], "-G takes a group the name service knows that /etc/group does not list (systemd's userdb)", async () => {
    // In a mount namespace of its own: a userdb drop-in on a private /run names the group, and
    // nsswitch.conf asks systemd's module after the files. Until session 65 the daemon read
    // /etc/group itself and would not start: "Cannot restrict logins to group ...".
    const group = "dbtsauthnss";
    const nss = join(work.dir, "nsswitch.conf");
    writeFileSync(nss, "passwd: files systemd\ngroup: files systemd\n");
    // The user's own gid under another name: membership then needs nothing from the name
    // service (getgrouplist counts the primary group), only the name's lookup does.
    const record = JSON.stringify({ groupName: group, gid });
    const script = `mount -t tmpfs tmpfs /run && mkdir /run/userdb && printf '%s' '${record}' > /run/userdb/${group}.group && mount --bind "${nss}" /etc/nsswitch.conf && exec "$@"`;
    const hk = join(work.dir, "hk_nssgroup");
    ourKeygen(hk);
    const s = await startOurDropbear(["-r", hk, "-G", group], {}, ["/usr/bin/unshare", "-m", "sh", "-c", script, "sh"]);
    servers.push(s);
    const r = await runOurClient(["-y", "-y", "-i", keys.dropbear!, "-p", String(s.port), `${USER}@127.0.0.1`, "id -un"], { timeoutMs: 20_000 });
    expect(r.status, r.stderr + s.log()).toBe(0);
    expect(r.stdout.trim()).toBe(USER);
  });

  itAuth(["ssh"], "-T 2 ends the connection at the third failure (Dropbear counts past the limit)", async () => {
    const s = await optServer("-T", "2");
    const before = s.log().length;
    const askpass = join(work.dir, "askpass2.sh");
    writeFileSync(askpass, "#!/bin/sh\necho wrong\n", { mode: 0o755 });
    await run(PEERS.ssh, [...SSH_COMMON, "-o", "NumberOfPasswordPrompts=5", "-o", "PreferredAuthentications=password", "-p", String(s.port), `${USER}@127.0.0.1`, "true"], {
      env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: "none" },
      timeoutMs: 20_000,
    });
    await expect.poll(() => s.log().slice(before), { timeout: 10_000 }).toMatch(/Max auth tries reached - user '\w+'/);
    expect((s.log().slice(before).match(/Bad password attempt/g) ?? []).length).toBe(3);
  });
});

describe("an Ed25519 key in a non-canonical encoding (tests/helpers/transport-peer.py)", () => {
  // The neutral point as a user's key, encoded as y = p + 1 rather than y = 1: under it R = the
  // neutral point with S = 0 is a valid signature of any message. Dropbear 2026.94 refuses that
  // encoding (RFC 8032 §5.1.3); OpenSSL 3.0 (Node 20's) reduced y and took it.
  const le = (n: bigint): Buffer => {
    const b = Buffer.alloc(32);
    for (let i = 0; i < 32; i++, n >>= 8n) b[i] = Number(n & 0xffn);
    return b;
  };
  const str = (b: Buffer | string): Buffer => {
    const v = Buffer.from(b);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(v.length);
    return Buffer.concat([len, v]);
  };
  const PEER = fileURLToPath(new URL("./helpers/transport-peer.py", import.meta.url));

  itPyCryptography("is refused, as Dropbear 2026.94 refuses it", async () => {
    const key = Buffer.concat([str("ssh-ed25519"), str(le((1n << 255n) - 19n + 1n))]);
    const sig = Buffer.concat([str("ssh-ed25519"), str(Buffer.concat([le(1n), le(0n)]))]);
    // In its own -D directory, so the file's other tests keep their authorized_keys.
    const dir = join(home, "noncanon");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, uid, gid);
    const ak = join(dir, "authorized_keys");
    writeFileSync(ak, `ssh-ed25519 ${key.toString("base64")} noncanon\n`, { mode: 0o600 });
    chownSync(ak, uid, gid);
    const hk = join(work.dir, "hk_noncanon");
    ourKeygen(hk);
    const s = await startOurDropbear(["-r", hk, "-D", "~/noncanon"]);
    servers.push(s);
    const r = await run(PYTHON, [PEER, String(s.port), "pubkey-sig", USER, key.toString("hex"), sig.toString("hex")], { timeoutMs: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ auth: 51 });
    // The line was found: it is the signature that is refused.
    await expect.poll(() => s.log(), { timeout: 5000 }).toMatch(new RegExp(`Pubkey auth bad signature for '${USER}'`));
  });
});
