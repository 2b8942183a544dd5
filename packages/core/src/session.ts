import type {
  aead_stream,
  cipher_state,
  dropbear_cipher,
  dropbear_cipher_mode,
  dropbear_hash,
  mac_state,
} from "@dropbear-ts/crypto";
import { dropbear_mode_none, dropbear_nocipher, dropbear_nohash, noneCipherState } from "@dropbear-ts/crypto";
import { LARGE_COUNT_ZERO, Queue, list_new, type m_list } from "@dropbear-ts/dbutil";
import type { buffer } from "@dropbear-ts/buffer";
import type { sign_key, signature_type } from "@dropbear-ts/signkey";
import type { SignalPipeFd, StreamFd, dropbear_prio, dropbear_progress_connection } from "@dropbear-ts/netio";
import { AlgoTables, type algo_type, type dropbear_kex } from "./algo.js";
import { AuthState, type AuthDelay } from "./auth.js";
import type { ChanType, Channel } from "./channel.js";
import { exitinfo, type ChildPid } from "./chansession.js";
import type { SvrEmbed } from "./embed.js";
import type { CliKexParam, KnownHostKey } from "./kex.js";
import type { Listener } from "./listener.js";
import type { cli_runopts, runopts, svr_runopts } from "./runopts.js";

// session.h. Dropbear keeps one `ses` (and `svr_ses` / `cli_ses`) per process; here a session is
// an object passed first to every function, so a process can hold many and tests can build one.
// Fields keep their C names and start at calloc's zero unless common_session_init sets them.

/**
 * A packet handler: reads `ses.payload` past the type byte. `S` is the session type its table
 * serves, so a server table's handlers may take a SvrSession. @dropbear packet.h PacketType
 */
export interface packettype<S extends sshsession = sshsession> {
  readonly type: number;
  readonly handler: (ses: S) => void;
}

/**
 * A zlib stream that survives from packet to packet (pako's Deflate or Inflate): `push` with
 * Z_SYNC_FLUSH emits each packet's bytes through `onData`.
 */
export interface ZStream {
  /** flush_mode 2 is Z_SYNC_FLUSH, the only one SSH uses. */
  push(data: Uint8Array, flush_mode: 2): boolean;
  onData(chunk: Uint8Array): void;
  err: number;
  msg: string;
}

/**
 * TS-only: a block outgoing packets are sealed in one after another (packet.ts), instead of an
 * allocation per packet.
 */
export interface WriteSlab {
  slab: Buffer;
  /** Bytes of it sealed packets take, from the start. */
  used: number;
  /** Once filled: ses.writequeue_total when its last packet was queued. */
  end: number;
}

/**
 * TS-only: a block incoming packets are read into one after another (packet.ts), instead of an
 * allocation per packet.
 */
export interface ReadSlab {
  slab: Buffer;
  /** Bytes of it packets read so far take, from the start. */
  used: number;
  /**
   * Streams a payload in it was handed to without a copy, each with its `handed` count just
   * after those bytes: they are out of the slab once the stream's `flushed` count reaches it.
   */
  holders: Map<StreamFd, number>;
}

/** One direction's cipher, MAC and keys. @dropbear session.h key_context_directional */
export class key_context_directional {
  algo_crypt: dropbear_cipher = dropbear_nocipher;
  crypt_mode: dropbear_cipher_mode = dropbear_mode_none;
  algo_mac: dropbear_hash = dropbear_nohash;
  /** Beyond Dropbear: an -etm@openssh.com MAC covers the clear length and the ciphertext. */
  mac_etm = false;
  /** DROPBEAR_COMP_* of the negotiated compression. */
  algo_comp = 0;
  /** The zlib stream while compression is negotiated for this direction. */
  zstream: ZStream | null = null;
  /** What crypt_mode.start returned; the "none" mode's empty state until keys are in place. */
  cipher_state: cipher_state = noneCipherState;
  mackey: Buffer = Buffer.alloc(0);
  /** Beyond Dropbear: the HMAC context keyed for mackey, made at its first packet (hash.ts). */
  mac_state: mac_state | null = null;
  valid = false;
}

/** Both directions plus what the key exchange chose. @dropbear session.h key_context */
export class key_context {
  recv = new key_context_directional();
  trans = new key_context_directional();
  algo_kex: dropbear_kex | null = null;
  /** enum signkey_type of the server's host key. */
  algo_hostkey = 0;
  /** enum signature_type the server signs with. */
  algo_signature = 0;
}

/** Where the key exchange stands. @dropbear kex.h KEXState */
export class KEXState {
  sentkexinit = false;
  recvkexinit = false;
  them_firstfollows = false;
  sentnewkeys = false;
  recvnewkeys = false;
  donefirstkex = false;
  donesecondkex = false;
  recvfirstnewkeys = false;
  our_first_follows_matches = false;
  strict_kex = false;
  /** monotonic_now() of the last completed kex. */
  lastkextime = 0;
  needrekey = false;
  /** Bytes sent / received since the last kex (C unsigned int; a number here, no wrap). */
  datatrans = 0;
  datarecv = 0;
}

/** Client key exchange progress. @dropbear session.h cli_kex_state */
export enum cli_kex_state {
  KEX_NOTHING,
  KEXINIT_RCVD,
  KEXDH_INIT_SENT,
  KEXDONE,
}

/** Client auth/session progress. @dropbear session.h cli_state */
export enum cli_state {
  STATE_NOTHING,
  USERAUTH_WAIT,
  USERAUTH_REQ_SENT,
  USERAUTH_FAIL_RCVD,
  USERAUTH_SUCCESS_RCVD,
  SESSION_RUNNING,
}

/** Server-only session state. @dropbear session.h serversession */
export class serversession {
  /** The re-exec child's end of the pipe the listener counts unauthenticated clients by; closed on auth (-1 when none). */
  childpipe = -1;
  /** The numeric address the client came from, for log lines ("127.0.0.1:port"). */
  addrstring: string | null = null;
  remotehost: string | null = null;
  /** The utmp group kept as saved gid by svr_switch_user, so utmp/wtmp stay writable. */
  utmp_gid = 0;
  /** Set when utmp_gid is the saved gid. */
  have_utmp_gid = false;
  /** The session children, for exit handling; pid -1 marks a free slot. */
  childpids: ChildPid[] = [];
  /** An exit reaped before its pid was recorded (see svr_chansess_checksignal). */
  lastexit = new exitinfo();
  /**
   * Children whose channel was cleaned up before they exited: C's waitpid(-1) still reaps them
   * (into lastexit), and since we wait for our own pids only, they are remembered here.
   */
  releasedpids = new Set<number>();
  /** The -b banner went out (Dropbear frees it after the first send). */
  banner_sent = false;
  /** TS-only: the auth failure delay running, where Dropbear sleeps; null when none. */
  authdelay: AuthDelay | null = null;
  /**
   * Runs right after USERAUTH_SUCCESS is queued (DROPBEAR_SVR_DROP_PRIVS): the per-connection
   * server process sets svr_switch_user; null (a library server, tests) changes no privileges.
   */
  switch_user: ((ses: SvrSession) => void) | null = null;
  /** Beyond Dropbear: the embedding program's decisions (the library server); null in dropbear. */
  embed: SvrEmbed | null = null;
  constructor(readonly svr_opts: svr_runopts) {}
}

/**
 * The ssh-agent calls client publickey auth makes (cli-agentfwd.c's). The agentfwd package
 * implements them and the client program installs them in `clientsession.agent`: auth sits
 * below agentfwd in the package order, so it reaches the agent only through this seam.
 */
export interface CliAgentOps {
  /** Connect to $SSH_AUTH_SOCK (kept open until auth is over) and append the agent's keys. */
  load_keys(ses: CliSession, ret_list: m_list<sign_key>): void;
  /** Append the agent's signature blob of data_buf by key to sigblob; false when the agent refused. */
  buf_sign(ses: CliSession, sigblob: buffer, key: sign_key, data_buf: buffer, sigtype: signature_type): boolean;
  /** Close the connection load_keys opened. */
  close(ses: CliSession): void;
}

/** Client-only session state. @dropbear session.h clientsession */
export class clientsession {
  kex_state = cli_kex_state.KEX_NOTHING;
  state = cli_state.STATE_NOTHING;
  lastauthtype = 0;
  is_trivial_auth = true;
  ignore_next_auth_response = false;
  auth_interact_failed = false;
  interact_request_received = false;
  /** The server-sig-algs list from EXT_INFO, if any. */
  server_sig_algs: string[] | null = null;
  /** TS-only: the host key blob the first key exchange checked; every rekey must present it again. */
  first_hostkey: Buffer | null = null;
  /**
   * TS-only: what known_hosts held for the host when the first KEXINIT was made (its key types
   * go first there), kept for the host key check so the file is read and hashed once.
   */
  known_host_keys: KnownHostKey[] | null = null;
  /** The key of the outstanding publickey query, crossed off if the server refuses it. */
  lastprivkey: sign_key | null = null;
  /**
   * The -i keys, loaded on first use by publickey auth (C loads them into cli_opts.privkeys
   * while parsing options; ours keeps file names there). null until then.
   */
  privkeys: m_list<sign_key> | null = null;
  /** The remote command's exit status, which dbclient exits with. */
  retval = 0;
  /** The ephemeral parameters of the kex in progress, from KEXDH_INIT until the reply. */
  kex_param: CliKexParam | null = null;
  /**
   * TS-only: what the first kex does before the server's KEXINIT waits for the TCP connection:
   * the guess, or without one the key pair made ahead (see dbclient's cliKexAhead).
   */
  kex_ahead_pending = false;
  /** TS-only: our first kex method's key pair, made ahead of the server's KEXINIT (cliKexParamAhead). */
  kex_param_ahead: { algo_kex: dropbear_kex; param: CliKexParam } | null = null;
  /** stdin is in raw mode, and the struct termios (raw bytes) to restore. */
  tty_raw_mode = false;
  saved_tio: Buffer | null = null;
  /** The previous byte typed, for the escape character rule. */
  last_char = 0;
  /** Set by SIGWINCH: send window-change at the next loop turn. */
  winchange = false;
  /** TS-only: set by the ~B escape: send "break" at the next loop turn (not mid-packet, as the escape is read). */
  sendbreak = false;
  /**
   * TS-only: -f with ExitOnForwardFailure, the detached copy holds the foreground until every
   * -R has its answer (OpenSSH's ssh defers its fork so), so a refused one fails the command.
   */
  background_pending = false;
  /** fds 0-2's file status flags at start (-1: unknown), put back at exit: our streams make them non-blocking. */
  stdinflags = -1;
  stdoutflags = -1;
  stderrflags = -1;
  /** TS-only: the session channel's handles on copies of fds 0-2, flushed before the process exits. */
  stdiofds: StreamFd[] = [];
  /** The agent calls publickey auth uses; null leaves agent keys out. */
  agent: CliAgentOps | null = null;
  /** The -J / ProxyCommand / multihop child carrying our transport, sent SIGHUP at cleanup; 0 for none. */
  proxy_cmd_pid = 0;
  /**
   * TS-only, set by a library caller: decides on the server's host key instead of known_hosts
   * and the terminal. A promise is awaited before anything else is sent (NEWKEYS waits).
   */
  verify_hostkey: ((keyblob: Buffer, algoname: string, fingerprint: string) => boolean | Promise<boolean>) | null = null;
  /**
   * TS-only, set by a library caller: answers the prompts (passwords, passphrases) instead of
   * the terminal; null gives up, as an empty answer at the terminal would.
   */
  getpass: ((prompt: string) => string | null) | null = null;
  constructor(readonly cli_opts: cli_runopts) {}
}

/**
 * The whole session. Abstract: a session is built as a SvrSession or a CliSession, whose types
 * say which half is set. @dropbear session.h sshsession
 */
export abstract class sshsession {
  readonly isserver: boolean;
  /** monotonic_now() when the connection was made; 0 once auth is done (no AUTH_TIMEOUT). */
  connect_time = 0;
  /**
   * Beyond Dropbear, the same in milliseconds (gettime_wrapper), for the client's -o
   * ConnectTimeout: counted in whole seconds, a limit of 1 s could fall due at once.
   */
  connect_time_ms = 0;
  /** The transport: one Fd for both directions over TCP, two for a proxy command. */
  sock_in: StreamFd | null = null;
  sock_out: StreamFd | null = null;
  /** The peer's version line, null until read. */
  remoteident: string | null = null;
  /** TS-only: bytes of the peer's ident line read so far (ident_readln works byte-wise). */
  identbuf: number[] = [];
  identlines = 0;

  /** The payload being built by a sender; encrypt_packet consumes it. */
  writepayload!: buffer;
  /** Encrypted packets waiting for the socket. */
  writequeue = new Queue<buffer>();
  writequeue_len = 0;
  /** TS-only: bytes ever put on the write queue; with writequeue_len, what the socket has been handed. */
  writequeue_total = LARGE_COUNT_ZERO;
  /** TS-only: the slab packets are sealed in now, writepayload's bytes after them (packet.ts placeWritepayload). */
  writebuf_slab: WriteSlab | null = null;
  /** TS-only: filled slabs, oldest first, to reuse once all they hold is written. */
  writebuf_retired: WriteSlab[] = [];
  /** The packet being read and decrypted in place. */
  readbuf: buffer | null = null;
  /**
   * TS-only: set while readbuf's packet is opened as it is read (packet.ts read_packet_init):
   * its body is decrypted up to readbuf's pos, its tag is checked once it is whole.
   */
  readbuf_stream: aead_stream | null = null;
  /** TS-only: the slab packets are read into now (packet.ts newReadbuf). */
  readbuf_slab: ReadSlab | null = null;
  /** TS-only: filled slabs, oldest first, to reuse once no stream holds a payload in them. */
  readbuf_retired: ReadSlab[] = [];
  /**
   * TS-only: while set the loop reads nothing from the transport. A server's auth failure delay
   * sets it, where Dropbear sleeps and so reads nothing.
   */
  readheld = false;
  /** The decrypted payload being processed, positioned past the type byte. */
  payload: buffer | null = null;
  payload_beginning = 0;
  transseq = 0;
  recvseq = 0;

  /** The handlers of this side's table (see sesCall for the `never`). */
  packettypes: readonly packettype<never>[] = [];
  dataallowed = false;
  requirenext = 0;
  ignorenext = false;
  lastpacket = 0;

  /** Woken by child exits and signals; the loop drains it. */
  signal_pipe: SignalPipeFd | null = null;
  channel_signal_pending = false;
  /** Outbound connections in progress (connect_remote). */
  conn_pending: m_list<dropbear_progress_connection> = list_new();

  /** The channel table, indexed by our channel number; null slots are free. */
  channels: (Channel | null)[] = [];
  chansize = 0;
  chancount = 0;
  /** The channel types the peer may open. */
  chantypes: readonly ChanType<never>[] = [];
  /** The listener table, as channels. */
  listeners: (Listener | null)[] = [];
  listensize = 0;
  /** Remote forwards may listen below port 1024. */
  allowprivport = false;
  /**
   * Work a packet handler started that C does synchronously (binding a remote forward): the
   * loop awaits it right after the packet, before anything else, so replies keep their order.
   * What it resolves to is ignored.
   */
  awaitAfterPacket: Promise<unknown> | null = null;
  /** The priority class last given to the transport socket; null before the first. */
  socket_prio: dropbear_prio | null = null;
  /**
   * Beyond C: work that may wait, run one task at a time by select() when nothing is ready and
   * the loop would only wait for the peer, so that loading what a later step needs (an FFI
   * library, say) happens while the peer computes instead of on the connection's path.
   */
  idle_work: (() => void)[] = [];
  /**
   * TS-only: the process is this session's own (dbclient, a dropbear connection process), not a
   * program that embeds the library, so upkeep of the whole process (check_memory) is its to do.
   */
  owns_process = false;
  /**
   * TS-only (common-session.ts check_memory): the process's RSS when the loop first looked
   * after auth (0 before), when it last looked (monotonic seconds), and whether it was then well
   * above the first, so the loop looks again however idle it is.
   */
  trim_rss = 0;
  trim_check_time = 0;
  trim_pending = false;

  /**
   * TS-only: the global requests we sent that want a reply (keepalives and -R), and how many of
   * their replies have come. Replies carry no id and come in order (RFC 4254 §4): reply n answers
   * request n, as OpenSSH pairs them. A library caller's -R can follow a keepalive still in
   * flight, whose REQUEST_FAILURE C's matching took for the -R's refusal.
   */
  globalreq_sent = 0;
  globalreq_answered = 0;

  last_packet_time_keepalive_sent = 0;
  last_packet_time_keepalive_recv = 0;
  last_packet_time_any_sent = 0;
  last_packet_time_idle = 0;

  kexstate = new KEXState();
  keys = new key_context();
  newkeys: key_context | null = null;
  /** The exchange hash of the first kex. */
  session_id: Buffer | null = null;
  /** K as an mpint (DH, ECDH, curve25519) or as an SSH string (PQ hybrids), during a kex. */
  dh_K: bigint | null = null;
  dh_K_bytes: Buffer | null = null;
  /** The exchange hash H of the kex in progress. */
  hash: Buffer | null = null;
  /** What H is computed over, built up during the kex. */
  kexhashbuf: buffer | null = null;
  /** Our KEXINIT payload, kept for the hash. */
  transkexinit: buffer | null = null;

  /** This session's copies of the algorithm tables: their `usable` flags are per session. */
  algos = new AlgoTables();
  compress_algos_c2s: readonly algo_type[] = [];
  compress_algos_s2c: readonly algo_type[] = [];
  /** The peer sent ext-info-c: we may send SSH_MSG_EXT_INFO (server). */
  allow_ext_info = false;

  /** Non-transport payloads held back while a kex runs (MAX_DEFER_REPLY_QUEUE at most). */
  reply_queue: Buffer[] = [];

  /** Called when the transport reads EOF. */
  remoteclosed: (ses: never) => void = () => undefined;
  extra_session_cleanup: ((ses: never) => void) | null = null;
  send_kex_first_guess: ((ses: never) => void) | null = null;

  authstate = new AuthState();

  /** Set by SIGINT/SIGTERM handlers: the loop exits with "Terminated by signal". */
  exitflag = false;
  init_done = false;

  /** The program's options (Dropbear's global `opts`). */
  readonly opts: runopts;
  /** Set on the server (Dropbear's `svr_ses` / `svr_opts`). */
  readonly svr_ses: serversession | null;
  /** Set on the client (Dropbear's `cli_ses` / `cli_opts`). */
  readonly cli_ses: clientsession | null;

  protected constructor(opts: runopts, svr_ses: serversession | null, cli_ses: clientsession | null) {
    this.opts = opts;
    this.isserver = svr_ses !== null;
    this.svr_ses = svr_ses;
    this.cli_ses = cli_ses;
  }
}

/**
 * A server's session: sshsession with its server half, C's `svr_ses` (struct serversession),
 * always there. Code that runs only on the server takes this type. Not C's svr_session(),
 * which is the function that runs one.
 */
export class SvrSession extends sshsession {
  declare readonly isserver: true;
  declare readonly svr_ses: serversession;
  declare readonly cli_ses: null;
  declare packettypes: readonly packettype<SvrSession>[];
  declare chantypes: readonly ChanType<SvrSession>[];
  declare remoteclosed: (ses: SvrSession) => void;
  declare extra_session_cleanup: ((ses: SvrSession) => void) | null;
  declare send_kex_first_guess: ((ses: SvrSession) => void) | null;

  constructor(opts: runopts, svr_opts: svr_runopts) {
    super(opts, new serversession(svr_opts), null);
  }
}

/**
 * A client's session: sshsession with its client half, C's `cli_ses` (struct clientsession),
 * always there. Code that runs only on the client takes this type. Not C's cli_session(),
 * which is the function that runs one.
 */
export class CliSession extends sshsession {
  declare readonly isserver: false;
  declare readonly svr_ses: null;
  declare readonly cli_ses: clientsession;
  declare packettypes: readonly packettype<CliSession>[];
  declare chantypes: readonly ChanType<CliSession>[];
  declare remoteclosed: (ses: CliSession) => void;
  declare extra_session_cleanup: ((ses: CliSession) => void) | null;
  declare send_kex_first_guess: ((ses: CliSession) => void) | null;

  constructor(opts: runopts, cli_opts: cli_runopts) {
    super(opts, null, new clientsession(cli_opts));
  }
}

/** Whether common code runs on a server (C tests IS_DROPBEAR_SERVER); narrows to its half. */
export function isSvrSession(ses: sshsession): ses is SvrSession {
  return ses.svr_ses !== null;
}

/** Whether common code runs on a client (C tests IS_DROPBEAR_CLIENT); narrows to its half. */
export function isCliSession(ses: sshsession): ses is CliSession {
  return ses.cli_ses !== null;
}

/**
 * Call a hook a session keeps for its own side: a packet handler, a ChanType or Listener
 * callback, remoteclosed and the like. The base class types them `(ses: never, ...)` so each
 * side can store hooks that take its own session type (SvrSession and CliSession re-declare the
 * fields, which checks every store). A hook is only read back from the session that stored it,
 * so handing it that session is sound; this is the one place that says so to the compiler.
 */
export function sesCall<A extends unknown[], R>(ses: sshsession, hook: (ses: never, ...args: A) => R, ...args: A): R {
  return (hook as (ses: sshsession, ...args: A) => R)(ses, ...args);
}
