// dbclient's entry point (cli-main.c main): parse the command line, then connect and run the
// session.
import { cli_runopts, runopts } from "@dropbear-ts/core";
import { DEBUG1, dropbearMain, setLogHandler, startsyslog } from "@dropbear-ts/dbutil";
import { cli_getopts } from "@dropbear-ts/runopts";
import { isBackgroundCopy, runInBackground } from "./cli-background.js";
import { cli_dropbear_exit, cli_dropbear_log, cli_session, cli_unimplemented } from "./cli-session.js";

const opts = new runopts();
const cli_opts = new cli_runopts();
setLogHandler((priority, msg) => cli_dropbear_log(opts, cli_opts, priority, msg));
dropbearMain(
  "dbclient",
  async (argv) => {
    cli_getopts(argv, opts, cli_opts);
    cli_unimplemented(cli_opts);
    if (opts.usingsyslog) {
      startsyslog("dbclient");
    }
    if (cli_opts.backgrounded && !isBackgroundCopy()) {
      return runInBackground();
    }
    DEBUG1(() => `connect to: user=${cli_opts.username} host=${cli_opts.remotehost}/${cli_opts.remoteport}`);
    await cli_session(opts, cli_opts);
  },
  cli_dropbear_exit,
);
