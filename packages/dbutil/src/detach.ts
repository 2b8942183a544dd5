import type { ChildProcess } from "node:child_process";
import { closeSync, writeSync } from "node:fs";
import { DropbearExit, EXIT_FAILURE, argBytesEnv, envBytesEnv } from "./dbutil.js";
import { setsid } from "./libc.js";
import { nodeStartRefused } from "./nproc.js";
import { ignoredSignals } from "./sigign.js";
import { launcherEnv } from "./tunables.js";

// daemon() for programs that cannot fork: Dropbear forks at the point where it goes to the
// background (dropbear once listening, dbclient -f once authenticated), and the parent exits 0;
// whatever failed before that point failed in the foreground, with its message and status.
// Node cannot fork a running program, so the foreground process starts a detached copy of
// itself at once and waits: the copy does the work and, at C's fork point, tells the foreground
// process (through a pipe, fd 3 unless that is one it keeps) that it may leave. If the copy
// ends first, the foreground process ends with its status. Until then the copy stays in the
// foreground process's session and process group, as C's one process does before daemon(): it
// can ask its user on /dev/tty (sshpass gives dbclient a terminal that way only), and the
// signals a terminal sends (^C, ^\, a hangup) end it, also passed on by the foreground process.
// At the fork point it leaves for a session of its own (daemon()'s setsid), before the
// foreground process goes and its terminal may hang up.

/** Set in the detached copy: the fd of its pipe to the waiting foreground process. */
const DETACHED_ENV = "DROPBEAR_TS_DETACHED_FD";

/**
 * The copy's pipe, taken out of the environment as this module loads: the programs and
 * commands the copy starts (a proxy command, which may be dbclient itself) are no copies.
 */
const detachedFd: number | null = (() => {
  const v = process.env[DETACHED_ENV];
  delete process.env[DETACHED_ENV];
  return v === undefined ? null : Number(v);
})();

/** The pipe until the copy has reported on it (its fd number may be reused once closed). */
let readyPipe: number | null = detachedFd;

/** What the foreground process passes on to the copy until the copy reports. */
const RELAYED_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP"];

/** True in the detached copy that does the work of a program gone to the background. */
export function isDetachedCopy(): boolean {
  return detachedFd !== null;
}

/** What each of the copy's fds 0-2 is: this process's own, or /dev/null. */
export type DetachedStdio = readonly ["inherit" | "ignore", "inherit" | "ignore", "inherit" | "ignore"];

/**
 * The copy's stdio: fds 0-2 as asked, each fd of `keep` (3 and up) at its own number, as a
 * forked process keeps them, and the report pipe at the first number left free. Node's spawn
 * gives a child only the fds its stdio names, so an fd the user handed us for the copy to use
 * (dbclient -J '&3') would otherwise be missing in it, or be the report pipe itself.
 */
function detachedStdio(stdio: DetachedStdio, keep: readonly number[]): { stdio: ("inherit" | "ignore" | "pipe" | number)[]; pipeFd: number } {
  let pipeFd = 3;
  while (keep.includes(pipeFd)) pipeFd++;
  const all: ("inherit" | "ignore" | "pipe" | number)[] = [...stdio];
  for (let fd = 3; fd <= Math.max(pipeFd, ...keep); fd++) {
    all.push(fd === pipeFd ? "pipe" : keep.includes(fd) ? fd : "ignore");
  }
  return { stdio: all, pipeFd };
}

/**
 * In the foreground: start the detached copy (the same node flags and arguments) and resolve
 * with the status this process should exit with: 0 once the copy reports (detachedCopyReady),
 * the copy's own status if it ends first; a copy killed by a passed-on signal takes this
 * process with it by the same signal. A copy that cannot be started ends the program with
 * `failure` and the reason, as C's failed daemon() does. The fds in `keep` (inherited ones
 * the copy needs, above 2) are the copy's at the same numbers.
 */
export function runDetachedCopy(stdio: DetachedStdio, failure: string, keep: readonly number[] = []): Promise<number> {
  // Those left ignored (nohup's SIGHUP) the copy ignores too.
  const ignored = ignoredSignals();
  const relayed = RELAYED_SIGNALS.filter((s) => !ignored.includes(s));
  // The relay is in place before the copy exists: a ^C the moment after it is started would
  // otherwise kill this process by default and leave the copy running on its own. A listener
  // runs from the event loop, so never before `child` below is set.
  const relay = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  const stopRelaying = (): void => {
    for (const s of relayed) process.removeListener(s, relay);
  };
  for (const s of relayed) process.on(s, relay);
  // C's daemon() failing (no fork: EAGAIN, ENOMEM): the program exits with its message.
  const startFailed = (e: Error): DropbearExit => {
    stopRelaying();
    return new DropbearExit(EXIT_FAILURE, `${failure}: ${e.message}`);
  };
  // A copy that the user's process limit would leave stuck in Node's start, before it could
  // report or fail, would hold this process for ever: refused as C's fork() is refused.
  const refused = nodeStartRefused();
  if (refused !== null) {
    throw startFailed(refused);
  }
  const copyStdio = detachedStdio(stdio, keep);
  let child: ChildProcess;
  try {
    // (node:child_process on demand, as for a proxy command: most runs start no process.)
    child = process.getBuiltinModule("node:child_process").spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: copyStdio.stdio,
      env: launcherEnv({ ...process.env, ...argBytesEnv(), ...envBytesEnv(), [DETACHED_ENV]: String(copyStdio.pipeFd) }),
    });
  } catch (e) {
    throw startFailed(e as Error);
  }
  return new Promise((resolve, reject) => {
    child.on("error", (e) => reject(startFailed(e)));
    // Out of descriptors (EMFILE, ENFILE), Node's spawn gives up before it makes the child's
    // stdio, leaving none, and reports the failure by the 'error' event above on the next tick.
    const pipe = (child.stdio as ChildProcess["stdio"] | undefined)?.[copyStdio.pipeFd];
    if (pipe === undefined || pipe === null) {
      return;
    }
    pipe.on("data", () => {
      stopRelaying();
      // Nothing of the copy may keep this process alive now.
      pipe.destroy();
      child.unref();
      resolve(0);
    });
    pipe.on("error", () => undefined);
    child.on("exit", (code, signal) => {
      stopRelaying();
      if (signal !== null && relayed.includes(signal)) {
        process.kill(process.pid, signal);
        return;
      }
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

/** In the detached copy, at C's fork point: let the foreground process go (daemon() returning in the parent). */
export function detachedCopyReady(): void {
  if (readyPipe === null) {
    return;
  }
  const fd = readyPipe;
  readyPipe = null;
  // daemon()'s setsid: no terminal of the foreground's to hang up on us once it has gone.
  try {
    setsid();
  } catch {
    // No FFI library (koffi cannot load): the copy stays in the terminal's session, where a
    // hangup would end it; everything else works.
  }
  try {
    writeSync(fd, "ok\n");
    closeSync(fd);
  } catch {
    // The foreground process is already gone: nothing waits for us.
  }
}
