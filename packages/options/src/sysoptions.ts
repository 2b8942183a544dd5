// Mirrors Dropbear 2026.94 src/sysoptions.h: fixed limits and switches derived from default_options.h.
//
// Preprocessor conditions are evaluated for Dropbear's default build: Linux with glibc, both
// `dropbear` and `dbclient` built, no PAM, no fuzzing, no plugin, not MULTI. Derived switches
// are written as the same expression over default_options.ts so the two files cannot disagree.
// Not mirrored: RECV_WINDOWEXTEND (opts.recv_window / 3, a run-time value: see the channel
// code), IS_DROPBEAR_SERVER / IS_DROPBEAR_CLIENT (with both sides built C reads ses.isserver),
// the libtom build knobs (LTM_*, LTC_*), and the fallbacks for MOTD_MAXSIZE and
// DROPBEAR_SHA2_512_HMAC, already set in default_options.ts. The header's #error sanity checks
// all pass with these defaults.

import {
  DROPBEAR_AES128,
  DROPBEAR_AES256,
  DROPBEAR_CHACHA20POLY1305,
  DROPBEAR_CLI_AGENTFWD,
  DROPBEAR_CLI_LOCALTCPFWD,
  DROPBEAR_CLI_NETCAT,
  DROPBEAR_CLI_PASSWORD_AUTH,
  DROPBEAR_CLI_PROXYCMD,
  DROPBEAR_CLI_PUBKEY_AUTH,
  DROPBEAR_CLI_REMOTETCPFWD,
  DROPBEAR_CURVE25519,
  DROPBEAR_DH_GROUP1,
  DROPBEAR_DH_GROUP14_SHA1,
  DROPBEAR_DH_GROUP14_SHA256,
  DROPBEAR_DH_GROUP16,
  DROPBEAR_DSS,
  DROPBEAR_ECDH,
  DROPBEAR_ECDSA,
  DROPBEAR_ED25519,
  DROPBEAR_ENABLE_GCM_MODE,
  DROPBEAR_MLKEM768,
  DROPBEAR_RSA,
  DROPBEAR_RSA_SHA1,
  DROPBEAR_SHA1_96_HMAC,
  DROPBEAR_SHA1_HMAC,
  DROPBEAR_SHA2_512_HMAC,
  DROPBEAR_SK_KEYS,
  DROPBEAR_SNTRUP761,
  DROPBEAR_SVR_AGENTFWD,
  DROPBEAR_SVR_LOCALSTREAMFWD,
  DROPBEAR_SVR_LOCALTCPFWD,
  DROPBEAR_SVR_PUBKEY_AUTH,
  DROPBEAR_SVR_PUBKEY_OPTIONS,
  DROPBEAR_SVR_REMOTESTREAMFWD,
  DROPBEAR_SVR_REMOTETCPFWD,
  DROPBEAR_USE_PRNGD,
  DROPBEAR_X11FWD,
  RECV_MAX_PAYLOAD_LEN,
} from "./default_options.js";

// Version and identification string sent first on every connection.
export const DROPBEAR_VERSION = "2026.94";

export const IDENT_VERSION_PART = `_${DROPBEAR_VERSION}`;
export const LOCAL_IDENT = `SSH-2.0-dropbear${IDENT_VERSION_PART}`;
export const PROGNAME = "dropbear";

// The Makefile defines these when the client or server program is among PROGRAMS; the default
// build (and our port) has both.
export const DROPBEAR_CLIENT: boolean = true;

export const DROPBEAR_SERVER: boolean = true;

// Rekey after 8 hours or 1 GiB, whichever comes first.
export const KEX_REKEY_TIMEOUT = 3600 * 8;
export const KEX_REKEY_DATA = 1 << 30;
// Seconds a client may take to authenticate.
export const AUTH_TIMEOUT = 300;

export const DROPBEAR_SVR_PUBKEY_OPTIONS_BUILT: boolean =
  DROPBEAR_SVR_PUBKEY_AUTH && DROPBEAR_SVR_PUBKEY_OPTIONS;

// Held: glibc has fexecve, the target is Linux and DROPBEAR_REEXEC is on.
export const DROPBEAR_DO_REEXEC: boolean = true;

// The client sends its KEXDH_INIT guess before seeing the server's KEXINIT. Dropbear builds it
// in; ours does not (docs/deviations.md): our first kex, sntrup761x25519, is one that few SSH
// libraries have, so against most servers but OpenSSH and Dropbear the guess is wrong, and
// paramiko's server (its issue #418, open since 2014) then fails the key exchange instead of
// ignoring the guess. Without it, a connection costs one more round trip, as OpenSSH's does.
export const DROPBEAR_KEX_FIRST_FOLLOWS: boolean = false;
// Dropbear's kexguess2 extension that makes that guess right more often.
export const DROPBEAR_KEXGUESS2: boolean = true;

// Smallest DSS / RSA keys accepted, in bits.
export const MIN_DSS_KEYLEN = 1024;
export const MIN_RSA_KEYLEN = 1024;

export const MAX_BANNER_SIZE = 2050;
export const MAX_BANNER_LINES = 20;

// Environment slots, only used where libc lacks clearenv() (glibc has it).
export const ENV_SIZE = 100;

export const MAX_CMD_LEN = 9000;
export const MAX_TERM_LEN = 200;

// Longest host name accepted in forwarding requests.
export const MAX_HOST_LEN = 254;

// Ports given with -p; an IPv4 and IPv6 address for one port still count once.
export const DROPBEAR_MAX_PORTS = 10;

// Room for several addresses per port.
export const MAX_LISTEN_ADDR = DROPBEAR_MAX_PORTS * 3;

export const _PATH_TTY = "/dev/tty";

export const _PATH_CP = "/bin/cp";

// Shell list used only without getusershell() (glibc has it). In C a comma-separated
// initialiser list, hence an array here.
export const COMPAT_USER_SHELLS: readonly string[] = Object.freeze(["/bin/sh", "/bin/csh"]);

// C's character constant '~', kept as a byte value to compare with input bytes.
export const DROPBEAR_ESCAPE_CHAR = 0x7e;

// Return codes used across the code base.
export const DROPBEAR_SUCCESS = 0;
export const DROPBEAR_FAILURE = -1;

// Environment variable dbclient reads a password from.
export const DROPBEAR_PASSWORD_ENV = "DROPBEAR_PASSWORD";

export const DROPBEAR_DEFAULT_SSH_CONFIG = "~/.ssh/dropbear_config";

export const DROPBEAR_NGROUP_MAX = 1024;

export const DROPBEAR_SIGNKEY_VERIFY: boolean = DROPBEAR_SVR_PUBKEY_AUTH || DROPBEAR_CLIENT;

// Longer passwords are refused: crypt() time must stay below the failure delay.
export const DROPBEAR_MAX_PASSWORD_LEN = 100;

// Digest sizes in bytes; the maximum is SHA-512's.
export const SHA1_HASH_SIZE = 20;
export const SHA256_HASH_SIZE = 32;
export const MAX_HASH_SIZE = 64;

// Held: DROPBEAR_CHACHA20POLY1305 (two 256-bit keys).
export const MAX_KEY_LEN = 64;
export const MAX_IV_LEN = 20;

// Held: DROPBEAR_SHA2_256_HMAC without DROPBEAR_SHA2_512_HMAC. Our hmac-sha2-512 addition needs
// 64; the algorithm tables size their buffers from their own entries.
export const MAX_MAC_LEN = 32;

export const DROPBEAR_ECC: boolean = DROPBEAR_ECDH || DROPBEAR_ECDSA;

export const DROPBEAR_ECC_256: boolean = DROPBEAR_ECC;
export const DROPBEAR_ECC_384: boolean = DROPBEAR_ECC;
export const DROPBEAR_ECC_521: boolean = DROPBEAR_ECC;

export const DROPBEAR_LTC_PRNG: boolean = DROPBEAR_ECC;

// Blind RSA private-key operations against timing attacks.
export const DROPBEAR_RSA_BLINDING: boolean = true;

export const DROPBEAR_RSA_SHA256: boolean = DROPBEAR_RSA;

// Hashes the build needs.
export const DROPBEAR_SHA1: boolean =
  DROPBEAR_RSA_SHA1 ||
  DROPBEAR_DSS ||
  DROPBEAR_SHA1_HMAC ||
  DROPBEAR_SHA1_96_HMAC ||
  DROPBEAR_DH_GROUP1 ||
  DROPBEAR_DH_GROUP14_SHA1;
// Always on: fingerprints and the random pool use it.
export const DROPBEAR_SHA256: boolean = true;
export const DROPBEAR_SHA384: boolean = DROPBEAR_ECC_384;
export const DROPBEAR_SHA512: boolean =
  DROPBEAR_SHA2_512_HMAC ||
  DROPBEAR_ECC_521 ||
  DROPBEAR_SHA384 ||
  DROPBEAR_DH_GROUP16 ||
  DROPBEAR_ED25519 ||
  DROPBEAR_SNTRUP761;

export const DROPBEAR_DH_GROUP14: boolean = DROPBEAR_DH_GROUP14_SHA256 || DROPBEAR_DH_GROUP14_SHA1;

export const DROPBEAR_NORMAL_DH: boolean =
  DROPBEAR_DH_GROUP1 || DROPBEAR_DH_GROUP14 || DROPBEAR_DH_GROUP16;

export const DROPBEAR_SK_ECDSA: boolean = DROPBEAR_SK_KEYS && DROPBEAR_ECDSA;
export const DROPBEAR_SK_ED25519: boolean = DROPBEAR_SK_KEYS && DROPBEAR_ED25519;

export const DROPBEAR_PQHYBRID: boolean = DROPBEAR_SNTRUP761 || DROPBEAR_MLKEM768;
// The hybrids carry an x25519 exchange inside.
export const DROPBEAR_CURVE25519_DEP: boolean = DROPBEAR_CURVE25519 || DROPBEAR_PQHYBRID;

// EXT_INFO is only used to announce server-sig-algs, which matters for rsa-sha2-256 pubkey auth.
export const DROPBEAR_EXT_INFO: boolean =
  DROPBEAR_RSA_SHA256 && (DROPBEAR_CLI_PUBKEY_AUTH || DROPBEAR_SVR_PUBKEY_AUTH);

export const MAX_ECC_SIZE = 140;

// Longest protocol (algorithm) name.
export const MAX_NAME_LEN = 64;

export const MAX_PROPOSED_ALGO = 50;

// Packet size limits.
export const MIN_PACKET_LEN = 16;

export const RECV_MAX_PACKET_LEN = Math.max(35000, RECV_MAX_PAYLOAD_LEN + 100);

export const MAX_RECV_WINDOW = 10 * 1024 * 1024;

// Covers every kind of channel, forwarded connections included.
export const MAX_CHANNELS = 1000;

// The 2400 floor is for long algorithm lists from some peers.
export const MAX_STRING_LEN = Math.max(MAX_CMD_LEN, 2400);

// Replies that may be held back while a key exchange runs.
export const MAX_DEFER_REPLY_QUEUE = MAX_CHANNELS;

// Held: DROPBEAR_RSA, so the bounds fit a 4096-bit RSA key.
export const MAX_PUBKEY_SIZE = 600;
export const MAX_PRIVKEY_SIZE = 1700;

// Held: DROPBEAR_MLKEM768. Two length words, the ML-KEM-768 public key and ciphertext, two
// x25519 shares and a margin for the shared secret.
export const MAX_KEX_PARTS = 2 * 4 + 1184 + 1088 + 32 * 2 + 68;

export const MAX_HOSTKEYS = 6;

export const KEXHASHBUF_MAX_INTS = MAX_PUBKEY_SIZE + MAX_KEX_PARTS;

// One listening socket per address family.
export const DROPBEAR_MAX_SOCKS = 2;

export const DROPBEAR_MAX_CLI_PASS = 1024;

// Keyboard-interactive prompts the client accepts in one request.
export const DROPBEAR_MAX_CLI_INTERACT_PROMPTS = 80;

export const DROPBEAR_AES: boolean = DROPBEAR_AES256 || DROPBEAR_AES128;

// Always on here through chacha20-poly1305, whatever the GCM switch says.
export const DROPBEAR_AEAD_MODE: boolean = DROPBEAR_CHACHA20POLY1305 || DROPBEAR_ENABLE_GCM_MODE;

export const DROPBEAR_CLI_ANYTCPFWD: boolean = DROPBEAR_CLI_REMOTETCPFWD || DROPBEAR_CLI_LOCALTCPFWD;

export const DROPBEAR_TCP_ACCEPT: boolean = DROPBEAR_CLI_LOCALTCPFWD || DROPBEAR_SVR_REMOTETCPFWD;

// TCP and unix-socket forwards obey the same restrictions.
export const DROPBEAR_SVR_LOCALANYFWD: boolean =
  DROPBEAR_SVR_LOCALTCPFWD || DROPBEAR_SVR_LOCALSTREAMFWD;
export const DROPBEAR_SVR_REMOTEANYFWD: boolean =
  DROPBEAR_SVR_REMOTETCPFWD || DROPBEAR_SVR_REMOTESTREAMFWD;

export const DROPBEAR_LISTENERS: boolean =
  DROPBEAR_CLI_REMOTETCPFWD ||
  DROPBEAR_CLI_LOCALTCPFWD ||
  DROPBEAR_SVR_REMOTEANYFWD ||
  DROPBEAR_SVR_LOCALANYFWD ||
  DROPBEAR_SVR_AGENTFWD ||
  DROPBEAR_X11FWD;

export const DROPBEAR_CLI_MULTIHOP: boolean = DROPBEAR_CLI_NETCAT && DROPBEAR_CLI_PROXYCMD;

export const ENABLE_CONNECT_UNIX: boolean = DROPBEAR_CLI_AGENTFWD || DROPBEAR_USE_PRNGD;

// authorized_keys / known_hosts line parsing is needed.
export const DROPBEAR_KEY_LINES: boolean = DROPBEAR_CLIENT || DROPBEAR_SVR_PUBKEY_AUTH;

export const DROPBEAR_ZLIB_MEM_LEVEL = 8;

export const DROPBEAR_URANDOM_DEV = "/dev/urandom";

// Keyboard-interactive (RFC 4256) rides on the client's password switch.
export const DROPBEAR_CLI_INTERACT_AUTH: boolean = DROPBEAR_CLI_PASSWORD_AUTH;

// Held: HAVE_FORK (glibc), so fork() rather than vfork().
export const DROPBEAR_VFORK: boolean = false;

// Held: MAX_UNAUTH_CLIENTS (30) is not above MAX_CHANNELS, so the backlog is MAX_CHANNELS.
export const DROPBEAR_LISTEN_BACKLOG = MAX_CHANNELS;

// Release memory on exit.
export const DROPBEAR_CLEANUP: boolean = true;

// Request name used for keepalives; OpenSSH's name, which peers already recognise.
export const DROPBEAR_KEEPALIVE_STRING = "keepalive@openssh.com";

// Held: __linux__. TCP fast open on the server side only.
export const DROPBEAR_SERVER_TCP_FAST_OPEN: boolean = true;
export const DROPBEAR_CLIENT_TCP_FAST_OPEN: boolean = false;

// Held: DROPBEAR_FUZZ is not defined.
export const DROPBEAR_TRACKING_MALLOC: boolean = false;

// Held: not built under MemorySanitizer.
export const DROPBEAR_MSAN: boolean = false;

export const DEBUG_DSS_VERIFY: boolean = false;

// Held: separate programs, not the single multi-call binary.
export const DROPBEAR_MULTI: boolean = false;

// Bounds on authorized_keys-style input.
export const DROPBEAR_MAX_LINE_LENGTH = 10000;
export const MAX_AUTHKEYS_LINE_COUNT = 300;
