// Mirrors Dropbear 2026.94 src/default_options.h: the build options with the values Dropbear ships.
// A record of Dropbear's build more than a set of switches: an option acts as in C where the
// code reads it (feature options such as the auth methods, DROPBEAR_RSA_SHA1, the limits);
// which algorithms are offered is the algorithm tables' (algo package, docs/deviations.md), and
// the legacy algorithms Dropbear ships off and we do not implement are typed NotImplemented.

// Listening defaults; an empty address means every interface.
export const DROPBEAR_DEFPORT = "22";
export const DROPBEAR_DEFADDRESS = "";

// Host key locations used when no -r is given.
export const DSS_PRIV_FILENAME = "/etc/dropbear/dropbear_dss_host_key";
export const RSA_PRIV_FILENAME = "/etc/dropbear/dropbear_rsa_host_key";
export const ECDSA_PRIV_FILENAME = "/etc/dropbear/dropbear_ecdsa_host_key";
export const ED25519_PRIV_FILENAME = "/etc/dropbear/dropbear_ed25519_host_key";

// Daemon mode and inetd (-i) mode are both built.
export const NON_INETD_MODE: boolean = true;
export const INETD_MODE: boolean = true;

export const DROPBEAR_REEXEC: boolean = true;

// A level (0..5), not a switch. Our port always carries TRACE and turns it on at run time
// (dbutil set_debug_trace), so this only records what Dropbear compiles in.
export const DEBUG_TRACE = 0;

export const DROPBEAR_SMALL_CODE: boolean = true;

// Forwarding.
export const DROPBEAR_X11FWD: boolean = false;

export const DROPBEAR_CLI_LOCALTCPFWD: boolean = true;
export const DROPBEAR_CLI_REMOTETCPFWD: boolean = true;

export const DROPBEAR_SVR_LOCALTCPFWD: boolean = true;
export const DROPBEAR_SVR_REMOTETCPFWD: boolean = true;
export const DROPBEAR_SVR_LOCALSTREAMFWD: boolean = true;
export const DROPBEAR_SVR_REMOTESTREAMFWD: boolean = true;

export const DROPBEAR_SVR_AGENTFWD: boolean = true;
export const DROPBEAR_CLI_AGENTFWD: boolean = true;

// Multihop needs both of these.
export const DROPBEAR_CLI_PROXYCMD: boolean = true;
export const DROPBEAR_CLI_NETCAT: boolean = true;

/**
 * The type of the options for legacy algorithms that Dropbear builds off by default and that
 * dropbear-ts does not implement (3DES and CBC ciphers, SHA-1 MACs, DSS keys, the SHA-1 Diffie-
 * Hellman groups): `true` there is a compile error, not an option that does nothing.
 */
type NotImplemented = false;

// -c / -m algorithm lists.
export const DROPBEAR_USER_ALGO_LIST: boolean = true;

// Ciphers.
export const DROPBEAR_AES128: boolean = true;
export const DROPBEAR_AES256: boolean = true;
export const DROPBEAR_3DES: NotImplemented = false;

export const DROPBEAR_CHACHA20POLY1305: boolean = true;

export const DROPBEAR_ENABLE_CTR_MODE: boolean = true;

export const DROPBEAR_ENABLE_CBC_MODE: NotImplemented = false;

// Off in Dropbear. AES-GCM is one of our documented additions: the algorithm tables (algo
// package) may offer it regardless of this value.
export const DROPBEAR_ENABLE_GCM_MODE: boolean = false;

// MACs. Dropbear has no -etm variants at all; those, like hmac-sha2-512, are our documented
// additions that the algorithm tables (algo package) may enable.
export const DROPBEAR_SHA1_HMAC: NotImplemented = false;
export const DROPBEAR_SHA2_256_HMAC: boolean = true;
export const DROPBEAR_SHA2_512_HMAC: boolean = false;
export const DROPBEAR_SHA1_96_HMAC: NotImplemented = false;

// Host key / public key types.
export const DROPBEAR_RSA: boolean = true;
// ssh-rsa signatures (SHA-1); rsa-sha2-256 is separate, see DROPBEAR_RSA_SHA256 in sysoptions.
export const DROPBEAR_RSA_SHA1: boolean = false;

export const DROPBEAR_DSS: NotImplemented = false;
export const DROPBEAR_ECDSA: boolean = true;

export const DROPBEAR_ED25519: boolean = true;

// sk-ecdsa / sk-ed25519 (U2F) keys, server side only.
export const DROPBEAR_SK_KEYS: boolean = true;

// Bits for a freshly generated RSA key.
export const DROPBEAR_DEFAULT_RSA_SIZE = 2048;

// Allows -R: generate a missing host key on first use.
export const DROPBEAR_DELAY_HOSTKEY: boolean = true;

// Key exchange methods.
export const DROPBEAR_DH_GROUP14_SHA1: NotImplemented = false;
export const DROPBEAR_DH_GROUP14_SHA256: boolean = true;
export const DROPBEAR_DH_GROUP16: boolean = false;
export const DROPBEAR_CURVE25519: boolean = true;
export const DROPBEAR_SNTRUP761: boolean = true;
export const DROPBEAR_MLKEM768: boolean = true;
export const DROPBEAR_ECDH: boolean = true;
export const DROPBEAR_DH_GROUP1: NotImplemented = false;

// If group1 were built, only the client would offer it.
export const DROPBEAR_DH_GROUP1_CLIENTONLY: boolean = true;

// Compression (zlib), off unless asked for at run time.
export const DROPBEAR_CLI_COMPRESSION: boolean = false;

export const DROPBEAR_ZLIB_WINDOW_BITS = 15;

export const DO_HOST_LOOKUP: boolean = false;

export const DO_MOTD: boolean = true;
export const MOTD_FILENAME = "/etc/motd";
export const MOTD_MAXSIZE = 2000;

// Server authentication methods (password and PAM exclude each other).
export const DROPBEAR_SVR_PASSWORD_AUTH: boolean = true;

export const DROPBEAR_SVR_PAM_AUTH: boolean = false;

export const DROPBEAR_SVR_PUBKEY_AUTH: boolean = true;

// Honour options (command=, no-pty, ...) in authorized_keys.
export const DROPBEAR_SVR_PUBKEY_OPTIONS: boolean = true;

export const DROPBEAR_SVR_MULTIUSER: boolean = true;

// Client authentication methods.
export const DROPBEAR_CLI_PASSWORD_AUTH: boolean = true;
export const DROPBEAR_CLI_PUBKEY_AUTH: boolean = true;

// Key tried by dbclient when -i is absent; ~/ means the user's home.
export const DROPBEAR_DEFAULT_CLI_AUTHKEY = "~/.ssh/id_dropbear";

export const DROPBEAR_USE_SSH_CONFIG: boolean = false;

export const DROPBEAR_USE_PASSWORD_ENV: boolean = true;

export const DROPBEAR_CLI_ASKPASS_HELPER: boolean = false;

export const DROPBEAR_CLI_IMMEDIATE_AUTH: boolean = false;

// Entropy from a PRNGD/EGD socket instead of /dev/urandom.
export const DROPBEAR_USE_PRNGD: boolean = false;
export const DROPBEAR_PRNGD_SOCKET = "/var/run/dropbear-rng";

// Limits on connections that have not authenticated yet: per source address, then overall.
export const MAX_UNAUTH_PER_IP = 5;

export const MAX_UNAUTH_CLIENTS = 30;

// Failed attempts allowed per session (-T overrides).
export const MAX_AUTH_TRIES = 10;

// Public key queries allowed per session (the larger of this and the tries limit wins).
export const MAX_PUBKEY_QUERIES = 15;

// C defaults this to DROPBEAR_SVR_MULTIUSER.
export const DROPBEAR_SVR_DROP_PRIVS: boolean = DROPBEAR_SVR_MULTIUSER;

// Seconds to wait before closing a session that failed to authenticate.
export const UNAUTH_CLOSE_DELAY = 0;

export const DROPBEAR_PIDFILE = "/var/run/dropbear.pid";

export const XAUTH_COMMAND = "/usr/bin/xauth -q";

// The "sftp" subsystem runs this external program.
export const DROPBEAR_SFTPSERVER: boolean = true;
export const SFTPSERVER_PATH = "/usr/libexec/sftp-server";

// What scp runs as its transport.
export const DROPBEAR_PATH_SSH_PROGRAM = "/usr/bin/dbclient";

export const LOG_COMMANDS: boolean = false;

// Channel window and packet sizes. Dropbear's small window is kept here as its default; our
// run-time options may choose a larger one for fast links (a documented deviation).
export const DEFAULT_RECV_WINDOW = 24576;
// The protocol requires accepting at least 32768 bytes of payload.
export const RECV_MAX_PAYLOAD_LEN = 32768;
export const TRANS_MAX_PAYLOAD_LEN = 16384;

// Timers, all in seconds; 0 switches the feature off.
export const DEFAULT_KEEPALIVE = 0;

// Unanswered keepalives tolerated before giving up.
export const DEFAULT_KEEPALIVE_LIMIT = 3;

export const DEFAULT_IDLE_TIMEOUT = 0;

export const DEFAULT_MAX_DURATION = 0;

// PATH given to the user's session (root gets the sbin directories too).
export const DEFAULT_PATH = "/usr/bin:/bin";
export const DEFAULT_ROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
