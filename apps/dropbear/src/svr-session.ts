import type { runopts } from "@dropbear-ts/core";
import { LOG_INFO, dropbear_log, get_debug_trace, syslogLine, type DropbearExit } from "@dropbear-ts/dbutil";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * The server's log line: to syslog unless -E, and "[pid] Mon DD HH:MM:SS message" on stderr
 * with -E or while tracing (so traces carry the log lines too). Before syslog is open (errors in
 * the command line itself) the line goes to stderr, so it is never lost.
 * @dropbear svr-session.c svr_dropbear_log
 */
export function svr_dropbear_log(opts: runopts, priority: number, msg: string): void {
  const sent = opts.usingsyslog && syslogLine(priority, msg);
  if (!sent || get_debug_trace() > 0) {
    const d = new Date();
    const datestr = `${MONTHS[d.getMonth()]} ${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    process.stderr.write(`[${process.pid}] ${datestr} ${msg}\n`);
  }
}

/**
 * Log why the server is exiting. Only the "before any session" form exists so far, as no
 * session can be running yet.
 * @dropbear svr-session.c svr_dropbear_exit
 */
export function svr_dropbear_exit(e: DropbearExit): void {
  dropbear_log(LOG_INFO, `Early exit: ${e.exitmsg}`);
}
