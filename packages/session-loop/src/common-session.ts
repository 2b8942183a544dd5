import { buf_new, buf_putbyte, buf_putbytes, buf_putstring, buf_burn_free, type buffer } from "@dropbear-ts/buffer";
import { OUR_TRANS_MAX_PAYLOAD_LEN, key_context, sesCall, type sshsession } from "@dropbear-ts/core";
import { freeKeyStates } from "@dropbear-ts/crypto";
import {
  DEBUG1,
  TRACE,
  TRACE2,
  cleantext,
  debug_start_net,
  dequeue,
  dropbear_assert,
  dropbear_close,
  dropbear_exit,
  gettime_wrapper,
  isempty,
  malloc_trim,
  monotonic_now,
  m_burn,
  userOutputBacklogged,
} from "@dropbear-ts/dbutil";
import { chancleanup, channelio, get_any_ready_channel, setchannelfds, start_send_channel_request } from "@dropbear-ts/channel";
import { send_msg_kexinit } from "@dropbear-ts/kex";
import { remove_all_listeners } from "@dropbear-ts/listener";
import { SignalPipeFd, handle_connect_fds, remove_connect_pending, set_connect_fds, type Fd, type StreamFd } from "@dropbear-ts/netio";
import {
  AUTH_TIMEOUT,
  DROPBEAR_KEEPALIVE_STRING,
  KEX_REKEY_DATA,
  KEX_REKEY_TIMEOUT,
  LOCAL_IDENT,
  MAX_CHANNELS,
  SSH_MSG_CHANNEL_CLOSE,
  SSH_MSG_CHANNEL_DATA,
  SSH_MSG_CHANNEL_EXTENDED_DATA,
  SSH_MSG_CHANNEL_OPEN,
  SSH_MSG_CHANNEL_OPEN_CONFIRMATION,
  SSH_MSG_CHANNEL_OPEN_FAILURE,
  SSH_MSG_CHANNEL_WINDOW_ADJUST,
  SSH_MSG_GLOBAL_REQUEST,
  SSH_MSG_KEXINIT,
  TRANS_MAX_PAYLOAD_LEN,
} from "@dropbear-ts/options";
import { encrypt_packet, maybe_flush_reply_queue, process_packet, read_packet, write_packet, writebuf_enqueue } from "@dropbear-ts/packet";
import { SelectTimer, select } from "./select.js";

/** Longest identification line, CR LF excluded (RFC 4253 §4.2). */
const IDENT_MAX = 255;

/**
 * Set a new session up on its transport: time stamps, the signal pipe, empty queues, and no
 * cipher or MAC until the first NEWKEYS. @dropbear common-session.c common_session_init
 */
export function common_session_init(ses: sshsession, sock_in: StreamFd | null, sock_out: StreamFd | null): void {
  debug_start_net();
  TRACE("enter session_init");
  ses.sock_in = sock_in;
  ses.sock_out = sock_out;
  const now = monotonic_now();
  ses.connect_time = now;
  ses.connect_time_ms = gettime_wrapper();
  ses.last_packet_time_keepalive_recv = now;
  ses.last_packet_time_idle = now;
  ses.last_packet_time_any_sent = 0;
  ses.last_packet_time_keepalive_sent = 0;
  ses.signal_pipe = new SignalPipeFd();
  ses.writepayload = buf_new(OUR_TRANS_MAX_PAYLOAD_LEN);
  ses.requirenext = SSH_MSG_KEXINIT;
  // Data may flow until our KEXINIT goes out.
  ses.dataallowed = true;
  TRACE("leave session_init");
}

/** What a SIGINT/SIGTERM handler flags: a session, or svr-main's listening loop (C's global ses). */
export type SignalTarget = Pick<sshsession, "exitflag" | "signal_pipe">;

/**
 * SIGINT and SIGTERM set `exitflag` and wake the loop, which then exits with "Terminated by
 * signal" at its next turn, cleaning up as any exit does. @dropbear svr-main.c sigintterm_handler
 */
export function sigintterm_handler(ses: SignalTarget): void {
  const onSignal = (): void => {
    ses.exitflag = true;
    ses.signal_pipe?.raise();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

/**
 * Back pressure on the transport, and why it differs from Dropbear.
 *
 * Dropbear stops reading the transport socket whenever more than 2*TRANS_MAX_PAYLOAD_LEN
 * (32 KiB) waits in its own write queue. Two peers that both do this, with large windows and
 * many busy channels, wedge each other: each has a full queue towards the other, neither reads,
 * so neither queue drains (DESIGN.md §4: with 2 MiB windows 0 of 200 tunnelled connections
 * complete). Dropbear gets away with it only because its default window is 24 KiB.
 *
 * Our rule keeps Dropbear's mark of two packets (2 × OUR_TRANS_MAX_PAYLOAD_LEN, 256 KiB with
 * our larger packets) for what we generate ourselves: above it setchannelfds stops reading
 * local channel fds, so channel data in the queue is at most that mark plus one packet per
 * channel (what one channelio pass can read). The transport is still read and
 * processed above the mark: processing only writes peer data into channel rings (bounded by
 * the windows we granted) and queues small replies, and a peer that follows the protocol can
 * only make us queue a bounded amount of those without reading (its windows and channel
 * count limit it). So our reading never waits for the peer's reading, and the cycle above cannot
 * form. Only past WRITEQUEUE_READ_LIMIT, which no well-behaved peer can make us reach, do we stop
 * reading too, so a peer that floods us with requests and never reads our answers cannot
 * grow our memory without bound.
 */
export const WRITEQUEUE_READ_LIMIT = 2 * MAX_CHANNELS * TRANS_MAX_PAYLOAD_LEN;

/**
 * The same limit counted in packets. writequeue_len counts wire bytes, but each queued packet
 * also costs a buffer object (a few hundred bytes in V8), so a flood of tiny replies
 * (SSH_MSG_UNIMPLEMENTED is 16 bytes on the wire) would reach WRITEQUEUE_READ_LIMIT only after
 * two million packets, about 600 MB. A well-behaved peer makes us queue at most about one
 * channel-data packet and a few window adjusts per channel plus 32 KiB of other data, far below.
 */
export const WRITEQUEUE_READ_PACKETS = 16 * MAX_CHANNELS;

/**
 * May the loop read the transport this turn? Before authentication Dropbear's own rule holds:
 * no channel exists yet, so the deadlock described above cannot form, and a peer that sends
 * unanswerable packets without reading the replies is stopped at 32 KiB queued, as Dropbear
 * stops it. After authentication the larger limits above apply. Never while ses.readheld, nor
 * while the messages we wrote on stderr wait for its reader (userOutputBacklogged), as C's
 * loop waits in fprintf.
 */
function transport_read_allowed(ses: sshsession, writequeue_has_space: boolean): boolean {
  if (ses.readheld || userOutputBacklogged(ses.signal_pipe)) {
    return false;
  }
  if (!ses.authstate.authdone) {
    return writequeue_has_space;
  }
  return ses.writequeue_len <= WRITEQUEUE_READ_LIMIT && ses.writequeue.count <= WRITEQUEUE_READ_PACKETS;
}

/** At most this many transport packets read and processed per loop turn (see session_loop). */
const PACKETS_PER_TURN = 16;

/**
 * The received payload is one that may be followed by more in the same turn (and no kex is
 * running): channel data, window adjusts, and a channel's opening and closing. None of these
 * concern the loop handler or the kex state machine, which see any other message before the next
 * packet is read. With many channels, a turn per open, confirmation and CLOSE was what a
 * connection cost, each turn visiting every channel. Not EOF: as in Dropbear, the channel I/O
 * and the write that follow it come before the next packet, so the CLOSE an EOF lets us send
 * leaves before a CLOSE right behind the EOF is taken; otherwise dbclient, whose loop handler
 * then finishes, exited without the CLOSE that RFC 4254 5.3 requires in answer.
 */
function isBatchedPacket(ses: sshsession): boolean {
  if (!ses.dataallowed) {
    return false;
  }
  switch (ses.payload!.data[ses.payload_beginning]) {
    case SSH_MSG_CHANNEL_DATA:
    case SSH_MSG_CHANNEL_EXTENDED_DATA:
    case SSH_MSG_CHANNEL_WINDOW_ADJUST:
    case SSH_MSG_CHANNEL_OPEN:
    case SSH_MSG_CHANNEL_OPEN_CONFIRMATION:
    case SSH_MSG_CHANNEL_OPEN_FAILURE:
    case SSH_MSG_CHANNEL_CLOSE:
      return true;
    default:
      return false;
  }
}

/**
 * The main loop, one iteration as Dropbear does it: build the fd sets (channels, listeners,
 * pending connects, the transport), select, check timeouts, read and process at most one
 * packet, flush deferred replies, finish connects, run the program's loop handler, do channel
 * I/O and accept on listeners, then an optimistic write. Ends only by a thrown DropbearExit.
 * A loop handler may return a promise: it is awaited in place, as C blocks in getaddrinfo and
 * bind when the client sets its forwards up.
 * @dropbear common-session.c session_loop
 */
export async function session_loop<S extends sshsession>(ses: S, loophandler: (ses: S) => void | Promise<void>): Promise<never> {
  // FD_ZERO'd at the top of every turn, as C reuses its fd_sets.
  const readfd = new Set<Fd>();
  const writefd = new Set<Fd>();
  const timer = new SelectTimer();
  try {
    return await session_loop_turns(ses, loophandler, readfd, writefd, timer);
  } finally {
    timer.stop();
  }
}

/** session_loop's turns, each select() waiting with the loop's one timer. */
async function session_loop_turns<S extends sshsession>(
  ses: S,
  loophandler: (ses: S) => void | Promise<void>,
  readfd: Set<Fd>,
  writefd: Set<Fd>,
  timer: SelectTimer,
): Promise<never> {
  for (;;) {
    const writequeue_has_space = ses.writequeue_len <= 2 * OUR_TRANS_MAX_PAYLOAD_LEN;
    const timeout = select_timeout(ses);
    readfd.clear();
    writefd.clear();
    dropbear_assert(ses.payload === null, "ses.payload == NULL");
    if (ses.signal_pipe !== null) {
      readfd.add(ses.signal_pipe);
    }
    setchannelfds(ses, readfd, writefd, writequeue_has_space);
    set_connect_fds(ses.conn_pending, writefd);
    // Our ident and KEXINIT leave before we wait for theirs; see WRITEQUEUE_READ_LIMIT.
    if (ses.sock_in !== null && (ses.remoteident !== null || isempty(ses.writequeue)) && transport_read_allowed(ses, writequeue_has_space)) {
      readfd.add(ses.sock_in);
    }
    // Last: the steps above may have queued packets.
    if (ses.sock_out !== null && !isempty(ses.writequeue)) {
      writefd.add(ses.sock_out);
    }

    const val = await select(readfd, writefd, timeout, ses.idle_work, timer);
    if (ses.exitflag) {
      dropbear_exit("Terminated by signal");
    }
    if (val <= 0) {
      readfd.clear();
      writefd.clear();
    }
    ses.channel_signal_pending = false;
    if (ses.signal_pipe !== null && readfd.has(ses.signal_pipe)) {
      TRACE("signal pipe set");
      ses.signal_pipe.drain();
      ses.channel_signal_pending = true;
    }

    checktimeouts(ses);

    if (ses.sock_in !== null) {
      if (readfd.has(ses.sock_in)) {
        if (ses.remoteident === null) {
          read_session_identification(ses);
        } else {
          read_packet(ses);
        }
      }
      if (ses.payload !== null) {
        let batch = isBatchedPacket(ses);
        process_packet(ses);
        const work = ses.awaitAfterPacket;
        if (work !== null) {
          ses.awaitAfterPacket = null;
          await await_after_packet(ses, work);
          batch = false;
        }
        // Beyond Dropbear (one packet per select): after channel data, a window adjust or a
        // channel's open or close (isBatchedPacket), while bytes of more packets are already
        // buffered, read and process more of those in this turn, so a busy transport costs one
        // loop turn per batch, not per packet. Any other message ends the batch once processed:
        // the loop handler and the kex state machine see it before the next packet, exactly as
        // in Dropbear. So does the close of the last channel (dbclient's loop handler then
        // finishes), and the end of the transport is left to the next turn's read: a server
        // that hangs up right behind its CHANNEL_CLOSE still leaves the command's exit status.
        for (
          let more = 1;
          batch &&
          more < PACKETS_PER_TURN &&
          ses.sock_in !== null &&
          !ses.exitflag &&
          ses.chancount > 0 &&
          ses.sock_in.dataReady() &&
          transport_read_allowed(ses, ses.writequeue_len <= 2 * OUR_TRANS_MAX_PAYLOAD_LEN);
          more++
        ) {
          read_packet(ses);
          if (ses.payload === null) {
            break;
          }
          batch = isBatchedPacket(ses);
          process_packet(ses);
          const next = ses.awaitAfterPacket;
          if (next !== null) {
            ses.awaitAfterPacket = null;
            await await_after_packet(ses, next);
            break;
          }
        }
      }
    }

    maybe_flush_reply_queue(ses);
    handle_connect_fds(ses.conn_pending, writefd, ses.opts.disable_ip_tos);
    // Before channelio, so a server notices a child's exit before channel I/O.
    const pending = loophandler(ses);
    if (pending !== undefined) {
      await pending;
    }
    channelio(ses, readfd, writefd);

    if (ses.sock_out !== null && !isempty(ses.writequeue)) {
      write_packet(ses);
    }
  }
}

/**
 * Wait for what a packet left to finish before the next one is read (an embedder's answer, a
 * bind), as C blocks in its checks. A peer that leaves meanwhile ends the session at once, as
 * the next read would: C's checks return soon, but an embedder's may take minutes (a directory
 * lookup), and the connection and its place among the unauthenticated would be held for nobody.
 */
async function await_after_packet(ses: sshsession, work: Promise<unknown>): Promise<void> {
  const sock = ses.sock_in;
  if (sock === null) {
    await work;
    return;
  }
  let check = (): void => undefined;
  let outcome: "done" | "left";
  try {
    // Whichever comes first; work's rejection (a refused host key) is the loop's to throw.
    outcome = await new Promise<"done" | "left">((resolve, reject) => {
      check = (): void => {
        if (sock.readEnded) {
          resolve("left");
        }
      };
      sock.addWaiter(check);
      check();
      work.then(() => resolve("done"), reject);
    });
  } finally {
    sock.removeWaiter(check);
  }
  if (outcome === "left") {
    // The answer may still come, or fail, after the session has gone: those that come late
    // look at exitflag and do nothing.
    ses.exitflag = true;
    dropbear_exit("Remote closed the connection", "ECLOSED");
  }
}

/** Free what the session holds and run the program's own cleanup. @dropbear common-session.c session_cleanup */
export function session_cleanup(ses: sshsession): void {
  TRACE("enter session_cleanup");
  if (!ses.init_done) {
    TRACE("leave session_cleanup: !ses.init_done");
    return;
  }
  // Channels first: their cleanup may still need the rest of the session.
  chancleanup(ses);
  if (ses.extra_session_cleanup !== null) {
    sesCall(ses, ses.extra_session_cleanup);
  }
  remove_all_listeners(ses);
  remove_connect_pending(ses.conn_pending);
  while (!isempty(ses.writequeue)) {
    dequeue(ses.writequeue);
  }
  ses.writequeue_len = 0;
  if (ses.newkeys !== null) {
    burn_keys(ses.newkeys);
    ses.newkeys = null;
  }
  ses.session_id = cleanup_bytes(ses.session_id);
  ses.hash = cleanup_bytes(ses.hash);
  ses.payload = cleanup_buf(ses.payload);
  ses.readbuf = cleanup_buf(ses.readbuf);
  // writepayload stays a (now empty) buffer: senders may still hold the session.
  buf_burn_free(ses.writepayload);
  ses.kexhashbuf = cleanup_buf(ses.kexhashbuf);
  ses.transkexinit = cleanup_buf(ses.transkexinit);
  // A bigint cannot be overwritten in place: dropping it is all there is (mp_clear).
  ses.dh_K = null;
  ses.dh_K_bytes = cleanup_bytes(ses.dh_K_bytes);
  burn_keys(ses.keys);
  ses.keys = new key_context();
  TRACE("leave session_cleanup");
}

/** Zero a secret buffer and drop it. @dropbear common-session.c cleanup_buf */
function cleanup_buf(buf: buffer | null): null {
  if (buf !== null) {
    buf_burn_free(buf);
  }
  return null;
}

/** cleanup_buf for the secrets held as plain bytes (session id, exchange hash, K). */
function cleanup_bytes(bytes: Uint8Array | null): null {
  if (bytes !== null) {
    m_burn(bytes);
  }
  return null;
}

/**
 * m_burn of a key_context: zero both MAC keys and free the ciphers' and MACs' OpenSSL contexts
 * (which OpenSSL cleanses); the caller drops the context. Keys inside node:crypto objects (the
 * fallback path) are cleared by OpenSSL when the dropped objects are collected.
 */
function burn_keys(keys: key_context): void {
  m_burn(keys.recv.mackey);
  m_burn(keys.trans.mackey);
  freeKeyStates(keys.recv);
  freeKeyStates(keys.trans);
}

/** Queue our version line, unencrypted, first thing on the wire. @dropbear common-session.c send_session_identification */
export function send_session_identification(ses: sshsession): void {
  const line = Buffer.from(`${LOCAL_IDENT}\r\n`, "latin1");
  const writebuf = buf_new(line.length + 1);
  buf_putbytes(writebuf, line);
  writebuf_enqueue(ses, writebuf);
}

/**
 * Read what is there of the peer's version line. A client skips up to 49 other lines first
 * (servers may send a banner); a server accepts only the version line itself. The line is kept
 * in ses.identbuf across calls, since here reads never block.
 * @dropbear common-session.c read_session_identification
 */
function read_session_identification(ses: sshsession): void {
  const maxlines = ses.isserver ? 1 : 50;
  for (;;) {
    const line = ident_readln(ses);
    if (line === null) {
      return; // more to come
    }
    ses.identlines++;
    if (line.length >= 4 && line.startsWith("SSH-")) {
      // C keeps the line as a C string: what follows a NUL is neither hashed nor shown.
      const nul = line.indexOf("\0");
      ses.remoteident = nul < 0 ? line : line.slice(0, nul);
      break;
    }
    if (ses.identlines >= maxlines) {
      TRACE("error reading remote ident");
      sesCall(ses, ses.remoteclosed);
      dropbear_exit("Remote closed the connection", "ECLOSED");
    }
  }
  // 2.x is assumed compatible; 1.99 means a server that also speaks 2.0.
  if (!ses.remoteident.startsWith("SSH-2.") && !ses.remoteident.startsWith("SSH-1.99-")) {
    // Beyond Dropbear: the peer's text shown printable only, as its banner is.
    dropbear_exit(`Incompatible remote version '${cleantext(Buffer.from(ses.remoteident, "latin1"), false)}'`);
  }
  DEBUG1(() => `remoteident: ${ses.remoteident}`);
}

/**
 * Take bytes one at a time, never reading past the line (the next bytes belong to the packet
 * reader). Returns the line without CR and LF once complete, or null while incomplete. EOF
 * ends the session. @dropbear common-session.c ident_readln
 */
function ident_readln(ses: sshsession): string | null {
  const sock = ses.sock_in!;
  while (ses.identbuf.length < IDENT_MAX) {
    let b: Buffer | null;
    try {
      b = sock.read(1);
    } catch {
      TRACE("leave ident_readln: read error");
      sesCall(ses, ses.remoteclosed);
      dropbear_exit("Remote closed the connection", "ECLOSED");
    }
    if (b === null) {
      return null;
    }
    if (b.length === 0) {
      TRACE("leave ident_readln: EOF");
      sesCall(ses, ses.remoteclosed);
      dropbear_exit("Remote closed the connection", "ECLOSED");
    }
    const c = b[0]!;
    if (c === 0x0a) {
      break;
    }
    if (c !== 0x0d) {
      ses.identbuf.push(c);
    }
  }
  const line = Buffer.from(ses.identbuf).toString("latin1");
  ses.identbuf = [];
  return line;
}

/** Handler for replies we don't act on (keepalive answers). @dropbear common-session.c ignore_recv_response */
export function ignore_recv_response(_ses: sshsession): void {
  TRACE("Ignored msg_request_response");
}

/**
 * Ask the peer for a reply so a dead connection shows; it must not count as activity for the
 * idle timeout. @dropbear common-session.c send_msg_keepalive
 */
function send_msg_keepalive(ses: sshsession): void {
  const old_time_idle = ses.last_packet_time_idle;
  const chan = get_any_ready_channel(ses);
  if (chan !== null) {
    // More implementations answer a channel request than a global one.
    TRACE(() => `keepalive channel request ${chan.index}`);
    start_send_channel_request(ses, chan, DROPBEAR_KEEPALIVE_STRING);
  } else {
    TRACE("keepalive global request");
    buf_putbyte(ses.writepayload, SSH_MSG_GLOBAL_REQUEST);
    buf_putstring(ses.writepayload, DROPBEAR_KEEPALIVE_STRING);
    // Its reply comes in turn with a -R's (cli_recv_msg_request_success).
    ses.globalreq_sent++;
  }
  buf_putbyte(ses.writepayload, 1);
  encrypt_packet(ses);
  ses.last_packet_time_keepalive_sent = monotonic_now();
  ses.last_packet_time_idle = old_time_idle;
}

/** Seconds between two monotonic times. @dropbear common-session.c elapsed */
function elapsed(now: number, prev: number): number {
  return now - prev;
}

/** Auth timeout, rekeying, keepalives, idle timeout and max duration. @dropbear common-session.c checktimeouts */
export function checktimeouts(ses: sshsession): void {
  const now = monotonic_now();
  const opts = ses.opts;
  if (ses.isserver && !ses.authstate.authdone && elapsed(now, ses.connect_time) >= AUTH_TIMEOUT) {
    dropbear_close("Timeout before auth", "ETIMEOUT");
  }
  if (connect_timeout_due(ses) && connect_timeout_left(ses) <= 0) {
    // A connect() still pending fails as one the kernel timed out would; then OpenSSH's words.
    const stage = ses.remoteident === null ? "banner exchange" : "key exchange";
    dropbear_exit(ses.sock_in === null ? "Connect failed: Connection timed out" : `Connection timed out during ${stage}`, "ETIMEOUT");
  }
  // Nothing else until the peer's version line is in. Beyond Dropbear, which checks -I and -M only
  // once it is: select_timeout counts them from the start, so a peer that never sends one made the
  // loop spin (C's does too) once they fell due, and -I or -M never ended the session.
  if (ses.remoteident === null) {
    check_idle_duration(ses, now);
    return;
  }
  const k = ses.kexstate;
  if (!k.sentkexinit && (elapsed(now, k.lastkextime) >= KEX_REKEY_TIMEOUT || k.datarecv + k.datatrans >= KEX_REKEY_DATA || k.needrekey)) {
    TRACE("rekeying after timeout or max data reached");
    k.needrekey = false;
    send_msg_kexinit(ses);
  }
  // Keepalives are not valid before auth.
  if (opts.keepalive_secs > 0 && ses.authstate.authdone) {
    if (elapsed(now, ses.last_packet_time_any_sent) >= opts.keepalive_secs) {
      send_msg_keepalive(ses);
    }
    if (
      elapsed(now, ses.last_packet_time_keepalive_recv) >= opts.keepalive_secs &&
      elapsed(now, ses.last_packet_time_keepalive_sent) >= opts.keepalive_secs
    ) {
      send_msg_keepalive(ses);
    }
    if (elapsed(now, ses.last_packet_time_keepalive_recv) >= opts.keepalive_secs * opts.keepalive_limit) {
      dropbear_exit("Keepalive timeout", "ETIMEOUT");
    }
  }
  // After the keepalive check, as in C: a peer that went silent with -I at three times -K
  // reaches both limits in the same second, and C's "Keepalive timeout" (status 1) wins over
  // "Idle timeout" (status 0).
  check_idle_duration(ses, now);
  check_memory(ses, now);
}

/** Whether the client's -o ConnectTimeout still runs: set, and the first key exchange not done. */
function connect_timeout_due(ses: sshsession): boolean {
  return !ses.isserver && ses.opts.connect_timeout_secs > 0 && !ses.kexstate.donefirstkex;
}

/** Seconds (with their fraction) left of the client's -o ConnectTimeout. */
function connect_timeout_left(ses: sshsession): number {
  return ses.opts.connect_timeout_secs - (gettime_wrapper() - ses.connect_time_ms) / 1000;
}

/** checktimeouts' -I and -M checks. */
function check_idle_duration(ses: sshsession, now: number): void {
  const opts = ses.opts;
  if (opts.idle_timeout_secs > 0 && elapsed(now, ses.last_packet_time_idle) >= opts.idle_timeout_secs) {
    dropbear_close("Idle timeout", "ETIMEOUT");
  }
  if (opts.max_duration_secs > 0 && elapsed(now, ses.connect_time) >= opts.max_duration_secs) {
    dropbear_close("Max duration reached", "ETIMEOUT");
  }
}

/** How often (seconds) the loop looks at the process's RSS after auth; while it is high, the longest the loop waits. */
const TRIM_CHECK_SECS = 10;
/** How far (bytes) the RSS may stand above what it was after auth before the C heap is trimmed. */
const TRIM_SLACK = 32 * 1024 * 1024;
/** Less than this (bytes) given back by a trim that followed another, and the idle loop stops looking. */
const TRIM_MIN_FREED = 1024 * 1024;

/**
 * Beyond Dropbear, whose buffers are its own few: give the C heap's free pages back to the
 * kernel (malloc_trim) once the process has grown well past its size after auth. Many channels
 * streaming at once, or a peer that stopped reading, leave the heap large after what filled it
 * is freed, and glibc keeps those pages for the process's life. Looked at once every
 * TRIM_CHECK_SECS; after a trim the loop looks again even when idle (select_timeout), as V8
 * frees the last of a burst's buffers some seconds after it, until a trim gives little back.
 * Only in a process that is the session's own: a library's host has its own heap to mind.
 */
function check_memory(ses: sshsession, now: number): void {
  if (!ses.owns_process || !ses.authstate.authdone || elapsed(now, ses.trim_check_time) < TRIM_CHECK_SECS) {
    return;
  }
  ses.trim_check_time = now;
  const rss = rss_bytes();
  if (rss === null) {
    return;
  }
  if (ses.trim_rss === 0) {
    ses.trim_rss = rss;
    return;
  }
  if (rss <= ses.trim_rss + TRIM_SLACK) {
    ses.trim_pending = false;
    return;
  }
  malloc_trim();
  const freed = rss - (rss_bytes() ?? rss);
  TRACE(() => `check_memory: RSS ${rss} against ${ses.trim_rss} after auth, trimmed ${freed}`);
  ses.trim_pending = !ses.trim_pending || freed >= TRIM_MIN_FREED;
}

/**
 * The process's resident size in bytes, or null when it cannot be read: libuv opens
 * /proc/self/stat for it, which fails with EMFILE while the peer holds every descriptor the
 * process may have, and that must cost this look at memory, not the session.
 */
function rss_bytes(): number | null {
  try {
    return process.memoryUsage.rss();
  } catch {
    return null;
  }
}

/** Lower `timeout` to when `limit` after `last_event` falls due. @dropbear common-session.c update_timeout */
function update_timeout(limit: number, now: number, last_event: number, timeout: number): number {
  TRACE2(() => `update_timeout limit ${limit}, now ${now}, last ${last_event}, timeout ${timeout}`);
  if (last_event > 0 && limit > 0) {
    return Math.min(timeout, Math.max(0, limit - elapsed(now, last_event)));
  }
  return timeout;
}

/** Seconds until the nearest deadline checktimeouts cares about. @dropbear common-session.c select_timeout */
export function select_timeout(ses: sshsession): number {
  const now = monotonic_now();
  const opts = ses.opts;
  let timeout = KEX_REKEY_TIMEOUT;
  if (!ses.kexstate.sentkexinit) {
    timeout = update_timeout(KEX_REKEY_TIMEOUT, now, ses.kexstate.lastkextime, timeout);
  }
  if (ses.kexstate.needrekey) {
    timeout = 0;
  }
  if (!ses.authstate.authdone && ses.isserver) {
    timeout = update_timeout(AUTH_TIMEOUT, now, ses.connect_time, timeout);
  }
  if (connect_timeout_due(ses)) {
    timeout = Math.min(timeout, Math.max(0, connect_timeout_left(ses)));
  }
  if (ses.authstate.authdone) {
    timeout = update_timeout(
      opts.keepalive_secs,
      now,
      Math.max(ses.last_packet_time_keepalive_recv, ses.last_packet_time_keepalive_sent),
      timeout,
    );
  }
  timeout = update_timeout(opts.idle_timeout_secs, now, ses.last_packet_time_idle, timeout);
  timeout = update_timeout(opts.max_duration_secs, now, ses.connect_time, timeout);
  if (ses.trim_pending) {
    timeout = update_timeout(TRIM_CHECK_SECS, now, ses.trim_check_time, timeout);
  }
  return Math.max(timeout, 0);
}
