// dbclient's entry point (cli-main.c main): parse the command line, then reach the server
// (directly, or through a proxy command / multihop) and run the session.
import { cli_tty_cleanup } from "@dropbear-ts/chansession";
import { cli_runopts, runopts, type CliSession } from "@dropbear-ts/core";
import { DEBUG1, dropbearMain, ignoreSigpipe, isDetachedCopy, runDetachedCopy, setLogHandler, startsyslog } from "@dropbear-ts/dbutil";
import { cli_getopts } from "@dropbear-ts/runopts";
import { background_stdin, parseQuietly } from "./cli-background.js";
import { cli_proxy_cmd, cli_signal_exit, inheritedProxyFd, kill_proxy_sighandler } from "./cli-main.js";
import { cli_dropbear_exit, cli_dropbear_log, cli_session, cli_session_new } from "./cli-session.js";

const opts = new runopts();
const cli_opts = new cli_runopts();
/** The session this process runs, for the exit handler (Dropbear's global `ses`). */
let ses: CliSession | null = null;
setLogHandler((priority, msg) => cli_dropbear_log(opts, cli_opts, priority, msg));
dropbearMain(
  "dbclient",
  async (argv) => {
    if (isDetachedCopy()) {
      parseQuietly(() => cli_getopts(argv, opts, cli_opts));
    } else {
      cli_getopts(argv, opts, cli_opts);
    }
    if (opts.usingsyslog) {
      startsyslog("dbclient");
    }
    if (cli_opts.stdin_null) {
      // -n: what the background copy does once logged in, from the start (ssh's stdfd_devnull).
      background_stdin();
    }
    if (cli_opts.backgrounded && !isDetachedCopy()) {
      // The copy runs the session with our terminal; this process leaves once it is logged in.
      // A "-J &N" fd is the copy's too: C's daemon() keeps every fd.
      const keep = inheritedProxyFd(cli_opts.proxycmd, cli_opts.proxyexec);
      return runDetachedCopy(["inherit", "inherit", "inherit"], "Backgrounding failed", keep === null ? [] : [keep]);
    }
    if (cli_opts.bind_address !== null) {
      DEBUG1(
        () =>
          `connect to: user=${cli_opts.username} host=${cli_opts.remotehost}/${cli_opts.remoteport} bind_address=${cli_opts.bind_address}:${cli_opts.bind_port}`,
      );
    } else {
      DEBUG1(() => `connect to: user=${cli_opts.username} host=${cli_opts.remotehost}/${cli_opts.remoteport}`);
    }
    ignoreSigpipe();
    const s = cli_session_new(opts, cli_opts);
    s.owns_process = true;
    ses = s;
    // Every way out restores the terminal, even an uncaught exception ('exit' runs for those too).
    process.on("exit", () => cli_tty_cleanup(s));
    if (cli_opts.proxycmd !== null || cli_opts.proxyexec !== null) {
      // Never a direct connection once a proxy was asked for: cli_proxy_cmd exits on failure.
      const { sock_in, sock_out, pid } = await cli_proxy_cmd(s);
      kill_proxy_sighandler(s);
      await cli_session(s, sock_in, sock_out, pid);
    } else {
      cli_signal_exit(s);
      await cli_session(s, null, null, 0);
    }
  },
  (e) => cli_dropbear_exit(ses, e),
);
