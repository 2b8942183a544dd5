import { constants as osConstants } from "node:os";
import { libcFunc } from "./libc.js";
import { SIG_DFL, ignoredSignals, setSignalDisposition } from "./sigign.js";

// Two signals Node handles unlike a C program, given back the C behaviour the programs expect.
//
// SIGPIPE: its default kills a program that writes to a pipe nobody reads (dropbearkey -y |
// head); dbclient and dropbear ignore SIGPIPE once they have read their options, so a failed
// write there is only lost, as fprintf's is. Node always ignores SIGPIPE and reports EPIPE as an
// 'error' event on the stream, which with no listener ends the program with a stack trace,
// whichever program it is.
//
// SIGUSR1: no Dropbear program handles it, so it ends them. Node instead starts its inspector
// on 127.0.0.1:9229, where anyone on the machine who connects can run code in the process: a
// client holding the user's keys, or a connection process holding the host key after it has
// become the user, who may signal it.

/**
 * Act on `name` as its default action does: the process ends by it (without koffi, it exits as a
 * shell reports that). Returns, leaving the default in place, where the kernel discards the
 * signal instead: in a PID namespace's first process (a container's `dropbear -F`), whose
 * default actions never apply, as C's program there carries on.
 */
function dieBySignal(name: NodeJS.Signals): void {
  const signum = osConstants.signals[name];
  try {
    setSignalDisposition(signum, SIG_DFL);
    // raise() delivers the signal before it returns: the process ends here, unless it is a
    // namespace's init, for which the kernel drops a signal left at its default.
    libcFunc<(sig: number) => number>("int raise(int sig)")(signum);
    return;
  } catch {
    // No koffi: the status a shell shows for a death by the signal.
  }
  process.exit(128 + signum);
}

/** Whether the program has set SIGPIPE to SIG_IGN (ignoreSigpipe). */
let sigpipeIgnored = false;

/** `signal(SIGPIPE, SIG_IGN)` as dbclient's and dropbear's mains make it: writes to a closed stdout or stderr fail quietly from now on. */
export function ignoreSigpipe(): void {
  sigpipeIgnored = true;
}

/**
 * Give stdout and stderr C's behaviour on a closed pipe (see above). Node makes the streams on
 * first use, which costs several milliseconds of start-up, so the listener goes on each stream
 * as it is made: `process.stdout` and `process.stderr` stay lazy getters. dropbearMain calls it
 * first, for every program.
 */
export function watchStdioErrors(): void {
  for (const name of ["stdout", "stderr"] as const) {
    const desc = Object.getOwnPropertyDescriptor(process, name);
    const get = desc?.get;
    if (desc === undefined || get === undefined || desc.configurable !== true) {
      // Not Node's lazy getter: the stream is there already.
      process[name].on("error", stdioError);
      stdioMade[name] = true;
      continue;
    }
    Object.defineProperty(process, name, {
      ...desc,
      get(): NodeJS.WriteStream {
        const stream = get.call(process) as NodeJS.WriteStream;
        if (!stdioMade[name]) {
          stdioMade[name] = true;
          stream.on("error", stdioError);
        }
        return stream;
      },
    });
  }
}

/** Which of process.stdout and process.stderr a program has made (watchStdioErrors). */
const stdioMade = { stdout: false, stderr: false };

/**
 * Whether the program has made process[name] (only known after watchStdioErrors): asking a
 * stream it has not made for its backlog would make it, and Node makes a pipe non-blocking then.
 */
export function stdioStreamMade(name: "stdout" | "stderr"): boolean {
  return stdioMade[name];
}

/** A stdout or stderr write failed: die by SIGPIPE where C would, else let the write be lost. */
function stdioError(e: NodeJS.ErrnoException): void {
  if (e.code === "EPIPE" && !sigpipeIgnored) {
    dieBySignal("SIGPIPE");
  }
}

/**
 * Take SIGUSR1 from Node's inspector (see above): a handler of our own replaces Node's, and ends
 * the program as the signal's default action does. Left alone when the parent had SIGUSR1
 * ignored (keepIgnoredSignals has ignored it again, and C's program would ignore it too).
 * dropbearMain calls it, after keepIgnoredSignals, for every program.
 */
export function takeSigusr1FromInspector(): void {
  if (!ignoredSignals().includes("SIGUSR1")) {
    process.on("SIGUSR1", () => dieBySignal("SIGUSR1"));
  }
}
