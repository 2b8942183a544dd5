import { readFileSync, readSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { libcFunc } from "./libc.js";

// Signals a program's parent left ignored. Dropbear's programs install handlers only for the
// signals they use, so anything else their parent set to SIG_IGN (nohup's SIGHUP, SIGINT and
// SIGQUIT for a non-interactive shell's background job) stays ignored in them and in the
// commands they exec. Node resets every inherited SIG_IGN but SIGPIPE's and SIGXFSZ's before
// any JavaScript runs, so the bin scripts read the set from /proc first (their first line is sh)
// and pass it here in the environment; the program sets those signals back to SIG_IGN.

/** Where the bin scripts pass /proc/self/status's SigIgn (a hexadecimal mask, bit n-1 for signal n). */
export const SIGIGN_ENV = "DROPBEAR_TS_SIGIGN";

/**
 * The signals whose inherited SIG_IGN is kept. Not the others: Node needs SIGCHLD for its
 * children, and the job control signals belong to the shell. (SIGUSR1 is kept from Node's
 * inspector either way: nodesignals.ts.)
 */
const KEPT: readonly NodeJS.Signals[] = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1"];

/** SIG_DFL and SIG_IGN as glibc defines them, ((__sighandler_t) 0) and ((__sighandler_t) 1). */
export const SIG_DFL = 0;
export const SIG_IGN = 1;

/** SIG_ERR, signal()'s failure. */
export const SIG_ERR = -1;

/**
 * C's `signal(signum, handler)`, through the C library (Node has no such call): SIG_DFL, SIG_IGN
 * or a disposition it returned before. Returns the one it replaced, or SIG_ERR.
 */
export function setSignalDisposition(signum: number, handler: number): number {
  return libcFunc<(signum: number, handler: number) => number>("intptr_t signal(int signum, intptr_t handler)")(signum, handler);
}

/**
 * Whether keepIgnoredSignals set any signal back to SIG_IGN. If not, none of KEPT can be
 * ignored (Node reset them all at start), and ignoredSignals need not ask the kernel.
 */
let reignored = false;

/**
 * Take the inherited set out of the environment (so no child of ours sees it unless we pass it)
 * and ignore those signals again. dropbearMain calls it first, for every program.
 */
export function keepIgnoredSignals(): void {
  const hex = process.env[SIGIGN_ENV];
  delete process.env[SIGIGN_ENV];
  if (hex === undefined || !/^[0-9a-fA-F]{1,16}$/.test(hex)) return;
  const mask = BigInt(`0x${hex}`);
  const kept = KEPT.filter((s) => maskHas(mask, s));
  if (kept.length === 0) return;
  for (const s of kept) setSignalDisposition(osConstants.signals[s], SIG_IGN);
  reignored = true;
}

/**
 * Those of the kept signals that are ignored now: inherited ignored and given no handler since
 * (a `process.on` listener replaces SIG_IGN, as C's signal() does). What a child we start keeps
 * ignored, as a forked C child does through its exec. Read from the kernel: nothing else knows.
 */
export function ignoredSignals(): NodeJS.Signals[] {
  // Called on every dbclient start and every command spawned: no read when nothing was passed.
  if (!reignored) return [];
  let status = "";
  try {
    status = readFileSync("/proc/self/status", "latin1");
  } catch {
    // No /proc: the bins could not have passed anything either.
  }
  const m = /^SigIgn:\s*([0-9a-fA-F]+)$/m.exec(status);
  const mask = m === null ? 0n : BigInt(`0x${m[1]}`);
  return KEPT.filter((s) => maskHas(mask, s));
}

/** The environment entry that hands ignoredSignals() to another copy of our own program. */
export function ignoredSignalsEnv(): Record<string, string> {
  let mask = 0n;
  for (const s of ignoredSignals()) mask |= 1n << BigInt(osConstants.signals[s] - 1);
  return mask === 0n ? {} : { [SIGIGN_ENV]: mask.toString(16) };
}

function maskHas(mask: bigint, sig: NodeJS.Signals): boolean {
  return ((mask >> BigInt(osConstants.signals[sig] - 1)) & 1n) === 1n;
}

/** The signals a program may catch while a prompt waits for its user (see readInterruptibly). */
const PROMPT_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];

/** Room for a struct sigaction (152 bytes on Linux's 64-bit glibc ABIs), saved and put back whole. */
const SIGACTION_SIZE = 256;

type SigactionFn = (signum: number, act: Buffer | null, oldact: Buffer | null) => number;

/** A prompt signal's action as it was before it was changed for a moment, to be put back whole. */
interface HeldAction {
  s: NodeJS.Signals;
  signum: number;
  saved: Buffer;
}

/** Whether the program listens for a prompt signal: only those have libuv's action to set aside. */
function listened(s: NodeJS.Signals): boolean {
  return process.listenerCount(s) > 0;
}

/** Each listened prompt signal's action saved, then changed by `set`; put back by the caller (sigaction with `saved`). */
function holdListenedSignals(sigaction: SigactionFn, set: (signum: number) => void): HeldAction[] {
  return PROMPT_SIGNALS.filter(listened).map((s) => {
    const signum = osConstants.signals[s];
    const saved = Buffer.alloc(SIGACTION_SIZE);
    sigaction(signum, null, saved);
    set(signum);
    return { s, signum, saved };
  });
}

/** Inside readInterruptibly: whether one of its signals has come; null outside. */
let firedProbe: (() => boolean) | null = null;

/**
 * Inside readInterruptibly's `read`: whether one of its signals has come already. One that lands
 * between two system calls (after a write, before the read of the answer) interrupts neither: a
 * `read` of several calls, or one that waits in poll(2) slices, asks this to stop at once as a
 * single interrupted call does. False outside readInterruptibly.
 */
export function interruptRequested(): boolean {
  return firedProbe?.() ?? false;
}

/**
 * Run `read`, a blocking read of the user's answer at a prompt (getpass(3), a line from
 * /dev/tty), so that a signal the program has listeners for is acted on at once. Node runs a
 * listener only between loop turns, and libuv's handler (SA_RESTART) lets the read go on: ^C or
 * `kill` at "Do you want to continue connecting?" or a password prompt did nothing until the
 * user pressed Enter, where C's client, with no handler, dies at once. For the read each such
 * signal gets a one-shot handler that interrupts it (sysv_signal: no SA_RESTART, SIG_DFL again
 * once it fires; the handler is getpid, which does nothing). Then libuv's action is put back
 * exactly as it was, and a signal that came is handed to the listeners at once, as if it had
 * come between loop turns. getpass(3) puts echo back when its read is interrupted.
 */
export function readInterruptibly<T>(read: () => T): T {
  if (!PROMPT_SIGNALS.some(listened)) {
    return read();
  }
  let sigaction: SigactionFn;
  let sysv_signal: (signum: number, handler: number | bigint) => number | bigint;
  let noop: number | bigint;
  try {
    sigaction = libcFunc<SigactionFn>("int sigaction(int signum, const uint8_t *act, _Out_ uint8_t *oldact)");
    sysv_signal = libcFunc<(signum: number, handler: number | bigint) => number | bigint>("intptr_t sysv_signal(int signum, intptr_t handler)");
    // RTLD_DEFAULT is 0 on glibc.
    noop = libcFunc<(handle: number, name: string) => number | bigint>("intptr_t dlsym(intptr_t handle, const char *name)")(0, "getpid");
  } catch {
    // No FFI here (out of descriptors): the prompt still works, acting on a signal after the Enter.
    return read();
  }
  const armed = holdListenedSignals(sigaction, (signum) => sysv_signal(signum, noop));
  let fired: NodeJS.Signals | null = null;
  const outer = firedProbe;
  firedProbe = (): boolean => {
    for (const a of armed) {
      // Put back if it fired: a later one must interrupt a call too, not end us unawares.
      if (sysv_signal(a.signum, noop) !== noop && fired === null) {
        fired = a.s;
      }
    }
    return fired !== null;
  };
  try {
    return read();
  } finally {
    firedProbe = outer;
    for (const a of armed) {
      // Ours is gone (SIG_DFL) once it fired. Asked by replacing it with itself, since glibc
      // fills only part of a struct sigaction it hands back, so two cannot be compared whole.
      if (sysv_signal(a.signum, noop) !== noop && fired === null) {
        fired = a.s;
      }
      sigaction(a.signum, a.saved, null);
    }
    if (fired !== null) {
      process.emit(fired, fired);
    }
  }
}

/**
 * One line of the user's answer from fd (a terminal, or stdin), a byte at a time so nothing past
 * the newline is taken: the bytes, the newline included, at most `max`. Ends early at end of
 * file or an error (an interrupted read among them) and, inside readInterruptibly, before each
 * read once a signal has come: one landing between two reads interrupts neither, and the next
 * would wait for the user's Enter.
 */
export function readAnswerLine(fd: number, max: number): Buffer {
  const line = Buffer.alloc(max);
  let n = 0;
  while (n < max && !interruptRequested()) {
    let got = 0;
    try {
      got = readSync(fd, line, n, 1, null);
    } catch {
      break;
    }
    if (got <= 0) {
      break;
    }
    n++;
    if (line[n - 1] === 0x0a) {
      break;
    }
  }
  return line.subarray(0, n);
}

/**
 * Stop the process with `sig` (SIGTSTP, SIGTTOU: raise(3), which stops the calling thread before
 * it returns) with SIGINT, SIGTERM, SIGHUP and SIGQUIT at their default action meanwhile, as in a
 * C program with no handler for them: one sent while we are stopped ends us as we are continued
 * (the shell's `kill %1` sends SIGCONT after it). Node's listeners would only note it, to be acted
 * on once the loop turns again. Only for a process with nothing to put back on the way out (its
 * terminal in its own modes); signals ignored from our parent stay ignored.
 */
export function stopWithDefaultSignals(sig: number): void {
  const raise = libcFunc<(sig: number) => number>("int raise(int sig)");
  const sigaction = libcFunc<SigactionFn>("int sigaction(int signum, const uint8_t *act, _Out_ uint8_t *oldact)");
  const held = holdListenedSignals(sigaction, (signum) => setSignalDisposition(signum, SIG_DFL));
  try {
    raise(sig);
  } finally {
    for (const h of held) {
      sigaction(h.signum, h.saved, null);
    }
  }
}
