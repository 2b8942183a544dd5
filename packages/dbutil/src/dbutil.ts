import { AsyncLocalStorage } from "node:async_hooks";
import { isUtf8 } from "node:buffer";
import { getrlimit, koffiLoaded, libcFunc, outOfResources, setrlimit, strerror, strerror_code } from "./libc.js";
import { closeSync, constants as fsConstants, fsyncSync, openSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { posix } from "node:path";
import { SpawnChild, cloexecPipe, spawnChild } from "./spawn.js";
import { keepIgnoredSignals } from "./sigign.js";
import { keepInheritedNofile } from "./nofile.js";
import { stdioStreamMade, takeSigusr1FromInspector, watchStdioErrors } from "./nodesignals.js";
import { restoreLauncherEnv } from "./tunables.js";

/** syslog priorities, as <syslog.h> numbers them (Dropbear passes them to `_dropbear_log`). */
export const LOG_EMERG = 0;
export const LOG_ALERT = 1;
export const LOG_CRIT = 2;
export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_NOTICE = 5;
export const LOG_INFO = 6;
export const LOG_DEBUG = 7;

export const EXIT_SUCCESS = 0;
export const EXIT_FAILURE = 1;

/**
 * Thrown by `dropbear_exit`/`dropbear_close` instead of C's `exit()`: the session root that
 * catches it runs cleanup and ends that session only, so one process can hold many sessions.
 */
export class DropbearExit extends Error {
  override readonly name = "DropbearExit";
  constructor(
    /** EXIT_SUCCESS for `dropbear_close`, EXIT_FAILURE for `dropbear_exit`. */
    readonly exitcode: number,
    /** The rendered message, without the "Exited: " prefix the generic handler adds. */
    readonly exitmsg: string,
    /** Beyond C: what kind of failure, where the raising site says (see ExitKind). */
    readonly kind?: ExitKind,
  ) {
    super(exitmsg);
  }
}

/**
 * Beyond C, which has only the message: the kind of a session's end, in a word a program can
 * test (the library's `SshError.code`), given where the failure is raised so that no one has to
 * read it back out of the message.
 * - EPROTOCOL: the peer broke the protocol (a bad packet, an unexpected message, a version we
 *   cannot speak): what an exit raised without a kind counts as.
 * - ECONNECT: the TCP connection could not be made.
 * - EHOSTKEY: the server's host key was not accepted (refused, unknown, mismatched, revoked, or
 *   its signature did not verify).
 * - EAUTH: authentication failed (no method left, a password refused, a bad PK_OK).
 * - EKEX: no algorithm in common with the peer.
 * - ECLOSED: the peer closed the connection, reset it or sent a disconnect.
 * - ETIMEOUT: a timeout of ours ended the session (idle, keepalive, before auth).
 * - EINTERNAL: a failed assertion: a bug of ours.
 */
export type ExitKind = "ECONNECT" | "EHOSTKEY" | "EAUTH" | "EKEX" | "EPROTOCOL" | "ECLOSED" | "ETIMEOUT" | "EINTERNAL";

/**
 * Stands for C's plain `exit(status)` after -h, -V or a help list: the program ends with that
 * status and the app root prints nothing more (a DropbearExit would add an "Exited:" line).
 */
export class QuietExit extends DropbearExit {
  constructor(exitcode: number) {
    super(exitcode, "");
  }
}

/** End the program with `status` and no further message, like C's exit(). */
export function exitQuietly(status: number): never {
  throw new QuietExit(status);
}

/** Abort the current session with a failure (`kind`: beyond C, see ExitKind). @dropbear dbutil.c dropbear_exit */
export function dropbear_exit(msg: string, kind?: ExitKind): never {
  throw new DropbearExit(EXIT_FAILURE, msg, kind);
}

/** End the current session normally (exit status 0; `kind`: beyond C, see ExitKind). @dropbear dbutil.c dropbear_close */
export function dropbear_close(msg: string, kind?: ExitKind): never {
  throw new DropbearExit(EXIT_SUCCESS, msg, kind);
}

/** Checked invariant; failing is a bug, reported like Dropbear's. @dropbear dbutil.c fail_assert */
export function dropbear_assert(cond: unknown, expr = "assertion"): asserts cond {
  if (!cond) {
    // The calling function's name where C gives its file and line: a stack frame's path would
    // tell the peer (to whom the exit message may go) where we are installed.
    const frame = new Error().stack?.split("\n")[2]?.trim() ?? "";
    const where = /^at (?:async )?([^\s(]+) \(/.exec(frame)?.[1] ?? "?";
    dropbear_exit(`Failed assertion (${where}): \`${expr}'`, "EINTERNAL");
  }
}

/**
 * What C's snprintf leaves of `s` in a buffer of `size` bytes: at most size - 1 bytes of its
 * UTF-8, cut before a character that would not fit whole (C cuts inside one).
 */
export function snprintf_str(s: string, size: number): string {
  if (s.length < size / 3 || Buffer.byteLength(s) < size) {
    return s;
  }
  const b = Buffer.from(s, "utf8");
  let n = size - 1;
  while (n > 0 && (b[n]! & 0xc0) === 0x80) {
    n--;
  }
  return b.toString("utf8", 0, n);
}

/** A log line as Dropbear's handlers format it, into `char printbuf[1024]`. */
export const LOG_LINE_SIZE = 1024;

/** Where log lines go: a function like Dropbear's `_dropbear_log` hook. */
export type LogHandler = (priority: number, msg: string) => void;

/** The default handler prints the line to stderr. @dropbear dbutil.c generic_dropbear_log */
const generic_dropbear_log: LogHandler = (_priority, msg) => {
  process.stderr.write(`${snprintf_str(msg, LOG_LINE_SIZE)}\n`);
};

let logHandler: LogHandler = generic_dropbear_log;

/**
 * Install the process's log handler (Dropbear's `_dropbear_log` pointer); the apps set the
 * server's or the client's. Returns the previous one so tests can restore it.
 */
export function setLogHandler(handler: LogHandler | null): LogHandler {
  const prev = logHandler;
  logHandler = handler ?? generic_dropbear_log;
  return prev;
}

/** The log handler of the session running in this async context (withLogHandler), if any. */
const contextLog = new AsyncLocalStorage<LogHandler>();

/**
 * Run `fn` with its own log handler: every dropbear_log made by it, and by whatever it starts
 * (promise continuations, timers, stream callbacks), goes there instead of the process's
 * handler. A library runs each session inside one, so sessions of one process log apart;
 * a line with no such context falls back to setLogHandler's.
 */
export function withLogHandler<T>(handler: LogHandler, fn: () => T): T {
  return contextLog.run(handler, fn);
}

/**
 * Run `fn` with its log lines and user messages (tellUser) dropped: for a call whose trouble
 * another call reports next (a key file checked for encryption and then read), so the user is
 * told once, or for files nobody named, whose trouble is not the user's.
 */
export function withoutMessages<T>(fn: () => T): T {
  return contextLog.run(() => {}, fn);
}

/**
 * Text C writes for its user (a server's banner, prompts' headings, key file errors), on stderr
 * or, where C printf()s it, stdout: there in the programs; a library session has no terminal,
 * so there it goes to the session's log handler instead, as one info line.
 */
export function tellUser(text: string, out: "stderr" | "stdout" = "stderr"): void {
  const handler = contextLog.getStore();
  if (handler !== undefined) {
    handler(LOG_INFO, text);
  } else {
    process[out].write(text);
  }
}

/**
 * How much of the messages a program wrote on stderr (tellUser, dropbear_log) may wait in
 * process.stderr before its session stops reading the peer (userOutputBacklogged).
 */
export const USER_OUTPUT_HOLD_BYTES = 64 * 1024;

/** Callers of userOutputBacklogged to wake once process.stderr has drained. */
const userOutputWaiters = new Set<{ raise(): void }>();

/**
 * Whether messages for the user are backed up in process.stderr past USER_OUTPUT_HOLD_BYTES,
 * a reader of its pipe having stopped: C's fprintf blocks there and its loop with it, where
 * Node queues every line in memory, so a server's banners (any number before authentication)
 * grew the client without bound and were lost at its exit. The session loop then stops
 * reading the transport until `waker` is raised, once the backlog is out. Never in a library
 * session (its messages go to its logger) or before the program has made process.stderr.
 */
export function userOutputBacklogged(waker: { raise(): void } | null): boolean {
  if (contextLog.getStore() !== undefined || !stdioStreamMade("stderr")) {
    return false;
  }
  const err = process.stderr;
  if (err.destroyed || err.writableLength <= USER_OUTPUT_HOLD_BYTES) {
    return false;
  }
  if (userOutputWaiters.size === 0) {
    const drained = (): void => {
      for (const ev of ["drain", "close"]) err.removeListener(ev, drained);
      const waiters = [...userOutputWaiters];
      userOutputWaiters.clear();
      for (const w of waiters) w.raise();
    };
    err.on("drain", drained);
    err.on("close", drained);
  }
  if (waker !== null) {
    userOutputWaiters.add(waker);
  }
  return true;
}

/** Messages still in process.stderr at an exit: out once it has drained (or is gone). */
function userOutputFlushed(): Promise<void> | null {
  if (!stdioStreamMade("stderr")) {
    return null;
  }
  const err = process.stderr;
  if (err.destroyed || err.writableLength === 0) {
    return null;
  }
  // An empty write's callback runs once everything queued before it is out, or with the error
  // that ends the stream. 'drain' would not do: Node emits it only after a write that found
  // the stream at its high-water mark, so a smaller backlog held the exit for its whole wait.
  return new Promise<void>((resolve) => err.write("", () => resolve()));
}

/** syslog(3) through libc, loaded on first use so programs that log to stderr never pay for it. */
interface Syslog {
  syslog(priority: number, fmt: string, type: string, msg: string): void;
}
let sys: Syslog | null = null;
// openlog(3) keeps the ident pointer: the bytes must outlive the call.
let syslogIdent: Buffer | null = null;

const LOG_PID = 0x01;
const LOG_AUTHPRIV = 10 << 3;

/** Open the syslog connection as Dropbear does: ident, LOG_PID, LOG_AUTHPRIV. @dropbear dbutil.c startsyslog */
export function startsyslog(ident: string): void {
  const openlog = libcFunc<(ident: Buffer, option: number, facility: number) => void>("void openlog(void *ident, int option, int facility)");
  const syslogFn = libcFunc<(priority: number, fmt: string, type: string, msg: string) => void>(
    "void syslog(int priority, const char *format, ...)",
  );
  syslogIdent = Buffer.from(`${ident}\0`, "latin1");
  openlog(syslogIdent, LOG_PID, LOG_AUTHPRIV);
  sys = { syslog: syslogFn };
}

/**
 * Send one line to syslog (the message is never used as a format). Returns false, sending
 * nothing, before startsyslog ran, so the caller can fall back to stderr.
 */
export function syslogLine(priority: number, msg: string): boolean {
  sys?.syslog(priority, "%s", "str", msg);
  return sys !== null;
}

/** Log a message at a syslog priority. @dropbear dbutil.c dropbear_log */
export function dropbear_log(priority: number, msg: string): void {
  (contextLog.getStore() ?? logHandler)(priority, msg);
}

/** Current value of `-v` counting (0 = off). Levels as debug.h: DEBUG1..3, TRACE 4, TRACE2 5. */
let debug_trace = 0;
/** The trace level a key tool's -v turns on: TRACE lines, not TRACE2's. @dropbear debug.h DROPBEAR_VERBOSE_LEVEL */
export const DROPBEAR_VERBOSE_LEVEL = 4;
let debug_start_time = -1;

export function set_debug_trace(level: number): void {
  debug_trace = level;
}

export function get_debug_trace(): number {
  return debug_trace;
}

/** Restart TRACE timestamps at first network activity if asked to. @dropbear dbutil.c debug_start_net */
export function debug_start_net(): void {
  if (process.env.DROPBEAR_DEBUG_NET_TIMESTAMP) {
    debug_start_time = nowSeconds();
    dropbear_trace4("Resetting Dropbear TRACE timestamps");
  }
}

/** Seconds on a monotonic clock to the microsecond, as C's gettimeofday gives them: only differences are printed. */
function nowSeconds(): number {
  const [sec, ns] = process.hrtime();
  return sec + ns / 1e9;
}

function time_since_start(): number {
  const now = nowSeconds();
  if (debug_start_time < 0) {
    debug_start_time = now;
    return 0;
  }
  return now - debug_start_time;
}

/**
 * Print one trace line as `TRACE<level> (<pid>) <secs>.<usecs>: msg` when `-v` was given often
 * enough. The message is a thunk so building it costs nothing when tracing is off.
 * @dropbear dbutil.c dropbear_tracelevel
 */
function dropbear_tracelevel(level: number, msg: string | (() => string)): void {
  if (debug_trace === 0 || debug_trace < level) {
    return;
  }
  const text = typeof msg === "function" ? msg() : msg;
  process.stderr.write(`TRACE${level} (${process.pid}) ${time_since_start().toFixed(6)}: ${text}\n`);
}

/** DEBUG1(): shown with -v. @dropbear dbutil.c dropbear_trace1 */
export function dropbear_trace1(msg: string | (() => string)): void {
  dropbear_tracelevel(1, msg);
}
/** DEBUG2(): shown with -vv. @dropbear dbutil.c dropbear_trace2 */
export function dropbear_trace2(msg: string | (() => string)): void {
  dropbear_tracelevel(2, msg);
}
/** DEBUG3(): shown with -vvv. @dropbear dbutil.c dropbear_trace3 */
export function dropbear_trace3(msg: string | (() => string)): void {
  dropbear_tracelevel(3, msg);
}
/** TRACE(): shown with -vvvv. @dropbear dbutil.c dropbear_trace4 */
export function dropbear_trace4(msg: string | (() => string)): void {
  dropbear_tracelevel(4, msg);
}
/** TRACE2(): shown with -vvvvv. @dropbear dbutil.c dropbear_trace5 */
export function dropbear_trace5(msg: string | (() => string)): void {
  dropbear_tracelevel(5, msg);
}

/** debug.h's DEBUG1() macro. */
export const DEBUG1 = dropbear_trace1;
/** debug.h's DEBUG2() macro. */
export const DEBUG2 = dropbear_trace2;
/** debug.h's DEBUG3() macro. */
export const DEBUG3 = dropbear_trace3;
/** debug.h's TRACE() macro: the level at which Dropbear's own TRACE lines appear. */
export const TRACE = dropbear_trace4;
/** debug.h's TRACE2() macro. */
export const TRACE2 = dropbear_trace5;

/** Overwrite secret bytes before they are dropped. @dropbear dbhelpers.c m_burn */
export function m_burn(data: Uint8Array, len: number = data.length): void {
  data.fill(0, 0, len);
}

/**
 * Compare n bytes in time that depends only on n; 0 means equal. Lengths shorter than n
 * count as a difference rather than reading past the end.
 * @dropbear dbutil.c constant_time_memcmp
 */
export function constant_time_memcmp(a: Uint8Array, b: Uint8Array, n: number): number {
  let c = a.length < n || b.length < n ? 1 : 0;
  for (let i = 0; i < n; i++) {
    c |= (a[i] ?? 0) ^ (b[i] ?? 0);
  }
  return c;
}

/**
 * Milliseconds (fractional) from a clock that never goes backwards; C fills a timespec. Not
 * performance.now(): that loads Node's whole perf_hooks (0.6 MB of a bare node's RSS), which
 * nothing else here needs. @dropbear dbutil.c gettime_wrapper
 */
export function gettime_wrapper(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Seconds from a clock that never goes backwards. @dropbear dbutil.c monotonic_now */
export function monotonic_now(): number {
  return Math.floor(gettime_wrapper() / 1000);
}

/** RLIMIT_CORE, as Linux numbers it. */
const RLIMIT_CORE = 4;

/**
 * Set the soft limit on core files to 0, so that a crash never writes the keys and passwords in
 * memory to disk (the hard limit stays, as C leaves it). Children inherit it. Failures are only
 * traced, as in C. @dropbear dbutil.c disallow_core
 */
export function disallow_core(): void {
  try {
    const lim = getrlimit(RLIMIT_CORE);
    if (lim === null) {
      TRACE("getrlimit(RLIMIT_CORE) failed");
    }
    // As C's zeroed struct: a failed getrlimit leaves the hard limit 0 too.
    if (!setrlimit(RLIMIT_CORE, { soft: 0n, hard: lim?.hard ?? 0n })) {
      TRACE("setrlimit(RLIMIT_CORE) failed");
    }
  } catch (e) {
    // No koffi (an unsupported platform): no limit can be set; nothing else depends on it.
    TRACE(() => `disallow_core: ${String(e)}`);
  }
}

const UINT_MAX = 0xffff_ffff;

/**
 * Parse a decimal unsigned int the way strtoul + Dropbear's checks accept it: optional leading
 * whitespace and sign, digits, nothing after. Returns null where Dropbear returns
 * DROPBEAR_FAILURE (a negative number wraps past UINT_MAX on LP64, so only "-0" survives).
 * @dropbear dbutil.c m_str_to_uint
 */
export function m_str_to_uint(str: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)$/.exec(str);
  if (m === null) {
    return null;
  }
  const digits = m[2].replace(/^0+(?=.)/, "");
  if (digits.length > 10) {
    return null;
  }
  const l = Number(digits);
  if (l > UINT_MAX || (m[1] === "-" && l !== 0)) {
    return null;
  }
  return l;
}

/**
 * Replace a leading "~/" with homedir/. A home directory given as bytes (a user's, which need
 * not be UTF-8) gives the path as bytes. @dropbear dbutil.c expand_homedir_path_home
 */
export function expand_homedir_path_home(inpath: string, homedir: string | null): string;
export function expand_homedir_path_home(inpath: string, homedir: Buffer): Buffer;
export function expand_homedir_path_home(inpath: string, homedir: string | Buffer | null): string | Buffer {
  if (inpath.startsWith("~/") && homedir !== null) {
    const rest = inpath.slice(2);
    return Buffer.isBuffer(homedir) ? Buffer.concat([homedir, Buffer.from(`/${rest}`, "utf8")]) : `${homedir}/${rest}`;
  }
  return Buffer.isBuffer(homedir) ? Buffer.from(inpath, "utf8") : inpath;
}

/** Expand "~/" from $HOME, else from the password database. @dropbear dbutil.c expand_homedir_path */
export function expand_homedir_path(inpath: string): string {
  let homedir = process.env.HOME ?? null;
  if (homedir === null) {
    try {
      homedir = userInfo().homedir;
    } catch {
      // No passwd entry for our uid: Dropbear then leaves the path as it is.
    }
  }
  return expand_homedir_path_home(inpath, homedir);
}

/** A command started by spawn_command: our ends of its stdin, stdout and stderr pipes, and its pid. */
export interface SpawnedCommand {
  /** Our end of the child's stdin (we write). */
  writefd: number;
  /** Our end of the child's stdout (we read). */
  readfd: number;
  /** Our end of the child's stderr, -1 unless asked for. */
  errfd: number;
  pid: number;
}

/**
 * fsync the directory holding `fn`, so a new name in it survives a power cut (else a host
 * key file can come back empty). Failures are only traced. @dropbear dbutil.c fsync_parent_dir
 */
export function fsync_parent_dir(fn: string): void {
  const dir = posix.dirname(fn);
  let fd: number;
  try {
    fd = openSync(fsPath(dir), fsConstants.O_RDONLY);
  } catch (err) {
    TRACE(`error opening directory ${dir} for fsync: ${strerror(err)}`);
    return;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    TRACE(`fsync of directory ${dir} failed: ${strerror(err)}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Printable ASCII only (plus newline and tab when allowed), up to any NUL: text from the
 * peer must not drive the terminal or forge log lines. @dropbear dbutil.c cleantext
 */
export function cleantext(dirtytext: Uint8Array, allow_whitespace: boolean): string {
  let out = "";
  for (const c of dirtytext) {
    if (c === 0) {
      break;
    }
    if ((c >= 0x20 && c <= 0x7e) || (allow_whitespace && (c === 0x0a || c === 0x09))) {
      out += String.fromCharCode(c);
    }
  }
  return out;
}

function closeAll(fds: number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // Already closed.
    }
  }
}

/**
 * Start a child with pipes for stdin, stdout and (if `want_errfd`) stderr. C forks and calls
 * exec_fn in the child after the dup2s; here the dup2s are the child's first file actions and
 * exec_fn runs in the parent, adding what else the child does (environment, directory) and
 * ending with run_command, which starts it and returns its pid (≤ 0 on failure). The pipes are
 * made close-on-exec, so only the child's 0-2 survive in it. Our ends are left blocking: the
 * caller hands them to the event loop, which makes them non-blocking (C's setnonblocking).
 * Returns null (DROPBEAR_FAILURE) if the pipes or the child could not be made.
 * @dropbear dbutil.c spawn_command
 */
export function spawn_command<T>(exec_fn: (user_data: T, child: SpawnChild) => number, exec_data: T, want_errfd: boolean): SpawnedCommand | null {
  const FDIN = 0;
  const FDOUT = 1;
  const opened: number[] = [];
  const infds = cloexecPipe();
  if (infds === null) {
    return null;
  }
  opened.push(...infds);
  const outfds = cloexecPipe();
  if (outfds === null) {
    closeAll(opened);
    return null;
  }
  opened.push(...outfds);
  let errfds: [number, number] | null = null;
  if (want_errfd) {
    errfds = cloexecPipe();
    if (errfds === null) {
      closeAll(opened);
      return null;
    }
    opened.push(...errfds);
  }

  // The child's side: redirect stdin/stdout/stderr (the pipes themselves are close-on-exec).
  const child = new SpawnChild();
  child.actions.push({ op: "dup2", fd: infds[FDIN], newfd: 0 });
  child.actions.push({ op: "dup2", fd: outfds[FDOUT], newfd: 1 });
  if (errfds !== null) {
    child.actions.push({ op: "dup2", fd: errfds[FDOUT], newfd: 2 });
    child.stderrfd = errfds[FDOUT];
  }
  let pid: number;
  try {
    pid = exec_fn(exec_data, child);
  } catch (e) {
    closeAll(opened);
    throw e;
  }
  // The parent's side: the child's ends are its own now.
  closeAll([infds[FDIN], outfds[FDOUT], ...(errfds !== null ? [errfds[FDOUT]] : [])]);
  if (pid <= 0) {
    closeAll([infds[FDOUT], outfds[FDIN], ...(errfds !== null ? [errfds[FDIN]] : [])]);
    return null;
  }
  return { writefd: infds[FDOUT], readfd: outfds[FDIN], errfd: errfds !== null ? errfds[FDIN] : -1, pid };
}

/**
 * Run a command with the user's shell and "-c", or a login shell ("-sh" for /bin/sh) when cmd
 * is null. Returns the child's pid, or ≤ 0 if it could not be started.
 * @dropbear dbutil.c run_shell_command
 */
export function run_shell_command(child: SpawnChild, cmd: Uint8Array | null, usershell: string | Uint8Array): number {
  // The shell's path as bytes (a user's need not be UTF-8); its base name after the last "/".
  const shellbytes = typeof usershell === "string" ? Buffer.from(usershell, "utf8") : Buffer.from(usershell);
  const baseshell = shellbytes.subarray(shellbytes.lastIndexOf(0x2f) + 1);
  let argv: (string | Uint8Array)[];
  if (cmd !== null) {
    argv = [baseshell, "-c", cmd];
  } else {
    // A login shell should be "-bash" for "/bin/bash" etc.
    argv = [Buffer.concat([Buffer.from("-"), baseshell])];
  }
  return run_command(child, usershell, argv);
}

/**
 * Exec argv0 with args in the child. C re-enables SIGPIPE and closes every fd above 2 before
 * execv; here those are the child's last file action (closefrom 3) and posix_spawn's signal
 * defaults. Returns the pid, or ≤ 0 (a negative errno) if the child could not be started.
 * @dropbear dbutil.c run_command
 */
export function run_command(child: SpawnChild, argv0: string | Uint8Array, args: readonly (string | Uint8Array)[]): number {
  child.actions.push({ op: "closefrom", fd: 3 });
  const argv = args.map((a) => (typeof a === "string" ? Buffer.from(a, "utf8") : a));
  return spawnChild(argv0, argv, child);
}

/** Log the exit reason as Dropbear's default exit handler does. @dropbear dbutil.c generic_dropbear_exit */
export function generic_dropbear_exit(e: DropbearExit): void {
  dropbear_log(LOG_INFO, `Exited: ${e.exitmsg}`);
}

/**
 * C's argv[0], as near as Node can tell: the base name of the script Node was given, which is
 * the bin script or a link to it (`ln -s dbclient ssh` makes it "ssh"). The directory the user
 * typed is not known: sh passes the path found on $PATH, not the name typed. A file with an
 * extension (`node dist/main.js`, the bundle itself) is not a command name: `progname` then.
 */
export function invokedName(progname: string, script: string | undefined = process.argv[1]): string {
  const name = script === undefined ? "" : posix.basename(script);
  return name !== "" && !name.includes(".") ? name : progname;
}

/**
 * Give this process `name` as its name in the kernel (/proc/self/comm, cut to 15 bytes), which
 * `ps`, `pgrep`, `pkill` and `killall` match: exec names a C program after its file, where ours
 * are all `node`. Dropbear's re-executed connection process sets its own the same way
 * (svr-main.c, prctl PR_SET_NAME). The command line is left alone (programArgBytes reads it),
 * so `pidof`, which matches its first word, still finds none of ours. Where /proc cannot be
 * written the name stays Node's.
 */
function nameProcess(name: string): void {
  try {
    writeFileSync("/proc/self/comm", name);
  } catch {
    // Only what ps shows.
  }
}

/** The kernel's bytes of process.argv.slice(2), once read; null where /proc does not give them. */
let programArgs: Buffer[] | null | undefined;

/**
 * The environment variable that hands a program's argument bytes to the copy of itself it
 * starts (runDetachedCopy): Node's spawn passes strings, so what was not UTF-8 reaches the
 * copy's command line as U+FFFD. Each argument in base64, comma-separated.
 */
const ARG_BYTES_ENV = "DROPBEAR_TS_ARG_BYTES";

/**
 * The byte strings a parent handed on in environment variable `name` (bytesListEnv), or null if
 * none: taken out of the environment, so that no command the program starts sees them.
 */
function takeBytesList(name: string): Buffer[] | null {
  const v = process.env[name];
  delete process.env[name];
  return v === undefined ? null : v.split(",").map((b) => Buffer.from(b, "base64"));
}

/** `list` as environment variable `name` for a copy of this program (takeBytesList): each in base64, comma-separated. */
function bytesListEnv(name: string, list: readonly Buffer[]): NodeJS.ProcessEnv {
  return { [name]: list.map((b) => b.toString("base64")).join(",") };
}

/** The bytes a parent passed, taken as this module loads. */
const passedArgBytes: Buffer[] | null = takeBytesList(ARG_BYTES_ENV);

/** /proc/self/cmdline cut at its NULs: node, its flags, the script and the arguments. */
function cmdlineArgs(): Buffer[] {
  return splitNul(readFileSync("/proc/self/cmdline"));
}

/** A /proc list of NUL-terminated strings (cmdline, environ) cut into its strings. */
function splitNul(list: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  for (let at = 0; at < list.length; ) {
    const end = list.indexOf(0, at);
    const stop = end < 0 ? list.length : end;
    parts.push(list.subarray(at, stop));
    at = stop + 1;
  }
  return parts;
}

/**
 * The bytes of the program's arguments as the kernel passed them. Node decodes process.argv as
 * UTF-8, putting U+FFFD for what is not, where C's char* keeps every byte (a file name in
 * Latin-1 in an rsync or scp command line). The tail of /proc/self/cmdline holds them (or the
 * parent's, passed as ARG_BYTES_ENV); null if neither gives the arguments Node decoded.
 */
function programArgBytes(): Buffer[] | null {
  if (programArgs === undefined) {
    programArgs = null;
    const want = process.argv.length - 2;
    try {
      const parts = passedArgBytes ?? cmdlineArgs();
      const tail = want > 0 ? parts.slice(-want) : [];
      if (tail.length === want && tail.every((b, k) => decodedAs(b, process.argv[k + 2]))) {
        programArgs = tail;
      }
    } catch {
      // No /proc: the decoded strings are all there is.
    }
  }
  return programArgs;
}

/**
 * The bytes of `argv[k]`: the kernel's when `argv` is this program's command line as
 * dropbearMain passes it (argv[0] its name), else the string's UTF-8.
 */
export function argBytes(argv: readonly string[], k: number): Buffer {
  const raw = programArgBytes();
  const arg = argv[k] ?? "";
  const mine = raw !== null && raw.length === argv.length - 1 && k >= 1 ? raw[k - 1] : undefined;
  return mine !== undefined && decodedAs(mine, arg) ? mine : Buffer.from(arg, "utf8");
}

/**
 * Whether Node gave `bytes` as the argument `arg`: decoded as UTF-8, or, for a parent's escaped
 * bytes (argsBytesEnv), with one U+FFFD for each byte that is not UTF-8.
 */
function decodedAs(bytes: Buffer, arg: string | undefined): boolean {
  return bytes.toString("utf8") === arg || textShown(bytesText(bytes)) === arg;
}

/**
 * The environment a copy of this program (same arguments, as strings, then `extra`) needs to
 * see the same argument bytes: empty when every argument is UTF-8, which the strings carry whole.
 */
export function argBytesEnv(extra: readonly string[] = []): NodeJS.ProcessEnv {
  const raw = programArgBytes();
  if (raw === null || raw.every((b, k) => b.equals(Buffer.from(process.argv[k + 2]!, "utf8")))) {
    return {};
  }
  return bytesListEnv(ARG_BYTES_ENV, [...raw, ...extra.map((a) => Buffer.from(a, "utf8"))]);
}

/**
 * The environment variable that hands the variables whose values are not UTF-8 to a copy of
 * this program (envBytesEnv): Node's spawn passes strings, so the copy's own environ holds
 * U+FFFD for those bytes. Each "name=value" entry in base64, comma-separated.
 */
const ENV_BYTES_ENV = "DROPBEAR_TS_ENV_BYTES";

/** The entries a parent passed, taken as this module loads. */
const passedEnvBytes: Buffer[] = takeBytesList(ENV_BYTES_ENV) ?? [];

/** Those entries and /proc/self/environ's, read once: the block a process starts with does not change. */
let startEntries: Buffer[] | null = null;

function startEnviron(): Buffer[] {
  if (startEntries === null) {
    try {
      startEntries = [...passedEnvBytes, ...splitNul(readFileSync("/proc/self/environ"))];
    } catch {
      // No /proc: what the parent passed, or the decoded string, is all there is.
      startEntries = passedEnvBytes;
    }
  }
  return startEntries;
}

/**
 * The bytes of environment variable `name` as the program was started with it, as C's getenv
 * gives them (Node decodes process.env as UTF-8, U+FFFD for what is not), or null if unset:
 * those a parent of ours passed (envBytesEnv), else /proc/self/environ's. The value Node holds
 * now wins where it is not what those decode to.
 */
export function envBytes(name: string): Buffer | null {
  const value = process.env[name];
  if (value === undefined) {
    return null;
  }
  if (value.includes("\ufffd")) {
    const key = Buffer.from(`${name}=`, "utf8");
    for (const entry of startEnviron()) {
      if (entry.subarray(0, key.length).equals(key) && decodedAs(entry.subarray(key.length), value)) {
        return entry.subarray(key.length);
      }
    }
  }
  return Buffer.from(value, "utf8");
}

/**
 * The environment a copy of this program started with process.env (as strings) needs to see
 * the bytes of the variables whose values are not UTF-8 (envBytes): empty when there are none.
 * dropbear's connection processes pass the daemon's environment on with -e, and LANG without
 * it, as C's re-executed child does from its environ.
 */
export function envBytesEnv(): NodeJS.ProcessEnv {
  const raw: Buffer[] = [];
  for (const [name, value] of Object.entries(process.env)) {
    const bytes = value?.includes("\ufffd") ? envBytes(name) : null;
    if (bytes !== null && !isUtf8(bytes)) {
      raw.push(Buffer.concat([Buffer.from(`${name}=`, "utf8"), bytes]));
    }
  }
  return raw.length === 0 ? {} : bytesListEnv(ENV_BYTES_ENV, raw);
}

/** The length of the well-formed UTF-8 character at `buf[at]`, or 0 if none starts there. */
function utf8CharLength(buf: Uint8Array, at: number): number {
  const c = buf[at]!;
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || at + n > buf.length) return 0;
  for (let k = 1; k < n; k++) {
    if ((buf[at + k]! & 0xc0) !== 0x80) return 0;
  }
  const c1 = buf[at + 1]!;
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
  if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 >= 0xa0) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 >= 0x90)) {
    return 0;
  }
  return n;
}

/**
 * Bytes as a string that keeps them all: UTF-8 decoded, and each byte that is not part of a
 * well-formed character as the lone surrogate U+DC80 + byte (Python's "surrogateescape").
 * textBytes gives the bytes back; printed as it is, each such byte shows as U+FFFD.
 */
export function bytesText(buf: Uint8Array): string {
  let out = "";
  let from = 0;
  for (let at = 0; at < buf.length; ) {
    const n = utf8CharLength(buf, at);
    if (n > 0) {
      at += n;
      continue;
    }
    out += Buffer.from(buf.subarray(from, at)).toString("utf8") + String.fromCharCode(0xdc00 + buf[at]!);
    at += 1;
    from = at;
  }
  return out + Buffer.from(buf.subarray(from)).toString("utf8");
}

/** A bytesText escape: U+DC80-U+DCFF not paired with a high surrogate. */
const LONE_ESCAPE = /[\udc80-\udcff]/u;

/** `text` as Node writes it out (spawn's arguments, a terminal): each bytesText escape as U+FFFD. */
export function textShown(text: string): string {
  return text.replace(/[\ud800-\udfff]/gu, "\ufffd");
}

/** The bytes a bytesText string stands for: its lone U+DC80-U+DCFF as bytes, the rest as UTF-8. */
export function textBytes(text: string): Buffer {
  if (!LONE_ESCAPE.test(text)) {
    return Buffer.from(text, "utf8");
  }
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = 0; at < text.length; at++) {
    const u = text.charCodeAt(at);
    if (u >= 0xd800 && u <= 0xdbff && at + 1 < text.length && (text.charCodeAt(at + 1) & 0xfc00) === 0xdc00) {
      at++; // a pair: one character, encoded with the rest
    } else if (u >= 0xdc80 && u <= 0xdcff) {
      parts.push(Buffer.from(text.slice(from, at), "utf8"), Buffer.of(u - 0xdc00));
      from = at + 1;
    }
  }
  parts.push(Buffer.from(text.slice(from), "utf8"));
  return Buffer.concat(parts);
}

/**
 * A sh statement setting variable `name` to exactly `bytes`, written in ASCII: Node's spawn
 * passes arguments as UTF-8 strings, so bytes that are not UTF-8 reach a shell as printf's octal
 * escapes ("x" keeps the trailing newlines that $(...) would strip).
 */
export function shAssignBytes(name: string, bytes: Uint8Array): string {
  return `${name}="$(printf '${printfEscapes(bytes)}'; echo x)"; ${name}="\${${name}%x}"`;
}

/** `bytes` as printf(1) format text that prints exactly them: an octal escape a byte, ASCII only. */
export function printfEscapes(bytes: Uint8Array): string {
  return Array.from(bytes, (c) => `\\${c.toString(8).padStart(3, "0")}`).join("");
}

/**
 * A file name as node:fs takes it: its bytes where it holds bytesText escapes (a path given in
 * Latin-1, which C opens as given), else the string itself.
 */
export function fsPath(text: string): string | Buffer {
  return LONE_ESCAPE.test(text) ? textBytes(text) : text;
}

/**
 * The working directory as bytesText, so that fsPath names it by its bytes: process.cwd()
 * decodes it as UTF-8, with U+FFFD for each byte that is not (a Latin-1 directory name), and a
 * path made from that names no file. Throws as process.cwd() does where it was removed.
 */
export function cwdText(): string {
  const cwd = process.cwd();
  let bytes: Buffer;
  try {
    bytes = readlinkSync("/proc/self/cwd", { encoding: "buffer" });
  } catch {
    return cwd;
  }
  return bytes.equals(Buffer.from(cwd, "utf8")) ? cwd : bytesText(bytes);
}

/**
 * `argv[k]` as bytesText of its bytes (argBytes): a name whose bytes are not UTF-8 (a Latin-1
 * user name) keeps them, for the places that send it on.
 */
export function argText(argv: readonly string[], k: number): string {
  const arg = argv[k] ?? "";
  const bytes = argBytes(argv, k);
  return arg.includes("\ufffd") ? bytesText(bytes) : arg;
}

/**
 * The environment that hands `args` (strings that may hold bytesText escapes) to a copy of this
 * program as their bytes, as argBytesEnv does for our own: Node's spawn would write each escape
 * as U+FFFD. Empty when no argument holds one.
 */
export function argsBytesEnv(args: readonly string[]): NodeJS.ProcessEnv {
  if (!args.some((a) => LONE_ESCAPE.test(a))) {
    return {};
  }
  return bytesListEnv(ARG_BYTES_ENV, args.map(textBytes));
}

/** Output that closed streams still hold for their readers, each settling once flushed or gone. */
const owedOutput = new Set<Promise<void>>();

/** How long a program that ends on an exit waits for owed output (oweOutput) before it goes. */
export const EXIT_FLUSH_MS = 2000;

/**
 * Output a closed stream still holds: C's close(2) leaves such bytes with the kernel, which
 * delivers them after the process has gone, where Node's would die with the process. A program
 * that ends on an exit waits for them, at most EXIT_FLUSH_MS. `flushed` must not reject.
 */
export function oweOutput(flushed: Promise<void>): void {
  owedOutput.add(flushed);
  void flushed.then(() => owedOutput.delete(flushed));
}

/** When an exit's waits for output end, set by the first of them (exitFlushMs). */
let exitFlushDeadline: number | null = null;

/**
 * What is left of EXIT_FLUSH_MS, counted from the first call: an exit's waits for output share
 * it. dbclient waits for its stdout and stderr streams and then for what their close leaves
 * owed; each taking EXIT_FLUSH_MS of its own made a reader that had stopped cost twice that.
 */
export function exitFlushMs(): number {
  const now = Date.now();
  exitFlushDeadline ??= now + EXIT_FLUSH_MS;
  return Math.max(0, exitFlushDeadline - now);
}

/** process.exit() once the owed output is out, or EXIT_FLUSH_MS (exitFlushMs) has passed. */
function exitOnceFlushed(): void {
  // The exit's own message (cli_dropbear_exit's reason) may still be in process.stderr, behind
  // a reader that is slow to take it: Node's process.exit() would drop it.
  const messages = userOutputFlushed();
  if (owedOutput.size === 0 && messages === null) {
    process.exit();
  }
  const timer = setTimeout(() => process.exit(), exitFlushMs());
  void Promise.all([...owedOutput, messages]).then(() => {
    clearTimeout(timer);
    process.exit();
  });
}

/** How long an exit may take from its 'exit' event before SIGALRM ends the process (armExitAlarm). */
export const EXIT_HANG_LIMIT_S = 10;

/**
 * Bound the exit itself. After the 'exit' event Node shuts its V8 platform down, joining V8's
 * worker threads, and that join can wait for ever (nodejs/node#64274, open; #64560 on 24.18): a
 * connection process of ours, its daemon gone, was once seen so for minutes under Node 24, every
 * thread waiting on a futex. An alarm set as the exit begins ends such a process by SIGALRM
 * (its default action: Node installs no handler); a normal exit is long over by then. Only where
 * koffi is loaded already, as it is in every process that has connected: loading it here would
 * slow each short run's exit.
 */
function armExitAlarm(): void {
  if (!koffiLoaded()) return;
  try {
    libcFunc<(seconds: number) => number>("unsigned int alarm(unsigned int seconds)")(EXIT_HANG_LIMIT_S);
  } catch {
    // An exit without its bound, as before.
  }
}

/**
 * Run a program's `main(argv)` and set the process exit status the way C's exit paths would:
 * a QuietExit is a plain exit(), a DropbearExit goes through `exitHandler` (the program's
 * `_dropbear_exit`), anything else is a bug in the port and is reported as such. A main that
 * returns a promise (a session loop) ends the process when it settles with an exit, so no
 * leftover socket or timer keeps it alive. argv[0] is the name the program was started by
 * (invokedName), which the process also takes as its name in `ps` (nameProcess). Signals the
 * parent left ignored are ignored again first, and a closed stdout or stderr and SIGUSR1 get
 * C's behaviour rather than Node's (nodesignals.ts).
 */
export function dropbearMain(
  progname: string,
  main: (argv: string[]) => number | Promise<number | void>,
  exitHandler: (e: DropbearExit) => void = generic_dropbear_exit,
): void {
  const name = invokedName(progname);
  nameProcess(name);
  const fail = (e: unknown): number => {
    if (e instanceof QuietExit) {
      return e.exitcode;
    }
    if (e instanceof DropbearExit) {
      exitHandler(e);
      return e.exitcode;
    }
    const shortage = outOfResources(e);
    if (shortage !== null) {
      // The process's descriptor or memory limit (a module loaded on first use cannot be
      // opened), not a bug: an exit, as C's failed open() or malloc() gives.
      const { code, syscall, path, message } = e as NodeJS.ErrnoException;
      const detail = code !== shortage ? ` (${message})` : syscall !== undefined && path !== undefined ? ` (${syscall} '${path}')` : "";
      const exit = new DropbearExit(EXIT_FAILURE, `${strerror_code(shortage)}${detail}`);
      exitHandler(exit);
      return exit.exitcode;
    }
    process.stderr.write(`${name}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  };
  keepIgnoredSignals();
  keepInheritedNofile();
  process.on("exit", armExitAlarm);
  takeSigusr1FromInspector();
  watchStdioErrors();
  restoreLauncherEnv();
  const argv = [name, ...process.argv.slice(2)];
  let r: number | Promise<number | void>;
  try {
    r = main(argv);
  } catch (e) {
    process.exitCode = fail(e);
    return;
  }
  if (typeof r === "number") {
    process.exitCode = r;
    return;
  }
  r.then(
    (code) => {
      if (typeof code === "number") process.exitCode = code;
    },
    (e: unknown) => {
      process.exitCode = fail(e);
      setImmediate(exitOnceFlushed);
    },
  );
}
