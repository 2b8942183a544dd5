import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, type PeerName, itAsRoot } from "./helpers/peers.js";
import { exited, opensshKeygen, OURS, scratch, type Server, startOurDropbearWithHostKey, startSshd } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Issue 8, client side: our dbclient running commands against OpenSSH's sshd and against our
// own dropbear, over loopback with a throw-away system user: exit codes, stdin/stdout/stderr
// byte for byte, a pty, sftp -S, scp -S, rsync -e and git, the idle/max-duration timeouts, and
// the command lines that must be refused before any connection. Needs root (useradd), as CI has.

const USER = "dbtsclisess";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-clisess-");
let home = "";
let uid = 0;
let gid = 0;
let key = "";
/** 5 MB of random bytes, also kept in the user's home for downloads. */
const BIG = randomBytes(5_000_000);
const BIG_SHA = createHash("sha256").update(BIG).digest("hex");
let bigLocal = "";
const servers: Server[] = [];

const itSess = itAsRoot;

beforeAll(async () => {
  if (!isRoot) return;
  ({ home, uid, gid } = addTestUser(USER));
  key = join(work.dir, "id_ed25519");
  opensshKeygen(key, { comment: "clisess" });
  authorizeKeys({ home, uid, gid }, `${key}.pub`);
  writeFileSync(join(home, "big.bin"), BIG);
  chownSync(join(home, "big.bin"), uid, gid);
  bigLocal = join(work.dir, "big.bin");
  writeFileSync(bigLocal, BIG);
  // sftp -S / scp -S run a program without arguments of ours: a wrapper adds them.
  writeFileSync(join(work.dir, "dbc"), `#!/bin/sh\nexec "${process.execPath}" "${OURS.dbclient}" -y -y -i "${key}" "$@"\n`, { mode: 0o755 });
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (isRoot) removeTestUser(USER);
  work.cleanup();
});

let sshd: Server | null = null;
let ours: Server | null = null;
const TARGETS: { name: string; peers: PeerName[]; start: () => Promise<Server> }[] = [
  {
    name: "OpenSSH sshd",
    peers: ["sshd", "ssh-keygen"],
    start: async () => {
      if (sshd === null) {
        const d = join(work.dir, "sshd");
        mkdirSync(d, { recursive: true });
        sshd = await startSshd(d, [`Subsystem sftp ${PEERS["sftp-server"]}`, "PasswordAuthentication no"]);
        servers.push(sshd);
      }
      return sshd;
    },
  },
  {
    name: "our dropbear",
    peers: ["ssh-keygen"],
    start: async () => {
      if (ours === null) {
        ours = await startOurDropbearWithHostKey(work.dir);
        servers.push(ours);
      }
      return ours;
    },
  },
];

interface BinResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/**
 * Run a program with stdin from a string/Buffer (a pipe), from a file (`stdinFile`), or from
 * /dev/null, collecting stdout as bytes; killed after timeoutMs.
 */
async function runBin(cmd: string, args: string[], o: { input?: Buffer | string; stdinFile?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<BinResult> {
  const t0 = Date.now();
  const fd = o.stdinFile !== undefined ? openSync(o.stdinFile, "r") : null;
  const child = spawn(cmd, args, {
    stdio: [fd ?? "pipe", "pipe", "pipe"],
    env: { ...process.env, HOME: work.dir, ...o.env },
  });
  if (fd !== null) closeSync(fd);
  const out: Buffer[] = [];
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => out.push(d));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  if (child.stdin) {
    child.stdin.on("error", () => undefined);
    child.stdin.end(o.input ?? "");
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 30_000);
  const status = await exited(child);
  clearTimeout(timer);
  return { status, stdout: Buffer.concat(out), stderr, ms: Date.now() - t0 };
}

function client(s: Server, extra: string[], cmd: string[], o: Parameters<typeof runBin>[2] = {}): Promise<BinResult> {
  return runBin(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), ...extra, `${USER}@127.0.0.1`, ...cmd], o);
}

/**
 * `dbclient -t … command` in a terminal of script(1)'s, whose stdin is at end of file; `setTerm`
 * is sh text run before it there (Node's spawn cannot pass an environment value that is not UTF-8).
 */
function inTerminal(s: Server, command: string, setTerm = ""): Promise<BinResult> {
  const cmdline = [process.execPath, OURS.dbclient, "-t", "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, command]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(" ");
  return runBin("/usr/bin/script", ["-qec", `${setTerm}exec ${cmdline}`, "/dev/null"], { env: { TERM: "xterm-256color" } });
}

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/**
 * `sh -c` text that runs its arguments with one more: a remote command holding the bytes
 * \377\376\351, which sh makes (Node's spawn takes strings only), printed back by od.
 */
const NON_UTF8_COMMAND = `exec "$@" "printf %s $(printf '\\377\\376\\351')-ok | od -An -tx1"`;

for (const target of TARGETS) {
  describe(`our dbclient -> ${target.name}`, () => {
    itSess(target.peers, "exit status 0, 3 and 255 become ours", async () => {
      const s = await target.start();
      for (const code of [0, 3, 255]) {
        const r = await client(s, [], [`exit ${code}`]);
        expect(r.status, r.stderr).toBe(code);
      }
    });

    itSess(target.peers, "stdout shared with the parent (a socket, as Node's spawn makes it): the parent's own output goes on after dbclient", async () => {
      // A megabyte is still being flushed as dbclient closes its copy of fd 1: that close must
      // not shut the socket down for the shell, whose echo would then die of SIGPIPE.
      const s = await target.start();
      const script = `"$@" 'head -c 1000000 /dev/zero'; echo "after $?"`;
      const r = await runBin("/bin/sh", ["-c", script, "sh", process.execPath, OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.length).toBe(1000000 + "after 0\n".length);
      expect(r.stdout.subarray(1000000).toString()).toBe("after 0\n");
    });

    itSess(target.peers, "stdout's pipe or socket is blocking again after dbclient, as C leaves it: the next writer to it meets no EAGAIN", async () => {
      // grep's fd 1 shares the file description dbclient wrote to: a pipe, then spawn's socket.
      const s = await target.start();
      const script = `{ "$@" 'echo x'; grep '^flags' /proc/self/fdinfo/1; } | cat; "$@" 'echo y'; grep '^flags' /proc/self/fdinfo/1`;
      const r = await runBin("/bin/sh", ["-c", script, "sh", process.execPath, OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`]);
      expect(r.status, r.stderr).toBe(0);
      const out = r.stdout.toString();
      const flags = [...out.matchAll(/^flags:\s*([0-7]+)$/gm)].map((m) => Number.parseInt(m[1]!, 8));
      expect(out, out).toMatch(/^x\nflags:\s*[0-7]+\ny\nflags:\s*[0-7]+\n$/);
      expect(flags.map((f) => f & 0o4000)).toEqual([0, 0]); // O_NONBLOCK
    });

    itSess(target.peers, "a command's bytes that are not UTF-8 reach the server unchanged, as C's char* does", async () => {
      const s = await target.start();
      const r = await runBin("/bin/sh", ["-c", NON_UTF8_COMMAND, "sh", process.execPath, OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.toString().trim()).toBe("ff fe e9 2d 6f 6b");
    });

    itSess(target.peers, "with -f the same bytes reach the server from the background copy", async () => {
      const s = await target.start();
      const child = spawn("/bin/sh", ["-c", NON_UTF8_COMMAND, "sh", process.execPath, OURS.dbclient, "-f", "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, HOME: work.dir },
      });
      const out: Buffer[] = [];
      child.stdout!.on("data", (d: Buffer) => out.push(d));
      // The copy that runs the command holds stdout until it ends, after the foreground has gone.
      const ended = once(child.stdout!, "end");
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      expect(await exited(child), stderr).toBe(0);
      await ended;
      expect(Buffer.concat(out).toString().trim()).toBe("ff fe e9 2d 6f 6b");
    });

    itSess(target.peers, "a stderr nobody reads loses dbclient's messages, not the session (SIGPIPE ignored, as C's)", async () => {
      const s = await target.start();
      // -y -y: "Caution, skipping hostkey check" is written after the reader has gone.
      const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, "exit 3"], {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, HOME: work.dir },
      });
      child.stderr!.destroy();
      expect(await exited(child)).toBe(3);
    });

    itSess(target.peers, "SIGUSR1 ends dbclient as it ends Dropbear's, and opens no Node inspector", async () => {
      const s = await target.start();
      const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, "echo up; sleep 10"], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, HOME: work.dir },
      });
      let err = "";
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
      await once(child.stdout!, "data");
      child.kill("SIGUSR1");
      const [, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
      expect(signal, err).toBe("SIGUSR1");
      expect(err).not.toMatch(/Debugger listening/);
    });

    itSess(target.peers, "a command killed by a signal exits 0, as Dropbear's dbclient (exit-signal is ignored)", async () => {
      const s = await target.start();
      const r = await client(s, [], ["kill -9 $$"]);
      expect(r.status, r.stderr).toBe(0);
    });

    itSess(target.peers, "SIGINT (Ctrl-C without a pty) ends dbclient by that signal, as it ends C's, so a shell loop stops", async () => {
      const s = await target.start();
      const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, "echo ready; sleep 30"], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, HOME: work.dir },
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      let out = "";
      await new Promise<void>((resolve) =>
        child.stdout!.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("ready")) resolve();
        }),
      );
      const t0 = Date.now();
      child.kill("SIGINT");
      const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
      clearTimeout(timer);
      expect({ code, signal }).toEqual({ code: null, signal: "SIGINT" });
      expect(Date.now() - t0).toBeLessThan(5_000);
    });

    itSess(target.peers, "stdout and stderr stay separate", async () => {
      const s = await target.start();
      const r = await client(s, [], ["echo out; echo err >&2; echo out2"]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.toString()).toBe("out\nout2\n");
      expect(r.stderr).toContain("err\n");
      expect(r.stderr).not.toContain("out");
    });

    itSess(target.peers, "stdout and stderr on one pipe (2>&1) read late: stderr comes after the stdout sent before it", async () => {
      const s = await target.start();
      const done = join(home, `ordered-${s.port}`);
      // About 1.9 MB of stdout, under our 2 MiB window: all of it waits in dbclient for the reader.
      // The sleep lets the server take the last of stdout from its pipe before stderr has anything:
      // a server reading both pipes in one turn (sshd) may send ERR ahead of stdout still in the pipe.
      const cmdline = [process.execPath, OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, `seq 1 300000; echo END; sleep 1; echo ERR >&2; touch ${done}`]
        .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
        .join(" ");
      const child = spawn("sh", ["-c", `exec ${cmdline} 2>&1`], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, HOME: work.dir } });
      child.stdout!.pause();
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        // Nobody reads until the command has written everything.
        await expect.poll(() => existsSync(done), { timeout: 30_000, interval: 100 }).toBe(true);
        const out: Buffer[] = [];
        child.stdout!.on("data", (d: Buffer) => out.push(d));
        child.stdout!.resume();
        expect(await exited(child)).toBe(0);
        const lines = Buffer.concat(out).toString().split("\n");
        expect(lines.indexOf("ERR")).toBe(lines.indexOf("END") + 1);
        expect(lines.indexOf("300000")).toBe(lines.indexOf("END") - 1);
      } finally {
        clearTimeout(timer);
        child.kill("SIGKILL");
      }
    });

    itSess(target.peers, "echo hi | dbclient host cat: stdin's EOF reaches the command", async () => {
      const s = await target.start();
      const r = await client(s, [], ["cat"], { input: "hi\n", timeoutMs: 20_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.toString()).toBe("hi\n");
    });

    itSess(target.peers, "5 MB through cat both ways intact (stdin a pipe, then a file)", async () => {
      const s = await target.start();
      const viaPipe = await client(s, [], ["cat"], { input: BIG, timeoutMs: 60_000 });
      expect(viaPipe.status, viaPipe.stderr).toBe(0);
      expect(viaPipe.stdout.length).toBe(BIG.length);
      expect(sha(viaPipe.stdout)).toBe(BIG_SHA);
      const viaFile = await client(s, [], ["cat"], { stdinFile: bigLocal, timeoutMs: 60_000 });
      expect(viaFile.status, viaFile.stderr).toBe(0);
      expect(sha(viaFile.stdout)).toBe(BIG_SHA);
    });

    itSess(target.peers, "stdin, stdout and stderr on regular files: every byte, and >> appends", async () => {
      const s = await target.start();
      const outPath = join(work.dir, `out-${s.port}.bin`);
      const errPath = join(work.dir, `err-${s.port}.txt`);
      writeFileSync(outPath, "kept\n");
      const fds = [openSync(bigLocal, "r"), openSync(outPath, "a"), openSync(errPath, "w")];
      const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, "cat; echo to-stderr >&2"], {
        stdio: fds,
        env: { ...process.env, HOME: work.dir },
      });
      for (const fd of fds) closeSync(fd);
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const status = await exited(child);
      clearTimeout(timer);
      const err = readFileSync(errPath, "utf8");
      expect(status, err).toBe(0);
      const out = readFileSync(outPath);
      expect(out.subarray(0, 5).toString()).toBe("kept\n");
      expect(out.length - 5).toBe(BIG.length);
      expect(sha(out.subarray(5))).toBe(BIG_SHA);
      expect(err).toContain("to-stderr\n");
    });

    itSess(target.peers, "5 MB upload hashed remotely, 5 MB download hashed locally", async () => {
      const s = await target.start();
      const up = await client(s, [], ["sha256sum"], { input: BIG, timeoutMs: 60_000 });
      expect(up.status, up.stderr).toBe(0);
      expect(up.stdout.toString().split(" ")[0]).toBe(BIG_SHA);
      const down = await client(s, [], ["cat big.bin"], { timeoutMs: 60_000 });
      expect(down.status, down.stderr).toBe(0);
      expect(sha(down.stdout)).toBe(BIG_SHA);
    });

    itSess(target.peers, "no pty for a command by default; -t gets one (run under script(1) for a terminal)", async () => {
      const s = await target.start();
      const plain = await client(s, [], ["tty"]);
      expect(plain.stdout.toString()).toMatch(/not a tty/);
      const r = await inTerminal(s, "tty; echo TERM=$TERM");
      expect(r.status, r.stderr + r.stdout.toString()).toBe(0);
      expect(r.stdout.toString()).toMatch(/\/dev\/pts\/\d+/);
      expect(r.stdout.toString()).toContain("TERM=xterm-256color");
    });

    itSess(target.peers, "-t: $TERM goes in the pty request as its bytes, as C's getenv gives them, also where they are not UTF-8", async () => {
      const s = await target.start();
      const r = await inTerminal(s, 'printf %s "$TERM" | od -An -tx1', "TERM=\"$(printf 'xterm-\\351')\" ");
      expect(r.status, r.stderr + r.stdout.toString()).toBe(0);
      // od's whole line: the terminal's echo of script's early ^D (^@, as the test below says)
      // comes before or after it.
      expect(r.stdout.toString()).toMatch(/ 78 74 65 72 6d 2d e9\r?\n/);
    });

    // script(1) with its stdin at end of file types ^D into the terminal at once, long before
    // dbclient goes raw. C's dbclient and OpenSSH's ssh read stdin only once raw, where the
    // pending ^D comes as a byte (NUL) that the remote pty echoes; ours once read it in
    // canonical mode, as the end of stdin (tinysshd then hangs up on the command).
    itSess(target.peers, "-t: a ^D typed ahead of the session reaches the remote terminal as a byte, not as end of file", async () => {
      const s = await target.start();
      const r = await inTerminal(s, "sleep 1; exit 7");
      expect(r.status, r.stderr + r.stdout.toString()).toBe(7);
      expect(r.stdout.toString()).toMatch(/\^@|\^D/);
    });

    itSess(target.peers, "-t without a terminal fails as Dropbear's does (Failed to set raw TTY mode)", async () => {
      const s = await target.start();
      const r = await client(s, ["-t"], ["tty"]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("Failed to set raw TTY mode");
    });

    // mosh --ssh=dbclient runs `dbclient -n -tt host -- mosh-server ...`: with -n stdin is
    // /dev/null, no terminal to make raw, and ssh -n -tt asks for the pty all the same.
    itSess(target.peers, "-n -t (mosh's ssh -n -tt): the pty is asked for, the command runs, no terminal error", async () => {
      const s = await target.start();
      const r = await client(s, ["-n", "-t", "-t"], ["tty; exit 4"]);
      expect(r.status, r.stderr).toBe(4);
      expect(r.stdout.toString()).toMatch(/\/dev\/pts\/\d+/);
      expect(r.stderr).not.toMatch(/Failed/);
    });

    itSess([...target.peers, "script"], "-n with no command on a terminal: no pty (as ssh -n), the shell reads end of input and exits", async () => {
      const s = await target.start();
      const cmdline = [process.execPath, OURS.dbclient, "-n", "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`].map((a) => `'${a}'`).join(" ");
      const r = await runBin(PEERS.script, ["-qec", cmdline, "/dev/null"], { timeoutMs: 10_000 });
      expect(r.status, r.stderr + r.stdout.toString()).toBe(0);
      expect(r.stdout.toString()).not.toMatch(/Failed to set raw TTY mode/);
    });

    itSess(target.peers, "-I 1 ends an idle `sleep 30` within seconds", async () => {
      const s = await target.start();
      const r = await client(s, ["-I", "1"], ["sleep 30"], { timeoutMs: 20_000 });
      expect(r.stderr).toContain("Idle timeout");
      expect(r.status).toBe(0);
      expect(r.ms).toBeLessThan(10_000);
    });

    itSess(target.peers, "-I does not end a session that keeps talking", async () => {
      const s = await target.start();
      // Output every 0.3 s for 3 s: idle time is counted in whole seconds (as Dropbear's
      // monotonic_now), so a gap of a full second can already read as 2 and end an -I 2 session.
      const r = await client(s, ["-I", "2"], ["for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.3; done"], { timeoutMs: 20_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.toString()).toBe("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
    });

    itSess(target.peers, "-M 2 ends `sleep 30` after about two seconds", async () => {
      const s = await target.start();
      const r = await client(s, ["-M", "2"], ["sleep 30"], { timeoutMs: 20_000 });
      expect(r.stderr).toContain("Max duration reached");
      expect(r.ms).toBeLessThan(10_000);
      // monotonic_now() counts whole seconds, as Dropbear's does: "2 s" is over once the
      // second count has moved on twice since the connection, which can take just over 1 s.
      expect(r.ms).toBeGreaterThanOrEqual(1_000);
    });

    itSess(target.peers, "-K 1 keeps a quiet session alive and it ends normally", async () => {
      const s = await target.start();
      const before = s.log().length;
      const r = await client(s, ["-K", "1"], ["sleep 3; echo done"], { timeoutMs: 20_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.toString()).toBe("done\n");
      if (target.name === "OpenSSH sshd") {
        // sshd logs each channel request at DEBUG1: our keepalives went out on the session channel.
        expect(s.log().slice(before)).toMatch(/keepalive@openssh\.com/);
      }
    });

    itSess(target.peers, "a stdout nobody reads holds back only the download: the upload goes on meanwhile", async () => {
      const s = await target.start();
      const upName = `up-${s.port}.bin`;
      const upPath = join(home, upName);
      // Download (cat big.bin) and upload (cat > up) at once, in one session.
      const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, `cat big.bin & cat > ${upName}; wait`], {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, HOME: work.dir },
      });
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdout!.pause(); // nobody reads our stdout for now
      child.stdin!.end(BIG);
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        // A blocking stdout write would stall the whole loop, stdin included: the upload must finish.
        await expect.poll(() => (existsSync(upPath) ? readFileSync(upPath).length : 0), { timeout: 30_000, interval: 200 }).toBe(BIG.length);
        const out: Buffer[] = [];
        child.stdout!.on("data", (d: Buffer) => out.push(d));
        child.stdout!.resume();
        const status = await exited(child);
        expect(status, stderr).toBe(0);
        expect(sha(Buffer.concat(out))).toBe(BIG_SHA);
        expect(sha(readFileSync(upPath))).toBe(BIG_SHA);
      } finally {
        clearTimeout(timer);
        child.kill("SIGKILL");
      }
    });

    itSess([...target.peers, "sftp"], "sftp -S with our dbclient: put, get, round trip", async () => {
      const s = await target.start();
      const got = join(work.dir, `sftp-got-${s.port}`);
      const batch = join(work.dir, `sftp-batch-${s.port}`);
      writeFileSync(batch, `put ${bigLocal} sftp-up.bin\nget sftp-up.bin ${got}\n`);
      const r = await runBin(PEERS.sftp, ["-S", join(work.dir, "dbc"), "-P", String(s.port), "-b", batch, `${USER}@127.0.0.1`], { timeoutMs: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(sha(readFileSync(got))).toBe(BIG_SHA);
      expect(sha(readFileSync(join(home, "sftp-up.bin")))).toBe(BIG_SHA);
    });

    for (const legacy of [false, true]) {
      itSess([...target.peers, "scp"], `scp -S with our dbclient both ways${legacy ? " (-O: the scp protocol)" : " (over sftp)"}`, async () => {
        const s = await target.start();
        const name = `scp-${legacy ? "O" : "s"}-${s.port}.bin`;
        const got = join(work.dir, `got-${name}`);
        const base = ["-S", join(work.dir, "dbc"), "-P", String(s.port), ...(legacy ? ["-O"] : [])];
        const up = await runBin(PEERS.scp, [...base, bigLocal, `${USER}@127.0.0.1:${name}`], { timeoutMs: 60_000 });
        expect(up.status, up.stderr).toBe(0);
        expect(sha(readFileSync(join(home, name)))).toBe(BIG_SHA);
        const down = await runBin(PEERS.scp, [...base, `${USER}@127.0.0.1:${name}`, got], { timeoutMs: 60_000 });
        expect(down.status, down.stderr).toBe(0);
        expect(sha(readFileSync(got))).toBe(BIG_SHA);
      });
    }

    itSess([...target.peers, "rsync"], "rsync -e dbclient: a tree up, a changed file's delta up, the tree back down; a failure's status", async () => {
      const s = await target.start();
      const src = join(work.dir, `rsync-src-${s.port}`);
      mkdirSync(join(src, "sub"), { recursive: true });
      writeFileSync(join(src, "big.bin"), BIG);
      for (let i = 0; i < 50; i++) writeFileSync(join(src, "sub", `f${i}`), `file ${i}\n`.repeat(i));
      symlinkSync("big.bin", join(src, "link"));
      const e = ["-e", `${join(work.dir, "dbc")} -p ${s.port}`];
      const remote = `${USER}@127.0.0.1:rsync-${s.port}/`;
      const up = await runBin(PEERS.rsync, ["-a", ...e, `${src}/`, remote], { timeoutMs: 60_000 });
      expect(up.status, up.stderr).toBe(0);
      const there = join(home, `rsync-${s.port}`);
      expect(sha(readFileSync(join(there, "big.bin")))).toBe(BIG_SHA);
      expect(readlinkSync(join(there, "link"))).toBe("big.bin");
      expect(readFileSync(join(there, "sub", "f49"), "utf8")).toBe("file 49\n".repeat(49));
      // A few bytes changed in the middle: rsync's delta algorithm, both ends talking at once.
      const changed = Buffer.from(BIG);
      changed.write("changed", 2_500_000);
      writeFileSync(join(src, "big.bin"), changed);
      // Same size: a new modification time, or rsync's quick check passes it over in the same second.
      const later = new Date(Date.now() + 60_000);
      utimesSync(join(src, "big.bin"), later, later);
      const delta = await runBin(PEERS.rsync, ["-a", "--stats", ...e, `${src}/`, remote], { timeoutMs: 60_000 });
      expect(delta.status, delta.stderr).toBe(0);
      expect(delta.stdout.toString()).toMatch(/Matched data: [1-9]/);
      expect(readFileSync(join(there, "big.bin")).equals(changed)).toBe(true);
      const back = join(work.dir, `rsync-back-${s.port}`);
      const down = await runBin(PEERS.rsync, ["-a", ...e, remote, `${back}/`], { timeoutMs: 60_000 });
      expect(down.status, down.stderr).toBe(0);
      expect(readFileSync(join(back, "big.bin")).equals(changed)).toBe(true);
      expect(readdirSync(join(back, "sub")).length).toBe(50);
      // A remote path that cannot be made: rsync's own error status comes back through dbclient.
      const bad = await runBin(PEERS.rsync, ["-a", ...e, `${src}/`, `${USER}@127.0.0.1:/proc/no/such/dir/`], { timeoutMs: 60_000 });
      expect(bad.status).not.toBe(0);
      expect(bad.status).not.toBe(255);
    });

    itSess([...target.peers, "git"], "git over GIT_SSH_COMMAND=dbclient: push to a bare repository, clone it back, ls-remote", async () => {
      const s = await target.start();
      const bare = `git-${s.port}.git`;
      const init = await client(s, [], ["git", "init", "-q", "--bare", bare]);
      expect(init.status, init.stderr).toBe(0);
      const repo = join(work.dir, `git-src-${s.port}`);
      const env = {
        GIT_SSH_COMMAND: `${join(work.dir, "dbc")} -p ${s.port}`,
        GIT_AUTHOR_NAME: "t",
        GIT_AUTHOR_EMAIL: "t@example.invalid",
        GIT_COMMITTER_NAME: "t",
        GIT_COMMITTER_EMAIL: "t@example.invalid",
      };
      const git = (args: string[], cwd?: string): Promise<BinResult> => runBin(PEERS.git, cwd === undefined ? args : ["-C", cwd, ...args], { env, timeoutMs: 60_000 });
      expect((await git(["init", "-q", "-b", "main", repo])).status).toBe(0);
      writeFileSync(join(repo, "big.bin"), BIG);
      writeFileSync(join(repo, "README"), "over dbclient\n");
      expect((await git(["add", "."], repo)).status).toBe(0);
      expect((await git(["commit", "-q", "-m", "first"], repo)).status).toBe(0);
      const url = `ssh://${USER}@127.0.0.1/~/${bare}`;
      const push = await git(["push", "-q", url, "main"], repo);
      expect(push.status, push.stderr).toBe(0);
      const ls = await git(["ls-remote", url]);
      expect(ls.status, ls.stderr).toBe(0);
      const head = (await git(["rev-parse", "HEAD"], repo)).stdout.toString().trim();
      expect(ls.stdout.toString()).toContain(`${head}\trefs/heads/main`);
      const clone = join(work.dir, `git-clone-${s.port}`);
      const cl = await git(["clone", "-q", "-b", "main", url, clone]);
      expect(cl.status, cl.stderr).toBe(0);
      expect(sha(readFileSync(join(clone, "big.bin")))).toBe(BIG_SHA);
      expect(readFileSync(join(clone, "README"), "utf8")).toBe("over dbclient\n");
    });
  });
}

describe("our dbclient's stdio on regular files", () => {
  /** The most threads `dbclient host 'echo hi; sleep 1'` had, sampled every 50 ms, with stdout on `outPath`. */
  async function peakThreads(s: Server, outPath: string): Promise<number> {
    const fds = [openSync("/dev/null", "r"), openSync(outPath, "w"), openSync("/dev/null", "w")];
    const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(s.port), `${USER}@127.0.0.1`, "echo hi; sleep 1"], {
      stdio: fds,
      env: { ...process.env, HOME: work.dir },
    });
    for (const fd of fds) closeSync(fd);
    let peak = 0;
    const sample = setInterval(() => {
      try {
        peak = Math.max(peak, readdirSync(`/proc/${child.pid}/task`).length);
      } catch {
        // gone
      }
    }, 50);
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const status = await exited(child);
    clearInterval(sample);
    clearTimeout(timer);
    expect(status).toBe(0);
    return peak;
  }

  itSess(["ssh-keygen"], "take no thread pool: no more threads than with stdout on /dev/null", async () => {
    const s = await TARGETS[1]!.start();
    const outPath = join(work.dir, "threads-out.txt");
    const withNull = await peakThreads(s, "/dev/null");
    const withFile = await peakThreads(s, outPath);
    expect(readFileSync(outPath, "utf8")).toBe("hi\n");
    expect(withFile).toBeLessThanOrEqual(withNull);
  });
});

describe("a session channel the server refuses", () => {
  itSess(["sshd", "ssh-keygen"], "dbclient says why and exits 1 (Dropbear's ends 0 without a word)", async () => {
    // sshd's MaxSessions 0 refuses every session channel, after authentication.
    const d = join(work.dir, "sshd-nosessions");
    mkdirSync(d, { recursive: true });
    const s = await startSshd(d, ["MaxSessions 0", "PasswordAuthentication no"]);
    servers.push(s);
    const r = await client(s, [], ["echo never"]);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toContain("Channel open failed (session): connect failed: open failed");
    expect(r.status).toBe(1);
  });
});

describe("the channel's close", () => {
  itSess(["sshd", "ssh-keygen"], "dbclient answers sshd's EOF and CLOSE, sent together, with its own CLOSE before it exits (RFC 4254 5.3)", async () => {
    const d = join(work.dir, "sshd-close");
    mkdirSync(d, { recursive: true });
    const s = await startSshd(d, ["PasswordAuthentication no"]);
    servers.push(s);
    for (let i = 0; i < 3; i++) {
      const r = await client(s, [], ["echo closed; exit 3"]);
      expect(r.stdout.toString()).toBe("closed\n");
      expect(r.status).toBe(3);
    }
    // sshd (at DEBUG1) frees the channel when the client's CLOSE comes, before the connection
    // ends; a client that exits without it leaves the free to sshd's cleanup, after "Connection closed".
    // From the first login: the helper's port probe before it is a connection closed too.
    const order = (): string[] | undefined => {
      const log = s.log();
      return log.slice(log.indexOf("Accepted publickey")).match(/channel 0: free|^Connection closed by [\d.]+ port \d+$/gm)?.map((l) => l.replace(/ by .*/, " by"));
    };
    // (Until sshd has logged the last connection's end; a wrong order never comes right.)
    await expect.poll(order, { timeout: 5000 }).toEqual(Array.from({ length: 3 }, () => ["channel 0: free", "Connection closed by"]).flat());
  });
});
