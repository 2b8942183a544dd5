import { closeSync, openSync, writeSync } from "node:fs";
import { ignoredSignalsEnv, launcherTunablesEnv, libcFunc } from "@dropbear-ts/dbutil";

// -f: Dropbear daemon()s once authentication succeeds. Node cannot fork a running session, so
// the foreground process starts a detached copy of itself at once and waits; the copy runs the
// whole session and, at the point where C forks, tells the foreground process (through fd 3)
// that it may leave. Until then the user sees the copy's prompts and errors as usual.

/** Set in the detached copy: the fd of the pipe to the waiting foreground process. */
const BG_ENV = "DBCLIENT_TS_BACKGROUND_FD";

/** True in the detached copy that runs a -f session. */
export function isBackgroundCopy(): boolean {
  return process.env[BG_ENV] !== undefined;
}

/**
 * In the foreground: run the session in a detached copy and resolve with the exit status this
 * process should have: 0 once the copy is authenticated, the copy's status if it ends first.
 */
export function runInBackground(): Promise<number> {
  // (node:child_process on demand, as for a proxy command: most runs start no process.)
  const child = process.getBuiltinModule("node:child_process").spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ["inherit", "inherit", "inherit", "pipe"],
    env: { ...process.env, ...ignoredSignalsEnv(), ...launcherTunablesEnv(), [BG_ENV]: "3" },
  });
  return new Promise((resolve) => {
    const pipe = child.stdio[3]!;
    pipe.on("data", () => {
      // Nothing of the copy may keep this process alive now.
      pipe.destroy();
      child.unref();
      resolve(0);
    });
    pipe.on("error", () => undefined);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/**
 * In the detached copy, once authenticated: stop reading the terminal (stdin becomes /dev/null,
 * as C leaves it before daemon()). @dropbear cli-session.c cli_sessionloop
 */
export function background_stdin(): void {
  // Put /dev/null under fd 0 itself (not just close it): the session channel reads fd 0, and
  // a closed fd 0 could be taken by the next open.
  const devnull = openSync("/dev/null", "r");
  libcFunc<(oldfd: number, newfd: number) => number>("int dup2(int oldfd, int newfd)")(devnull, 0);
  closeSync(devnull);
}

/**
 * In the detached copy: let the foreground process go (C's daemon() returning in the parent).
 * Called once the -L listeners are bound, not at C's daemon() point: C binds them microseconds
 * later, but our binds are asynchronous, and whoever ran `dbclient -f` expects the ports to
 * answer once it returns.
 */
export function background_done(): void {
  const fd = Number(process.env[BG_ENV]);
  try {
    writeSync(fd, "ok\n");
    closeSync(fd);
  } catch {
    // The foreground process is already gone: nothing waits for us.
  }
}
