// cli-main.c's proxy side: the transport carried by a program (-J, -o ProxyCommand), by an
// inherited fd (-J '&fd'), or by another dbclient run with -B (multihop), instead of a TCP
// connection. A proxy that cannot start ends dbclient; it never falls back to connecting
// directly.
import { isUtf8 } from "node:buffer";
import type { ChildProcess } from "node:child_process";
import { closeSync, fstatSync } from "node:fs";
import * as net from "node:net";
import { basename } from "node:path";
import { fill_passwd, get_user_shell } from "@dropbear-ts/auth";
import { cli_tty_cleanup } from "@dropbear-ts/chansession";
import type { CliSession } from "@dropbear-ts/core";
import { TRACE, argsBytesEnv, cloexecPipe, shAssignBytes, textBytes, textShown, dropbear_exit, ignoredSignals, launcherEnv, nodeStartRefused, withInheritedNofile } from "@dropbear-ts/dbutil";
import { StreamFd, ownReadSocket, socketStreamOptions } from "@dropbear-ts/netio";

/** What cli_proxy_cmd hands to cli_session: the transport's two ends and the child to kill. */
export interface ProxyTransport {
  sock_in: StreamFd;
  sock_out: StreamFd;
  pid: number;
}

/**
 * Start `argv` with its stdin and stdout as our transport, stderr shared with ours (the proxy's
 * own complaints reach the user). Resolves once the program runs; a program that cannot be
 * started ends dbclient with the message C's child prints before exiting.
 */
async function spawnProxy(file: string, args: string[], argv0: string, what: string, env: NodeJS.ProcessEnv = process.env, keep: number | null = null): Promise<ProxyTransport> {
  // C's forked child keeps the signals we were left ignoring; Node's spawn resets them all, so
  // sh ignores them again before it execs the program.
  const ignored = ignoredSignals().map((s) => s.slice(3));
  if (ignored.length > 0) {
    [file, args, argv0] = ["/bin/sh", ["-c", `trap '' ${ignored.join(" ")}; exec "$0" "$@"`, file, ...args], "sh"];
  }
  // The program's stdin is a pipe, as C's: Node's "pipe" would be a socket pair, which the
  // program could also write to, and an inetd-style one (`dropbear -i`) answers on its fd 0:
  // those bytes would wait where nobody reads, and dbclient for ever. On a pipe that write
  // fails, and the program ends.
  const stdinPipe = cloexecPipe();
  if (stdinPipe === null) {
    dropbear_exit("Failed running proxy command");
  }
  let child: ChildProcess;
  try {
    // On demand: most runs start no process, and node:child_process costs start-up time.
    // With the descriptor limit dbclient was started with, as C's forked child has it.
    const { spawn } = process.getBuiltinModule("node:child_process");
    // An inherited fd the program is to use (a multihop's inner dbclient given -J '&N') stays at
    // its number, as after C's fork; Node's spawn passes a child only the fds its stdio names.
    const stdio: (number | "pipe" | "inherit" | "ignore")[] = [stdinPipe[0], "pipe", "inherit"];
    if (keep !== null) {
      while (stdio.length < keep) stdio.push("ignore");
      stdio.push(keep);
    }
    child = withInheritedNofile(() => spawn(file, args, { argv0, env, stdio }));
  } catch (e) {
    TRACE(() => `spawn: ${String(e)}`);
    closeSync(stdinPipe[1]);
    dropbear_exit("Failed running proxy command");
  } finally {
    closeSync(stdinPipe[0]);
  }
  const toChild = new net.Socket({ fd: stdinPipe[1], readable: false, writable: true, ...socketStreamOptions });
  const started = await new Promise<Error | null>((resolve) => {
    child.once("spawn", () => resolve(null));
    child.once("error", (e) => resolve(e));
  });
  if (started !== null || child.pid === undefined) {
    dropbear_exit(`Failed to run '${what}': ${started?.message ?? "no process"}`);
  }
  // A later error (EPIPE once it has died) shows up on the pipes, which the session reads.
  child.on("error", (e) => TRACE(() => `proxy command: ${String(e)}`));
  // The child's stdin is where we write the transport, its stdout where we read it.
  return { sock_out: new StreamFd(toChild), sock_in: new StreamFd(child.stdout!), pid: child.pid };
}

/**
 * -J / ProxyCommand: "exec <command>" through the user's login shell (exec so the SIGHUP at
 * cleanup reaches the program itself, not a shell waiting on it).
 * @dropbear cli-main.c shell_proxy_cmd
 */
function shell_proxy_cmd(ses: CliSession, cmd: string): Promise<ProxyTransport> {
  const usershell = get_user_shell(ses);
  const bytes = textBytes(cmd);
  if (!isUtf8(bytes)) {
    // -J's bytes that are not UTF-8 (argText), which spawn's strings cannot carry: sh rebuilds
    // them and execs the user's shell with them, as C's execv would.
    const script = `${shAssignBytes("c", bytes)}; exec "$0" -c "$c"`;
    return spawnProxy("/bin/sh", ["-c", script, usershell], "sh", textShown(cmd));
  }
  return spawnProxy(usershell, ["-c", cmd], basename(usershell), cmd);
}

/**
 * Multihop: run the inner dbclient (its argv from multihop_args) without a shell. C execs
 * argv[0] as given; we run this same program (node and our own script), keeping argv[0] as
 * its name, so a dbclient found through $PATH works too.
 * @dropbear cli-main.c exec_proxy_cmd
 */
function exec_proxy_cmd(proxyexec: readonly string[]): Promise<ProxyTransport> {
  // An inner dbclient that the user's process limit would leave stuck in Node's start would
  // hold us for ever, waiting for its version line: refused as C's fork() would be.
  const refused = nodeStartRefused();
  if (refused !== null) {
    dropbear_exit(`Failed to run '${proxyexec[0]!}': ${refused.message}`);
  }
  const self = [...process.execArgv, process.argv[1]!];
  // (Node resets them again: the inner dbclient is told which to ignore, as the bins tell us.)
  // A hop's user name that is not UTF-8 goes on as its bytes, which spawn's strings cannot carry.
  const env = launcherEnv({ ...process.env, ...argsBytesEnv(proxyexec.slice(1)) });
  return spawnProxy(process.execPath, [...self, ...proxyexec.slice(1)], proxyexec[0]!, proxyexec[0]!, env, multihopProxyFd(proxyexec));
}

/**
 * N of a "-J &N" proxy (a single number from 3 to 1023, as C's strtoul reads it), else null:
 * any other -J is a command for the shell.
 */
export function proxyFdNumber(proxycmd: string | null): number | null {
  if (proxycmd === null || !/^&[0-9]+$/.test(proxycmd)) {
    return null;
  }
  const fd = Number(proxycmd.slice(1));
  return fd > 2 && fd < 1024 ? fd : null;
}

/** The "-J &N" fd that multihop_args handed on to the inner dbclient, if any. */
function multihopProxyFd(proxyexec: readonly string[]): number | null {
  const j = proxyexec.indexOf("-J");
  return j >= 0 ? proxyFdNumber(proxyexec[j + 1] ?? null) : null;
}

/**
 * The inherited fd this run's transport is to come through ("-J &N", directly or, under
 * multihop, through the inner dbclient), which a copy of us (-f) must be given as well.
 */
export function inheritedProxyFd(proxycmd: string | null, proxyexec: readonly string[] | null): number | null {
  return proxyFdNumber(proxycmd) ?? (proxyexec === null ? null : multihopProxyFd(proxyexec));
}

/**
 * Set the transport up through the proxy: an inherited fd for "-J &N" (N from 3 to 1023), else
 * the -J command through the shell, else the multihop dbclient.
 * @dropbear cli-main.c cli_proxy_cmd
 */
export async function cli_proxy_cmd(ses: CliSession): Promise<ProxyTransport> {
  const cli_opts = ses.cli_ses.cli_opts;
  try {
    const proxycmd = cli_opts.proxycmd;
    const sock = proxyFdNumber(proxycmd);
    if (sock !== null) {
      const fd = fdStream(sock);
      return { sock_in: fd, sock_out: fd, pid: 0 };
    }
    if (proxycmd !== null) {
      // So that the shell is the user's.
      fill_passwd(ses, cli_opts.own_user ?? "unknown");
      return await shell_proxy_cmd(ses, `exec ${proxycmd}`);
    }
    return await exec_proxy_cmd(cli_opts.proxyexec!);
  } finally {
    cli_opts.proxycmd = null;
    cli_opts.proxyexec = null;
  }
}

/**
 * A handle on an fd we inherited for "-J &N": a socket becomes a libuv stream (both directions
 * on one handle, as C reads and writes the one fd). Anything else is refused: a regular file or
 * tty cannot be waited on without blocking the loop, and a pipe carries one direction only, so
 * C's read and write on it never made a session either. Node's own descriptors (its event
 * loop's epoll, eventfds and wake-up pipes) sit among the low numbers before we connect, none a
 * socket: a number naming one was taken as the transport and aborted Node (SIGABRT) or ended
 * with a stack trace.
 */
function fdStream(fd: number): StreamFd {
  let ok = false;
  try {
    ok = fstatSync(fd).isSocket();
  } catch (e) {
    dropbear_exit(`Bad proxy fd ${fd}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!ok) {
    dropbear_exit(`Bad proxy fd ${fd}: not a socket`);
  }
  return ownReadSocket((onread) => new net.Socket({ fd, onread, readable: true, writable: true, allowHalfOpen: true, ...socketStreamOptions } as net.SocketConstructorOpts));
}

/**
 * SIGHUP the proxy child (not waited for: it may hang; init reaps it).
 * @dropbear cli-session.c kill_proxy_command
 */
export function kill_proxy_command(ses: CliSession): void {
  const pid = ses.cli_ses.proxy_cmd_pid;
  if (pid > 1) {
    TRACE(() => `killing proxy command with PID='${pid}'`);
    try {
      process.kill(pid, "SIGHUP");
    } catch {
      // already gone
    }
  }
}

/**
 * SIGINT, SIGTERM, SIGHUP or SIGQUIT without a proxy. Dropbear's client sets no handler, so the
 * signal ends it and a shell running it in a loop sees that and stops (Ctrl-C on
 * `for h in ...; do dbclient ...`). Here the terminal is put back first (C leaves it raw; so
 * does a `kill -HUP`, which OpenSSH's ssh restores too), then the process dies of the same
 * signal: the listeners gone, Node gives the signal its default action again. A signal our
 * parent left ignored gets no handler: it stays ignored, as in C.
 */
export function cli_signal_exit(ses: CliSession): void {
  const ignored = ignoredSignals();
  const sigs = (["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const).filter((s) => !ignored.includes(s));
  const handler = (sig: NodeJS.Signals): void => {
    cli_tty_cleanup(ses);
    for (const s of sigs) {
      process.off(s, handler);
    }
    process.kill(process.pid, sig);
  };
  for (const sig of sigs) {
    process.on(sig, handler);
  }
}

/**
 * SIGINT, SIGTERM or SIGHUP while a proxy carries us: take the proxy down too and exit 1 at once.
 * @dropbear cli-main.c kill_proxy_sighandler
 */
export function kill_proxy_sighandler(ses: CliSession): void {
  const handler = (): void => {
    kill_proxy_command(ses);
    cli_tty_cleanup(ses);
    process.exit(1);
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, handler);
  }
}
