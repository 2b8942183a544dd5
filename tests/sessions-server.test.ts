import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, PYTHON, itAsRoot } from "./helpers/peers.js";
import { exited, opensshKeygen, ourKeygen, scratch, sha256hex, startOurDropbear, terminate, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser, setTestUserHome, setTestUserShell } from "./helpers/users.js";

// Issue 8, server side: OpenSSH's ssh, sftp and scp against our dropbear's "session" channels
// with a throw-away system user: exit codes and signals, stdin/stdout/stderr byte for byte, a
// pty as controlling terminal, Dropbear's environment, forced commands, the MOTD, the login
// records `who` and `last` read, and requests that must fail cleanly. Needs root (useradd, and
// the connection process switching to the user), as CI has.

const USER = "dbtssrvsess";
const GROUP = "dbtssrvgrp";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-srvsess-");
let home = "";
let key = "";
let hostkey = "";
const BIG = randomBytes(5_000_000);
const BIG_SHA = sha256hex(BIG);
let bigLocal = "";
const servers: Server[] = [];
let madeUtmp = false;

const itSess = itAsRoot;

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}


beforeAll(async () => {
  if (!isRoot) return;
  const user = addTestUser(USER, { groups: [GROUP] });
  home = user.home;
  const { uid, gid } = user;
  key = join(work.dir, "id_ed25519");
  opensshKeygen(key, { comment: "srvsess" });
  authorizeKeys(user, `${key}.pub`);
  writeFileSync(join(home, "big.bin"), BIG);
  chownSync(join(home, "big.bin"), uid, gid);
  bigLocal = join(work.dir, "big.bin");
  writeFileSync(bigLocal, BIG);
  hostkey = join(work.dir, "hostkey");
  ourKeygen(hostkey);
  // pututxline() only writes an existing utmp; systemd-tmpfiles makes it at boot on a full
  // system, a container may lack it.
  if (!existsSync("/run/utmp")) {
    writeFileSync("/run/utmp", "");
    chmodSync("/run/utmp", 0o664);
    const utmpGid = Number(sh("getent", ["group", "utmp"]).split(":")[2]);
    chownSync("/run/utmp", 0, utmpGid);
    madeUtmp = true;
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (isRoot) {
    removeTestUser(USER, [GROUP]);
  }
  if (madeUtmp) rmSync("/run/utmp", { force: true });
  work.cleanup();
});

const started = new Map<string, Server>();
/** Our dropbear with these extra options, started once per option set. */
async function ours(...extra: string[]): Promise<Server> {
  const k = extra.join("\0");
  let s = started.get(k);
  if (s === undefined) {
    s = await startOurDropbear(["-r", hostkey, ...extra]);
    servers.push(s);
    started.set(k, s);
  }
  return s;
}

const SSH_OPTS = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"];

interface Ran {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/**
 * Run a client to completion, bounded. `input` is written to its stdin, which is closed at once
 * unless `holdStdin` (then only when it exits, for a shell that reads its commands from there).
 * `onOut` sees stdout as it comes and may write to stdin.
 */
async function runClient(
  cmd: string,
  args: string[],
  opts: { input?: Buffer | string; holdStdin?: boolean; timeoutMs?: number; onOut?: (all: string, write: (s: string) => void) => void } = {},
): Promise<Ran> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  const out: Buffer[] = [];
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out.push(d);
    opts.onOut?.(Buffer.concat(out).toString("latin1"), (s) => child.stdin.write(s));
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  child.stdin.on("error", () => undefined);
  if (opts.input !== undefined) child.stdin.write(opts.input);
  if (!opts.holdStdin) child.stdin.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const status = await exited(child);
  clearTimeout(timer);
  child.stdin.destroy();
  return { status, stdout: Buffer.concat(out), stderr: err, ms: performance.now() - t0 };
}

function ssh(s: Server, extra: string[], command: string | null, opts: Parameters<typeof runClient>[2] = {}): Promise<Ran> {
  return runClient(PEERS.ssh, [...SSH_OPTS, "-i", key, "-p", String(s.port), ...extra, `${USER}@127.0.0.1`, ...(command === null ? [] : [command])], opts);
}

describe("OpenSSH ssh -> our dropbear: commands", () => {
  itSess(["ssh"], "exit codes 0, 3 and 255 come back as ssh's own", async () => {
    const s = await ours();
    expect((await ssh(s, [], "true")).status).toBe(0);
    expect((await ssh(s, [], "exit 3")).status).toBe(3);
    expect((await ssh(s, [], "exit 255")).status).toBe(255);
  });

  itSess(["ssh"], "5 MB through cat, both ways, byte for byte", async () => {
    const s = await ours();
    const up = await ssh(s, [], "cat", { input: BIG, timeoutMs: 60_000 });
    expect(up.status).toBe(0);
    expect(up.stdout.length).toBe(BIG.length);
    expect(sha256hex(up.stdout)).toBe(BIG_SHA);
    const stored = await ssh(s, [], "cat > up.bin && sha256sum up.bin", { input: BIG, timeoutMs: 60_000 });
    expect(stored.stdout.toString().split(" ")[0]).toBe(BIG_SHA);
    const down = await ssh(s, [], "cat big.bin", { timeoutMs: 60_000 });
    expect(sha256hex(down.stdout)).toBe(BIG_SHA);
  }, 120_000);

  itSess(["ssh"], "stderr arrives apart from stdout", async () => {
    const s = await ours();
    const r = await ssh(s, [], "echo to-out; echo to-err >&2; echo more-out; exit 4");
    expect(r.status).toBe(4);
    expect(r.stdout.toString()).toBe("to-out\nmore-out\n");
    expect(r.stderr).toBe("to-err\n");
  });

  itSess(["ssh"], "sleep 10 & echo hello returns at once (Dropbear's test_bg_sleep)", async () => {
    const s = await ours();
    for (const redir of ["", " >&2"]) {
      const r = await ssh(s, [], `sleep 10 & echo hello${redir}`, { timeoutMs: 8_000 });
      expect(r.status).toBe(0);
      expect((redir === "" ? r.stdout.toString() : r.stderr).trim()).toBe("hello");
      expect(r.ms).toBeLessThan(5_000);
    }
  });

  itSess(["ssh"], "a signal death: ssh exits 255 and is told exit-signal", async () => {
    const s = await ours();
    const r = await ssh(s, ["-v"], "echo before; kill -SEGV $$");
    expect(r.status).toBe(255);
    expect(r.stdout.toString()).toBe("before\n");
    expect(r.stderr).toMatch(/rtype exit-signal/);
  });

  itSess(["ssh"], "the user's identity: id -un and every supplementary group", async () => {
    const s = await ours();
    const r = await ssh(s, [], "id -un; id -G");
    const [name, groups] = r.stdout.toString().trim().split("\n");
    expect(name).toBe(USER);
    const want = sh("id", ["-G", USER]).trim().split(" ").sort();
    expect(groups!.split(" ").sort()).toEqual(want);
    expect(want.length).toBeGreaterThan(1);
  });

  itSess(["ssh"], "Dropbear's environment: SSH_CONNECTION names both ends, the home directory is the cwd", async () => {
    const s = await ours();
    const before = s.log().length;
    const r = await ssh(s, [], 'echo "$SSH_CONNECTION|$SSH_CLIENT|$USER|$LOGNAME|$HOME|$SHELL|$PATH|$MAIL|${SSH_TTY-none}"; pwd');
    const [env, cwd] = r.stdout.toString().trim().split("\n");
    const clientPort = /Child connection from 127\.0\.0\.1:(\d+)/.exec(s.log().slice(before))![1];
    expect(env).toBe(`127.0.0.1 ${clientPort} 127.0.0.1 ${s.port}|127.0.0.1 ${clientPort} ${s.port}|${USER}|${USER}|${home}|/bin/sh|/usr/bin:/bin|/var/mail/${USER}|none`);
    expect(cwd).toBe(home);
  });

  itSess(["ssh"], "env: LANG and LC_* from SendEnv are accepted, anything else is not", async () => {
    const s = await ours();
    // The variables are set for this ssh run only.
    const env = spawnSync(PEERS.ssh, [...SSH_OPTS, "-i", key, "-p", String(s.port), "-o", "SendEnv=LC_DBTS LANG", "-o", "SetEnv=DBTS_EVIL=1", `${USER}@127.0.0.1`, 'echo "$LC_DBTS|$LANG|${DBTS_EVIL-unset}"'], {
      env: { ...process.env, LC_DBTS: "dbts-locale", LANG: "C.UTF-8" },
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(env.status).toBe(0);
    expect(env.stdout.trim()).toBe("dbts-locale|C.UTF-8|unset");
  });

  itSess(["ssh"], "-e and LANG pass the daemon's environment on byte for byte, also what is not UTF-8 (as C's environ)", async () => {
    // sh puts the Latin-1 bytes in the daemon's environment; Node's spawn of a connection
    // process could only pass them as U+FFFD.
    const latin1 = ["sh", "-c", `export DBTS_LATIN1="$(printf 'caf\\351')" LANG="$(printf 'fr_FR.\\351')"; exec "$@"`, "sh"];
    const s = await startOurDropbear(["-r", hostkey, "-e"], {}, latin1);
    servers.push(s);
    const r = await ssh(s, [], 'printf "%s|%s|%s" "$DBTS_LATIN1" "$LANG" "${DROPBEAR_TS_ENV_BYTES-unset}"');
    expect(r.stdout.toString("latin1")).toBe("caf\xe9|fr_FR.\xe9|unset");
  });
});

describe("OpenSSH ssh -> our dropbear: ptys", () => {
  itSess(["ssh"], "ssh -tt: the command has /dev/pts/N as its terminal and TERM/SSH_TTY set, even with stdin at EOF", async () => {
    const s = await ours();
    // The client's EOF comes at once: the output must still arrive (Dropbear 2026.94 closes the
    // pty on it and loses the output; see docs/deviations.md).
    const r = await ssh(s, ["-tt"], 'sleep 0.3; tty; echo "$TERM|$SSH_TTY"; ps -o tty= -p $$; grep SigIgn /proc/$$/status');
    expect(r.status).toBe(0);
    const lines = r.stdout.toString().split("\r\n");
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/);
    // TERM is whatever ssh found in its environment.
    expect(lines[1]).toMatch(new RegExp(`^[^|]*\\|${lines[0]}$`));
    expect(lines[2]).toBe(lines[0]!.slice(5));
    // Only SIGTTOU is ignored, as C's pty_make_controlling_tty leaves it through the exec.
    expect(lines[3]).toMatch(/^SigIgn:\s+0000000000200000$/);
  });

  itSess(["ssh", "script"], "ssh -tt from a terminal: its modes reach the pty, and a character it disables (sent as 255) stays disabled, as with sshd", async () => {
    const s = await ours();
    const q = (a: string): string => `'${a.replace(/'/g, "'\\''")}'`;
    const inner = [PEERS.ssh, ...SSH_OPTS, "-tt", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, "stty -a"].map(q).join(" ");
    // script's terminal has eol and eol2 disabled; intr and echoe are changed to be told apart.
    const r = await runClient(PEERS.script, ["-qec", `stty intr ^T -echoe; exec ${inner}`, "/dev/null"], { holdStdin: true });
    const out = r.stdout.toString();
    expect(out).toMatch(/intr = \^T;/);
    expect(out).toMatch(/ -echoe /);
    // Dropbear 2026.94 stores the 255 as is: "eol = M-^?; eol2 = M-^?".
    expect(out).toMatch(/eol = <undef>;\s+eol2 = <undef>;/);
  });

  itSess(["ssh"], "ssh -tt: 400 KB of output through the pty arrive whole (Dropbear's test_read_pty, bigger)", async () => {
    const s = await ours();
    const want = BIG.subarray(0, 300_000).toString("base64");
    for (let i = 0; i < 3; i++) {
      const r = await ssh(s, ["-tt"], "head -c 300000 big.bin | base64 -w0", { timeoutMs: 30_000 });
      expect(r.status).toBe(0);
      expect(r.stdout.length).toBe(want.length);
      expect(r.stdout.toString() === want).toBe(true);
    }
  });

  itSess(["ssh"], "a login shell on a pty shows the MOTD, and -m leaves it out", async () => {
    const motdFile = "/etc/motd";
    let made = false;
    if (!existsSync(motdFile) || statSync(motdFile).size === 0) {
      writeFileSync(motdFile, "dbts test message of the day\n");
      made = true;
    }
    try {
      const marker = readFileSync(motdFile, "latin1").split("\n").find((l) => l.trim() !== "")!.trim().slice(0, 40);
      const shell = async (server: Server): Promise<string> => {
        let sent = false;
        const r = await ssh(server, ["-tt"], null, {
          holdStdin: true,
          onOut: (all, write) => {
            // The shell is up once it prints its prompt ("$ "): then ask for a mark and leave.
            if (!sent && /\$ $/.test(all)) {
              sent = true;
              write("echo MARK-$((40+2)); exit 5\n");
            }
          },
        });
        expect(r.status).toBe(5);
        const out = r.stdout.toString("latin1");
        expect(out).toContain("MARK-42");
        return out;
      };
      expect(await shell(await ours())).toContain(marker);
      expect(await shell(await ours("-m"))).not.toContain(marker);
    } finally {
      if (made) rmSync(motdFile, { force: true });
    }
  });

  itSess(["ssh"], "who lists the user on its pts while a pty command runs, last shows it afterwards", async () => {
    const s = await ours();
    const run = ssh(s, ["-tt"], "tty; sleep 3", { holdStdin: true });
    let seen = "";
    for (let i = 0; i < 50 && seen === ""; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = sh("who", []).split("\n").find((l) => l.startsWith(`${USER} `)) ?? "";
    }
    const r = await run;
    expect(r.status).toBe(0);
    const tty = r.stdout.toString().split("\r\n")[0]!;
    expect(tty).toMatch(/^\/dev\/pts\/\d+$/);
    expect(seen).toMatch(new RegExp(`^${USER}\\s+${tty.slice(5)}\\s.*\\(127\\.0\\.0\\.1\\)`));
    // Logged out again, and in wtmp with the host.
    expect(sh("who", []).split("\n").some((l) => l.startsWith(`${USER} `) && l.includes(tty.slice(5)))).toBe(false);
    const last = sh("last", ["-w", USER]);
    expect(last).toMatch(new RegExp(`^${USER}\\s+${tty.slice(5)}\\s+127\\.0\\.0\\.1`, "m"));
  });

  itSess(["ssh"], "a pty command's first look at utmp finds its login, which C's child writes before its exec", async () => {
    const s = await ours();
    // A read lock on utmp holds up its writers (pututxline waits) but not `who`: a login written
    // only once the command has started is missing from what the command sees.
    const script = "import fcntl, time\nf = open('/run/utmp')\nfcntl.lockf(f, fcntl.LOCK_SH)\nprint('locked', flush=True)\ntime.sleep(1.5)\n";
    const locker = spawn(PYTHON, ["-c", script], { stdio: ["ignore", "pipe", "inherit"] });
    const lockerDone = exited(locker);
    await new Promise<void>((resolve) => {
      locker.stdout.once("data", () => resolve());
      locker.once("exit", () => resolve());
    });
    const r = await ssh(s, ["-tt"], "who; tty");
    expect(await lockerDone).toBe(0);
    expect(r.status).toBe(0);
    const lines = r.stdout.toString().split("\r\n");
    const tty = lines.find((l) => l.startsWith("/dev/pts/")) ?? "";
    expect(tty).not.toBe("");
    expect(lines.some((l) => new RegExp(`^${USER}\\s+${tty.slice(5)}\\s`).test(l))).toBe(true);
  });

  itSess(["ssh"], "a pty's number is not given to another login while its logout record waits to be written", async () => {
    const s = await ours();
    // Once the command has printed its tty, its login is written; then a read lock on utmp holds
    // its logout up, and a pty opened meanwhile must not get the same number: that login's utmp
    // entry (the same ut_id) would be overwritten by the late logout.
    const script = [
      "import fcntl, os, sys, time",
      "f = open('/run/utmp')",
      "sys.stdin.readline()",
      "fcntl.lockf(f, fcntl.LOCK_SH)",
      "print('locked', flush=True)",
      "sys.stdin.readline()",
      "m, sl = os.openpty()",
      "print(os.ttyname(sl), flush=True)",
    ].join("\n");
    const locker = spawn(PYTHON, ["-c", script], { stdio: ["pipe", "pipe", "inherit"] });
    const lockerDone = exited(locker);
    let said = "";
    const saying = (re: RegExp): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (re.test(said)) resolve();
        };
        locker.stdout.on("data", (d: Buffer) => {
          said += d.toString();
          check();
        });
        locker.once("exit", () => resolve());
        check();
      });
    let asked = false;
    const r = await ssh(s, ["-tt"], "tty; sleep 1", {
      holdStdin: true,
      onOut: (all) => {
        if (!asked && all.includes("\n")) {
          asked = true;
          locker.stdin.write("lock\n");
        }
      },
    });
    expect(r.status).toBe(0);
    await saying(/locked\n/);
    // The client is gone; the server's channel cleanup follows at once.
    await new Promise((resolve) => setTimeout(resolve, 300));
    locker.stdin.end("openpty\n");
    expect(await lockerDone).toBe(0);
    const tty = r.stdout.toString().split("\r\n")[0]!;
    expect(tty).toMatch(/^\/dev\/pts\/\d+$/);
    expect(said.split("\n")[1]).toMatch(/^\/dev\/pts\/\d+$/);
    expect(said.split("\n")[1]).not.toBe(tty);
  });
});

describe("OpenSSH ssh -> our dropbear: forced commands", () => {
  itSess(["ssh"], "-c replaces the command; SSH_ORIGINAL_COMMAND holds what was asked", async () => {
    const s = await ours("-c", 'echo "forced|$SSH_ORIGINAL_COMMAND"; exit 6');
    const r = await ssh(s, [], "echo asked for this");
    expect(r.status).toBe(6);
    expect(r.stdout.toString()).toBe("forced|echo asked for this\n");
    // A shell request is forced too, with an empty original command.
    const sh2 = await ssh(s, ["-T"], null);
    expect(sh2.stdout.toString()).toBe("forced|\n");
  });
});

describe("OpenSSH ssh -> our dropbear: a -c command that is not UTF-8", () => {
  itSess(["ssh"], "its bytes reach the shell as given (C passes argv's bytes), through the connection process", async () => {
    // Node cannot pass 0xe9 alone as an argument: sh's printf makes -c's value from F, with
    // "café" in Latin-1.
    const s = await startOurDropbear(["-r", hostkey], { F: "printf 'caf\\351|%%s' \"$SSH_ORIGINAL_COMMAND\"" }, ["/bin/sh", "-c", 'exec "$@" -c "$(printf "$F")"', "sh"]);
    servers.push(s);
    const r = await ssh(s, [], "asked");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toEqual(Buffer.concat([Buffer.from("caf"), Buffer.from([0xe9]), Buffer.from("|asked")]));
  });
});

describe("OpenSSH ssh -> our dropbear: authorized_keys command=", () => {
  itSess(["ssh"], "command= replaces the command; SSH_ORIGINAL_COMMAND holds what was asked", async () => {
    const s = await ours();
    const forcedKey = join(work.dir, "id_forced");
    opensshKeygen(forcedKey, { comment: "forced" });
    const ak = join(home, ".ssh", "authorized_keys");
    const before = readFileSync(ak, "utf8");
    writeFileSync(ak, `${before}command="echo key-forcé:$SSH_ORIGINAL_COMMAND" ${readFileSync(`${forcedKey}.pub`, "utf8")}`);
    try {
      const r = await runClient(PEERS.ssh, [...SSH_OPTS, "-i", forcedKey, "-p", String(s.port), `${USER}@127.0.0.1`, "id -un"]);
      expect(r.status).toBe(0);
      // Not ASCII: the option's bytes reach the shell as written.
      expect(r.stdout.toString()).toBe("key-forcé:id -un\n");
    } finally {
      writeFileSync(ak, before);
    }
  });
});

describe("OpenSSH ssh -> our dropbear: -I, -M and -K on the server", () => {
  itSess(["ssh"], "-I 1 ends a session that stays idle", async () => {
    const s = await ours("-I", "1");
    const r = await ssh(s, [], "sleep 30", { timeoutMs: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.ms).toBeLessThan(15_000);
  });

  itSess(["ssh"], "-M 2 ends a session that keeps talking", async () => {
    const s = await ours("-M", "2");
    const r = await ssh(s, [], "while true; do echo tick; sleep 0.2; done", { timeoutMs: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.stdout.toString()).toContain("tick");
    expect(r.ms).toBeLessThan(15_000);
  });

  itSess(["ssh"], "-K 1 sends keepalive requests the client answers, and the session goes on", async () => {
    const s = await ours("-K", "1");
    // LogLevel must come first: ssh keeps the first value it is given.
    const args = ["-o", "LogLevel=DEBUG1", ...SSH_OPTS, "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, "sleep 3; echo done"];
    const r = await runClient(PEERS.ssh, args, { timeoutMs: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toBe("done\n");
    // A channel request while a channel is open both ways, else (our stdin is at EOF) a global one.
    expect(r.stderr).toMatch(/rtype keepalive@openssh\.com (want_)?reply 1/);
  });
});

describe("sftp and scp through our dropbear", () => {
  itSess(["sftp", "sftp-server"], "sftp put and get round-trip a file byte for byte", async () => {
    const s = await ours();
    const back = join(work.dir, "sftp-back.bin");
    const batch = join(work.dir, "sftp-batch");
    writeFileSync(batch, `put ${bigLocal} sftp-up.bin\nget sftp-up.bin ${back}\n`);
    const r = await runClient(PEERS.sftp, [...SSH_OPTS, "-i", key, "-P", String(s.port), "-b", batch, `${USER}@127.0.0.1`], { timeoutMs: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(sha256hex(readFileSync(join(home, "sftp-up.bin")))).toBe(BIG_SHA);
    expect(sha256hex(readFileSync(back))).toBe(BIG_SHA);
  }, 90_000);

  for (const proto of [["-s"], ["-O"]] as const) {
    itSess(["scp", "sftp-server"], `scp ${proto[0] === "-O" ? "(legacy scp protocol)" : "(sftp protocol)"} both ways`, async () => {
      const s = await ours();
      const back = join(work.dir, `scp-back${proto[0]}.bin`);
      const up = await runClient(PEERS.scp, [...proto, ...SSH_OPTS, "-i", key, "-P", String(s.port), bigLocal, `${USER}@127.0.0.1:scp-up${proto[0]}.bin`], { timeoutMs: 60_000 });
      expect(up.status, up.stderr).toBe(0);
      const down = await runClient(PEERS.scp, [...proto, ...SSH_OPTS, "-i", key, "-P", String(s.port), `${USER}@127.0.0.1:scp-up${proto[0]}.bin`, back], { timeoutMs: 60_000 });
      expect(down.status, down.stderr).toBe(0);
      expect(sha256hex(readFileSync(back))).toBe(BIG_SHA);
    }, 90_000);
  }
});

describe("OpenSSH ssh -> our dropbear: a home directory that is not UTF-8", () => {
  itSess(["ssh"], "the key is found in it, and $HOME and the working directory keep its bytes, as in C", async () => {
    const name = "dbtssrvlatin";
    const user = addTestUser(name);
    // Latin-1 "é": the passwd entry's bytes, which no UTF-8 decoding gives back.
    const dir = Buffer.concat([Buffer.from(`${user.home}-latin`), Buffer.from([0xe9])]);
    const sub = (tail: string): Buffer => Buffer.concat([dir, Buffer.from(tail)]);
    try {
      mkdirSync(sub("/.ssh"), { recursive: true, mode: 0o700 });
      writeFileSync(sub("/.ssh/authorized_keys"), readFileSync(`${key}.pub`));
      for (const p of [dir, sub("/.ssh"), sub("/.ssh/authorized_keys")]) chownSync(p, user.uid, user.gid);
      setTestUserHome(name, dir);
      const s = await ours();
      const r = await runClient(PEERS.ssh, [...SSH_OPTS, "-i", key, "-p", String(s.port), `${name}@127.0.0.1`, 'pwd; printf %s "$HOME"']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.equals(Buffer.concat([dir, Buffer.from("\n"), dir]))).toBe(true);
    } finally {
      removeTestUser(name);
      // userdel -r removed the home passwd named; useradd's first one is left.
      for (const d of [dir, user.home]) rmSync(d, { recursive: true, force: true });
    }
  });
});

describe("OpenSSH ssh -> our dropbear: a login shell whose path is not UTF-8", () => {
  itSess(["ssh"], "is found in /etc/shells and started by its bytes, and $SHELL and $0 keep them, as in C", async () => {
    const name = "dbtssrvlatsh";
    const user = addTestUser(name);
    authorizeKeys(user, `${key}.pub`);
    // A copy of sh under a Latin-1 name ("é"), listed in /etc/shells as C's check wants.
    const shell = Buffer.concat([Buffer.from(`/tmp/dbts-sh-${process.pid}-`), Buffer.from([0xe9])]);
    const shells = readFileSync("/etc/shells");
    // Replaced whole by a rename: other test files' daemons read the file meanwhile, and must
    // never find it truncated (no shell would be valid).
    const replaceShells = (data: Buffer): void => {
      const tmp = `/etc/shells.dbts-${process.pid}`;
      writeFileSync(tmp, data, { mode: 0o644 });
      renameSync(tmp, "/etc/shells");
    };
    try {
      writeFileSync(shell, readFileSync("/bin/sh"), { mode: 0o755 });
      replaceShells(Buffer.concat([shells, shells.at(-1) === 0x0a ? Buffer.alloc(0) : Buffer.from("\n"), shell, Buffer.from("\n")]));
      setTestUserShell(name, shell);
      const s = await ours();
      const r = await runClient(PEERS.ssh, [...SSH_OPTS, "-i", key, "-p", String(s.port), `${name}@127.0.0.1`, 'printf "%s|%s" "$SHELL" "$0"']);
      expect(r.status, r.stderr).toBe(0);
      const base = shell.subarray(shell.lastIndexOf(0x2f) + 1);
      expect(r.stdout.equals(Buffer.concat([shell, Buffer.from("|"), base]))).toBe(true);
    } finally {
      replaceShells(shells);
      removeTestUser(name);
      rmSync(shell, { force: true });
    }
  });
});

describe("requests that must fail cleanly", () => {
  itSess(["ssh"], "an unknown subsystem fails, and the server goes on serving", async () => {
    const s = await ours();
    const r = await ssh(s, ["-s"], "nosuchsubsystem");
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/subsystem request failed/);
    expect((await ssh(s, [], "echo still here")).stdout.toString()).toBe("still here\n");
    expect(s.log()).not.toMatch(/internal error/);
  });

  itSess(["ssh"], "x11-req is refused (X11 forwarding is not built, as in Dropbear's default build); the command still runs", async () => {
    const s = await ours();
    const r = spawnSync(PEERS.ssh, [...SSH_OPTS.map((o) => (o === "LogLevel=ERROR" ? "LogLevel=INFO" : o)), "-X", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, "echo ran; echo ${DISPLAY-nodisplay}"], {
      env: { ...process.env, DISPLAY: "127.0.0.1:99", XAUTHORITY: "/dev/null" },
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("ran\nnodisplay\n");
    expect(r.stderr).toMatch(/X11 forwarding request failed/);
  });

  itSess(["ssh"], "several session channels on one connection run side by side", async () => {
    const s = await ours();
    const ctl = join(work.dir, "ctl");
    const master = spawn(PEERS.ssh, [...SSH_OPTS, "-i", key, "-p", String(s.port), "-M", "-S", ctl, "-N", `${USER}@127.0.0.1`], { stdio: "ignore" });
    try {
      for (let i = 0; i < 100 && !existsSync(ctl); i++) await new Promise((r) => setTimeout(r, 50));
      const one = (n: number): Promise<Ran> => runClient(PEERS.ssh, [...SSH_OPTS, "-S", ctl, `${USER}@127.0.0.1`, `sleep 0.5; echo chan-${n}; exit ${n}`]);
      const rs = await Promise.all([1, 2, 3, 4].map(one));
      rs.forEach((r, i) => {
        expect(r.status).toBe(i + 1);
        expect(r.stdout.toString()).toBe(`chan-${i + 1}\n`);
      });
    } finally {
      spawnSync(PEERS.ssh, ["-S", ctl, "-O", "exit", `${USER}@127.0.0.1`], { stdio: "ignore", timeout: 10_000 });
      await terminate(master);
    }
    expect(s.log()).not.toMatch(/internal error/);
  });
});
