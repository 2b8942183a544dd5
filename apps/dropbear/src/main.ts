// dropbear's entry point (svr-main.c main). Parsing works; the server itself is not ported yet.
import { runopts, svr_runopts } from "@dropbear-ts/core";
import { dropbearMain, setLogHandler, startsyslog } from "@dropbear-ts/dbutil";
import { svr_getopts } from "@dropbear-ts/runopts";
import { svr_dropbear_exit, svr_dropbear_log } from "./svr-session.js";

const opts = new runopts();
const svr_opts = new svr_runopts();
setLogHandler((priority, msg) => svr_dropbear_log(opts, priority, msg));
dropbearMain(
  "dropbear",
  (argv) => {
    svr_getopts(argv, opts, svr_opts);
    if (opts.usingsyslog) {
      startsyslog("dropbear");
    }
    process.stderr.write("dropbear: not yet implemented in dropbear-ts: the SSH server\n");
    return 1;
  },
  svr_dropbear_exit,
);
