import { closeSync, openSync, writeSync } from "node:fs";
import { ignoredSignals, ignoredSignalsEnv, launcherTunablesEnv, libcFunc, setLogHandler } from "@dropbear-ts/dbutil";

// -f: Dropbear daemon()s once authentication succeeds. Node cannot fork a running session, so
// the foreground process starts a detached copy of itself at once and waits; the copy runs the
// whole session and, at the point where C forks, tells the foreground process (through fd 3)
// that it may leave. Until then the user sees the copy's prompts and errors as usual, and the
// signals a terminal sends this process (^C, ^\, a hangup) are passed on to the copy, which
// sits in a session of its own: as in C, where nothing has forked yet, they end the session.

/** Set in the detached copy: the fd of the pipe to the waiting foreground process. */
const BG_ENV = "DBCLIENT_TS_BACKGROUND_FD";

/** What the foreground process passes on to the copy until the copy is authenticated. */
const RELAYED_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP"];

/** True in the detached copy that runs a -f session. */
export function isBackgroundCopy(): boolean {
  return process.env[BG_ENV] !== undefined;
}

/**
 * In the detached copy: parse the command line without printing its warnings (an unknown option,
 * a key file that does not load); the foreground process parsed the same line and printed them.
 * A parse that ends the run still says why: its exit message is printed after this returns.
 */
export function parseQuietly(parse: () => void): void {
  const log = setLogHandler(() => undefined);
  const write = process.stderr.write;
  // C's getopts prints "WARNING: Ignoring unknown option" straight to stderr, and so does ours.
  process.stderr.write = () => true;
  try {
    parse();
  } finally {
    process.stderr.write = write;
    setLogHandler(log);
  }
}

/**
 * In the foreground: run the session in a detached copy and resolve with the exit status this
 * process should have: 0 once the copy is authenticated, the copy's status if it ends first (a
 * copy killed by a signal takes this process with it by the same signal).
 */
export function runInBackground(): Promise<number> {
  // (node:child_process on demand, as for a proxy command: most runs start no process.)
  const child = process.getBuiltinModule("node:child_process").spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ["inherit", "inherit", "inherit", "pipe"],
    env: { ...process.env, ...ignoredSignalsEnv(), ...launcherTunablesEnv(), [BG_ENV]: "3" },
  });
  // Those left ignored (nohup's SIGHUP) the copy ignores too.
  const ignored = ignoredSignals();
  const relayed = RELAYED_SIGNALS.filter((s) => !ignored.includes(s));
  const relay = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  const stopRelaying = (): void => {
    for (const s of relayed) process.removeListener(s, relay);
  };
  for (const s of relayed) process.on(s, relay);
  return new Promise((resolve) => {
    const pipe = child.stdio[3]!;
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
