import { closeSync, constants as fsConstants, openSync, statSync } from "node:fs";
import {
  FgetcFile,
  buf_decrpos,
  buf_getbool,
  buf_getbyte,
  buf_getint,
  buf_getline,
  buf_getptr,
  buf_getstring,
  buf_incrpos,
  buf_new,
  buf_putbyte,
  buf_putbytes,
  buf_putstring,
  buf_setlen,
  buf_setpos,
  type buffer,
} from "@dropbear-ts/buffer";
import { AUTH_TYPE_PUBKEY, homePath, type PubKeyOptions, type SvrSession } from "@dropbear-ts/core";
import {
  LOG_INFO,
  LOG_NOTICE,
  LOG_WARNING,
  TRACE,
  dropbear_assert,
  dropbear_exit,
  dropbear_log,
  expand_homedir_path_home,
} from "@dropbear-ts/dbutil";
import {
  DROPBEAR_RSA_SHA1,
  DROPBEAR_SK_ECDSA,
  DROPBEAR_SK_ED25519,
  DROPBEAR_SVR_MULTIUSER,
  MAX_AUTHKEYS_LINE_COUNT,
  MAX_PUBKEY_QUERIES,
  SSH_MSG_USERAUTH_PK_OK,
  SSH_SK_USER_PRESENCE_REQD,
  SSH_SK_USER_VERIFICATION_REQD,
} from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import {
  DROPBEAR_SIGNATURE_NONE,
  DROPBEAR_SIGNKEY_RSA,
  buf_get_pub_key,
  buf_verify,
  cmp_base64_key,
  new_sign_key,
  sign_key_fingerprint,
  signature_type_from_name,
  signkey_name_from_type,
  signkey_type_from_signature,
} from "@dropbear-ts/signkey";
import { threadIdSetters } from "./libc.js";
import { send_msg_userauth_failure, send_msg_userauth_success, svrAuthDecide } from "./svr-auth.js";
import { svr_parse_pubkey_options } from "./svr-authpubkeyoptions.js";

/** Shortest line worth looking at ("ssh-rsa AB"). @dropbear svr-authpubkey.c MIN_AUTHKEYS_LINE */
export const MIN_AUTHKEYS_LINE = 10;
/**
 * Longest key line: a 16384-bit RSA key is about 2786 bytes. Longer lines read as empty;
 * DROPBEAR_MAX_LINE_LENGTH stops the file. @dropbear svr-authpubkey.c MAX_AUTHKEYS_LINE
 */
export const MAX_AUTHKEYS_LINE = 3000;

/**
 * The "publickey" method: a query (no signature) is answered with PK_OK if the key is in
 * authorized_keys; a signed request is verified over the session id and the request.
 * @dropbear svr-authpubkey.c svr_auth_pubkey
 */
export function svr_auth_pubkey(ses: SvrSession, valid_user: boolean): void {
  TRACE("enter pubkeyauth");
  const svr_ses = ses.svr_ses;
  const payload = ses.payload!;

  // FALSE asks whether the key would do; TRUE carries a signature.
  const testkey = buf_getbool(payload) === 0;
  const sigalgo = buf_getstring(payload);
  const keybloblen = buf_getint(payload);
  // The blob stays in the payload: the key is parsed from there below.
  const keyblob = Buffer.from(buf_getptr(payload, keybloblen));

  if (!valid_user) {
    // Answered only once the packet is read, so this is no quicker than for a real user.
    send_msg_userauth_failure(ses, false, false);
    return;
  }

  const sigtype = signature_type_from_name(sigalgo);
  // With SHA-1 RSA off, "ssh-rsa" falls back to the key type's value and Dropbear only finds out
  // at the signature check (an assert). Refused here, as OpenSSH refuses an algorithm it does
  // not accept, so a client that can only sign with SHA-1 moves on to its next key or method.
  if (sigtype === DROPBEAR_SIGNATURE_NONE || (!DROPBEAR_RSA_SHA1 && sigtype === DROPBEAR_SIGNKEY_RSA)) {
    send_msg_userauth_failure(ses, false, false);
    return;
  }
  const keytype = signkey_type_from_signature(sigtype);
  const keyalgo = signkey_name_from_type(keytype);

  const embed = svr_ses.embed;
  if (embed !== null) {
    // The embedding program says whether the key is acceptable; the signature is checked below.
    svrAuthDecide(ses, embed.checkpubkey(ses, keyalgo, keyblob), (ok) => pubkeyChecked(ses, ok, null, testkey, sigalgo, keyblob, keytype, sigtype));
    return;
  }
  const ret_options: { value: PubKeyOptions | null } = { value: null };
  const ok = checkpubkey(ses, keyalgo, keyblob, ret_options);
  pubkeyChecked(ses, ok, ret_options.value, testkey, sigalgo, keyblob, keytype, sigtype);
}

/**
 * The rest of svr_auth_pubkey once it is known whether the key may log the user in: a failure
 * for a key that may not, PK_OK for a query, else the signature check. `pubkey_options` are the
 * authorized_keys line's (null for an embedding program's key).
 */
function pubkeyChecked(
  ses: SvrSession,
  acceptable: boolean,
  pubkey_options: PubKeyOptions | null,
  testkey: boolean,
  sigalgo: Buffer,
  keyblob: Buffer,
  keytype: ReturnType<typeof signkey_type_from_signature>,
  sigtype: ReturnType<typeof signature_type_from_name>,
): void {
  const svr_ses = ses.svr_ses;
  const svr_opts = svr_ses.svr_opts;
  const payload = ses.payload!;
  const a = ses.authstate;
  if (!acceptable) {
    // Queries are free up to MAX_PUBKEY_QUERIES - maxauthtries, then delayed and counted.
    const free_query_limit = Math.max(0, MAX_PUBKEY_QUERIES - svr_opts.maxauthtries);
    const incrfail = a.serv_pubkey_query_count >= free_query_limit;
    send_msg_userauth_failure(ses, false, incrfail);
    a.serv_pubkey_query_count++;
    return;
  }

  if (testkey) {
    send_msg_userauth_pk_ok(ses, sigalgo, keyblob);
    return;
  }

  const key = new_sign_key();
  if (buf_get_pub_key(payload, key, keytype) === null) {
    send_msg_userauth_failure(ses, false, true);
    return;
  }

  if (DROPBEAR_SK_ECDSA || DROPBEAR_SK_ED25519) {
    key.sk_flags_mask = SSH_SK_USER_PRESENCE_REQD;
    if (pubkey_options?.no_touch_required_flag) {
      key.sk_flags_mask &= ~SSH_SK_USER_PRESENCE_REQD;
    }
    if (pubkey_options?.verify_required_flag) {
      key.sk_flags_mask |= SSH_SK_USER_VERIFICATION_REQD;
    }
  }

  // Signed: string session_id, then this request from its type byte up to the signature.
  const session_id = ses.session_id;
  dropbear_assert(session_id !== null, "ses.session_id");
  dropbear_assert(ses.payload_beginning <= payload.pos, "ses.payload_beginning <= ses.payload->pos");
  const sign_payload_length = payload.pos - ses.payload_beginning;
  const signbuf = buf_new(payload.pos + 4 + session_id.length);
  buf_putstring(signbuf, session_id);
  buf_putbytes(signbuf, payload.data.subarray(ses.payload_beginning, payload.pos));
  buf_setpos(signbuf, 0);
  TRACE(`signed part of the request: ${sign_payload_length} bytes`);

  const fp = sign_key_fingerprint(keyblob);
  if (buf_verify(payload, key, sigtype, signbuf)) {
    if (a.pubkey_options === null && pubkey_options !== null) {
      a.pubkey_options = pubkey_options;
    }
    if (svr_opts.multiauthmethod && a.authtypes & ~AUTH_TYPE_PUBKEY) {
      dropbear_log(
        LOG_NOTICE,
        `Pubkey auth succeeded for '${a.pw_name}' with ${signkey_name_from_type(keytype)} key ${fp} from ${svr_ses.addrstring}, extra auth required`,
      );
      a.authtypes &= ~AUTH_TYPE_PUBKEY;
      send_msg_userauth_failure(ses, true, false);
    } else {
      dropbear_log(
        LOG_NOTICE,
        `Pubkey auth succeeded for '${a.pw_name}' with ${signkey_name_from_type(keytype)} key ${fp} from ${svr_ses.addrstring}`,
      );
      send_msg_userauth_success(ses);
    }
  } else {
    dropbear_log(LOG_WARNING, `Pubkey auth bad signature for '${a.pw_name}' with key ${fp} from ${svr_ses.addrstring}`);
    send_msg_userauth_failure(ses, false, true);
  }
  TRACE("leave pubkeyauth");
}

/**
 * Tell the client this key would be accepted, echoing algorithm and blob, so it only signs
 * with a key that will do. @dropbear svr-authpubkey.c send_msg_userauth_pk_ok
 */
function send_msg_userauth_pk_ok(ses: SvrSession, sigalgo: Uint8Array, keyblob: Uint8Array): void {
  TRACE("enter send_msg_userauth_pk_ok");
  buf_putbyte(ses.writepayload, SSH_MSG_USERAUTH_PK_OK);
  buf_putstring(ses.writepayload, sigalgo);
  buf_putstring(ses.writepayload, keyblob);
  encrypt_packet(ses);
  TRACE("leave send_msg_userauth_pk_ok");
}

function isAsciiAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Characters allowed in SSH_PUBKEYINFO besides letters and digits: the env value must be shell-safe. */
const INFO_CHARS = new Set(Array.from(".,_-+@", (c) => c.charCodeAt(0)));

/**
 * Whether one authorized_keys line (`line`, pos 0) names this key: optional options, the
 * algorithm, a space, the base64 blob, then a comment whose first word becomes info_env when
 * it is shell-safe. On a match the options are parsed into ret_options; options that do not
 * parse make the line not match. @dropbear svr-authpubkey.c checkpubkey_line
 */
export function checkpubkey_line(
  line: buffer,
  line_num: number,
  filename: string,
  algo: string,
  keyblob: Uint8Array,
  ret_options: { value: PubKeyOptions | null } | null,
): boolean {
  if (ret_options !== null) {
    ret_options.value = null;
  }
  const algolen = algo.length;
  if (line.len < MIN_AUTHKEYS_LINE || line.len > MAX_AUTHKEYS_LINE) {
    TRACE(`checkpubkey_line: bad line length ${line.len}`);
    return false;
  }
  if (line.data.subarray(0, line.len).includes(0)) {
    TRACE("checkpubkey_line: bad line has null char");
    return false;
  }
  // +3: room for the space and some base64 after the algorithm.
  if (line.pos + algolen + 3 > line.len) {
    return false;
  }
  let options_buf: buffer | null = null;
  if (buf_getptr(line, algolen).toString("latin1") !== algo) {
    // Leading blanks, then a comment or the options.
    let is_comment = false;
    while (line.pos < line.len) {
      const c = buf_getbyte(line);
      if (c === 0x20 || c === 0x09) {
        continue;
      }
      if (c === 0x23) {
        is_comment = true;
        break;
      }
      buf_decrpos(line, 1);
      break;
    }
    if (is_comment) {
      return false;
    }
    // A line of blanks only: Dropbear exits here on its bounds check ("Bad buf_getptr"); we
    // just skip the line.
    if (line.pos >= line.len) {
      return false;
    }
    const options_start = line.pos;
    let quoted = false;
    let escape = false;
    let options_len = 0;
    while (line.pos < line.len) {
      const c = buf_getbyte(line);
      if (!quoted && (c === 0x20 || c === 0x09)) {
        break;
      }
      escape = !escape && c === 0x5c;
      if (!escape && c === 0x22) {
        quoted = !quoted;
      }
      options_len++;
    }
    options_buf = buf_new(options_len);
    buf_putbytes(options_buf, line.data.subarray(options_start, options_start + options_len));

    if (line.pos + algolen + 3 > line.len) {
      return false;
    }
    if (buf_getptr(line, algolen).toString("latin1") !== algo) {
      return false;
    }
  }
  buf_incrpos(line, algolen);

  if (buf_getbyte(line) !== 0x20) {
    TRACE("checkpubkey_line: space character expected, isn't there");
    return false;
  }

  // The base64 runs to the next space or the end of the line.
  const pos = line.pos;
  let len = 0;
  for (; line.pos < line.len; len++) {
    if (buf_getbyte(line) === 0x20) {
      break;
    }
  }

  // The comment's first word, unless it holds anything beyond the allowlist.
  const infopos = line.pos;
  let infolen = 0;
  for (; line.pos < line.len; infolen++) {
    const c = buf_getbyte(line);
    if (c === 0x20) {
      break;
    }
    if (!(isAsciiAlnum(c) || INFO_CHARS.has(c))) {
      TRACE("Not setting SSH_PUBKEYINFO, special characters");
      infolen = 0;
      break;
    }
  }
  const info_str = infolen > 0 ? line.data.subarray(infopos, infopos + infolen).toString("latin1") : null;

  buf_setpos(line, pos);
  buf_setlen(line, pos + len);
  TRACE(`checkpubkey_line: line pos = ${line.pos} len = ${line.len}`);

  if (!cmp_base64_key(keyblob, algo, line)) {
    return false;
  }
  if (ret_options !== null) {
    const opts = svr_parse_pubkey_options(options_buf, line_num, filename);
    if (opts === null) {
      return false;
    }
    opts.info_env = info_str;
    ret_options.value = opts;
  }
  return true;
}

/**
 * <-D dir, default ~/.ssh>/authorized_keys for the user, as bytes: the home directory's need
 * not be UTF-8. @dropbear svr-authpubkey.c authorized_keys_filepath
 */
export function authorized_keys_filepath(ses: SvrSession): Buffer {
  const dir = expand_homedir_path_home(ses.svr_ses.svr_opts.authorized_keys_dir, homePath(ses.authstate));
  return Buffer.concat([dir, Buffer.from("/authorized_keys")]);
}

/**
 * Run `fn` with the user's effective uid and gid, as Dropbear opens authorized_keys (so
 * symlinks and permissions are judged as the user): this thread's ids alone where libc's
 * threadIdSetters can, as C's calls in its one thread. Without setegid/seteuid (a worker
 * thread) `fn` runs as we are.
 */
function asUser<T>(ses: SvrSession, fn: () => T): T {
  const canSwitch = DROPBEAR_SVR_MULTIUSER && typeof process.seteuid === "function" && typeof process.setegid === "function";
  if (!canSwitch) {
    return fn();
  }
  const origuid = process.getuid!();
  const origgid = process.getgid!();
  const ids = threadIdSetters() ?? { seteuid: (uid: number) => process.seteuid!(uid), setegid: (gid: number) => process.setegid!(gid) };
  try {
    ids.setegid(ses.authstate.pw_gid);
    ids.seteuid(ses.authstate.pw_uid);
  } catch {
    dropbear_exit("Failed to set euid");
  }
  try {
    return fn();
  } finally {
    try {
      ids.seteuid(origuid);
      ids.setegid(origgid);
    } catch {
      // As in C: carrying on with the user's ids would be worse than ending the session.
      dropbear_exit("Failed to revert euid");
    }
  }
}

/**
 * Whether the user's authorized_keys has a line for this key (ret_options gets that line's
 * options). The file is checked and opened as the user, non-blocking so a FIFO cannot hang
 * us, and at most MAX_AUTHKEYS_LINE_COUNT lines are read. @dropbear svr-authpubkey.c checkpubkey
 */
function checkpubkey(ses: SvrSession, keyalgo: string, keyblob: Uint8Array, ret_options: { value: PubKeyOptions | null }): boolean {
  TRACE("enter checkpubkey");
  let filename: string | null = null;
  const fd = asUser(ses, () => {
    if (!checkpubkeyperms(ses)) {
      TRACE("bad authorized_keys permissions, or file doesn't exist");
      return -1;
    }
    const path = authorized_keys_filepath(ses);
    filename = path.toString("utf8");
    try {
      return openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch (e) {
      TRACE(`checkpubkey: failed opening ${filename}: ${String(e)}`);
      return -1;
    }
  });
  if (fd < 0) {
    return false;
  }
  TRACE("checkpubkey: opened authorized_keys OK");
  let ret = false;
  try {
    const authfile = new FgetcFile(fd);
    const line = buf_new(MAX_AUTHKEYS_LINE);
    let line_num = 1;
    for (; line_num <= MAX_AUTHKEYS_LINE_COUNT; line_num++) {
      if (!buf_getline(line, authfile)) {
        TRACE("checkpubkey: authorized_keys EOF reached");
        break;
      }
      ret = checkpubkey_line(line, line_num, filename!, keyalgo, keyblob, ret_options);
      if (ret) {
        break;
      }
    }
    if (line_num > MAX_AUTHKEYS_LINE_COUNT) {
      TRACE("authorized_keys line limit");
    }
  } finally {
    closeSync(fd);
  }
  TRACE(`leave checkpubkey: ret=${ret}`);
  return ret;
}

/**
 * Whether every directory from authorized_keys' own up to the home directory (or "/" when
 * the file lies elsewhere) is owned by the user or root and not group/world writable. (The
 * file itself is not checked: it is opened as the user.) @dropbear svr-authpubkey.c checkpubkeyperms
 */
export function checkpubkeyperms(ses: SvrSession): boolean {
  TRACE("enter checkpubkeyperms");
  let path = authorized_keys_filepath(ses);
  const home = homePath(ses.authstate);
  const root = Buffer.from("/");
  let ret = true;
  for (let sep = path.lastIndexOf(0x2f); sep >= 0; sep = path.lastIndexOf(0x2f)) {
    path = sep === 0 ? root : path.subarray(0, sep);
    if (!checkfileperm(ses, path)) {
      TRACE(`checkpubkeyperms: bad perm on ${path}`);
      ret = false;
    }
    if (path.equals(home) || path.equals(root)) {
      break;
    }
  }
  TRACE("leave checkpubkeyperms");
  return ret;
}

/**
 * Whether a path is owned by the user or root and not writable by group or others (logged
 * once per session). @dropbear svr-authpubkey.c checkfileperm
 */
export function checkfileperm(ses: SvrSession, filename: string | Buffer): boolean {
  TRACE(`enter checkfileperm(${filename})`);
  let filestat;
  try {
    filestat = statSync(filename);
  } catch {
    TRACE("leave checkfileperm: stat() != 0");
    return false;
  }
  let badperm = false;
  if (filestat.uid !== ses.authstate.pw_uid && filestat.uid !== 0) {
    badperm = true;
    TRACE("wrong ownership");
  }
  if (filestat.mode & (fsConstants.S_IWGRP | fsConstants.S_IWOTH)) {
    badperm = true;
    TRACE("wrong perms");
  }
  if (badperm) {
    if (!ses.authstate.perm_warn) {
      ses.authstate.perm_warn = true;
      dropbear_log(LOG_INFO, `${filename} must be owned by user or root, and not writable by group or others`);
    }
    TRACE("leave checkfileperm: failure perms/owner");
    return false;
  }
  TRACE("leave checkfileperm: success");
  return true;
}
