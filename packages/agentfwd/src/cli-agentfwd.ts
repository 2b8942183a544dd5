import { closeSync, readSync, writeSync } from "node:fs";
import { Socket } from "node:net";
import { endianness } from "node:os";
import {
  buf_eatstring,
  buf_getbyte,
  buf_getint,
  buf_getptr,
  buf_getstringbuf,
  buf_new,
  buf_putbufstring,
  buf_putbyte,
  buf_putbytes,
  buf_putint,
  buf_setpos,
  type buffer,
} from "@dropbear-ts/buffer";
import { start_send_channel_request } from "@dropbear-ts/channel";
import { SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, SSH_OPEN_CONNECT_FAILED, type ChanType, type Channel, type CliAgentOps, type CliSession } from "@dropbear-ts/core";
import { LOG_INFO, TRACE, atomicio, bytesText, dropbear_log, envBytes, interruptRequested, libcFunc, list_append, readInterruptibly, type atomicio_f, type m_list } from "@dropbear-ts/dbutil";
import { StreamFd, socketStreamOptions } from "@dropbear-ts/netio";
import {
  DROPBEAR_RSA_SHA256,
  MAX_PUBKEY_SIZE,
  SSH2_AGENTC_REQUEST_IDENTITIES,
  SSH2_AGENTC_SIGN_REQUEST,
  SSH2_AGENT_IDENTITIES_ANSWER,
  SSH2_AGENT_SIGN_RESPONSE,
} from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import {
  DROPBEAR_SIGNATURE_RSA_SHA256,
  DROPBEAR_SIGNATURE_RSA_SHA512,
  DROPBEAR_SIGNKEY_ANY,
  SIGNKEY_SOURCE_AGENT,
  buf_get_pub_key,
  buf_put_pub_key,
  new_sign_key,
  type sign_key,
  type signature_type,
} from "@dropbear-ts/signkey";

// cli-agentfwd.c: dbclient and ssh-agent. Publickey auth asks the agent synchronously, as
// Dropbear does (a blocking socket; the client has nothing else to do meanwhile), through the
// CliAgentOps seam in core. With -A the server may open "auth-agent@openssh.com" channels,
// each of which becomes a non-blocking connection to the local agent.

/** Ask for rsa-sha2-256 signatures. @dropbear agentfwd.h SSH_AGENT_RSA_SHA2_256 */
export const SSH_AGENT_RSA_SHA2_256 = 0x02;
/** Ask for rsa-sha2-512 signatures (draft-miller-ssh-agent; beyond Dropbear, which never asks). */
export const SSH_AGENT_RSA_SHA2_512 = 0x04;
/**
 * Longest agent reply we read: OpenSSH's (MAX_AGENT_REPLY_LEN, 256 KiB), where Dropbear's is
 * 10000 bytes. An identity list is longer than that with some 18 RSA-4096 keys, or fewer keys
 * with long comments: Dropbear then ends with "Bad buf_getbyte", and we skipped every key the
 * agent held, going on to a password prompt without a word.
 * @dropbear agentfwd.h MAX_AGENT_REPLY
 */
export const MAX_AGENT_REPLY = 256 * 1024;

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
/** sizeof(struct sockaddr_un) on Linux: sa_family_t, then a 108-byte path. */
const SOCKADDR_UN_SIZE = 110;

/**
 * A blocking AF_UNIX stream socket connected to path (a string as UTF-8, or its bytes), as a
 * plain fd, or -1. Like C's strlcpy into sun_path, an over-long path is cut to fit.
 * @dropbear dbutil.c connect_unix
 */
export function connect_unix(path: string | Uint8Array): number {
  const socket = libcFunc<(domain: number, type: number, protocol: number) => number>("int socket(int domain, int type, int protocol)");
  const connect = libcFunc<(fd: number, addr: Buffer, len: number) => number>("int connect(int fd, const uint8_t *addr, uint32_t len)");
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  if (endianness() === "LE") {
    addr.writeUInt16LE(AF_UNIX, 0);
  } else {
    addr.writeUInt16BE(AF_UNIX, 0);
  }
  (typeof path === "string" ? Buffer.from(path, "utf8") : Buffer.from(path)).copy(addr, 2, 0, SOCKADDR_UN_SIZE - 3);
  // CLOEXEC: a session child must not inherit our agent connection.
  const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    TRACE("Failed to open unix socket");
    return -1;
  }
  if (connect(fd, addr, SOCKADDR_UN_SIZE) < 0) {
    TRACE(() => `Failed to connect to '${typeof path === "string" ? path : bytesText(path)}' socket`);
    closeSync(fd);
    return -1;
  }
  return fd;
}

/** Connect to $SSH_AUTH_SOCK (or the socket a library caller named); -1 if unset or refused. @dropbear cli-agentfwd.c connect_agent */
function connect_agent(ses: CliSession): number {
  // $SSH_AUTH_SOCK by its bytes, as C's getenv gives them: a path that is not UTF-8 names no
  // file once decoded.
  const agent_sock = ses.cli_ses.cli_opts.agent_sock ?? envBytes("SSH_AUTH_SOCK");
  if (agent_sock === null) {
    return -1;
  }
  // A connect to an agent whose backlog is full waits: ^C or a kill must still end us then.
  const fd = readInterruptibly(() => connect_unix(agent_sock));
  if (fd < 0) {
    dropbear_log(LOG_INFO, "Failed to connect to agent");
  }
  return fd;
}

/**
 * The server opened an agent channel: connect it to the local agent, refused unless -A was
 * given. @dropbear cli-agentfwd.c new_agent_chan
 */
function new_agent_chan(ses: CliSession, channel: Channel): number {
  if (!ses.cli_ses.cli_opts.agent_fwd) {
    return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED;
  }
  const fd = connect_agent(ses);
  if (fd < 0) {
    return SSH_OPEN_CONNECT_FAILED;
  }
  // libuv makes the fd non-blocking (C's setnonblocking); half-open so an EOF one way
  // leaves the other direction flowing.
  const sock = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true, ...socketStreamOptions });
  const sfd = new StreamFd(sock);
  channel.readfd = sfd;
  channel.writefd = sfd;
  channel.bidir_fd = true;
  return 0;
}

/** The channel type the server opens to reach our agent (-A). @dropbear cli-agentfwd.c cli_chan_agent */
export const cli_chan_agent: ChanType<CliSession> = {
  name: "auth-agent@openssh.com",
  inithandler: new_agent_chan,
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};

/**
 * Ask the server to forward its agent socket to us, on the session channel; no reply wanted.
 * Nothing is asked when there is no local agent to forward. @dropbear cli-agentfwd.c cli_setup_agent
 */
export function cli_setup_agent(ses: CliSession, channel: Channel): void {
  if (process.env.SSH_AUTH_SOCK === undefined) {
    return;
  }
  start_send_channel_request(ses, channel, "auth-agent-req@openssh.com");
  buf_putbyte(ses.writepayload, 0);
  encrypt_packet(ses);
}

const POLLIN = 0x001;
const POLLOUT = 0x004;

/** How long one poll(2) of agentReady waits before it looks for a signal again (ms). */
const AGENT_POLL_SLICE = 100;

/**
 * Whether fd is ready for `events` before `deadline` (Date.now() ms; null: no limit, as C) and
 * before a signal readInterruptibly catches: poll(2) on it alone, in slices.
 */
function agentReady(fd: number, events: number, deadline: number | null): boolean {
  const poll = libcFunc<(fds: Buffer, nfds: number, timeout: number) => number>("int poll(uint8_t *fds, unsigned long nfds, int timeout)");
  // struct pollfd: int fd, short events, short revents.
  const pfd = Buffer.alloc(8);
  if (endianness() === "LE") {
    pfd.writeInt32LE(fd, 0);
    pfd.writeInt16LE(events, 4);
  } else {
    pfd.writeInt32BE(fd, 0);
    pfd.writeInt16BE(events, 4);
  }
  for (;;) {
    if (interruptRequested()) {
      return false;
    }
    const left = deadline === null ? AGENT_POLL_SLICE : deadline - Date.now();
    if (left < 0) {
      return false;
    }
    // 0: the slice is over; -1: a signal (EINTR), looked for next.
    if (poll(pfd, 1, Math.min(left, AGENT_POLL_SLICE)) > 0) {
      return true;
    }
  }
}

/** All len bytes moved (C's `atomicio(...) == len`); false on an error or an early end. */
function agentio(f: atomicio_f, fd: number, buf: Uint8Array, len: number): boolean {
  try {
    return atomicio(f, fd, buf, len) === len;
  } catch {
    return false;
  }
}

/**
 * One request to the agent and its reply (pos 0, the type byte first), or null if the agent
 * could not be talked to or answered more than MAX_AGENT_REPLY. @dropbear cli-agentfwd.c agent_request
 */
function agent_request(ses: CliSession, type: number, data: buffer | null): buffer | null {
  // The agent may take its time (a confirm prompt, a token waiting for a touch) or never answer:
  // ^C or a kill meanwhile must end us at once, as it ends C's client, not once it answers.
  return readInterruptibly(() => agent_exchange(ses, type, data));
}

/** agent_request's blocking write of the request and read of the reply. */
function agent_exchange(ses: CliSession, type: number, data: buffer | null): buffer | null {
  const fd = ses.cli_ses.cli_opts.agent_fd;
  const data_len = data === null ? 0 : data.len;
  const payload = buf_new(4 + 1 + data_len);
  buf_putint(payload, 1 + data_len);
  buf_putbyte(payload, type);
  if (data !== null) {
    buf_putbytes(payload, data.data.subarray(0, data.len));
  }
  // Each read and write waits in poll(2) first: past the deadline (the library's) the agent counts
  // as one that could not be talked to, and a signal that came between two calls is acted on.
  const deadline = ses.cli_ses.cli_opts.agent_deadline;
  const io = (f: atomicio_f, events: number): atomicio_f => (...a) => (agentReady(a[0], events, deadline) ? f(...a) : 0);
  if (!agentio(io(writeSync, POLLOUT), fd, payload.data, payload.len)) {
    TRACE(`write failed fd ${fd} for agent_request`);
    return null;
  }
  TRACE("Wrote out bytes for agent_request");
  const lenbuf = Buffer.alloc(4);
  if (!agentio(io(readSync, POLLIN), fd, lenbuf, 4)) {
    TRACE("read of length failed for agent_request");
    return null;
  }
  const readlen = lenbuf.readUInt32BE(0);
  if (readlen > MAX_AGENT_REPLY) {
    TRACE("agent reply is too big");
    return null;
  }
  const inbuf = buf_new(readlen);
  if (!agentio(io(readSync, POLLIN), fd, inbuf.data, readlen)) {
    TRACE("read of data failed for agent_request");
    return null;
  }
  inbuf.len = readlen;
  buf_setpos(inbuf, 0);
  return inbuf;
}

/** Append the agent's keys (public halves, source AGENT) to the list. @dropbear cli-agentfwd.c agent_get_key_list */
function agent_get_key_list(ses: CliSession, ret_list: m_list<sign_key>): void {
  const inbuf = agent_request(ses, SSH2_AGENTC_REQUEST_IDENTITIES, null);
  if (inbuf === null) {
    TRACE("agent_request failed returning identities");
    return;
  }
  // byte IDENTITIES_ANSWER, uint32 count, then (string key_blob, string comment) each.
  if (buf_getbyte(inbuf) !== SSH2_AGENT_IDENTITIES_ANSWER) {
    return;
  }
  const num = buf_getint(inbuf);
  for (let i = 0; i < num; i++) {
    const key_buf = buf_getstringbuf(inbuf);
    const pubkey = new_sign_key();
    const key_type = buf_get_pub_key(key_buf, pubkey, DROPBEAR_SIGNKEY_ANY);
    if (key_type === null) {
      TRACE("Skipping bad/unknown type pubkey from agent");
    } else {
      pubkey.type = key_type;
      pubkey.source = SIGNKEY_SOURCE_AGENT;
      list_append(ret_list, pubkey);
    }
    buf_eatstring(inbuf);
  }
}

/**
 * Connect to the agent (kept open until auth is over) and append its keys.
 * @dropbear cli-agentfwd.c cli_load_agent_keys
 */
export function cli_load_agent_keys(ses: CliSession, ret_list: m_list<sign_key>): void {
  const cli_opts = ses.cli_ses.cli_opts;
  cli_opts.agent_fd = connect_agent(ses);
  if (cli_opts.agent_fd < 0) {
    return;
  }
  agent_get_key_list(ses, ret_list);
}

/** Close the agent connection auth used. */
export function cliCloseAgent(ses: CliSession): void {
  const cli_opts = ses.cli_ses.cli_opts;
  if (cli_opts.agent_fd >= 0) {
    try {
      closeSync(cli_opts.agent_fd);
    } catch {
      // Gone already: nothing left to release.
    }
  }
  cli_opts.agent_fd = -1;
}

/**
 * Have the agent sign data_buf with key; the signature blob is appended to sigblob. Returns
 * false when the agent refused (C ends the program here: the caller moves on to the next key
 * instead). @dropbear cli-agentfwd.c agent_buf_sign
 */
export function agent_buf_sign(ses: CliSession, sigblob: buffer, key: sign_key, data_buf: buffer, sigtype: signature_type): boolean {
  // byte SIGN_REQUEST, string key_blob, string data, uint32 flags
  const request_data = buf_new(MAX_PUBKEY_SIZE + data_buf.len + 12);
  buf_put_pub_key(request_data, key, key.type);
  buf_putbufstring(request_data, data_buf);
  let flags = 0;
  if (DROPBEAR_RSA_SHA256 && sigtype === DROPBEAR_SIGNATURE_RSA_SHA256) {
    flags |= SSH_AGENT_RSA_SHA2_256;
  }
  if (sigtype === DROPBEAR_SIGNATURE_RSA_SHA512) {
    flags |= SSH_AGENT_RSA_SHA2_512;
  }
  buf_putint(request_data, flags);

  const response = agent_request(ses, SSH2_AGENTC_SIGN_REQUEST, request_data);
  if (response === null || buf_getbyte(response) !== SSH2_AGENT_SIGN_RESPONSE) {
    return false;
  }
  // byte SIGN_RESPONSE, string signature_blob
  const siglen = buf_getint(response);
  buf_putbytes(sigblob, buf_getptr(response, siglen));
  return true;
}

/** What client publickey auth calls; the client program installs it as `ses.cli_ses.agent`. */
export const cliAgentOps: CliAgentOps = {
  load_keys: cli_load_agent_keys,
  buf_sign: agent_buf_sign,
  close: cliCloseAgent,
};
