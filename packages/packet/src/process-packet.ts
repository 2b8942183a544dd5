import { buf_free, buf_getbyte, buf_getint, buf_getstring, buf_putbyte, buf_putint, type buffer } from "@dropbear-ts/buffer";
import { sesCall, type sshsession } from "@dropbear-ts/core";
import { DropbearExit, TRACE, TRACE2, cleantext, dropbear_close, dropbear_exit, monotonic_now } from "@dropbear-ts/dbutil";
import {
  SSH_MSG_CHANNEL_FAILURE,
  SSH_MSG_DEBUG,
  SSH_MSG_DISCONNECT,
  SSH_MSG_GLOBAL_REQUEST,
  SSH_MSG_IGNORE,
  SSH_MSG_KEXINIT,
  SSH_MSG_REQUEST_FAILURE,
  SSH_MSG_SERVICE_ACCEPT,
  SSH_MSG_SERVICE_REQUEST,
  SSH_MSG_UNIMPLEMENTED,
} from "@dropbear-ts/options";
import { encrypt_packet } from "./packet.js";

/** Every message type allowed before user auth is at most this. @dropbear process-packet.c MAX_UNAUTH_PACKET_TYPE */
export const MAX_UNAUTH_PACKET_TYPE = 60;

/** Longest part of a peer's disconnect description shown (OpenSSH's %.400s). */
const MAX_DISCONNECT_TEXT = 400;

/**
 * "Disconnect received", then the peer's description when it gave one. Beyond Dropbear, which
 * reads none of it: sshd's "Too many authentication failures" is the user's only hint of why,
 * and OpenSSH's ssh shows it. Printable ASCII only, as a banner is shown.
 */
function disconnectMessage(payload: buffer): string {
  let text = "";
  try {
    buf_getint(payload); // reason code
    text = cleantext(buf_getstring(payload), false).slice(0, MAX_DISCONNECT_TEXT);
  } catch (e) {
    // A disconnect cut short still ends the session, with no description.
    if (!(e instanceof DropbearExit)) {
      throw e;
    }
  }
  return text === "" ? "Disconnect received" : `Disconnect received: ${text}`;
}

/** Dispatch the decrypted payload to its handler, enforcing kex ordering and the pre-auth limit. @dropbear process-packet.c process_packet */
export function process_packet(ses: sshsession): void {
  TRACE2("enter process_packet");
  const payload = ses.payload!;
  const first_strict_kex = ses.kexstate.strict_kex && !ses.kexstate.recvfirstnewkeys;
  const type = buf_getbyte(payload);
  TRACE(() => `process_packet: packet type = ${type},  len ${payload.len}`);

  const now = monotonic_now();
  ses.last_packet_time_keepalive_recv = now;
  try {
    if (type === SSH_MSG_DISCONNECT) {
      dropbear_close(disconnectMessage(payload), "ECLOSED");
    }
    // Allowed at any time, except during a strict first kex (Terrapin).
    if (!first_strict_kex && (type === SSH_MSG_IGNORE || type === SSH_MSG_DEBUG || type === SSH_MSG_UNIMPLEMENTED)) {
      if (type === SSH_MSG_UNIMPLEMENTED) TRACE("SSH_MSG_UNIMPLEMENTED");
      return;
    }
    // Keepalive traffic must not count as activity for the idle timeout.
    if (!(type === SSH_MSG_GLOBAL_REQUEST || type === SSH_MSG_REQUEST_FAILURE || type === SSH_MSG_CHANNEL_FAILURE)) {
      ses.last_packet_time_idle = now;
    }
    if (ses.requirenext !== 0) {
      if (ses.requirenext === type) {
        TRACE(() => `got expected packet ${type} during kexinit`);
      } else if (
        type >= 1 &&
        type <= 49 &&
        type !== SSH_MSG_SERVICE_REQUEST &&
        type !== SSH_MSG_SERVICE_ACCEPT &&
        type !== SSH_MSG_KEXINIT &&
        !first_strict_kex
      ) {
        // Beyond Dropbear: a wrongly guessed kex's packet (first_kex_packet_follows) is ignored
        // below whatever its type, as RFC 4253 §7 says. C answered one that was not a KEXDH_INIT
        // (a group exchange request) and then ignored the real KEXDH_INIT, leaving both waiting.
        if (!ses.ignorenext) {
          TRACE("unknown allowed packet during kexinit");
          recv_unimplemented(ses);
          return;
        }
      } else if (ses.authstate.authdone && type >= SSH_MSG_GLOBAL_REQUEST && !ses.ignorenext) {
        // Beyond Dropbear, as OpenSSH: a connection-layer message during a re-exchange is handled
        // as at any other time (what it makes us send waits for the new keys). RFC 4253 §7.1
        // forbids sending one then, but asyncssh sends the packet that crossed its rekey limit
        // right after its KEXINIT, and C ended such sessions.
        TRACE(() => `connection packet ${type} during a key re-exchange`);
      } else {
        TRACE("disallowed packet during kexinit");
        dropbear_exit(`Unexpected packet type ${type}, expected ${ses.requirenext}`);
      }
    }
    if (ses.ignorenext) {
      TRACE(() => `Ignoring packet, type = ${type}`);
      ses.ignorenext = false;
      return;
    }
    if (ses.requirenext !== 0 && ses.requirenext === type) {
      ses.requirenext = 0;
    }
    // All pre-auth message types are <= 60 (RFC 4250 §4.1.2).
    if (!ses.authstate.authdone && type > MAX_UNAUTH_PACKET_TYPE) {
      dropbear_exit(`Received message ${type} before userauth`);
    }
    const pt = ses.packettypes.find((p) => p.type === type);
    if (pt !== undefined) {
      sesCall(ses, pt.handler);
      return;
    }
    TRACE("preauth unknown packet");
    recv_unimplemented(ses);
  } finally {
    ses.lastpacket = type;
    buf_free(payload);
    ses.payload = null;
    TRACE2("leave process_packet");
  }
}

/** Answer a packet we don't handle with UNIMPLEMENTED and its sequence number. @dropbear process-packet.c recv_unimplemented */
function recv_unimplemented(ses: sshsession): void {
  buf_putbyte(ses.writepayload, SSH_MSG_UNIMPLEMENTED);
  // decrypt_packet already counted this packet.
  buf_putint(ses.writepayload, (ses.recvseq - 1) >>> 0);
  encrypt_packet(ses);
}
