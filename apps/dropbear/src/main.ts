// dropbear's entry point (svr-main.c main): parse the command line, load host keys, then serve
// one connection (-i, or a connection process the daemon started, with -2) or listen for many.
import { runopts, svr_runopts } from "@dropbear-ts/core";
import { disallow_core, dropbearMain, ignoreSigpipe, isDetachedCopy, runDetachedCopy, setLogHandler, startsyslog } from "@dropbear-ts/dbutil";
import { load_all_hostkeys, svr_getopts } from "@dropbear-ts/runopts";
import { type HeldLog, backgroundedCwd, connectionProgram, enterStartDir, main_inetd, main_noinetd, replayLog } from "./svr-main.js";
import { svr_dropbear_exit, svr_dropbear_log } from "./svr-session.js";

const opts = new runopts();
const svr_opts = new svr_runopts();
setLogHandler((priority, msg) => svr_dropbear_log(opts, priority, msg));

/**
 * Keep what is logged while `fn` runs; returns the lines, to be logged later. If `fn` throws,
 * they are logged at once, ahead of the exit message.
 */
function holdingLog(fn: () => void): HeldLog {
  const held: HeldLog = [];
  const handler = setLogHandler((priority, msg) => held.push([priority, msg]));
  try {
    fn();
  } catch (e) {
    setLogHandler(handler);
    replayLog(held);
    throw e;
  }
  setLogHandler(handler);
  return held;
}

async function main(argv: string[]): Promise<number | void> {
  // Resolved before anything else can change the working directory.
  const program = connectionProgram();
  enterStartDir();
  // A connection process (-2) is C's re-executed child, which reads its options and host keys
  // after the listener has logged "Child connection from": what they say (a missing banner
  // file, a forced command) waits for its connection (main_inetd), not for the spare's start.
  let held = holdingLog(() => svr_getopts(argv, opts, svr_opts));
  if (svr_opts.reexec_childpipe < 0) {
    // C's main does it first, in every process; a connection process has the daemon's limit
    // already, and loading the FFI library for it would only delay the spare's start.
    disallow_core();
    replayLog(held);
    held = [];
  }
  if (opts.usingsyslog) {
    startsyslog("dropbear");
  }
  // As C's commonsetup does, with its SIGINT and SIGTERM handlers.
  ignoreSigpipe();
  // daemon(): a detached copy of ourselves loads the host keys and listens, and this process
  // leaves once it does, or with its status if it cannot (no host keys, no port). As C's
  // daemon(0, closefds) leaves it: stdin and stdout /dev/null, stderr kept with -E (where the
  // log goes), /dev/null with syslog.
  if (svr_opts.forkbg && !svr_opts.inetdmode && svr_opts.reexec_childpipe < 0 && !isDetachedCopy()) {
    return runDetachedCopy(["ignore", "ignore", opts.usingsyslog ? "ignore" : "inherit"], "Failed to daemonize");
  }
  if (svr_opts.reexec_childpipe >= 0) {
    held.push(...holdingLog(() => load_all_hostkeys(opts, svr_opts)));
    backgroundedCwd(svr_opts);
  } else {
    load_all_hostkeys(opts, svr_opts);
  }
  if (svr_opts.inetdmode || svr_opts.reexec_childpipe >= 0) {
    await main_inetd(opts, svr_opts, held);
  }
  await main_noinetd(opts, svr_opts, program);
}

dropbearMain("dropbear", main, svr_dropbear_exit);
