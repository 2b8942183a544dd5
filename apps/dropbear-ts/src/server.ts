// The library's server: Dropbear's server session (svr-session.c, the same session loop and
// functions as the dropbear program) for each connection a Node `net` server accepts, in this
// process. Instead of system accounts, authorized_keys and forked shells, the caller's
// callbacks decide through serversession.embed (packages/core embed.ts): who may log in, what
// a session channel runs, where direct-tcpip goes and whether tcpip-forward may listen.
// As in client.ts: server.d.ts loads @types/node itself, whatever the user's `types` says.
/// <reference types="node" preserve="true" />
import { isUtf8 } from "node:buffer";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { constants, homedir, tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { chansessEmbeddedExit, kernelReadable } from "@dropbear-ts/chansession";
import type { ChanSess, Channel, SvrEmbed, SvrTcpTarget, runopts, SvrSession, svr_runopts } from "@dropbear-ts/core";
import { DropbearExit, LOG_ERR, dropbear_log, printfEscapes, shAssignBytes, withLogHandler, type LogHandler } from "@dropbear-ts/dbutil";
import { svrSessionExit, svrSessionNew, svrSessionRun } from "@dropbear-ts/dropbear";
import { SOCKET_HIGH_WATER_MARK, StreamFd } from "@dropbear-ts/netio";
import { AUTH_TIMEOUT } from "@dropbear-ts/options";
import { load_all_hostkeys, readhostkey, svr_getopts } from "@dropbear-ts/runopts";
import { session_cleanup } from "@dropbear-ts/session-loop";
import {
  DROPBEAR_SIGNKEY_ANY,
  KEYFILE_DROPBEAR,
  KEYFILE_OPENSSH,
  import_read,
  import_write,
  new_sign_key,
  sign_key_fingerprint,
  signkeyPrivateProblem,
} from "@dropbear-ts/signkey";
import { handlesGone, isThenable, logHandlerFor, streamPipe, thrownText, unknownOption, type Logger, type OptionNames } from "./common.js";

/** The request an authenticate callback decides, by method: `method` narrows it, destructured too. */
export type AuthRequest =
  | { readonly method: "none"; readonly password?: undefined; readonly publicKey?: undefined }
  | { readonly method: "password"; readonly password: string; readonly publicKey?: undefined }
  | {
      readonly method: "publickey";
      readonly password?: undefined;
      /** The key offered (algorithm name, SSH wire blob, SHA256 fingerprint). */
      readonly publicKey: { readonly algo: string; readonly blob: Buffer; readonly fingerprint: string };
    };

/** What the authenticate callback is asked about one request. */
export type AuthContext = AuthRequest & {
  readonly username: string;
  /** The client's address. */
  readonly remoteAddress: string;
};

/** A shell, exec or subsystem request on a session channel, handed to its handler. */
export interface ServerSession {
  readonly kind: "shell" | "exec" | "subsystem";
  readonly username: string;
  /** exec's command, subsystem's name; null for a shell. */
  readonly command: string | null;
  /** `command` as the client sent it: its bytes, which `command` shows as UTF-8 (U+FFFD for what is not). */
  readonly commandBytes: Buffer | null;
  /** The pty the client asked for first (pty-req), if any. */
  readonly pty: { readonly term: string; readonly rows: number; readonly cols: number } | null;
  /** What the client set with "env" requests (LANG and LC_* only, as the server accepts them). */
  readonly env: Readonly<Record<string, string>>;
  /** `env` with each value as the client sent it. */
  readonly envBytes: Readonly<Record<string, Buffer>>;
  readonly remoteAddress: string;
  /** The client's data; ends at the client's EOF. */
  readonly stdin: Readable;
  /** To the client; exit() or signal() ends it. */
  readonly stdout: Writable;
  /** To the client as extended data (stderr); exit() or signal() ends it. */
  readonly stderr: Writable;
  /** The command ended with this status (0 to 2^32-1, else a TypeError): the client gets exit-status, then the channel closes. */
  exit(code: number): void;
  /**
   * The command was ended by a signal ("TERM", "SIGKILL", ...; a name the system does not know
   * is a TypeError): the client gets exit-signal, or no exit status for one SSH cannot name.
   */
  signal(name: string): void;
  /** Set to receive the client's "signal" requests (names without "SIG"); unset, they are refused. */
  onSignal: ((name: string) => void) | null;
  /** Set to learn of the client's terminal size changes (window-change) while a pty was asked for. */
  onWindowChange: ((cols: number, rows: number) => void) | null;
  /**
   * Set to learn that the channel is gone, once: after exit() or signal() has reached the
   * client, or before them when the connection ended. A client's CLOSE while the command runs
   * shows first as stdout's 'close': the channel goes once the handler ends the command.
   */
  onClose: (() => void) | null;
}

/** Handles one kind of session request; a throw refuses it. */
export type SessionHandler = (session: ServerSession) => void;

/** Which session requests are served; a kind without a handler is refused. */
export interface SessionHandlers {
  exec?: SessionHandler;
  shell?: SessionHandler;
  subsystem?: SessionHandler;
}

/** A direct-tcpip request (the client's -L): where it asks to go, and from where. */
export interface DirectTcpipRequest {
  readonly username: string;
  readonly host: string;
  readonly port: number;
  readonly originHost: string;
  readonly originPort: number;
}

/** true: connect where asked; false: refuse; a target: connect there instead. */
export type DirectTcpipDecision = boolean | { host: string; port: number };

/** A tcpip-forward request (the client's -R): the address and port (0: any) we would listen on. */
export interface TcpipForwardRequest {
  readonly username: string;
  readonly address: string;
  readonly port: number;
}

/** A direct-streamlocal request (`ssh -L port:/path`): the Unix socket asked for. */
export interface StreamLocalRequest {
  readonly username: string;
  readonly path: string;
}

/** true: connect to the path asked for; false: refuse; a path: connect there instead. */
export type StreamLocalDecision = boolean | { path: string };

export interface ServerOptions {
  /** Host keys: file paths, or key material (Dropbear or OpenSSH format) as a Buffer. At least one. */
  hostKeys: ReadonlyArray<string | Buffer>;
  /** Decides each authentication request; a publickey is accepted only with a valid signature too. */
  authenticate: (ctx: AuthContext) => boolean | PromiseLike<boolean>;
  /** Session channel requests; without a handler a kind is refused. */
  onSession?: SessionHandlers;
  /** direct-tcpip; without it every request is refused. */
  onDirectTcpip?: (req: DirectTcpipRequest) => DirectTcpipDecision | PromiseLike<DirectTcpipDecision>;
  /** tcpip-forward; without it every request is refused. The bound port is reported to the client. */
  onTcpipForward?: (req: TcpipForwardRequest) => boolean | PromiseLike<boolean>;
  /** direct-streamlocal@openssh.com; without it every request is refused. */
  onStreamLocal?: (req: StreamLocalRequest) => StreamLocalDecision | PromiseLike<StreamLocalDecision>;
  /** streamlocal-forward@openssh.com (`ssh -R /path:...`): may we listen on that path? Without it, refused. */
  onStreamLocalForward?: (req: StreamLocalRequest) => boolean | PromiseLike<boolean>;
  /**
   * Caps on connections not yet authenticated, as the dropbear daemon keeps them
   * (MAX_UNAUTH_CLIENTS = 30 in all, MAX_UNAUTH_PER_IP = 5 per client address): a connection
   * beyond them is closed at once. Default: no cap (each still ends after the auth timeout).
   */
  maxUnauthenticated?: { total: number; perAddress: number };
  /** The sessions' log lines (what dropbear logs); none without it. */
  logger?: Logger;
}

const SERVER_OPTIONS: OptionNames<ServerOptions> = {
  hostKeys: true,
  authenticate: true,
  onSession: true,
  onDirectTcpip: true,
  onTcpipForward: true,
  onStreamLocal: true,
  onStreamLocalForward: true,
  maxUnauthenticated: true,
  logger: true,
};
const SESSION_HANDLERS: OptionNames<SessionHandlers> = { exec: true, shell: true, subsystem: true };
const UNAUTH_CAPS: OptionNames<NonNullable<ServerOptions["maxUnauthenticated"]>> = { total: true, perAddress: true };

/** A listening address. */
export interface ServerAddress {
  readonly address: string;
  readonly port: number;
}

/** The library's state of one embedded command. */
interface EmbeddedCommand {
  session: ServerSession;
  /** The channel is gone (onClose was called). */
  closed: boolean;
}

/** A caller's callback threw or rejected: said in the session's log. */
function callbackFailed(what: string, e: unknown): void {
  dropbear_log(LOG_ERR, `${what} failed: ${thrownText(e)}`);
}

/**
 * A callback's answer, but never later than the auth timeout or the server's close (the session
 * loop waits for it, so it must end); a throw or rejection counts as `fallback`, and is logged
 * so that a bug in it does not pass for a refusal.
 */
function bounded<T>(server: Server, what: string, fallback: T, call: () => T | PromiseLike<T>): T | Promise<T> {
  const failed = (e: unknown): T => {
    callbackFailed(what, e);
    return fallback;
  };
  let answer: T | PromiseLike<T>;
  try {
    answer = call();
  } catch (e) {
    return failed(e);
  }
  if (!isThenable(answer)) {
    return answer as T;
  }
  // A thenable's own then() may throw or call back twice: a promise of it may not.
  const pending = Promise.resolve(answer as PromiseLike<T>);
  return new Promise<T>((resolve) => {
    const settle = (v: T): void => {
      clearTimeout(timer);
      server.waiting.delete(giveUp);
      resolve(v);
    };
    // At the timeout or the server's close, with the timer gone either way.
    const giveUp = (): void => settle(fallback);
    const timer = setTimeout(giveUp, AUTH_TIMEOUT * 1000);
    server.waiting.add(giveUp);
    pending.then(settle, (e: unknown) => settle(failed(e)));
  });
}

/**
 * Run a caller's session callback inside the session loop: a throw is logged and answered as a
 * refusal (false), never taken for the session's own failure. An async callback's rejection
 * comes too late to refuse anything: it is logged, never left unhandled, and `afterwards` runs.
 */
function guarded(what: string, fn: () => unknown, afterwards?: () => void): boolean {
  const failed = (e: unknown): void => callbackFailed(what, e);
  try {
    const r = fn();
    if (r instanceof Promise) {
      // Logged in this session's log context, which the continuation keeps.
      r.catch((e: unknown) => {
        failed(e);
        afterwards?.();
      });
    }
    return true;
  } catch (e) {
    failed(e);
    return false;
  }
}

/** How long an ended session's last bytes may take to leave before its socket is dropped. */
const LINGER_MS = 5000;

/**
 * A key loader's answer, with its exit for a malformed file read as "no key". `why`, when
 * given, gets the loader's last complaint (or its exit message), for the caller's error.
 */
function hostKeyCall<T>(log: LogHandler, fn: () => T, why?: { text: string }): T | null {
  // What the key code tells its user goes to the caller's logger, never to stderr.
  const handler: LogHandler =
    why === undefined
      ? log
      : (priority, msg) => {
          why.text = msg.trim().replace(/^Error: /, "");
          log(priority, msg);
        };
  try {
    return withLogHandler(handler, fn);
  } catch (e) {
    if (e instanceof DropbearExit) {
      if (why !== undefined) {
        why.text = e.exitmsg;
      }
      return null;
    }
    throw e;
  }
}

/**
 * An SSH server in this process, made by createServer. Each connection runs Dropbear's server
 * session; many servers and many connections can share the process.
 */
export class Server {
  private readonly opts: runopts;
  private readonly svr_opts: svr_runopts;
  private readonly log: LogHandler;
  private readonly embed: SvrEmbed;
  private readonly commands = new WeakMap<ChanSess, EmbeddedCommand>();
  private readonly sessions = new Set<SvrSession>();
  private readonly running = new Set<Promise<void>>();
  private net: NetServer | null = null;
  private closeStarted = false;
  /** Fails a listen() still binding (its host being looked up) when close() comes first. */
  private listenAbandoned: ((e: Error) => void) | null = null;
  /** @internal Give-ups of the callback answers sessions wait for: close() calls them all. */
  readonly waiting = new Set<() => void>();

  // In the declarations on purpose: stripped from them, it left `new Server()` typed as taking
  // no arguments, and `new Server(options)` an error.
  /** The same as createServer(options). */
  constructor(private readonly options: ServerOptions) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("createServer: options must be an object");
    }
    checkHandlerTypes(options);
    if (typeof options.authenticate !== "function") {
      throw new TypeError("createServer: authenticate must be a function");
    }
    if (!Array.isArray(options.hostKeys) || !options.hostKeys.every((k) => typeof k === "string" || Buffer.isBuffer(k))) {
      throw new TypeError("createServer: hostKeys must be an array of file names and Buffers");
    }
    if (options.hostKeys.length === 0) {
      throw new TypeError("createServer: at least one host key is needed");
    }
    this.log = logHandlerFor(options.logger, true);
    // The dropbear program's own defaults, from its option parser: -E (no syslog), and -k
    // when no remote forward of either kind has a handler.
    const argv = ["dropbear", "-E"];
    if (options.onTcpipForward === undefined && options.onStreamLocalForward === undefined) {
      argv.push("-k");
    }
    const parsed = withLogHandler(this.log, () => {
      try {
        return svr_getopts(argv);
      } catch (e) {
        throw new Error(`createServer: ${e instanceof DropbearExit ? e.exitmsg : String(e)}`);
      }
    });
    this.opts = parsed.opts;
    this.svr_opts = parsed.svr_opts;
    // Every key reaches the host key loader as a Dropbear-format file: key material and
    // OpenSSH-format keys are converted (as dropbearconvert does) into a private temporary dir.
    const paths: string[] = [];
    const temps: string[] = [];
    try {
      for (const [i, k] of options.hostKeys.entries()) {
        const what = typeof k === "string" ? k : `#${i}`;
        let path = typeof k === "string" ? k : "";
        const tempFile = (name: string): string => {
          const dir = mkdtempSync(join(tmpdir(), "dropbear-ts-key-"));
          temps.push(dir);
          return join(dir, name);
        };
        let bytes: Buffer;
        try {
          bytes = typeof k === "string" ? readFileSync(k) : k;
        } catch (e) {
          throw new Error(`createServer: cannot read host key ${what}: ${(e as Error).message}`);
        }
        if (typeof k !== "string") {
          path = tempFile("key");
          writeFileSync(path, bytes, { mode: 0o600 });
        }
        if (bytes.subarray(0, 64).toString("latin1").includes("-----BEGIN ")) {
          // The loader's reason ("Encrypted keys are not supported...", "RSA key too large")
          // goes into the error: by default the logger drops it.
          const why = { text: "" };
          const key = hostKeyCall(this.log, () => import_read(path, null, KEYFILE_OPENSSH), why);
          path = tempFile("dropbear");
          if (key === null || !hostKeyCall(this.log, () => import_write(path, key, null, KEYFILE_DROPBEAR), why)) {
            throw new Error(`createServer: cannot read host key ${what}${why.text === "" ? "" : `: ${why.text}`}`);
          }
        }
        const read = new_sign_key();
        const type = hostKeyCall(this.log, () => readhostkey(path, read, DROPBEAR_SIGNKEY_ANY));
        if (type === null) {
          throw new Error(`createServer: cannot read host key ${what}: not an RSA, ECDSA or Ed25519 key in Dropbear, OpenSSH or PEM format`);
        }
        read.type = type;
        const problem = signkeyPrivateProblem(read);
        if (problem !== null) {
          throw new Error(`createServer: cannot use host key ${what}: ${problem}`);
        }
        paths.push(path);
      }
      this.svr_opts.hostkey_files = paths;
      this.svr_opts.num_hostkey_files = paths.length;
      withLogHandler(this.log, () => {
        try {
          load_all_hostkeys(this.opts, this.svr_opts);
        } catch (e) {
          throw new Error(`createServer: ${e instanceof DropbearExit ? e.exitmsg : String(e)}`);
        }
      });
    } finally {
      for (const dir of temps) {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    this.embed = this.makeEmbed();
  }

  /**
   * Listen on `host` (default 127.0.0.1) and `port` (0: any free one); resolves to the bound
   * address. Rejects on a failed bind (EADDRINUSE, ...) or when already listening or closed.
   */
  async listen(port = 0, host = "127.0.0.1"): Promise<ServerAddress> {
    // Node takes "" or null for every interface (::): a host read from an unset setting must not
    // open the server to the network where the default is loopback.
    if (typeof host !== "string" || host === "") {
      throw new TypeError(`Server.listen: host must be a non-empty string ("::" for every interface), not ${host === "" ? '""' : String(host)}`);
    }
    if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new TypeError(`Server.listen: port must be a whole number from 0 to 65535, not ${typeof port === "string" ? `"${port}"` : String(port)}`);
    }
    if (this.net !== null || this.closeStarted) {
      throw new Error("Server.listen: already listening or closed");
    }
    // As the dropbear program's listeners: paused until the session wraps the socket,
    // half-open for SSH's one-way EOF, our pinned high-water marks.
    const net = createNetServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true, highWaterMark: SOCKET_HIGH_WATER_MARK });
    this.net = net;
    try {
      net.on("connection", (sock) => this.serve(sock));
      await new Promise<void>((resolve, reject) => {
        net.once("error", reject);
        // net.Server.close() during the host's lookup cancels the bind without a word: no
        // callback, no 'error', so this promise must be failed by our close() itself.
        this.listenAbandoned = (e) => reject(e);
        net.listen({ port, host }, () => {
          net.removeListener("error", reject);
          resolve();
        });
      });
    } catch (e) {
      // Not listening: listen() may be tried again, unless close() was the reason.
      this.net = null;
      throw e;
    } finally {
      this.listenAbandoned = null;
    }
    // Later errors (EMFILE while accepting) are libuv's to retry; nothing to throw at.
    net.on("error", (e) => this.log(LOG_ERR, `listener: ${e.message}`));
    const a = net.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  /** The bound address, or null before listen(). */
  address(): ServerAddress | null {
    const a = this.net?.address();
    return a && typeof a === "object" ? { address: a.address, port: a.port } : null;
  }

  /** How many connections are being served now. */
  get connections(): number {
    return this.sessions.size;
  }

  /**
   * Stop listening and end every session (their channels, commands and forwards go with them,
   * as when dropbear gets SIGTERM). Resolves once all are gone; nothing of the server stays open.
   */
  async close(): Promise<void> {
    this.closeStarted = true;
    for (const giveUp of this.waiting) {
      giveUp();
    }
    this.waiting.clear();
    const net = this.net;
    const listening = net === null ? Promise.resolve() : new Promise<void>((resolve) => net.close(() => resolve()));
    this.listenAbandoned?.(new Error("Server.listen: closed before listening"));
    for (const ses of this.sessions) {
      ses.exitflag = true;
      ses.signal_pipe?.raise();
    }
    await Promise.all([listening, ...this.running]);
    // net.Server's "close" (and a socket's `closed`) come before libuv has closed the handles.
    await handlesGone();
  }

  /** Serve one accepted connection with a session of its own, logging to the caller's logger. */
  private serve(sock: Socket): void {
    if (this.closeStarted || this.overUnauthCap(sock.remoteAddress ?? "")) {
      sock.destroy();
      return;
    }
    const done = withLogHandler(this.log, async () => {
      let ses: SvrSession | null = null;
      try {
        ses = svrSessionNew(this.opts, this.svr_opts, new StreamFd(sock), -1, this.embed);
        this.sessions.add(ses);
        await svrSessionRun(ses);
      } catch (e) {
        if (e instanceof DropbearExit) {
          svrSessionExit(ses, e);
        } else {
          dropbear_log(LOG_ERR, `Internal error: ${e instanceof Error && typeof e.stack === "string" ? e.stack : thrownText(e)}`);
          if (ses !== null) {
            session_cleanup(ses);
          }
        }
      } finally {
        if (ses !== null) {
          this.sessions.delete(ses);
          ses.signal_pipe?.close();
        }
        // close() waits for the socket too: what it still had to send may take up to LINGER_MS.
        await this.release(sock, ses);
      }
    });
    this.running.add(done);
    void done.finally(() => this.running.delete(done));
  }

  /** Whether one more unauthenticated connection from `host` would pass a cap (svr-main.c's check in main_noinetd). */
  private overUnauthCap(host: string): boolean {
    const cap = this.options.maxUnauthenticated;
    if (cap === undefined) {
      return false;
    }
    let total = 0;
    let fromHost = 0;
    for (const ses of this.sessions) {
      if (!ses.authstate.authdone) {
        total++;
        if (ses.svr_ses.remotehost === host) {
          fromHost++;
        }
      }
    }
    return total >= cap.total || fromHost >= cap.perAddress;
  }

  /**
   * Let the connection go as the dropbear process's exit would: what the session queued still
   * reaches the peer, but a peer that does not read gets LINGER_MS, not forever. Resolves once
   * the socket has closed.
   */
  private release(sock: Socket, ses: SvrSession | null): Promise<void> {
    ses?.sock_in?.close();
    if (sock.closed) {
      return Promise.resolve();
    }
    const closed = new Promise<void>((resolve) => sock.once("close", () => resolve()));
    if (ses === null) {
      sock.destroy();
      return closed;
    }
    const timer = setTimeout(() => sock.destroy(), LINGER_MS);
    return closed.then(() => clearTimeout(timer));
  }

  /** The decisions the sessions ask for, made by the caller's callbacks. */
  private makeEmbed(): SvrEmbed {
    const o = this.options;
    const remote = (ses: SvrSession): string => ses.svr_ses.remotehost ?? "";
    const username = (ses: SvrSession): string => ses.authstate.username ?? "";
    const ask = (ses: SvrSession, ctx: AuthRequest): boolean | Promise<boolean> =>
      bounded(this, "authenticate", false, () => o.authenticate({ ...ctx, username: username(ses), remoteAddress: remote(ses) }));
    return {
      fill_passwd: (ses, name) => {
        // No system account: the session's commands run as this process's user, in its home.
        const me = userInfo();
        const a = ses.authstate;
        a.pw_name = name;
        a.pw_uid = me.uid;
        a.pw_gid = me.gid;
        a.pw_dir = homedir();
        a.pw_shell = "/bin/sh";
        a.pw_passwd = null;
      },
      checknone: (ses) => ask(ses, { method: "none" }),
      checkpassword: (ses, password) => ask(ses, { method: "password", password: password.toString("utf8") }),
      checkpubkey: (ses, algo, keyblob) =>
        ask(ses, { method: "publickey", publicKey: { algo, blob: Buffer.from(keyblob), fingerprint: sign_key_fingerprint(keyblob) } }),
      sessioncommand: (ses, channel, chansess, kind, command) => this.startCommand(ses, channel, chansess, kind, command),
      sessionclosed: (_ses, chansess) => {
        const cmd = this.commands.get(chansess);
        if (cmd !== undefined && !cmd.closed) {
          cmd.closed = true;
          const onClose = cmd.session.onClose;
          if (onClose !== null) {
            guarded("onClose", () => onClose());
          }
        }
      },
      sessionwinchange: (_ses, chansess, cols, rows) => {
        const onWindowChange = this.commands.get(chansess)?.session.onWindowChange;
        if (onWindowChange != null) {
          guarded("onWindowChange", () => onWindowChange(cols, rows));
        }
      },
      sessionsignal: (_ses, chansess, name) => {
        const onSignal = this.commands.get(chansess)?.session.onSignal;
        return onSignal != null && guarded("onSignal", () => onSignal(name));
      },
      tcpdirect: (ses, host, port, originHost, originPort) => {
        const handler = o.onDirectTcpip;
        if (handler === undefined) {
          return null;
        }
        // Anything but true or a target object is a refusal.
        const target = (d: DirectTcpipDecision): SvrTcpTarget | null =>
          d === true ? { host, port } : typeof d === "object" && d !== null && typeof d.host === "string" && Number.isInteger(d.port) ? { host: d.host, port: d.port } : null;
        const d = bounded<DirectTcpipDecision>(this, "onDirectTcpip", false, () => handler({ username: username(ses), host, port, originHost, originPort }));
        return d instanceof Promise ? d.then(target) : target(d);
      },
      remotetcp: (ses, address, port) => {
        const handler = o.onTcpipForward;
        return handler === undefined ? false : bounded(this, "onTcpipForward", false, () => handler({ username: username(ses), address, port }));
      },
      streamlocal: (ses, path) => {
        const handler = o.onStreamLocal;
        if (handler === undefined) {
          return null;
        }
        const target = (d: StreamLocalDecision): string | null => (d === true ? path : typeof d === "object" && d !== null && typeof d.path === "string" ? d.path : null);
        const d = bounded<StreamLocalDecision>(this, "onStreamLocal", false, () => handler({ username: username(ses), path }));
        return d instanceof Promise ? d.then(target) : target(d);
      },
      remotestreamlocal: (ses, path) => {
        const handler = o.onStreamLocalForward;
        return handler === undefined ? false : bounded(this, "onStreamLocalForward", false, () => handler({ username: username(ses), path }));
      },
    };
  }

  /**
   * A session channel's shell/exec/subsystem: join the channel's fds to in-process pipes and
   * hand their other ends to the caller's handler. False (refused) without a handler or when
   * the handler throws.
   */
  private startCommand(ses: SvrSession, channel: Channel, chansess: ChanSess, kind: "shell" | "exec" | "subsystem", command: Buffer | null): boolean {
    const handler = this.options.onSession?.[kind];
    if (handler === undefined) {
      return false;
    }
    const stdin = streamPipe();
    const stdout = streamPipe();
    const stderr = streamPipe();
    const env: Record<string, string> = {};
    const envBytes: Record<string, Buffer> = {};
    for (const [k, v] of chansess.clientenv ?? []) {
      env[k] = v.toString("utf8");
      envBytes[k] = Buffer.from(v);
    }
    let pty: ServerSession["pty"] = null;
    if (chansess.term !== null && chansess.embedpty !== null) {
      pty = { term: chansess.term.toString("utf8"), rows: chansess.embedpty.rows, cols: chansess.embedpty.cols };
    }
    let ended = false;
    const finish = (status: number, signal: number | null): void => {
      ended = true;
      stdout.writable.end();
      stderr.writable.end();
      chansessEmbeddedExit(ses, chansess, status, signal);
    };
    const session: ServerSession = {
      kind,
      username: ses.authstate.username ?? "",
      command: command === null ? null : command.toString("utf8"),
      commandBytes: command === null ? null : Buffer.from(command),
      pty,
      env,
      envBytes,
      remoteAddress: ses.svr_ses.remotehost ?? "",
      stdin: stdin.readable,
      stdout: stdout.writable,
      stderr: stderr.writable,
      exit: (code) => finish(exitStatusOf(code), null),
      signal: (name) => finish(0, signalNumberOf(name)),
      onSignal: null,
      onWindowChange: null,
      onClose: null,
    };
    this.commands.set(chansess, { session, closed: false });
    // A handler that fails later ends its command as one that failed (status 1), if it has not ended it.
    // A throw refuses the request, unless the handler had ended the command first: then it ran,
    // and its output and status must reach the client (a refusal would drop the output and
    // still send the status).
    if (!guarded("Session handler", () => handler(session), () => session.exit(1)) && !ended) {
      this.commands.delete(chansess);
      return false;
    }
    channel.writefd = new StreamFd(stdin.writable);
    channel.readfd = new StreamFd(stdout.readable);
    channel.errfd = new StreamFd(stderr.readable);
    channel.bidir_fd = false;
    return true;
  }
}

/**
 * createServer's handlers and caps of the wrong type, and names it does not know, are an error
 * at once, not a refusal found when a client first asks (an `onSession.exec` that is a string)
 * or a cap that caps nothing.
 */
function checkHandlerTypes(options: ServerOptions): void {
  const o = options as unknown as Record<string, unknown>;
  const nested = (v: unknown, names: object): string | null => (typeof v === "object" && v !== null ? unknownOption(v, names) : null);
  const unknown = unknownOption(options, SERVER_OPTIONS) ?? nested(o.onSession, SESSION_HANDLERS) ?? nested(o.maxUnauthenticated, UNAUTH_CAPS);
  if (unknown !== null) {
    throw new TypeError(`createServer: unknown option '${unknown}'`);
  }
  const fn = (v: unknown): boolean => v === undefined || typeof v === "function";
  const onSession = o.onSession as Record<string, unknown> | undefined;
  const sessionOk = onSession === undefined || (typeof onSession === "object" && onSession !== null && ["exec", "shell", "subsystem"].every((k) => fn(onSession[k])));
  if (!sessionOk) {
    throw new TypeError("createServer: onSession must be an object of exec, shell and subsystem functions");
  }
  for (const name of ["onDirectTcpip", "onTcpipForward", "onStreamLocal", "onStreamLocalForward", "logger"]) {
    if (!fn(o[name])) {
      throw new TypeError(`createServer: ${name} must be a function`);
    }
  }
  const cap = o.maxUnauthenticated as Record<string, unknown> | undefined;
  const count = (v: unknown): boolean => typeof v === "number" && Number.isInteger(v) && v >= 1;
  if (cap !== undefined && (typeof cap !== "object" || cap === null || !count(cap.total) || !count(cap.perAddress))) {
    throw new TypeError("createServer: maxUnauthenticated must be { total, perAddress }, whole numbers from 1");
  }
}

/** exit()'s status, an SSH uint32; anything else is the caller's mistake, not a success. */
function exitStatusOf(code: unknown): number {
  if (typeof code !== "number" || !Number.isInteger(code) || code < 0 || code > 0xffffffff) {
    throw new TypeError(`exit: the status must be a whole number from 0 to 4294967295, not ${String(code)}`);
  }
  return code;
}

/**
 * signal()'s signal: "TERM" or "SIGTERM", any the system knows. One SSH has no name for (SYS,
 * XCPU, ...) gives the client no exit status at all, as a child killed by it does in Dropbear.
 */
function signalNumberOf(name: unknown): number {
  const n = typeof name === "string" ? (constants.signals as Record<string, number | undefined>)[`SIG${name.replace(/^SIG/, "")}`] : undefined;
  if (n === undefined) {
    throw new TypeError(`signal: not a signal name: ${String(name)}`);
  }
  return n;
}

/**
 * The fd of a child's stdout or stderr pipe (Node's pipe handle knows it but does not export it);
 * -1 once the handle is gone, which poll() reports as nothing to read.
 */
function pipeFd(stream: Readable): number {
  return (stream as unknown as { _handle?: { fd?: number } | null })._handle?.fd ?? -1;
}

/**
 * Whether a child's pipe may still hold output in the kernel. Where poll() cannot be called (the
 * FFI library failed to load, out of fds), it may: the pipe is then read to its end, as before.
 */
function unreadInPipe(stream: Readable): boolean {
  try {
    return kernelReadable(pipeFd(stream));
  } catch {
    return true;
  }
}

/** An SSH server for this process; call listen() to start serving. Throws on bad options or host keys. */
export function createServer(options: ServerOptions): Server {
  return new Server(options);
}

/**
 * runShellCommand's arguments to /bin/sh. Node's spawn passes arguments and the environment as
 * UTF-8 strings, so a command or env value that is not UTF-8 (a Latin-1 file name) would reach
 * the shell as U+FFFD: then sh rebuilds it from printf escapes (ASCII) and evaluates it, as
 * `sh -c` would run it ($0 /bin/sh, no other arguments).
 */
function shellArgs(session: ServerSession): string[] {
  const whole = session.commandBytes ?? (session.command === null ? null : Buffer.from(session.command, "utf8"));
  // Cut at a NUL, as Dropbear's C string is when it execs the shell: spawn refuses a NUL.
  const nul = whole === null ? -1 : whole.indexOf(0);
  const cmd = whole !== null && nul >= 0 ? whole.subarray(0, nul) : whole;
  const oddEnv = Object.entries(session.envBytes ?? {}).filter(([k, v]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !isUtf8(v));
  if ((cmd === null || isUtf8(cmd)) && oddEnv.length === 0) {
    return cmd === null ? [] : ["-c", cmd.toString("utf8")];
  }
  const lines = oddEnv.map(([k, v]) => `${shAssignBytes(k, v)}; export ${k}`);
  if (cmd === null) {
    lines.push("exec /bin/sh");
    return ["-c", lines.join("\n"), "/bin/sh"];
  }
  // The command's escapes (four characters a byte) go as arguments of their own, each well
  // under Linux's limit for one argument (MAX_ARG_STRLEN, 128 KiB): in the -c string, a command
  // past 32 KiB failed with E2BIG where dropbear runs up to MAX_EXEC_CMD_LEN.
  const chunks: string[] = [];
  for (let at = 0; at < cmd.length; at += SH_CHUNK_BYTES) {
    chunks.push(printfEscapes(cmd.subarray(at, at + SH_CHUNK_BYTES)));
  }
  lines.push('_dbts_cmd=; for _dbts_a; do _dbts_a="$(printf "$_dbts_a"; echo x)"; _dbts_cmd="$_dbts_cmd${_dbts_a%x}"; done; set --; eval "$_dbts_cmd"');
  return ["-c", lines.join("\n"), "/bin/sh", ...chunks];
}

/** Command bytes per argument of shellArgs' escapes: 64 KiB of escapes each. */
const SH_CHUNK_BYTES = 16 * 1024;

/**
 * A session handler that runs the request with `/bin/sh -c COMMAND` (a shell: `/bin/sh`) as
 * this process's user, in its home directory, with our environment plus the client's env; its
 * output, exit status or signal go back to the client. No pty: a requested one is ignored.
 */
export function runShellCommand(session: ServerSession): void {
  const args = shellArgs(session);
  // Its own session and process group (setsid, as Dropbear's child gets), so a hang-up reaches
  // whatever the command started too.
  const child = spawn("/bin/sh", args, { cwd: homedir(), env: { ...process.env, ...session.env }, stdio: ["pipe", "pipe", "pipe"], detached: true });
  let ended = false;
  // First: spawn reports its failures as an 'error' event, which with no listener would end
  // the whole process.
  child.on("error", (e) => {
    if (!ended) {
      ended = true;
      session.stderr.write(`/bin/sh: ${e.message}\n`);
      session.exit(127);
    }
  });
  if (!child.stdin || !child.stdout || !child.stderr) {
    // Out of descriptors (EMFILE, ENFILE): no pipes and no child. Refused, as Dropbear refuses
    // the request when its pipe() or fork() fails; the 'error' that follows is ours to drop.
    ended = true;
    throw new Error(`cannot run /bin/sh: no descriptors left for its pipes`);
  }
  child.stdin.on("error", () => {
    // The command stopped reading (EPIPE): what the client sends is dropped.
  });
  session.stdin.pipe(child.stdin);
  child.stdout.pipe(session.stdout, { end: false });
  child.stderr.pipe(session.stderr, { end: false });
  // The client's CLOSE while the command runs ends the session's reading of its output (the
  // daemon closes the command's pipes then, docs/deviations.md), which destroys these streams
  // before exit(). The pipe() above then only stops, and a command that writes on (`yes`) would
  // wait on its full pipe for ever, the channel waiting for its exit: its pipes close here too,
  // so its next write fails (SIGPIPE, or ECONNRESET on the socket pair Node's spawn gives it) and
  // its end is reported, as under the daemon.
  for (const [ours, theirs] of [
    [session.stdout, child.stdout],
    [session.stderr, child.stderr],
  ] as const) {
    ours.once("close", () => {
      if (!ended) {
        theirs.destroy();
      }
    });
  }
  const report = (code: number | null, signal: NodeJS.Signals | null): void => {
    if (ended) {
      return;
    }
    ended = true;
    if (signal !== null) {
      session.signal(signal);
    } else {
      session.exit(code ?? 1);
    }
  };
  child.on("close", report);
  // A background job that inherited the command's stdout or stderr keeps them open after the
  // command has exited, so "close" waits for the job. Dropbear does not: once its child has
  // exited it sends what can still be read and then closes (check_close's flushing), so the
  // status follows the command. Likewise here: once nothing the command wrote is left in the
  // pipes, ours or the kernel's, they are closed (the job's next write gets EPIPE, as under
  // Dropbear) and the status is sent.
  child.on("exit", (code, signal) => {
    const outputs = [child.stdout, child.stderr];
    const check = (): void => {
      if (ended) {
        return;
      }
      if (outputs.some((s) => !s.destroyed && (s.readableLength > 0 || unreadInPipe(s)))) {
        return;
      }
      for (const s of outputs) {
        s.off("data", recheck);
        s.destroy();
      }
      report(code, signal);
    };
    // What is left arrives as 'data' (also once a client's back pressure lets it flow), and
    // libuv may still be reading the rest of it then: look again after that read.
    const recheck = (): void => void setImmediate(check);
    for (const s of outputs) {
      s.on("data", recheck);
    }
    check();
  });
  session.onSignal = (name) => {
    child.kill(`SIG${name}` as NodeJS.Signals);
  };
  session.onClose = () => {
    if (!ended && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGHUP");
      } catch {
        // The group is gone already.
      }
    }
    // Nothing reads or writes for the channel any more: a process that ignores the hang-up
    // keeps running, but holds nothing of ours open.
    child.stdin.destroy();
    child.stdout.destroy();
    child.stderr.destroy();
    child.unref();
  };
}
