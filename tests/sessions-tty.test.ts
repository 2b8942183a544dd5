import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, itAsRoot } from "./helpers/peers.js";
import { opensshKeygen, OURS, scratch, startSshd, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Issue 8: our dbclient in a real terminal. tmux gives it a pty of a known size; we type into
// it with send-keys and read the screen with capture-pane. The remote end is OpenSSH's sshd with
// a throw-away user. Needs root (useradd), as CI has.

const USER = "dbtsclitty";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-clitty-");
const SOCK = `dbts-clitty-${process.pid}`;
let key = "";
let sshd: Server | null = null;

const itTty = (title: string, fn: () => Promise<void>): void => itAsRoot(["tmux", "sshd", "ssh-keygen"], title, fn);

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

function tmux(...args: string[]): string {
  return sh(PEERS.tmux, ["-L", SOCK, "-f", "/dev/null", ...args]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The pane's lines (history included, wrapped lines joined, blank lines at the end dropped). */
function screen(target: string): string[] {
  const lines = tmux("capture-pane", "-p", "-J", "-S", "-500", "-t", target).split("\n").map((l) => l.trimEnd());
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Resolves once the pane's terminal is in raw mode as dbclient sets it (no isig: the local
 * shell's line editing turns icanon off too, but keeps signals); bounded.
 */
async function paneRaw(target: string, ms = 15_000): Promise<void> {
  const tty = tmux("display-message", "-p", "-t", target, "#{pane_tty}").trim();
  const end = Date.now() + ms;
  while (!/(^|\s)-isig(\s|$)/.test(sh("stty", ["-a", "-F", tty]))) {
    if (Date.now() > end) throw new Error(`${tty} not in raw mode after ${ms} ms`);
    await sleep(50);
  }
}

/** Where the pane's last line is now: waitFor(..., mark) looks only from there on. */
function mark(target: string): number {
  return Math.max(0, screen(target).length - 1);
}

/** Wait (bounded) until the pane shows `re`, from line `from` on. */
async function waitFor(target: string, re: RegExp, from = 0, ms = 15_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const s = screen(target).slice(from).join("\n");
    if (re.test(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${re} in:\n${screen(target).join("\n")}`);
    await sleep(100);
  }
}

const LOCAL_PROMPT = /^L\$$/m;
const REMOTE_PROMPT = /^R\$$/m;

/** Type keys; each call is one write to the terminal, so one read for dbclient. */
async function keys(target: string, ...k: string[]): Promise<void> {
  tmux("send-keys", "-t", target, ...k);
  await sleep(250);
}

beforeAll(async () => {
  if (!isRoot) return;
  const { home, uid, gid } = addTestUser(USER);
  key = join(work.dir, "id_ed25519");
  opensshKeygen(key);
  authorizeKeys({ home, uid, gid }, `${key}.pub`);
  const d = join(work.dir, "sshd");
  mkdirSync(d, { recursive: true });
  sshd = await startSshd(d, ["PasswordAuthentication no", "PrintMotd no", "PrintLastLog no"]);
  // The remote prompt is "R$ ", so it is told apart from the local shell's.
  writeFileSync(join(home, ".profile"), "PS1='R$ '\n");
  chownSync(join(home, ".profile"), uid, gid);
}, 60_000);

afterAll(async () => {
  spawnSync(PEERS.tmux, ["-L", SOCK, "kill-server"], { stdio: "ignore" });
  await sshd?.stop();
  if (isRoot) removeTestUser(USER);
  work.cleanup();
});

let n = 0;
/**
 * A fresh tmux window (80x24) running a local sh whose prompt is "L$ ", with the terminal's
 * settings saved; then our dbclient started in it (its pid in a file) and logged in.
 */
async function start(): Promise<{ t: string; pidfile: string; before: string }> {
  const name = `w${n++}`;
  const before = join(work.dir, `${name}.before`);
  const pidfile = join(work.dir, `${name}.pid`);
  tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", `env PS1='L$ ' HOME=${work.dir} /bin/sh`);
  const t = `${name}:0`;
  await waitFor(t, LOCAL_PROMPT);
  await keys(t, `stty -g > ${before}`, "Enter");
  const cmd = `sh -c 'echo $$ > ${pidfile}; exec ${process.execPath} ${OURS.dbclient} -y -y -i ${key} -p ${sshd!.port} ${USER}@127.0.0.1'`;
  const m = mark(t);
  await keys(t, cmd, "Enter");
  await waitFor(t, REMOTE_PROMPT, m);
  return { t, pidfile, before: join(work.dir, `${name}.before`) };
}

/** Back at the local prompt: the terminal's settings must be the saved ones, icanon and echo on. */
async function expectSane(t: string, before: string): Promise<void> {
  const after = `${before}.after`;
  const m = mark(t);
  // Type only at the local prompt: keys typed before it are echoed first and the shell's answer
  // then shares the prompt's line.
  await waitFor(t, LOCAL_PROMPT, m);
  await keys(t, `stty -g > ${after}; stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo -e isig | tr '\\n' ' '; echo ":SANE"`, "Enter");
  await waitFor(t, /^isig icanon echo :SANE$/m, m);
  expect(existsSync(after)).toBe(true);
  expect(readFileSync(after, "utf8")).toBe(readFileSync(before, "utf8"));
}

describe("our dbclient in a terminal (tmux) -> OpenSSH sshd", () => {
  itTty("a typed command runs in the remote shell; resize shows in stty size; ~. disconnects and the terminal is sane", async () => {
    const { t, before } = await start();
    await keys(t, 'echo hel""lo', "Enter");
    await waitFor(t, /^hello$/m);
    await keys(t, "stty size", "Enter");
    await waitFor(t, /^24 80$/m);
    tmux("resize-window", "-t", t, "-x", "100", "-y", "30");
    // The new size reaches the remote pty on dbclient's next loop turn after SIGWINCH: ask
    // again until it shows (bounded), instead of guessing how long that takes.
    for (let i = 0; ; i++) {
      const m = mark(t);
      await keys(t, "stty size", "Enter");
      const seen = await waitFor(t, /^\d+ \d+$/m, m + 1);
      if (/^30 100$/m.test(seen)) break;
      if (i === 20) throw new Error(`the remote pty never saw the resize:\n${seen}`);
    }
    // The escape only counts right after a CR and when each byte is its own read.
    await keys(t, "Enter");
    await keys(t, "~");
    await keys(t, ".");
    await waitFor(t, /exited: Terminated/);
    await expectSane(t, before);
  });

  itTty("~. in the middle of a line, or after a CR but in one read, is passed through", async () => {
    const { t, before } = await start();
    // Key by key, but not after a CR.
    await keys(t, "echo a");
    await keys(t, "~");
    await keys(t, ".");
    await keys(t, "b", "Enter");
    await waitFor(t, /^a~\.b$/m);
    // After a CR, but both bytes in one write (a paste).
    await keys(t, "Enter");
    await keys(t, "echo c~.d", "Enter");
    await waitFor(t, /^c~\.d$/m);
    await keys(t, "Enter");
    await keys(t, "~.");
    await keys(t, "Enter");
    await keys(t, 'echo still""here', "Enter");
    await waitFor(t, /^stillhere$/m);
    const m = mark(t);
    await keys(t, "exit", "Enter");
    await waitFor(t, LOCAL_PROMPT, m + 1);
    await expectSane(t, before);
  });

  itTty("the remote shell's exit status is ours and the terminal is sane", async () => {
    const { t, before } = await start();
    const m = mark(t);
    await keys(t, "exit 7", "Enter");
    await waitFor(t, LOCAL_PROMPT, m + 1);
    await keys(t, "echo rc=$?", "Enter");
    await waitFor(t, /^rc=7$/m);
    await expectSane(t, before);
  });

  /** Send `sig` to dbclient: it must die of it (the shell sees `status`) with the terminal restored. */
  async function killedBy(sig: NodeJS.Signals, status: number): Promise<void> {
    const { t, pidfile, before } = await start();
    const pid = Number(readFileSync(pidfile, "utf8").trim());
    process.kill(pid, sig);
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    // Nothing is printed, as in C: the local prompt shares the remote prompt's line, so Enter
    // for a fresh one (an empty line leaves $? alone).
    await keys(t, "Enter");
    const m = mark(t);
    await keys(t, "echo rc=$?", "Enter");
    await waitFor(t, new RegExp(`^rc=${status}$`, "m"), m);
    await expectSane(t, before);
  }

  itTty("SIGTERM ends dbclient as it ends C's, by the signal (a shell sees 143), with the terminal restored", () => killedBy("SIGTERM", 143));

  // SIGQUIT is handled the same way; not tested here, as its death may leave a core file.
  itTty("SIGHUP (a kill, not a hang-up) restores the terminal as ssh does, then ends dbclient by the signal (C leaves it raw)", () => killedBy("SIGHUP", 129));

  itTty("a fatal error (the server's session process dies) restores the terminal", async () => {
    const { t, before } = await start();
    // The session's own sshd process runs as the test user; killing it drops the connection.
    const procs = sh("ps", ["-o", "pid=,args=", "-u", USER]).split("\n").filter((l) => /sshd: /.test(l));
    expect(procs.length).toBeGreaterThan(0);
    for (const l of procs) process.kill(Number(l.trim().split(/\s+/)[0]), "SIGKILL");
    await waitFor(t, /exited: Remote closed the connection/);
    await expectSane(t, before);
  });

  itTty("~B sends a break (RFC 4335) that sshd takes, and is not typed into the session", async () => {
    const { t, before } = await start();
    const logged = sshd!.log().length;
    await keys(t, "Enter");
    await keys(t, "~");
    await keys(t, "B");
    await expect.poll(() => sshd!.log().slice(logged), { timeout: 10_000 }).toMatch(/request break reply 0/);
    await keys(t, 'echo af""ter', "Enter");
    const seen = await waitFor(t, /^after$/m);
    expect(seen).toMatch(/^R\$ echo af""ter$/m);
    await keys(t, "exit", "Enter");
    await waitFor(t, LOCAL_PROMPT);
    await expectSane(t, before);
  });

  /** Resolves once process `pid` is stopped (bounded). */
  async function stopped(pid: number): Promise<void> {
    for (let i = 0; !/^State:\s+T/m.test(readFileSync(`/proc/${pid}/status`, "utf8")); i++) {
      if (i === 100) throw new Error(`${pid} never stopped`);
      await sleep(50);
    }
  }

  /** SIGTERM then SIGCONT, as the shell's `kill %1` of a stopped job: it must die, as C's does. */
  async function killStopped(pid: number): Promise<void> {
    // Dead, or a zombie the shell reaps at its next prompt.
    const alive = (): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
    process.kill(pid, "SIGTERM");
    process.kill(pid, "SIGCONT");
    for (let i = 0; i < 60 && alive(); i++) {
      await sleep(50);
    }
    // Before, it stopped again at once (SIGTTOU at its tcsetattr) until a fg.
    expect(alive()).toBe(false);
  }

  itTty("kill %1 ends dbclient stopped by ~^Z, or as a background job before raw mode, as C's, with the terminal sane", async () => {
    const { t, pidfile, before } = await start();
    await keys(t, "Enter");
    await keys(t, "~");
    await keys(t, "C-z");
    await waitFor(t, /Stopped/);
    await killStopped(Number(readFileSync(pidfile, "utf8").trim()));
    await expectSane(t, before);
    const bgpid = `${pidfile}.bg`;
    await keys(t, `sh -c 'echo $$ > ${bgpid}; exec ${process.execPath} ${OURS.dbclient} -y -y -i ${key} -p ${sshd!.port} ${USER}@127.0.0.1' &`, "Enter");
    await expect.poll(() => existsSync(bgpid) && readFileSync(bgpid, "utf8").endsWith("\n"), { timeout: 10_000 }).toBe(true);
    const pid = Number(readFileSync(bgpid, "utf8").trim());
    await stopped(pid);
    await killStopped(pid);
    // Its messages share the prompt's line: Enter for a fresh one.
    await keys(t, "Enter");
    await expectSane(t, before);
  });

  itTty("~^Z suspends with the terminal restored; fg makes it raw again and the session goes on", async () => {
    const { t, before } = await start();
    await keys(t, "Enter");
    await keys(t, "~");
    await keys(t, "C-z");
    await waitFor(t, /Stopped/);
    await expectSane(t, before);
    await keys(t, "fg", "Enter");
    // dbclient takes the terminal back into raw mode once it runs again.
    await paneRaw(t);
    await keys(t, 'echo back""again', "Enter");
    await waitFor(t, /^backagain$/m);
    const m = mark(t);
    await keys(t, "exit", "Enter");
    await waitFor(t, LOCAL_PROMPT, m + 1);
    await keys(t, "echo rc=$?", "Enter");
    await waitFor(t, /^rc=0$/m);
    await expectSane(t, before);
  });
});
