// The library's client: dbclient's session (cli_session, the same loop and functions) driven
// from code. What dbclient takes from its command line comes from connect()'s options; what it
// does once authenticated (a session channel on stdio, -L, -R) the caller asks for by method,
// and each request runs inside a loop turn, as dbclient's own do.
// The declarations name Node's types (Buffer, node:stream): kept in client.d.ts, this directive
// loads @types/node for a user whose tsconfig does not list it (TypeScript 6's `types` is []).
/// <reference types="node" preserve="true" />
import { EventEmitter } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Server, Socket, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex, Readable, Writable } from "node:stream";
import { cliAgentOps } from "@dropbear-ts/agentfwd";
import { algo_tables_new } from "@dropbear-ts/algo";
import { cliPrivkeys } from "@dropbear-ts/auth";
import { cliOpenStreamSess, cliStreamSessSignal, cliStreamSessWinchange, signames, type CliChansessRequest } from "@dropbear-ts/chansession";
import { cli_session, cli_session_new } from "@dropbear-ts/dbclient";
import { OUR_TRANS_MAX_PAYLOAD_LEN, TCPFwdEntry, cli_runopts, cli_state, runopts, type Channel, type StreamChannel, type CliSession } from "@dropbear-ts/core";
import { DropbearExit, QuietExit, bytesText, list_append, outOfResources, withLogHandler } from "@dropbear-ts/dbutil";
import { StreamFd } from "@dropbear-ts/netio";
import { DROPBEAR_CLI_COMPRESSION, DROPBEAR_FAILURE, MAX_CHANNELS } from "@dropbear-ts/options";
import { loadidentityfile, parse_ciphers_macs, user_algo_option } from "@dropbear-ts/runopts";
import { session_cleanup } from "@dropbear-ts/session-loop";
import { cliOpenStreamDirect, cli_localtcp, send_msg_global_request_remotetcp } from "@dropbear-ts/tcpfwd";
import { duplexOf, handlesGone, isThenable, logHandlerFor, streamPipe, thrownText, unknownOption, type Logger, type OptionNames } from "./common.js";

/** Decides on the server's host key: its wire blob, algorithm name and SHA-256 fingerprint. */
export type HostKeyVerifier = (key: { blob: Buffer; algorithm: string }, fingerprint: string) => boolean | PromiseLike<boolean>;

export interface ConnectOptions {
  host: string;
  /** Default 22. */
  port?: number;
  /** A Buffer sends its bytes as they are (an account named in Latin-1); a string goes as UTF-8. */
  username: string | Buffer;
  /** A private key's contents (Dropbear or OpenSSH format, OpenSSH ones possibly encrypted). */
  privateKey?: string | Buffer;
  /** Private key files (Dropbear or OpenSSH format). */
  privateKeyPath?: string | readonly string[];
  /** Decrypts encrypted OpenSSH keys. */
  passphrase?: string;
  /** An ssh-agent's socket for publickey auth; true is $SSH_AUTH_SOCK. */
  agent?: string | boolean;
  password?: string;
  /**
   * How the server's host key is checked: against a known_hosts file (an unknown host is
   * refused, never added), by a callback, or not at all (false). Default: ~/.ssh/known_hosts.
   */
  hostKey?: { knownHostsPath: string } | HostKeyVerifier | false;
  /**
   * Key exchange methods to offer, in order of preference (dbclient -o KexAlgorithms=); default:
   * Dropbear's order, sntrup761x25519-sha512 first. "curve25519-sha256" alone costs the event loop
   * the least per connection (node:crypto's X25519, no post-quantum key pair to make).
   */
  kex?: readonly string[];
  /**
   * Host key algorithms to accept, in order of preference (dbclient -o HostKeyAlgorithms=), e.g.
   * ["rsa-sha2-256"] for a server's RSA key; default: Dropbear's order, ssh-ed25519 first.
   */
  hostKeyAlgorithms?: readonly string[];
  /** Ciphers to offer, in order of preference (dbclient -c); default: all of Dropbear's order. */
  ciphers?: readonly string[];
  /** MACs to offer, in order of preference (dbclient -m). */
  macs?: readonly string[];
  /**
   * Follow our KEXINIT with a guessed first key exchange packet (Dropbear's
   * first_kex_packet_follows, left out of dbclient): a round trip less against OpenSSH and
   * Dropbear servers, but a server that mishandles a wrong guess (paramiko's) fails. Default false.
   */
  kexGuess?: boolean;
  /** Seconds between keepalives when the connection is quiet (dbclient -K); 0 or absent: none. */
  keepaliveInterval?: number;
  /** Seconds without traffic after which the session ends (dbclient -I); 0 or absent: never. */
  idleTimeout?: number;
  /** Milliseconds to reach an authenticated session before connect() gives up; 0 or absent: no limit (as dbclient). */
  readyTimeout?: number;
  /** Aborting it before connect() resolves gives up connecting. */
  signal?: AbortSignal;
  /** Receives the session's log lines; by default nothing is logged. */
  logger?: Logger;
}

/** connect()'s option names. */
const CONNECT_OPTIONS: OptionNames<ConnectOptions> = {
  host: true,
  port: true,
  username: true,
  privateKey: true,
  privateKeyPath: true,
  passphrase: true,
  agent: true,
  password: true,
  hostKey: true,
  kex: true,
  hostKeyAlgorithms: true,
  ciphers: true,
  macs: true,
  kexGuess: true,
  keepaliveInterval: true,
  idleTimeout: true,
  readyTimeout: true,
  signal: true,
  logger: true,
};

/** How a remote command ended: its exit status, or the signal that killed it. */
export type ExitInfo = { code: number } | { signal: string; coreDumped: boolean };

export interface ExecOptions {
  /** A pty of this terminal type and size (default: none). */
  pty?: boolean | { term?: string; cols?: number; rows?: number };
  /** Environment variables sent before the command (servers accept only those they allow); a Buffer value goes as its bytes. */
  env?: Record<string, string | Buffer>;
}

const EXEC_OPTIONS: OptionNames<ExecOptions> = { pty: true, env: true };
const PTY_OPTIONS: OptionNames<Exclude<ExecOptions["pty"], boolean | undefined>> = { term: true, cols: true, rows: true };

/** A remote command or shell: its three streams, and how it ended. */
export interface ClientChannel {
  /** The remote stdin: end() sends EOF. */
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Settles once the channel is gone; rejects if the server refused it or the session ended first. */
  exit: Promise<ExitInfo>;
  /** Tell the server's pty the new size. */
  setWindow(cols: number, rows: number): void;
  /**
   * Ask the server to send the command a signal ("TERM" or "SIGTERM", ...; RFC 4254's names
   * and BUS, TRAP). Servers may refuse it (OpenSSH's sshd takes it since 7.9, Dropbear's too).
   */
  signal(name: string): void;
}

export interface ForwardOptions {
  /** Default "localhost" (as dbclient -L / -R). */
  listenHost?: string;
  /** 0 picks a free port, reported in the answer. */
  listenPort: number;
  host: string;
  port: number;
}

const FORWARD_OPTIONS: OptionNames<ForwardOptions> = { listenHost: true, listenPort: true, host: true, port: true };

// The session's own failures get their code where they are raised (DropbearExit's kind, an
// ExitKind: asSshError's assignment holds that set to a part of this one); the rest are the
// library's. (Not in the doc comment: it ships in the package's declarations.)
/**
 * What kind of failure an SshError is, for a program to act on (the messages are dbclient's
 * words, for people). A closed set: see docs/library.md, "Error codes".
 */
export type SshErrorCode =
  /** The TCP connection could not be made (refused, unreachable, no such host). */
  | "ECONNECT"
  /** The server's host key was not accepted: refused by the callback (or it threw), not in known_hosts, a different key listed, revoked, or its signature did not verify. */
  | "EHOSTKEY"
  /** Authentication failed: no method left to try, the password refused, a bad PK_OK. */
  | "EAUTH"
  /** A private key could not be loaded: a missing file, a key that does not parse or cannot be decrypted. */
  | "EKEYFILE"
  /** No algorithm in common with the server (kex, host key, cipher, MAC, compression). */
  | "EKEX"
  /** The server broke the protocol: a bad or unexpected packet, a failed integrity check, a version we cannot speak. */
  | "EPROTOCOL"
  /** The connection ended: the server closed or reset it or sent a disconnect, or end() was called. */
  | "ECLOSED"
  /** readyTimeout, idleTimeout or the keepalive timeout ran out. */
  | "ETIMEOUT"
  /** The signal given to connect() was aborted. */
  | "EABORTED"
  /** A channel, request or forward asked for was refused or could not be made. */
  | "ECHANNEL"
  /** An option given to connect() is wrong: its type, its value, an unknown algorithm. */
  | "EOPTION"
  /** The process ran out of descriptors or memory the session needed (EMFILE, ENFILE, ENOMEM): the cause is the system's error. */
  | "ERESOURCE"
  /** An unexpected error inside the library (a bug): the cause, if any, is the original error. */
  | "EINTERNAL";

/** The library's error: the message is dbclient's exit reason ("Connect failed: ...", "No auth methods could be used."). */
export class SshError extends Error {
  override name = "SshError";
  /** What kind of failure it is (the message may change between versions; the code does not). */
  readonly code: SshErrorCode;
  /**
   * The error underneath (a callback's, the system's), when there is one. Declared here as
   * well: ES2021's lib, which a user's may be, has no Error.cause.
   */
  declare readonly cause?: unknown;

  // Not ErrorOptions: that type is ES2022's lib, which a user's older `lib` lacks.
  constructor(message: string, code: SshErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** The same failure again, for another promise that it ends. */
function again(e: SshError): SshError {
  return new SshError(e.message, e.code, { cause: e.cause });
}

/** connect()'s signal was aborted: its reason is the cause, as Node's own AbortErrors carry it. */
function abortedBy(signal: AbortSignal | undefined): SshError {
  return new SshError("connect: aborted", "EABORTED", { cause: signal?.reason });
}

/** An SshError for an error that is not one, given as its cause. */
function causedBy(e: unknown, code: SshErrorCode): SshError {
  return new SshError(thrownText(e), code, e instanceof Error ? { cause: e } : undefined);
}

/**
 * What the caller is given for a failure: an SshError, with any other error as its cause. A
 * DropbearExit carries the kind its raising site gave; one without is `untagged` (in a running
 * session: the peer broke the protocol).
 */
function asSshError(e: unknown, untagged: SshErrorCode = "EPROTOCOL"): SshError {
  if (e instanceof SshError) {
    return e;
  }
  if (e instanceof DropbearExit) {
    // dbclient's host key warnings open with blank lines, for the terminal.
    return new SshError(e.exitmsg.trim(), e.kind ?? untagged);
  }
  // Out of descriptors, any file the session opens fails, the library's own modules loaded on
  // first use among them: the process's limit, not a bug of ours.
  return causedBy(e, outOfResources(e) !== null ? "ERESOURCE" : "EINTERNAL");
}

/** Work for a loop turn, and how to fail it if the session ends before it runs. */
interface Action {
  run: (ses: CliSession) => void | Promise<void>;
  fail: (error: Error) => void;
}

/** The events of a Client and their listeners. */
export interface ClientEvents {
  close: (error: SshError | null) => void;
  error: (error: SshError) => void;
}

/** The events of a Client, typed, for adding and removing listeners alike. */
export interface Client {
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  addListener<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  prependListener<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  prependOnceListener<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  removeListener<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
}

/** The key that lets connect(), and nothing else, make a Client. */
const MADE_BY_CONNECT = Symbol("connect");

/**
 * An SSH connection. Events: "close" once the session is gone (after end() or when it fails,
 * with the error, if any); "error" with an SshError when it fails after connect() resolved
 * (emitted only if someone listens, so an unwatched failure cannot crash the program).
 */
export class Client extends EventEmitter {
  readonly #ses: CliSession;
  #actions: Action[] = [];
  #ending = false;
  #gone: SshError | null = null;
  readonly #closed: Promise<void>;
  /** @internal What end() waits to see closed. */
  handles: Handle[] = [];

  /** Only connect() makes one: `new Client()` has no session to drive. */
  private constructor(token: symbol, ses: CliSession, closed: Promise<void>) {
    super();
    if (token !== MADE_BY_CONNECT) {
      throw new TypeError("Client: made by connect(), not by new");
    }
    this.#ses = ses;
    this.#closed = closed;
  }

  /** @internal connect()'s way to make one. */
  static fromSession(ses: CliSession, closed: Promise<void>): Client {
    return new Client(MADE_BY_CONNECT, ses, closed);
  }

  /** @internal The loop turn's hook: start what the caller asked for, or end the session. */
  runActions(ses: CliSession): void | Promise<void> {
    if (this.#ending) {
      // As cli_finished ends dbclient's session, without an exit status to report; channels
      // still open report why they closed.
      this.sessionGone(new SshError("Client ended", "ECLOSED"));
      this.handles = sessionHandles(ses);
      session_cleanup(ses);
      throw new QuietExit(0);
    }
    const actions = this.#actions;
    if (actions.length === 0) {
      return;
    }
    this.#actions = [];
    let chain: Promise<void> | null = null;
    for (const [i, act] of actions.entries()) {
      // An action that fails ends the session: it hears why, and what was queued after it
      // goes back to be failed with the session's reason, so every promise settles.
      const failed = (e: unknown): never => {
        act.fail(asSshError(e));
        this.#actions.unshift(...actions.slice(i + 1));
        throw e;
      };
      const run = (): void | Promise<void> => {
        try {
          const r = act.run(ses);
          return r instanceof Promise ? r.catch(failed) : r;
        } catch (e) {
          return failed(e);
        }
      };
      chain = chain === null ? (run() ?? null) : chain.then(run);
    }
    return chain ?? undefined;
  }

  /** @internal The session ended: everything still waiting fails, with the first reason given. */
  sessionGone(error: SshError | null): void {
    const gone = this.#gone ?? error ?? new SshError("Client closed", "ECLOSED");
    this.#gone = gone;
    const dropped = this.#actions;
    this.#actions = [];
    for (const act of dropped) {
      act.fail(again(gone));
    }
  }

  /** The session's reason when it has ended (a copy for this caller), else `otherwise`. */
  #endedOr(otherwise: SshError): SshError {
    return this.#gone !== null ? again(this.#gone) : otherwise;
  }

  /** Queue work for the next loop turn (`fail` if the session ends first), and wake the loop. */
  #enqueue(run: Action["run"], fail: Action["fail"] = () => {}): void {
    if (this.#gone !== null || this.#ending) {
      throw this.#endedOr(new SshError("Client is ending", "ECLOSED"));
    }
    this.#actions.push({ run, fail });
    this.#ses.signal_pipe?.raise();
  }

  /**
   * Run a command (exec request), with an optional pty and environment. A Buffer is sent as
   * its bytes (a file name that is not UTF-8), a string as UTF-8.
   */
  exec(command: string | Buffer, options: ExecOptions = {}): ClientChannel {
    return this.#session(command, options);
  }

  /** Start the user's shell, by default with an 80x24 xterm pty (`pty: false` for none). */
  shell(options: ExecOptions = {}): ClientChannel {
    // (Not an object: #session says so.)
    return this.#session(null, isPlainObject(options) ? { ...options, pty: options.pty ?? true } : options);
  }

  /** Start a subsystem (e.g. "sftp"), as dbclient -s does. */
  subsystem(name: string, options: ExecOptions = {}): ClientChannel {
    return this.#session(name, options, true);
  }

  #session(cmd: string | Buffer | null, options: ExecOptions, is_subsystem = false): ClientChannel {
    // Checked here, as the call's TypeError: a bad value found in the loop would end the session.
    if (cmd !== null && typeof cmd !== "string" && (is_subsystem || !Buffer.isBuffer(cmd))) {
      throw new TypeError(`${is_subsystem ? "subsystem" : "exec"}: the ${is_subsystem ? "name" : "command"} must be a string${is_subsystem ? "" : " or a Buffer"}`);
    }
    const what = is_subsystem ? "subsystem" : cmd === null ? "shell" : "exec";
    if (!isPlainObject(options)) {
      throw new TypeError(`${what}: options must be an object`);
    }
    const unknown = unknownOption(options, EXEC_OPTIONS) ?? (isPlainObject(options.pty) ? unknownOption(options.pty as object, PTY_OPTIONS) : null);
    if (unknown !== null) {
      throw new TypeError(`${what}: unknown option '${unknown}'`);
    }
    if (options.env !== undefined && !isPlainObject(options.env)) {
      throw new TypeError(`${what}: env must be an object of names and values`);
    }
    if (options.pty !== undefined && typeof options.pty !== "boolean" && !isPlainObject(options.pty)) {
      throw new TypeError(`${what}: pty must be true, false or { term, cols, rows }`);
    }
    fitsOnePacket(what, cmd ?? "");
    for (const [k, v] of Object.entries(options.env ?? {})) {
      if (typeof v !== "string" && !Buffer.isBuffer(v)) {
        throw new TypeError(`env ${k}: the value must be a string or a Buffer`);
      }
      fitsOnePacket(`${what}: env`, k, v);
    }
    if (typeof options.pty === "object" && options.pty !== null) {
      const { term, cols, rows } = options.pty;
      if ((term !== undefined && typeof term !== "string") || ![cols, rows].every((n) => n === undefined || isWindowSize(n))) {
        throw new TypeError("pty: term must be a string, cols and rows whole numbers");
      }
      fitsOnePacket(`${what}: pty`, term ?? "");
    }
    const stdin = streamPipe();
    const stdout = streamPipe();
    const stderr = streamPipe();
    const p = options.pty === undefined || options.pty === false ? null : options.pty === true ? {} : options.pty;
    let channel: Channel | null = null;
    let settle!: { resolve: (e: ExitInfo) => void; reject: (e: Error) => void };
    const exit = new Promise<ExitInfo>((resolve, reject) => (settle = { resolve, reject }));
    // Unobserved, a refused channel must not become an unhandled rejection.
    exit.catch(() => {});
    const req: CliChansessRequest = {
      readfd: new StreamFd(stdin.readable),
      writefd: new StreamFd(stdout.writable),
      errfd: new StreamFd(stderr.writable),
      opened: false,
      cmd,
      is_subsystem,
      pty: p === null ? null : { term: p.term ?? "xterm", cols: p.cols ?? 80, rows: p.rows ?? 24 },
      env: Object.entries(options.env ?? {}),
      exitstatus: null,
      exitsignal: null,
      start: "unsent",
      signals: [],
      onopen: () => {},
      onclose: () => {
        channel = null;
        // A refusal first: ProFTPD's mod_sftp refuses a command it does not run, then sends an
        // exit-status of 0 for it.
        if (req.start === "refused") {
          settle.reject(new SshError(`${what} request refused by the server`, "ECHANNEL"));
        } else if (req.exitsignal !== null) {
          settle.resolve({ signal: req.exitsignal.signal, coreDumped: req.exitsignal.core_dumped });
        } else if (req.exitstatus !== null) {
          settle.resolve({ code: req.exitstatus });
        } else {
          // A session that ended under the channel says why.
          settle.reject(
            this.#endedOr(new SshError(req.opened ? "Channel closed without an exit status" : refusal("Channel open refused", req.refused), "ECHANNEL")),
          );
        }
      },
    };
    // A channel that never comes to be (no slot left, or the session ended first) closes its
    // streams as a channel's removal would: stdout and stderr end, stdin's writes fail. Left
    // open, a pipeline from stdout or into stdin waited for ever.
    const abandon = (e: Error): void => {
      req.readfd.close();
      req.writefd.close();
      req.errfd?.close();
      settle.reject(e);
    };
    this.#enqueue(
      (ses) => {
        if (cliOpenStreamSess(ses, req) === DROPBEAR_FAILURE) {
          abandon(tooManyChannels());
          return;
        }
        channel = findChannel(ses, req);
      },
      abandon,
    );
    return {
      stdin: stdin.writable,
      stdout: stdout.readable,
      stderr: stderr.readable,
      exit,
      setWindow: (cols, rows) => {
        if (!isWindowSize(cols) || !isWindowSize(rows)) {
          throw new TypeError("setWindow: cols and rows must be whole numbers from 0 to 4294967295");
        }
        this.#enqueue((ses) => {
          if (channel !== null && req.opened) {
            cliStreamSessWinchange(ses, channel, cols, rows);
          } else if (req.pty !== null && req.start === "unsent") {
            // The channel is not open yet: its pty-req will ask for this size.
            req.pty = { ...req.pty, cols, rows };
          }
        });
      },
      signal: (name) => {
        const bare = typeof name === "string" ? name.replace(/^SIG/, "") : "";
        if (!signames.some((s) => s.name === bare)) {
          throw new TypeError(`signal: not a signal SSH names: ${String(name)}`);
        }
        this.#enqueue((ses) => {
          if (channel !== null && req.start === "accepted") {
            cliStreamSessSignal(ses, channel, bare);
          } else if (req.start === "unsent" || req.start === "sent") {
            // No command yet: it follows the server's acceptance of the start request.
            req.signals.push(bare);
          }
        });
      },
    };
  }

  /**
   * A direct-tcpip channel: the server connects to dstHost:dstPort, and the returned stream
   * carries that connection (srcHost:srcPort is what the server is told the originator is).
   */
  forwardOut(srcHost: string, srcPort: number, dstHost: string, dstPort: number): Promise<Duplex> {
    if (typeof srcHost !== "string" || typeof dstHost !== "string" || !isPort(srcPort) || !isPort(dstPort)) {
      throw new TypeError("forwardOut: hosts must be strings, ports whole numbers up to 65535");
    }
    fitsOnePacket("forwardOut", srcHost, dstHost);
    const toServer = streamPipe();
    const fromServer = streamPipe();
    return new Promise<Duplex>((resolve, reject) => {
      const sc: StreamChannel = {
        readfd: new StreamFd(toServer.readable),
        writefd: new StreamFd(fromServer.writable),
        errfd: null,
        opened: false,
        onopen: () => resolve(duplexOf(fromServer.readable, toServer.writable)),
        onclose: () => {
          if (!sc.opened) {
            reject(this.#endedOr(new SshError(`${refusal("Channel open refused", sc.refused)} (direct-tcpip to ${dstHost}:${dstPort})`, "ECHANNEL")));
          }
        },
      };
      this.#enqueue((ses) => {
        if (cliOpenStreamDirect(ses, sc, dstHost, dstPort, srcHost, srcPort) === DROPBEAR_FAILURE) {
          reject(tooManyChannels(` (direct-tcpip to ${dstHost}:${dstPort})`));
        }
      }, reject);
    });
  }

  /**
   * dbclient's -L: listen on listenHost:listenPort and forward each connection to host:port
   * through the server. Resolves once listening, with the address bound (the port picked for 0).
   */
  forwardLocal(fwd: ForwardOptions): Promise<{ host: string; port: number }> {
    const { listenHost, listenPort, host, port } = forwardArgs("forwardLocal", fwd);
    return new Promise((resolve, reject) => {
      this.#enqueue(async (ses) => {
        // As setup_localtcp does for each -L.
        const entry = new TCPFwdEntry();
        entry.listenaddr = listenHost;
        entry.listenport = listenPort;
        entry.connectaddr = host;
        entry.connectport = port;
        list_append(ses.cli_ses.cli_opts.localfwds, entry);
        const listener = await cli_localtcp(ses, entry.listenaddr, entry.listenport, entry.connectaddr, entry.connectport);
        if (listener === null) {
          reject(new SshError(`Failed local port forward ${listenHost}:${listenPort}:${host}:${port}`, "ECHANNEL"));
          return;
        }
        const bound = listener.socks[0]!.server.address() as AddressInfo;
        resolve({ host: listenHost, port: bound.port });
      }, reject);
    });
  }

  /**
   * dbclient's -R: ask the server to listen on listenHost:listenPort and forward connections
   * back to host:port from here. Resolves with the port the server bound (its pick for 0).
   */
  forwardRemote(fwd: ForwardOptions): Promise<{ port: number }> {
    const { listenHost, listenPort, host, port } = forwardArgs("forwardRemote", fwd);
    return new Promise((resolve, reject) => {
      const entry = new TCPFwdEntry();
      entry.listenaddr = listenHost;
      entry.listenport = listenPort;
      entry.connectaddr = host;
      entry.connectport = port;
      // The answer comes in a later packet; a loop turn after it sees have_reply.
      const watch: Action = {
        run: () => {
          if (this.#gone !== null) {
            reject(again(this.#gone));
          } else if (!entry.have_reply) {
            this.#actions.push(watch);
          } else if (entry.refused) {
            reject(new SshError(`Remote TCP forward request failed (port ${listenPort} -> ${host}:${port})`, "ECHANNEL"));
          } else {
            resolve({ port: entry.listenport });
          }
        },
        fail: reject,
      };
      this.#enqueue((ses) => {
        // As setup_remotetcp does for each -R.
        list_append(ses.cli_ses.cli_opts.remotefwds, entry);
        entry.globalreq = send_msg_global_request_remotetcp(ses, listenHost, listenPort);
        this.#actions.push(watch);
      }, reject);
    });
  }

  /** End the session (channels, forwards and the connection); resolves once it is all closed. */
  end(): Promise<void> {
    if (this.#gone === null && !this.#ending) {
      this.#ending = true;
      this.#ses.signal_pipe?.raise();
    }
    return this.#closed;
  }
}

/** A TCP port a forward may name: a whole number from 0 to 65535. */
function isPort(p: unknown): p is number {
  return typeof p === "number" && Number.isInteger(p) && p >= 0 && p <= 65535;
}

/**
 * A channel we could not open ourselves: every slot of the session is taken (Dropbear's
 * newchannel() stops at MAX_CHANNELS, before anything is sent). Not the server's refusal.
 * `what` follows the reason, as the forwards name their target.
 */
function tooManyChannels(what = ""): SshError {
  return new SshError(`Channel open failed: too many channels (at most ${MAX_CHANNELS} at once)${what}`, "ECHANNEL");
}

/** "Channel open refused", with the server's reason when it gave one. */
function refusal(what: string, reason: string | undefined): string {
  return reason === undefined ? what : `${what}: ${reason}`;
}

/** A terminal width or height as SSH carries it: a uint32. */
function isWindowSize(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/** An options object: not null, an array or a string, whose entries would be read as options. */
function isPlainObject(o: unknown): boolean {
  return typeof o === "object" && o !== null && !Array.isArray(o);
}

/**
 * A forward's arguments, checked as the call's TypeError: a bad value found in the loop would
 * end the session (a number where a host belongs) or be sent to the server (a negative port).
 */
function forwardArgs(what: string, fwd: ForwardOptions): Required<ForwardOptions> {
  const unknown = isPlainObject(fwd) ? unknownOption(fwd, FORWARD_OPTIONS) : null;
  if (unknown !== null) {
    throw new TypeError(`${what}: unknown option '${unknown}'`);
  }
  const { listenHost = "localhost", listenPort, host, port } = (fwd ?? {}) as Partial<ForwardOptions>;
  if (typeof listenHost !== "string" || typeof host !== "string" || !isPort(listenPort) || !isPort(port)) {
    throw new TypeError(`${what}: listenHost and host must be strings, listenPort and port whole numbers up to 65535`);
  }
  fitsOnePacket(what, listenHost, host);
  return { listenHost, listenPort, host, port };
}

/** The most string bytes one request may carry: our largest payload, less room for the message's other fields. */
const REQUEST_STRINGS_MAX = OUR_TRANS_MAX_PAYLOAD_LEN - 256;

/** Room in a publickey auth request for the key and its signature: an RSA key of 16384 bits needs about 2 KiB for each. */
const AUTH_KEY_ROOM = 8 * 1024;

/** The strings one request carries must fit in the packet being built: found too long in the loop, they would end the session. */
function fitsOnePacket(what: string, ...strings: (string | Buffer)[]): void {
  const bytes = strings.reduce((n, str) => n + Buffer.byteLength(str, "utf8"), 0);
  if (bytes > REQUEST_STRINGS_MAX) {
    throw new TypeError(`${what}: ${bytes} bytes of arguments do not fit in one SSH packet (at most ${REQUEST_STRINGS_MAX})`);
  }
}

/** A socket or listening server: its handle closes some time after close()/destroy(). */
type Handle = Socket | Server;

/** The transport, listeners and forwarded connections of a session, taken before its cleanup closes them. */
function sessionHandles(ses: CliSession): Handle[] {
  const out = new Set<Handle>();
  const add = (fd: unknown): void => {
    if (fd instanceof StreamFd && fd.stream instanceof Socket) {
      out.add(fd.stream);
    }
  };
  add(ses.sock_in);
  add(ses.sock_out);
  for (const pending of ses.conn_pending) {
    add(pending.sock);
  }
  for (const l of ses.listeners) {
    for (const sock of l?.socks ?? []) {
      out.add(sock.server);
    }
  }
  for (const ch of ses.channels) {
    if (ch) {
      add(ch.readfd);
      add(ch.writefd);
      add(ch.errfd);
    }
  }
  return [...out];
}

/** Wait until each handle has closed; one that lingers (unflushed to a peer that reads nothing) is destroyed after 2 s. */
function handlesClosed(handles: readonly Handle[]): Promise<void> {
  return Promise.all(
    handles.map(
      (h) =>
        new Promise<void>((resolve) => {
          // A server taken from the listener table was open then: its "close" is still to come.
          if (h instanceof Socket && h.closed) {
            resolve();
            return;
          }
          const timer = setTimeout(() => {
            if (h instanceof Socket) {
              // Its last bytes cannot leave (a peer not reading): dropped, and its "close" follows.
              h.destroy();
            } else {
              resolve();
            }
          }, 2000);
          h.once("close", () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  )
    // A socket destroyed before we looked is `closed`, its handle not yet; nor a listener's.
    .then(handlesGone);
}

/** The channel a request was just opened on (send_msg_channel_open_init does not return it). */
function findChannel(ses: CliSession, typedata: unknown): Channel | null {
  return ses.channels.find((c) => c?.typedata === typedata) ?? null;
}

/**
 * connect()'s options of the wrong type fail before anything starts, rather than being dropped
 * (a passphrase that is not a string, a hostKey that names no check, which fell back to
 * ~/.ssh/known_hosts) or failing later in Node's own words.
 */
function checkOptionTypes(options: ConnectOptions): void {
  const o = options as unknown as Record<string, unknown>;
  const hk = o.hostKey;
  const paths = o.privateKeyPath;
  const ok: Record<string, boolean> = {
    password: o.password === undefined || typeof o.password === "string",
    passphrase: o.passphrase === undefined || typeof o.passphrase === "string",
    privateKey: o.privateKey === undefined || typeof o.privateKey === "string" || Buffer.isBuffer(o.privateKey),
    privateKeyPath: paths === undefined || typeof paths === "string" || (Array.isArray(paths) && paths.every((p) => typeof p === "string")),
    agent: o.agent === undefined || typeof o.agent === "string" || typeof o.agent === "boolean",
    hostKey:
      hk === undefined ||
      hk === false ||
      typeof hk === "function" ||
      (typeof hk === "object" && hk !== null && typeof (hk as { knownHostsPath?: unknown }).knownHostsPath === "string"),
    kex: o.kex === undefined || isStringList(o.kex),
    hostKeyAlgorithms: o.hostKeyAlgorithms === undefined || isStringList(o.hostKeyAlgorithms),
    ciphers: o.ciphers === undefined || isStringList(o.ciphers),
    macs: o.macs === undefined || isStringList(o.macs),
    signal: o.signal === undefined || o.signal instanceof AbortSignal,
    logger: o.logger === undefined || typeof o.logger === "function",
  };
  for (const [name, good] of Object.entries(ok)) {
    if (!good) {
      const v = o[name];
      const kind = v === null ? "null" : Array.isArray(v) ? (v.length === 0 ? "an empty list" : "a list not all strings") : typeof v;
      throw new SshError(`connect: bad ${name} (${kind})`, "EOPTION");
    }
  }
}

/** A non-empty array of strings (algorithm names). */
function isStringList(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0 && v.every((n) => typeof n === "string");
}

/** A file holding key material for the duration of authentication (the key loader reads files). */
function keyMaterialFile(material: string | Buffer): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "dropbear-ts-key-"));
  const path = join(dir, "key");
  writeFileSync(path, material, { mode: 0o600 });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Connect, check the host key and authenticate, as dbclient does before it runs anything.
 * Resolves with the Client once authenticated; rejects with an SshError carrying dbclient's
 * reason otherwise (connect failed, host key not accepted, no auth method could be used).
 */
export async function connect(options: ConnectOptions): Promise<Client> {
  if (!isPlainObject(options)) {
    throw new SshError("connect: options must be an object", "EOPTION");
  }
  const log = logHandlerFor(options.logger);
  try {
    return await withLogHandler(log, () => startClient(options));
  } catch (e) {
    // Before the session runs, Dropbear's own checks of what it was given (too many algorithms)
    // fail without a kind: the options' fault.
    throw asSshError(e, "EOPTION");
  }
}

function startClient(options: ConnectOptions): Promise<Client> {
  // A known_hosts file given as an object: its one name is part of the check.
  const unknown = unknownOption(options, CONNECT_OPTIONS) ?? (isPlainObject(options.hostKey) ? unknownOption(options.hostKey as object, { knownHostsPath: true }) : null);
  if (unknown !== null) {
    throw new SshError(`connect: unknown option '${unknown}'`, "EOPTION");
  }
  const port = options.port ?? 22;
  if (typeof options.host !== "string" || options.host === "") {
    throw new SshError("connect: host is required", "EOPTION");
  }
  // The name reaches getaddrinfo as a C string, which would end at the NUL and connect to
  // what comes before it.
  if (options.host.includes("\0")) {
    throw new SshError("connect: bad host (it holds a NUL byte)", "EOPTION");
  }
  if ((typeof options.username !== "string" && !Buffer.isBuffer(options.username)) || options.username.length === 0) {
    throw new SshError("connect: username is required", "EOPTION");
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SshError(`connect: bad port ${typeof port === "string" ? `"${port}" (a string)` : String(port)}`, "EOPTION");
  }
  // 0 is no limit, as for keepaliveInterval and idleTimeout. Node's timers hold at most
  // 2^31-1 ms; a longer one fires at once.
  const readyTimeout = options.readyTimeout === 0 ? undefined : options.readyTimeout;
  if (readyTimeout !== undefined && (!Number.isInteger(readyTimeout) || readyTimeout < 0 || readyTimeout > 0x7fffffff)) {
    throw new SshError(`connect: bad readyTimeout ${String(readyTimeout)}`, "EOPTION");
  }
  checkOptionTypes(options);
  // Every auth request carries the user name beside a password, or a key and its signature:
  // one too long for a packet would end the session later as if the server had broken the
  // protocol ("Bad buf_getwriteptr"), where it is this option's fault.
  const userBytes = Buffer.byteLength(options.username, "utf8");
  if (userBytes + AUTH_KEY_ROOM > REQUEST_STRINGS_MAX) {
    throw new SshError(`connect: username too long (${userBytes} bytes)`, "EOPTION");
  }
  const passwordBytes = Buffer.byteLength(options.password ?? "", "utf8");
  if (userBytes + passwordBytes > REQUEST_STRINGS_MAX) {
    throw new SshError(`connect: password too long (${passwordBytes} bytes)`, "EOPTION");
  }
  if (options.signal?.aborted) {
    throw abortedBy(options.signal);
  }
  const opts = new runopts();
  opts.algos = algo_tables_new();
  opts.compression = DROPBEAR_CLI_COMPRESSION;
  // As -c and -m, but a name we do not have is an error, not a warning.
  const pick = (names: readonly string[] | undefined, table: readonly { name: string }[], what: string): string | null => {
    if (names === undefined) {
      return null;
    }
    const unknown = names.filter((n) => !table.some((a) => a.name === n));
    if (unknown.length > 0) {
      throw new SshError(`connect: unknown ${what} '${unknown.join(",")}'`, "EOPTION");
    }
    return names.join(",");
  };
  opts.cipher_list = pick(options.ciphers, opts.algos.sshciphers, "cipher");
  opts.mac_list = pick(options.macs, opts.algos.sshhashes, "MAC");
  parse_ciphers_macs(opts);
  for (const [name, value] of [
    ["keepaliveInterval", options.keepaliveInterval],
    ["idleTimeout", options.idleTimeout],
  ] as const) {
    // Node's timers hold at most 2^31-1 ms.
    if (value !== undefined && (!Number.isInteger(value) || value < 0 || value * 1000 > 0x7fffffff)) {
      throw new SshError(`connect: bad ${name} ${String(value)}`, "EOPTION");
    }
  }
  opts.keepalive_secs = options.keepaliveInterval ?? opts.keepalive_secs;
  opts.idle_timeout_secs = options.idleTimeout ?? opts.idle_timeout_secs;
  const cli_opts = new cli_runopts();
  cli_opts.progname = "dropbear-ts";
  cli_opts.remotehost = options.host;
  cli_opts.remoteport = String(port);
  // A Buffer's bytes ride in the string as bytesText escapes, which the auth requests send as bytes.
  cli_opts.username = typeof options.username === "string" ? options.username : bytesText(options.username);
  cli_opts.own_user = cli_opts.username;
  // Like dbclient -N: the session lives until end(), whatever channels come and go.
  cli_opts.no_cmd = true;
  cli_opts.wantpty = 0;
  cli_opts.password_authentication = options.password !== undefined;
  // As dbclient -o KexAlgorithms= and -o HostKeyAlgorithms= (which also turn the guess off;
  // kexGuess below may turn it on).
  const kex = pick(options.kex, opts.algos.sshkex.filter((a) => a.data !== null), "kex");
  if (kex !== null) {
    user_algo_option(cli_opts, kex, opts.algos.sshkex, "kex");
  }
  const hostKeyAlgos = pick(options.hostKeyAlgorithms, opts.algos.sigalgs, "host key algorithm");
  if (hostKeyAlgos !== null) {
    user_algo_option(cli_opts, hostKeyAlgos, opts.algos.sigalgs, "host key");
  }
  if (options.kexGuess !== undefined) {
    if (typeof options.kexGuess !== "boolean") {
      throw new SshError(`connect: bad kexGuess ${String(options.kexGuess)}`, "EOPTION");
    }
    cli_opts.kex_first_guess = options.kexGuess;
  }

  let keyfile: { path: string; remove: () => void } | null = null;
  const keypaths = typeof options.privateKeyPath === "string" ? [options.privateKeyPath] : [...(options.privateKeyPath ?? [])];
  for (const path of keypaths) {
    // A key the caller named must be there: fail before connecting, not at auth.
    try {
      readFileSync(path);
    } catch (e) {
      throw new SshError(`Failed loading keyfile '${path}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`, "EKEYFILE");
    }
    loadidentityfile(cli_opts, path, true);
  }
  if (options.privateKey !== undefined) {
    try {
      keyfile = keyMaterialFile(options.privateKey);
    } catch (e) {
      throw causedBy(e, "EKEYFILE");
    }
    loadidentityfile(cli_opts, keyfile.path, true);
  }

  const hostKey = options.hostKey;
  if (hostKey === false) {
    cli_opts.no_hostkey_check = true;
  } else if (typeof hostKey === "object") {
    cli_opts.known_hosts_file = hostKey.knownHostsPath;
  }
  // An unknown host is refused, never asked about: no terminal is ours to ask on.
  cli_opts.ask_hostkey = false;

  const ses = cli_session_new(opts, cli_opts);
  const cli_ses = ses.cli_ses;
  // readyTimeout and the abort signal end a wait for the caller's host key answer too: the loop
  // is held until it comes, so their next loop turn would never come.
  let stopWaitingForAnswer!: (why: SshError) => void;
  const answerAbandoned = new Promise<never>((_resolve, reject) => (stopWaitingForAnswer = reject));
  answerAbandoned.catch(() => {});
  if (typeof hostKey === "function") {
    // A callback that throws or rejects refuses the key, with its error as the cause.
    const refused = (e: unknown): never => {
      throw causedBy(e, "EHOSTKEY");
    };
    cli_ses.verify_hostkey = (blob, algorithm, fingerprint) => {
      let answer: boolean | PromiseLike<boolean>;
      try {
        answer = hostKey({ blob, algorithm }, fingerprint);
      } catch (e) {
        return refused(e);
      }
      return isThenable(answer) ? Promise.race([Promise.resolve(answer).catch(refused), answerAbandoned]) : answer;
    };
  }
  if (options.agent === undefined || options.agent === false) {
    cli_ses.agent = null;
  } else {
    cli_ses.agent = cliAgentOps;
    if (typeof options.agent === "string") {
      cli_opts.agent_sock = options.agent;
    }
    // The agent is asked synchronously (as dbclient asks it), blocking the caller's event loop,
    // readyTimeout's timer too: an agent that never answers must not hang the program for good.
    if (readyTimeout !== undefined) {
      cli_opts.agent_deadline = Date.now() + readyTimeout;
    }
  }
  // Each secret is given once: a refusal then ends auth instead of asking again forever.
  const answers = new Map<string, string | undefined>([
    ["pass", options.password],
    ["phrase", options.passphrase],
  ]);
  cli_ses.getpass = (prompt) => {
    const which = prompt.startsWith("Enter passphrase") ? "phrase" : "pass";
    const answer = answers.get(which) ?? null;
    answers.delete(which);
    return answer;
  };

  const given = keypaths.length + (keyfile !== null ? 1 : 0);
  let loaded = 0;
  try {
    loaded = [...cliPrivkeys(ses)].length;
  } catch (e) {
    keyfile?.remove();
    throw asSshError(e, "EKEYFILE");
  }
  if (loaded < given) {
    keyfile?.remove();
    return Promise.reject(new SshError("Failed loading a private key (wrong format, or encrypted without its passphrase)", "EKEYFILE"));
  }

  let client: Client | null = null;
  let ready: { resolve: (c: Client) => void; reject: (e: Error) => void };
  const connected = new Promise<Client>((resolve, reject) => (ready = { resolve, reject }));
  let closedResolve!: () => void;
  const closed = new Promise<void>((resolve) => (closedResolve = resolve));
  client = Client.fromSession(ses, closed);
  const c = client;
  let running = false;
  // Giving up before authentication: the next loop turn ends the session with this reason.
  let abortReason: SshError | null = null;
  const abort = (why: SshError): void => {
    if (!running && abortReason === null) {
      abortReason = why;
      stopWaitingForAnswer(why);
      ses.signal_pipe?.raise();
    }
  };
  const onAbort = (): void => abort(abortedBy(options.signal));
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const timer = readyTimeout === undefined ? null : setTimeout(() => abort(new SshError(`connect: not authenticated within ${readyTimeout} ms`, "ETIMEOUT")), readyTimeout);
  const stopWaiting = (): void => {
    if (timer !== null) {
      clearTimeout(timer);
    }
    options.signal?.removeEventListener("abort", onAbort);
  };
  const onturn = (s: CliSession): void | Promise<void> => {
    if (!running) {
      if (abortReason !== null) {
        throw abortReason;
      }
      if (cli_ses.state !== cli_state.SESSION_RUNNING) {
        return;
      }
      running = true;
      stopWaiting();
      keyfile?.remove();
      ready.resolve(c);
    }
    return c.runActions(s);
  };

  void cli_session(ses, null, null, 0, onturn).catch(async (e: unknown) => {
    let error: SshError | null = null;
    let handles = c.handles;
    if (e instanceof QuietExit) {
      // end(): cleaned up already.
    } else {
      handles = sessionHandles(ses);
      error = asSshError(e);
      // Channels the cleanup closes report the session's reason.
      c.sessionGone(error);
      // As cli_dropbear_exit does before dbclient exits.
      try {
        session_cleanup(ses);
      } catch {
        // A half-made session has little to clean; the error above is what matters.
      }
    }
    // What a process exit would have closed.
    ses.sock_in?.close();
    ses.sock_out?.close();
    ses.signal_pipe?.close();
    keyfile?.remove();
    stopWaiting();
    c.sessionGone(error);
    // end() promises no handle left: libuv closes them after this turn.
    await handlesClosed(handles);
    // Each event from a tick of its own, as a socket's: a listener's throw is the process's
    // uncaught exception (not a rejection of this promise, which nobody holds), and a throwing
    // "error" listener still sees end() settle and "close" follow.
    process.nextTick(() => {
      if (!running) {
        ready.reject(error ?? new SshError("Session ended before authentication", "ECLOSED"));
      } else if (error !== null && c.listenerCount("error") > 0) {
        c.emit("error", error);
      }
    });
    process.nextTick(() => {
      closedResolve();
      c.emit("close", error);
    });
  });
  return connected;
}
