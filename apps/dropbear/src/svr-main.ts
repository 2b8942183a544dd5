import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, unlinkSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { runopts, svr_runopts } from "@dropbear-ts/core";
import { LOG_INFO, LOG_WARNING, TRACE, dropbear_close, dropbear_exit, dropbear_log, strerror_code } from "@dropbear-ts/dbutil";
import { FdError, ListenerFd, SignalPipeFd, StreamFd, dropbear_listen, getaddrstring, socketStreamOptions, type Fd } from "@dropbear-ts/netio";
import { MAX_LISTEN_ADDR, MAX_UNAUTH_CLIENTS, MAX_UNAUTH_PER_IP } from "@dropbear-ts/options";
import { select, sigintterm_handler, type SignalTarget } from "@dropbear-ts/session-loop";
import { svr_session } from "./svr-session.js";

/** The fd number a re-executed child finds its childpipe on (after stdin, stdout, stderr). */
const CHILDPIPE_FD = 3;

/** Listen on every -p address; warn about each that fails. @dropbear svr-main.c listensockets */
async function listensockets(svr_opts: svr_runopts, sockcount: number): Promise<ListenerFd[]> {
  TRACE(() => `listensockets: ${svr_opts.portcount} to try`);
  const socks: ListenerFd[] = [];
  for (let i = 0; i < svr_opts.portcount; i++) {
    TRACE(() => `listening on '${svr_opts.addresses[i]}:${svr_opts.ports[i]}'`);
    const r = await dropbear_listen(svr_opts.addresses[i] ?? "", svr_opts.ports[i]!, sockcount - socks.length, undefined, svr_opts.interface);
    if (r.errstring !== null) {
      dropbear_log(LOG_WARNING, `Failed listening on '${svr_opts.ports[i]}': ${r.errstring}`);
      continue;
    }
    socks.push(...r.socks);
  }
  return socks;
}

/** A child still before auth: its pipe closes when it authenticates or exits. */
interface PreauthChild {
  pipe: StreamFd;
  host: string;
}

/**
 * Re-execute this program for one connection: the socket becomes the child's stdin and the
 * childpipe its fd 3, announced with the hidden `-2 3` flag, as Dropbear's fexecve does.
 * Returns the childpipe, or null if no child could be started (EMFILE, EAGAIN, ENOMEM: Dropbear's
 * failed fork), logged once; the caller then drops the connection and keeps no slot for it.
 */
function reexec(sock: Socket): Readable | null {
  const failed = (e: unknown): null => {
    const err = e as NodeJS.ErrnoException;
    dropbear_log(LOG_WARNING, `Error forking: ${strerror_code(err.code ?? "EIO", err.message)}`);
    return null;
  };
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), "-2", String(CHILDPIPE_FD)], {
      stdio: [sock, "inherit", "inherit", "pipe"],
      detached: true, // setsid(): the child leads its own session
    });
  } catch (e) {
    return failed(e);
  }
  // Node reports a failed spawn later, as an 'error' event on a child without pid or stdio.
  child.on("error", failed);
  child.unref();
  if (child.pid === undefined) {
    return null;
  }
  const pipe = child.stdio[CHILDPIPE_FD] as Readable | null | undefined;
  return pipe ?? null;
}

/**
 * The listening daemon: accept connections, keep the number of unauthenticated ones within
 * MAX_UNAUTH_CLIENTS and MAX_UNAUTH_PER_IP, and hand each to a re-executed child.
 * @dropbear svr-main.c main_noinetd
 */
export async function main_noinetd(opts: runopts, svr_opts: svr_runopts): Promise<never> {
  const listensocks = await listensockets(svr_opts, MAX_LISTEN_ADDR);
  if (listensocks.length === 0) {
    dropbear_exit("No listening ports available.");
  }
  dropbear_log(LOG_INFO, svr_opts.forkbg ? "Running in background" : "Not backgrounding");
  try {
    writeFileSync(svr_opts.pidfile, `${process.pid}\n`);
  } catch {
    // Like Dropbear: no pid file is not fatal.
  }
  const children: PreauthChild[] = [];
  // The daemon's exit flag and wake-up (C's global ses here), set by the handler sessions use.
  const wake = new SignalPipeFd();
  const daemon: SignalTarget = { exitflag: false, signal_pipe: wake };
  sigintterm_handler(daemon);

  for (;;) {
    const fds = new Set<Fd>([...listensocks, wake, ...children.map((c) => c.pipe)]);
    await select(fds, new Set(), null);
    if (daemon.exitflag) {
      try {
        unlinkSync(svr_opts.pidfile);
      } catch {
        // already gone
      }
      dropbear_close("Terminated by signal");
    }
    // A readable childpipe means that child authenticated or went away.
    for (let i = children.length - 1; i >= 0; i--) {
      if (fds.has(children[i]!.pipe)) {
        children[i]!.pipe.close();
        children.splice(i, 1);
      }
    }
    for (const l of listensocks) {
      if (!fds.has(l)) continue;
      let sock: Socket | null;
      try {
        sock = l.accept();
      } catch (e) {
        // Dropbear just goes on (accept failed); we say why, once per failure.
        dropbear_log(LOG_WARNING, `Error accepting: ${e instanceof FdError ? strerror_code(e.code, e.message) : String(e)}`);
        continue;
      }
      if (sock === null) continue;
      const remote_host = sock.remoteAddress ?? "?";
      const num_unauthed_for_addr = children.filter((c) => c.host === remote_host).length;
      if (children.length >= MAX_UNAUTH_CLIENTS || num_unauthed_for_addr >= MAX_UNAUTH_PER_IP) {
        sock.destroy();
        continue;
      }
      const pipe = reexec(sock);
      // The child has its own copy of the socket now (or there is no child: the peer sees EOF).
      sock.destroy();
      if (pipe !== null) {
        children.push({ pipe: new StreamFd(pipe), host: remote_host });
      }
    }
  }
}

/**
 * Serve one connection on stdin: inetd mode (-i), or a child re-executed by the listener
 * (-2 childpipe). @dropbear svr-main.c main_inetd
 */
export async function main_inetd(opts: runopts, svr_opts: svr_runopts): Promise<never> {
  const sock = new Socket({ fd: 0, readable: true, writable: true, allowHalfOpen: true, ...socketStreamOptions });
  sock.pause();
  dropbear_log(LOG_INFO, `Child connection from ${getaddrstring(sock.remoteAddress ?? "?", sock.remotePort ?? 0)}`);
  const childpipe = svr_opts.reexec_childpipe;
  try {
    return await svr_session(opts, svr_opts, sock, childpipe);
  } finally {
    if (childpipe >= 0) {
      try {
        closeSync(childpipe);
      } catch {
        // closed at auth
      }
    }
  }
}
