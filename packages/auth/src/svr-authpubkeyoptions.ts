import { buf_getbyte, buf_getptr, buf_incrpos, buf_setpos, type buffer } from "@dropbear-ts/buffer";
import { PUBKEY_OPTIONS_ANY_PORT, PermitTCPFwdEntry, PubKeyOptions, type SvrSession } from "@dropbear-ts/core";
import { LOG_INFO, LOG_WARNING, TRACE, bytesText, dropbear_log, list_append, list_new, m_str_to_uint } from "@dropbear-ts/dbutil";
import {
  DROPBEAR_SK_ECDSA,
  DROPBEAR_SK_ED25519,
  DROPBEAR_SVR_AGENTFWD,
  DROPBEAR_X11FWD,
  LOG_COMMANDS,
} from "@dropbear-ts/options";
import { split_address_port } from "@dropbear-ts/runopts";

// What the authorized_keys line that let the user in allows. Without pubkey options (password
// logins) everything is allowed. The channel and forwarding code asks these predicates.

/** No "no-agent-forwarding". @dropbear svr-authpubkeyoptions.c svr_pubkey_allows_agentfwd */
export function svr_pubkey_allows_agentfwd(ses: SvrSession): boolean {
  const o = ses.authstate.pubkey_options;
  return !(o !== null && o.no_agent_forwarding_flag);
}

/** No "no-port-forwarding" (covers -L, -R and streamlocal). @dropbear svr-authpubkeyoptions.c svr_pubkey_allows_tcpfwd */
export function svr_pubkey_allows_tcpfwd(ses: SvrSession): boolean {
  const o = ses.authstate.pubkey_options;
  return !(o !== null && o.no_port_forwarding_flag);
}

/** A "command=" option is in force. @dropbear svr-authpubkeyoptions.c svr_pubkey_has_forced_command */
export function svr_pubkey_has_forced_command(ses: SvrSession): boolean {
  const o = ses.authstate.pubkey_options;
  return o !== null && o.forced_command !== null;
}

/** No "no-X11-forwarding". @dropbear svr-authpubkeyoptions.c svr_pubkey_allows_x11fwd */
export function svr_pubkey_allows_x11fwd(ses: SvrSession): boolean {
  const o = ses.authstate.pubkey_options;
  return !(o !== null && o.no_x11_forwarding_flag);
}

/** No "no-pty". @dropbear svr-authpubkeyoptions.c svr_pubkey_allows_pty */
export function svr_pubkey_allows_pty(ses: SvrSession): boolean {
  const o = ses.authstate.pubkey_options;
  return !(o !== null && o.no_pty_flag);
}

/**
 * A direct-tcpip to host:port is allowed: no "permitopen=" at all, or one naming exactly this
 * host with this port or "*". The host is the request's bytes and is compared byte for byte, as
 * C's strcmp does (the entries hold theirs as bytesText), whether UTF-8 or not.
 * @dropbear svr-authpubkeyoptions.c svr_pubkey_allows_local_tcpfwd
 */
export function svr_pubkey_allows_local_tcpfwd(ses: SvrSession, host: Uint8Array, port: number): boolean {
  const o = ses.authstate.pubkey_options;
  if (o !== null && o.permit_open_destinations !== null) {
    const hostKey = bytesText(host);
    for (const entry of o.permit_open_destinations) {
      if (entry.host === hostKey && (entry.port === PUBKEY_OPTIONS_ANY_PORT || entry.port === port)) {
        return true;
      }
    }
    return false;
  }
  return true;
}

/**
 * A tcpip-forward on this port is allowed: no "permitlisten=" at all, or one with this port
 * (the host is not restricted). @dropbear svr-authpubkeyoptions.c svr_pubkey_allows_remote_tcpfwd
 */
export function svr_pubkey_allows_remote_tcpfwd(ses: SvrSession, _host: string | null, port: number): boolean {
  const o = ses.authstate.pubkey_options;
  if (o !== null && o.permit_listens !== null) {
    for (const entry of o.permit_listens) {
      if (entry.port === port) {
        return true;
      }
    }
    return false;
  }
  return true;
}

/** The part of a session channel's state a forced command rewrites. */
export interface ForcedCommandTarget {
  cmd: string | null;
  original_command: string | null;
}

/**
 * Replace the channel's command with "command=", keeping what the client asked for as the
 * original command (SSH_ORIGINAL_COMMAND). @dropbear svr-authpubkeyoptions.c svr_pubkey_set_forced_command
 */
export function svr_pubkey_set_forced_command(ses: SvrSession, chansess: ForcedCommandTarget): void {
  const o = ses.authstate.pubkey_options;
  if (o !== null && o.forced_command !== null) {
    TRACE(`Forced command '${o.forced_command}'`);
    chansess.original_command = chansess.cmd ?? "";
    chansess.cmd = o.forced_command;
    if (LOG_COMMANDS) {
      dropbear_log(LOG_INFO, `Command forced to '${chansess.original_command}'`);
    }
  }
}

/** Drop parsed options. Nothing to free in JS; kept for the C call sites. @dropbear svr-authpubkeyoptions.c svr_pubkey_options_cleanup */
export function svr_pubkey_options_cleanup(pubkey_options: PubKeyOptions | null): void {
  if (pubkey_options !== null) {
    pubkey_options.permit_open_destinations = null;
    pubkey_options.permit_listens = null;
    pubkey_options.forced_command = null;
    pubkey_options.info_env = null;
  }
}

/**
 * If the option name (any case) is next, step over it and say so.
 * @dropbear svr-authpubkeyoptions.c match_option
 */
function match_option(options_buf: buffer, opt_name: string): boolean {
  const len = opt_name.length;
  if (options_buf.len - options_buf.pos < len) {
    return false;
  }
  const got = buf_getptr(options_buf, len).toString("latin1");
  if (got.toLowerCase() === opt_name.toLowerCase()) {
    buf_incrpos(options_buf, len);
    return true;
  }
  return false;
}

/** The bytes from `start` up to just before the current position (the closing quote). */
function quotedBytes(options_buf: buffer, start: number): Buffer {
  return options_buf.data.subarray(start, options_buf.pos - 1);
}

/** quotedBytes, decoded. */
function quotedValue(options_buf: buffer, start: number, encoding: "utf8" | "latin1" = "utf8"): string {
  return quotedBytes(options_buf, start).toString(encoding);
}

/**
 * Parse one option at the buffer's position into `o`. Returns false for a bad option; an
 * unknown name returns true without moving, and the caller's comma check then rejects it.
 */
function parseOption(options_buf: buffer, o: PubKeyOptions): boolean {
  if (match_option(options_buf, "no-port-forwarding")) {
    dropbear_log(LOG_WARNING, "Port forwarding disabled.");
    o.no_port_forwarding_flag = true;
    return true;
  }
  if (match_option(options_buf, "no-agent-forwarding")) {
    if (DROPBEAR_SVR_AGENTFWD) {
      dropbear_log(LOG_WARNING, "Agent forwarding disabled.");
      o.no_agent_forwarding_flag = true;
    }
    return true;
  }
  if (match_option(options_buf, "no-X11-forwarding")) {
    if (DROPBEAR_X11FWD) {
      dropbear_log(LOG_WARNING, "X11 forwarding disabled.");
      o.no_x11_forwarding_flag = true;
    }
    return true;
  }
  if (match_option(options_buf, "no-pty")) {
    dropbear_log(LOG_WARNING, "Pty allocation disabled.");
    o.no_pty_flag = true;
    return true;
  }
  if (match_option(options_buf, "restrict")) {
    dropbear_log(LOG_WARNING, "Restrict option set");
    o.no_port_forwarding_flag = true;
    if (DROPBEAR_SVR_AGENTFWD) {
      o.no_agent_forwarding_flag = true;
    }
    if (DROPBEAR_X11FWD) {
      o.no_x11_forwarding_flag = true;
    }
    o.no_pty_flag = true;
    return true;
  }
  if (match_option(options_buf, 'command="')) {
    if (o.forced_command !== null) {
      return false;
    }
    const start = options_buf.pos;
    // Escapes only hide a quote from the scan; the backslashes stay in the command.
    let escaped = false;
    while (options_buf.pos < options_buf.len) {
      const c = buf_getbyte(options_buf);
      if (!escaped && c === 0x22) {
        // Bytes for the shell, as C copies them: latin1 keeps each one (not only UTF-8).
        o.forced_command = quotedValue(options_buf, start, "latin1");
        return true;
      }
      escaped = !escaped && c === 0x5c;
    }
    dropbear_log(LOG_WARNING, "Badly formatted command= authorized_keys option");
    return false;
  }
  if (match_option(options_buf, 'permitopen="')) {
    let valid_option = false;
    const start = options_buf.pos;
    o.permit_open_destinations ??= list_new<PermitTCPFwdEntry>();
    while (options_buf.pos < options_buf.len) {
      if (buf_getbyte(options_buf) === 0x22) {
        const entry = new PermitTCPFwdEntry();
        list_append(o.permit_open_destinations, entry);
        // bytesText: a host that is not UTF-8 keeps its bytes, to compare with the request's.
        const split = split_address_port(bytesText(quotedBytes(options_buf, start)));
        if (split !== null && split.first !== null && split.second !== null) {
          entry.host = split.first;
          if (split.second === "*") {
            valid_option = true;
            entry.port = PUBKEY_OPTIONS_ANY_PORT;
            TRACE(`local port forwarding allowed to host '${entry.host}'`);
          } else {
            const port = m_str_to_uint(split.second);
            if (port !== null && port <= 65535) {
              valid_option = true;
              entry.port = port;
              TRACE(`local port forwarding allowed to host '${entry.host}' and port '${port}'`);
            }
          }
        }
        break;
      }
    }
    if (!valid_option) {
      dropbear_log(LOG_WARNING, "Badly formatted permitopen= authorized_keys option");
    }
    return valid_option;
  }
  if (match_option(options_buf, 'permitlisten="')) {
    let valid_option = false;
    const start = options_buf.pos;
    o.permit_listens ??= list_new<PermitTCPFwdEntry>();
    while (options_buf.pos < options_buf.len) {
      if (buf_getbyte(options_buf) === 0x22) {
        const entry = new PermitTCPFwdEntry();
        list_append(o.permit_listens, entry);
        // A bare port only: no host part, no "*".
        const port = m_str_to_uint(quotedValue(options_buf, start));
        if (port !== null && port <= 65535) {
          valid_option = true;
          entry.port = port;
          TRACE(`remote forwarding allows listening on port ${port}`);
        }
        break;
      }
    }
    if (!valid_option) {
      dropbear_log(LOG_WARNING, "Badly formatted permitlisten= authorized_keys option");
    }
    return valid_option;
  }
  if (match_option(options_buf, "no-touch-required")) {
    if (DROPBEAR_SK_ECDSA || DROPBEAR_SK_ED25519) {
      dropbear_log(LOG_WARNING, "No user presence check required for U2F/FIDO key.");
      o.no_touch_required_flag = true;
    }
    return true;
  }
  if (match_option(options_buf, "verify-required")) {
    if (DROPBEAR_SK_ECDSA || DROPBEAR_SK_ED25519) {
      dropbear_log(LOG_WARNING, "User verification required for U2F/FIDO key.");
      o.verify_required_flag = true;
    }
    return true;
  }
  return true;
}

/**
 * Parse the comma-separated options before the key on an authorized_keys line (null: none).
 * Any option we do not know, or a malformed one, rejects the whole line (null is returned).
 * @dropbear svr-authpubkeyoptions.c svr_parse_pubkey_options
 */
export function svr_parse_pubkey_options(options_buf: buffer | null, line_num: number, filename: string): PubKeyOptions | null {
  TRACE("enter addpubkeyoptions");
  const o = new PubKeyOptions();
  if (options_buf === null) {
    TRACE("leave addpubkeyoptions, null options");
    return o;
  }
  buf_setpos(options_buf, 0);
  while (options_buf.pos < options_buf.len) {
    if (!parseOption(options_buf, o) || (options_buf.pos < options_buf.len && buf_getbyte(options_buf) !== 0x2c)) {
      svr_pubkey_options_cleanup(o);
      dropbear_log(LOG_WARNING, `Bad public key options at ${filename}:${line_num}`);
      TRACE("leave addpubkeyoptions");
      return null;
    }
  }
  TRACE("leave addpubkeyoptions");
  return o;
}
