import {
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_KEEPALIVE,
  DEFAULT_KEEPALIVE_LIMIT,
  DEFAULT_MAX_DURATION,
  DROPBEAR_KEX_FIRST_FOLLOWS,
  DROPBEAR_PIDFILE,
  MAX_AUTH_TRIES,
} from "@dropbear-ts/options";
import { list_new, type m_list } from "@dropbear-ts/dbutil";
import { new_sign_key, type sign_key } from "@dropbear-ts/signkey";
import { AlgoTables } from "./algo.js";
import type { TCPFwdEntry } from "./forward.js";

// Dropbear keeps these three structs as process globals (opts, svr_opts, cli_opts). Here each
// program run creates its own objects and passes them on, so tests and several sessions can
// coexist in one process. Fields start at calloc's zero, or at the value svr_getopts /
// cli_getopts assign before reading argv; fields both programs share but default differently
// (usingsyslog, compression) start at zero and the getopts function sets them.

/**
 * Our default channel receive window (-W), 2 MiB (OpenSSH's) where Dropbear has
 * DEFAULT_RECV_WINDOW (24 KiB). A sender may have only one window in flight per round trip, so
 * 24 KiB starves a tunnel: through OpenSSH's sshd, which waits for room for a whole packet, a 24
 * KiB window moved 2 MB/s. The window also sets how often the receiver sends a window adjust
 * (RECV_WINDOWEXTEND, a third of it: 1536 a GiB at 2 MiB, 3072 at 1 MiB), each a packet, a
 * write and the sender's wake-up. Through one -L connection on this 2-core machine, 2 MiB
 * against 1 MiB (`bench/run.mjs --tput-only --base`, 9 rounds, four runs): chacha20-poly1305
 * +4 to +21 %, aes128-gcm +10 to +20 %; 4 MiB measured level with 1 MiB. A channel buffers at
 * most its window (ring pages are touched only as used), and MAX_SESSION_RECV_WINDOW bounds a
 * session's rings whatever -W says. -W still sets any value up to MAX_RECV_WINDOW. See
 * docs/deviations.md.
 */
export const OUR_DEFAULT_RECV_WINDOW = 2 * 1024 * 1024;

/**
 * The largest payload we accept, 128 KiB where Dropbear builds with RECV_MAX_PAYLOAD_LEN 32 KiB
 * (a build option of its default_options.h, "_MUST_ be >= 32768"). A channel's maximum packet
 * follows from it (RECV_MAX_CHANNEL_DATA_LEN), so a peer that sends up to the maximum we
 * advertise (ours) sends a quarter of the packets for the same data. Through `-L`,
 * ours to ours, against 32 KiB (7 interleaved rounds, session 10): chacha20-poly1305 440 against
 * 417 MB/s, aes128-gcm 505 against 467; 64 KiB measured level with 32 KiB, 256 KiB no better
 * than 128. See docs/deviations.md.
 */
export const OUR_RECV_MAX_PAYLOAD_LEN = 128 * 1024;

/**
 * sysoptions.h's RECV_MAX_PACKET_LEN for our payload: the payload and room for the packet around
 * it. C's "+ 100" fits inside its 35000 floor for a 32 KiB payload; above that floor the room
 * must hold what a peer may add to a payload of our maximum: zlib's worst expansion (51 bytes at
 * 128 KiB), the padding-length byte and up to 255 bytes of padding (RFC 4253 §6), the length
 * field and a MAC (32 at most), 343 in all. With "+ 100" a peer padding at random, as the RFC
 * allows, had its largest channel packets refused as a bad packet size.
 */
export const OUR_RECV_MAX_PACKET_LEN = Math.max(35000, OUR_RECV_MAX_PAYLOAD_LEN + 512);

/**
 * The largest payload we send, 128 KiB where Dropbear builds with TRANS_MAX_PAYLOAD_LEN 16 KiB
 * (a build option of its default_options.h, "can be any value"), so as much as we accept. It
 * sizes the payload being built, so it caps a channel's data packets; a peer's smaller maximum
 * still wins (32 KiB from OpenSSH and Dropbear, which is what they then get), as OpenSSH sends
 * up to the peer's maximum. It also sets the write queue's mark of two such packets. See
 * docs/deviations.md.
 */
export const OUR_TRANS_MAX_PAYLOAD_LEN = OUR_RECV_MAX_PAYLOAD_LEN;

/**
 * The most receive window one session grants its channels together (ours, not Dropbear's), so
 * what a peer can make us hold in channel buffers is bounded per session, not MAX_CHANNELS
 * times -W (1 GiB by default). A channel opened when the budget is spent still gets Dropbear's
 * 24 KiB default. See docs/deviations.md.
 */
export const MAX_SESSION_RECV_WINDOW = 64 * 1024 * 1024;

/**
 * The most the channel fds of one session together read ahead of the loop (ours, not
 * Dropbear's, whose unread input waits in the kernel): shared evenly among the fds that may
 * send, so up to 64 of them read their full 256 KiB ahead and MAX_CHANNELS of them 16 KiB each.
 * See docs/deviations.md.
 */
export const MAX_SESSION_READ_AHEAD = 16 * 1024 * 1024;

/** Options common to the client and the server. @dropbear runopts.h runopts */
export class runopts {
  /** -z: leave IP TOS / DSCP alone. */
  disable_ip_tos = false;
  /** Server -a, client -g / GatewayPorts: forwarded ports accept any host. */
  listen_fwd_all = false;
  /** -W: our channel receive window in bytes. */
  recv_window = OUR_DEFAULT_RECV_WINDOW;
  /** -K: seconds between keepalives, 0 = off. */
  keepalive_secs = DEFAULT_KEEPALIVE;
  /**
   * How many keepalive intervals without a word from the peer end the session: C's
   * DEFAULT_KEEPALIVE_LIMIT; beyond Dropbear, the client's -o ServerAliveCountMax=N makes it
   * N + 1, as ssh ends after N unanswered keepalives and one more interval.
   */
  keepalive_limit = DEFAULT_KEEPALIVE_LIMIT;
  /** -I: exit after this many idle seconds, 0 = never. */
  idle_timeout_secs = DEFAULT_IDLE_TIMEOUT;
  /** -M: exit after this many seconds in total, 0 = never. */
  max_duration_secs = DEFAULT_MAX_DURATION;
  /**
   * Beyond Dropbear, the client's -o ConnectTimeout (OpenSSH's): seconds to connect and finish
   * the first key exchange in, 0 = the system's TCP timeout and no limit after.
   */
  connect_timeout_secs = 0;
  /** Log to syslog (server default; client -o UseSyslog). */
  usingsyslog = false;
  /** Offer zlib compression. */
  compression = false;
  /**
   * The algorithm tables as this run's options leave them (Dropbear edits its global tables in
   * place); each session starts from a copy. Filled by svr_getopts / cli_getopts.
   */
  algos = new AlgoTables();
  /** -c: user cipher preference, comma separated, checked against the algorithm table later. */
  cipher_list: string | null = null;
  /** -m: user MAC preference, comma separated. */
  mac_list: string | null = null;
}

/** Server options. @dropbear runopts.h svr_runopts */
export class svr_runopts {
  /** -b: file whose contents are sent as the pre-auth banner. */
  bannerfile: string | null = null;
  /** Cleared by -F. */
  forkbg = true;
  /** -p: ports and their addresses, index-aligned, at most DROPBEAR_MAX_PORTS. */
  ports: string[] = [];
  portcount = 0;
  addresses: string[] = [];
  /** -i: serve one connection on stdin/stdout. */
  inetdmode = false;
  /** Hidden -2: the childpipe fd of a re-executed child, -1 otherwise. */
  reexec_childpipe = -1;
  /** Cleared by -m. */
  domotd = true;
  /** -w */
  norootlogin = false;
  /** -G: group name whose members may log in, null when unrestricted. */
  restrict_group: string | null = null;
  /** Only meaningful when restrict_group is set. */
  restrict_group_gid = 0;
  /** -s */
  noauthpass = false;
  /** -g */
  norootpass = false;
  /** -B */
  allowblankpass = false;
  /** -t: password and public key both required. */
  multiauthmethod = false;
  /** -T */
  maxauthtries = MAX_AUTH_TRIES;
  /** -k */
  noremotefwd = false;
  /** -j */
  nolocaltcp = false;
  /** -R: generate missing host keys on first use. */
  delay_hostkey = false;
  /** -r / -d, at most MAX_HOSTKEYS. */
  hostkey_files: string[] = [];
  num_hostkey_files = 0;
  /** The loaded host keys, one member per key type (load_all_hostkeys). */
  hostkey: sign_key = new_sign_key();
  /** Contents of bannerfile once loaded (raw bytes until the buffer package exists). */
  banner: Uint8Array | null = null;
  /** -P */
  pidfile: string = DROPBEAR_PIDFILE;
  /** -D: expanded per user later, so "~" stays literal here. */
  authorized_keys_dir = "~/.ssh";
  /** -c */
  forced_command: string | null = null;
  /** -l: SO_BINDTODEVICE interface. */
  interface: string | null = null;
  /** -e */
  pass_on_env = false;
}

/** Client options. @dropbear runopts.h cli_runopts */
export class cli_runopts {
  /** argv[0], used in help and log lines and to re-run ourselves for multihop. */
  progname: string | null = null;
  remotehost: string | null = null;
  remotehostfixed = false;
  /** TS-only: the host as the command line names it, before a config file's HostName (ssh's host_arg: ProxyCommand's %n). */
  remotehost_arg: string | null = null;
  remoteport: string | null = null;
  /** The local user's name. */
  own_user: string | null = null;
  /** The login name on the server. */
  username: string | null = null;
  /** Remote command: the arguments after the host, joined with single spaces; bytes, as C's char*. */
  cmd: Buffer | null = null;
  /** 1 with -t, 0 with -T; 9 until decided ("not touched yet"), as in Dropbear. */
  wantpty = 9;
  /** -y */
  always_accept_key = false;
  /** -y -y */
  no_hostkey_check = false;
  /** Cleared by StrictHostKeyChecking=yes. */
  ask_hostkey = true;
  /** -N */
  no_cmd = false;
  /** -q */
  quiet = false;
  /** -f */
  backgrounded = false;
  /** TS-only: -n (ssh's, not Dropbear's): the session reads /dev/null, never our stdin. */
  stdin_null = false;
  /** -s */
  is_subsystem = false;
  /**
   * -i identity files, as expanded file names. Dropbear stores loaded sign_keys here; key
   * loading comes with the signkey package.
   */
  privkeys: m_list<string> = list_new<string>();
  /** Beyond Dropbear: the privkeys entries that are default identities nobody named (their failures stay quiet). */
  default_identities = new Set<string>();
  exit_on_fwd_failure = false;
  disable_trivial_auth = false;
  password_authentication = true;
  batch_mode = false;
  /**
   * Whether our KEXINIT is followed by a guessed first kex packet: DROPBEAR_KEX_FIRST_FOLLOWS
   * (off in our build), and off whenever -o KexAlgorithms= or HostKeyAlgorithms= narrowed a
   * list (see user_algo_option).
   */
  kex_first_guess = DROPBEAR_KEX_FIRST_FOLLOWS;
  /** Beyond Dropbear: the last -o KexAlgorithms= and HostKeyAlgorithms= (see user_algo_option). */
  kex_algos: string | null = null;
  hostkey_algos: string | null = null;
  /** -R entries. */
  remotefwds: m_list<TCPFwdEntry> = list_new<TCPFwdEntry>();
  /** -L entries. */
  localfwds: m_list<TCPFwdEntry> = list_new<TCPFwdEntry>();
  /** -A */
  agent_fwd = false;
  agent_keys_loaded = false;
  /**
   * Beyond Dropbear, ssh's -o IdentitiesOnly=yes: of the agent's keys only those also listed from
   * files are offered (a server's MaxAuthTries spent on an agent's many keys ends the login).
   */
  identities_only = false;
  /** Only open during authentication. */
  agent_fd = -1;
  /** TS-only: the agent's socket for publickey auth; null reads $SSH_AUTH_SOCK. */
  agent_sock: string | null = null;
  /**
   * TS-only: when (Date.now() ms) to give up on an agent that has not answered; null waits as C
   * does. The library sets its readyTimeout's end: its agent requests block the caller's loop.
   */
  agent_deadline: number | null = null;
  /** TS-only: the known_hosts file; null is ~/.ssh/known_hosts. */
  known_hosts_file: string | null = null;
  /** -B host:port */
  netcat_host: string | null = null;
  netcat_port = 0;
  /** -J: run through the user's shell. */
  proxycmd: string | null = null;
  /** Multihop: argv for the inner dbclient, run without a shell. */
  proxyexec: string[] | null = null;
  /** -b / BindAddress before it is split. */
  bind_arg: string | null = null;
  bind_address: string | null = null;
  bind_port: string | null = null;
  /** -K / ServerAliveInterval before it is checked. */
  keepalive_arg: string | null = null;
}
