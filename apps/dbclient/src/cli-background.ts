import { closeSync, openSync } from "node:fs";
import { libcFunc, setLogHandler } from "@dropbear-ts/dbutil";

// -f: Dropbear daemon()s once authenticated. Here the whole session runs in a detached copy
// from the start (dbutil's runDetachedCopy); what the copy does differently lives here.

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
