// dbclient's entry point (cli-main.c main). Parsing works; the client itself is not ported yet.
import { cli_runopts, runopts } from "@dropbear-ts/core";
import { dropbearMain, setLogHandler, startsyslog } from "@dropbear-ts/dbutil";
import { cli_getopts } from "@dropbear-ts/runopts";
import { cli_dropbear_exit, cli_dropbear_log } from "./cli-session.js";

const opts = new runopts();
const cli_opts = new cli_runopts();
setLogHandler((priority, msg) => cli_dropbear_log(opts, cli_opts, priority, msg));
dropbearMain(
  "dbclient",
  (argv) => {
    cli_getopts(argv, opts, cli_opts);
    if (opts.usingsyslog) {
      startsyslog("dbclient");
    }
    process.stderr.write("dbclient: not yet implemented in dropbear-ts: the SSH client\n");
    return 1;
  },
  cli_dropbear_exit,
);
