// Mirrors Dropbear 2026.94 src/ssh.h: SSH protocol numbers and names.

// Transport layer messages (RFC 4253, EXT_INFO from RFC 8308).
export const SSH_MSG_DISCONNECT = 1;
export const SSH_MSG_IGNORE = 2;
export const SSH_MSG_UNIMPLEMENTED = 3;
export const SSH_MSG_DEBUG = 4;
export const SSH_MSG_SERVICE_REQUEST = 5;
export const SSH_MSG_SERVICE_ACCEPT = 6;
export const SSH_MSG_EXT_INFO = 7;
export const SSH_MSG_KEXINIT = 20;
export const SSH_MSG_NEWKEYS = 21;
export const SSH_MSG_KEXDH_INIT = 30;
export const SSH_MSG_KEXDH_REPLY = 31;

// User authentication messages (RFC 4252).
export const SSH_MSG_USERAUTH_REQUEST = 50;
export const SSH_MSG_USERAUTH_FAILURE = 51;
export const SSH_MSG_USERAUTH_SUCCESS = 52;
export const SSH_MSG_USERAUTH_BANNER = 53;

// 60..79 mean different things per auth method, so several names share 60; the receiver
// decides by the method it last tried.
export const SSH_MSG_USERAUTH_SPECIFIC_60 = 60;

export const SSH_MSG_USERAUTH_PASSWD_CHANGEREQ = 60;

export const SSH_MSG_USERAUTH_PK_OK = 60;

// Keyboard-interactive (RFC 4256).
export const SSH_MSG_USERAUTH_INFO_REQUEST = 60;
export const SSH_MSG_USERAUTH_INFO_RESPONSE = 61;

// Connection protocol messages (RFC 4254).
export const SSH_MSG_GLOBAL_REQUEST = 80;
export const SSH_MSG_REQUEST_SUCCESS = 81;
export const SSH_MSG_REQUEST_FAILURE = 82;
export const SSH_MSG_CHANNEL_OPEN = 90;
export const SSH_MSG_CHANNEL_OPEN_CONFIRMATION = 91;
export const SSH_MSG_CHANNEL_OPEN_FAILURE = 92;
export const SSH_MSG_CHANNEL_WINDOW_ADJUST = 93;
export const SSH_MSG_CHANNEL_DATA = 94;
export const SSH_MSG_CHANNEL_EXTENDED_DATA = 95;
export const SSH_MSG_CHANNEL_EOF = 96;
export const SSH_MSG_CHANNEL_CLOSE = 97;
export const SSH_MSG_CHANNEL_REQUEST = 98;
export const SSH_MSG_CHANNEL_SUCCESS = 99;
export const SSH_MSG_CHANNEL_FAILURE = 100;

// Data type code of CHANNEL_EXTENDED_DATA.
export const SSH_EXTENDED_DATA_STDERR = 1;

// Reason codes carried by SSH_MSG_DISCONNECT.
export const SSH_DISCONNECT_HOST_NOT_ALLOWED_TO_CONNECT = 1;
export const SSH_DISCONNECT_PROTOCOL_ERROR = 2;
export const SSH_DISCONNECT_KEY_EXCHANGE_FAILED = 3;
export const SSH_DISCONNECT_RESERVED = 4;
export const SSH_DISCONNECT_MAC_ERROR = 5;
export const SSH_DISCONNECT_COMPRESSION_ERROR = 6;
export const SSH_DISCONNECT_SERVICE_NOT_AVAILABLE = 7;
export const SSH_DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED = 8;
export const SSH_DISCONNECT_HOST_KEY_NOT_VERIFIABLE = 9;
export const SSH_DISCONNECT_CONNECTION_LOST = 10;
export const SSH_DISCONNECT_BY_APPLICATION = 11;
export const SSH_DISCONNECT_TOO_MANY_CONNECTIONS = 12;
export const SSH_DISCONNECT_AUTH_CANCELLED_BY_USER = 13;
export const SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE = 14;
export const SSH_DISCONNECT_ILLEGAL_USER_NAME = 15;

// Extension negotiation names placed in the KEXINIT algorithm list (RFC 8308).
export const SSH_EXT_INFO_S = "ext-info-s";
export const SSH_EXT_INFO_C = "ext-info-c";
export const SSH_SERVER_SIG_ALGS = "server-sig-algs";

// OpenSSH's strict key exchange markers, also sent as KEXINIT pseudo-algorithms.
export const SSH_STRICT_KEX_S = "kex-strict-s-v00@openssh.com";
export const SSH_STRICT_KEX_C = "kex-strict-c-v00@openssh.com";

// Service names, each with its byte length.
export const SSH_SERVICE_USERAUTH = "ssh-userauth";
export const SSH_SERVICE_USERAUTH_LEN = 12;
export const SSH_SERVICE_CONNECTION = "ssh-connection";
export const SSH_SERVICE_CONNECTION_LEN = 14;

// Public key type names, each with its byte length.
export const SSH_SIGNKEY_DSS = "ssh-dss";
export const SSH_SIGNKEY_DSS_LEN = 7;
export const SSH_SIGNKEY_RSA = "ssh-rsa";
export const SSH_SIGNKEY_RSA_LEN = 7;
export const SSH_SIGNKEY_ED25519 = "ssh-ed25519";
export const SSH_SIGNKEY_ED25519_LEN = 11;
// Signature type name for RSA with SHA-256.
export const SSH_SIGNATURE_RSA_SHA256 = "rsa-sha2-256";

// ssh-agent protocol numbers (OpenSSH's agent, not an RFC).
export const SSH_AGENT_FAILURE = 5;
export const SSH_AGENT_SUCCESS = 6;
export const SSH2_AGENTC_REQUEST_IDENTITIES = 11;
export const SSH2_AGENT_IDENTITIES_ANSWER = 12;
export const SSH2_AGENTC_SIGN_REQUEST = 13;
export const SSH2_AGENT_SIGN_RESPONSE = 14;

export const SSH2_AGENT_FAILURE = 30;

// Flag bits of OpenSSH's security-key (sk-*) keys and signatures.
export const SSH_SK_USER_PRESENCE_REQD = 0x01;
export const SSH_SK_USER_VERIFICATION_REQD = 0x04;
export const SSH_SK_RESIDENT_KEY = 0x20;
