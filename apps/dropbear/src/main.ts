// dropbear's entry point (svr-main.c main): parse the command line, load host keys, then serve
// one connection (-i, or a connection process the daemon started, with -2) or listen for many.
import { runopts, svr_runopts } from "@dropbear-ts/core";
import { dropbearMain, ignoredSignalsEnv, launcherTunablesEnv, setLogHandler, startsyslog } from "@dropbear-ts/dbutil";
import { load_all_hostkeys, svr_getopts } from "@dropbear-ts/runopts";
import { connectionProgram, main_inetd, main_noinetd } from "./svr-main.js";
import { svr_dropbear_exit, svr_dropbear_log } from "./svr-session.js";

/** Marks the background copy made for daemon(): it must not background itself again. */
const DAEMON_ENV = "DROPBEAR_TS_DAEMONIZED";

const opts = new runopts();
const svr_opts = new svr_runopts();
setLogHandler((priority, msg) => svr_dropbear_log(opts, priority, msg));

async function main(argv: string[]): Promise<void> {
  // The mark is for this process only: not for its connection processes and users' sessions.
  const daemonized = process.env[DAEMON_ENV] !== undefined;
  delete process.env[DAEMON_ENV];
  // Resolved before anything else can change the working directory.
  const program = connectionProgram();
  svr_getopts(argv, opts, svr_opts);
  if (opts.usingsyslog) {
    startsyslog("dropbear");
  }
  // daemon(): a detached copy of ourselves does the work; this process just leaves.
  if (svr_opts.forkbg && !svr_opts.inetdmode && svr_opts.reexec_childpipe < 0 && !daemonized) {
    // (node:child_process on demand: see ConnProcs.start in svr-main.ts.)
    const child = process.getBuiltinModule("node:child_process").spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: "ignore",
      env: { ...process.env, ...ignoredSignalsEnv(), ...launcherTunablesEnv(), [DAEMON_ENV]: "1" },
    });
    child.unref();
    return;
  }
  load_all_hostkeys(opts, svr_opts);
  if (svr_opts.inetdmode || svr_opts.reexec_childpipe >= 0) {
    await main_inetd(opts, svr_opts);
  }
  await main_noinetd(opts, svr_opts, program);
}

dropbearMain("dropbear", main, svr_dropbear_exit);
