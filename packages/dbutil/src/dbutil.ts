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
  ) {
    super(exitmsg);
  }
}

/** Abort the current session with a failure. @dropbear dbutil.c dropbear_exit */
export function dropbear_exit(msg: string): never {
  throw new DropbearExit(EXIT_FAILURE, msg);
}

/** End the current session normally (exit status 0). @dropbear dbutil.c dropbear_close */
export function dropbear_close(msg: string): never {
  throw new DropbearExit(EXIT_SUCCESS, msg);
}

/** Checked invariant; failing is a bug, reported like Dropbear's. @dropbear dbutil.c fail_assert */
export function dropbear_assert(cond: unknown, expr = "assertion"): asserts cond {
  if (!cond) {
    const where = new Error().stack?.split("\n")[2]?.trim() ?? "?";
    dropbear_exit(`Failed assertion (${where}): \`${expr}'`);
  }
}

/** Where log lines go: a function like Dropbear's `_dropbear_log` hook. */
export type LogHandler = (priority: number, msg: string) => void;

/** The default handler prints the line to stderr. @dropbear dbutil.c generic_dropbear_log */
const generic_dropbear_log: LogHandler = (_priority, msg) => {
  process.stderr.write(`${msg}\n`);
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

/** Log a message at a syslog priority. @dropbear dbutil.c dropbear_log */
export function dropbear_log(priority: number, msg: string): void {
  logHandler(priority, msg);
}

/** Current value of `-v` counting (0 = off). Levels as debug.h: DEBUG1..3, TRACE 4, TRACE2 5. */
let debug_trace = 0;
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

function nowSeconds(): number {
  return Date.now() / 1000;
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

/** Seconds from a clock that never goes backwards. @dropbear dbutil.c monotonic_now */
export function monotonic_now(): number {
  return Number(process.hrtime.bigint() / 1_000_000_000n);
}
