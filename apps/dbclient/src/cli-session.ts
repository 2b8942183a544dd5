import type { cli_runopts, runopts } from "@dropbear-ts/core";
import { LOG_INFO, dropbear_log, syslogLine, type DropbearExit } from "@dropbear-ts/dbutil";

/**
 * The client's log line: "<progname>: message" on stderr, and to syslog too with
 * -o UseSyslog=yes.
 * @dropbear cli-session.c cli_dropbear_log
 */
export function cli_dropbear_log(opts: runopts, cli_opts: cli_runopts, priority: number, msg: string): void {
  if (opts.usingsyslog) {
    syslogLine(priority, msg);
  }
  process.stderr.write(`${cli_opts.progname ?? "dbclient"}: ${msg}\n`);
}

/**
 * Log why the client is exiting. Only the "no session yet" form exists so far, as no session
 * can be running yet.
 * @dropbear cli-session.c cli_dropbear_exit
 */
export function cli_dropbear_exit(e: DropbearExit): void {
  // A blank line first so the message does not land after terminal output.
  process.stderr.write("\n");
  dropbear_log(LOG_INFO, `Exited: ${e.exitmsg}`);
}
