import { createHmac } from "node:crypto";
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { userInfo } from "node:os";
import {
  buf_eatstring,
  buf_getbuf,
  buf_getint,
  buf_getmpint,
  buf_getptr,
  buf_getstring,
  buf_getstringbuf,
  buf_new,
  buf_putbytes,
  buf_setpos,
  fileLines,
  type buffer,
} from "@dropbear-ts/buffer";
import { cli_kex_state, dropbear_kex_mode, type algo_type, type CliKexParam, type CliSession, type dropbear_kex, type KnownHostKey } from "@dropbear-ts/core";
import { DEBUG1, LOG_INFO, LOG_WARNING, TRACE, dropbear_exit, dropbear_log, readAnswerLine, readInterruptibly, strerror, textBytes } from "@dropbear-ts/dbutil";
import { SSH_MSG_KEXDH_INIT, SSH_MSG_NEWKEYS, SSH_SERVER_SIG_ALGS } from "@dropbear-ts/options";
import { servicePort } from "@dropbear-ts/netio";
import { encrypt_packet } from "@dropbear-ts/packet";
import { hostMatches } from "@dropbear-ts/runopts";
import {
  DROPBEAR_SIGNKEY_NONE,
  base64Decode,
  buf_get_pub_key,
  buf_put_ecc_raw_pubkey_string,
  buf_verify,
  cmp_base64_key,
  new_sign_key,
  sign_key_fingerprint,
  signkey_name_from_type,
  signkey_type_from_name,
  signkey_type_from_signature,
  type signature_type,
  type signkey_type,
} from "@dropbear-ts/signkey";
import { buf_putbufstring, buf_putmpint, buf_putstring } from "@dropbear-ts/buffer";
import { send_msg_newkeys } from "./common-kex.js";
import { gen_kexdh_param, kexdh_comb_key } from "./kex-dh.js";
import { gen_kexecdh_param, kexecdh_comb_key } from "./kex-ecdh.js";
import { free_kexpqhybrid_param, gen_kexpqhybrid_param, kexpqhybrid_comb_key } from "./kex-pqhybrid.js";
import { free_kexcurve25519_param, gen_kexcurve25519_param, kexcurve25519_comb_key } from "./kex-x25519.js";
import { hashBuf } from "./svr-kex.js";

/** Longest known_hosts line read. @dropbear cli-kex.c MAX_KNOWNHOSTS_LINE */
export const MAX_KNOWNHOSTS_LINE = 4500;

/** Burn one set of the client's ephemeral kex secrets. */
function freeCliKexParam(param: CliKexParam | null): void {
  if (param?.mode === dropbear_kex_mode.DROPBEAR_KEX_CURVE25519) {
    free_kexcurve25519_param(param.p);
  } else if (param?.mode === dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID) {
    free_kexpqhybrid_param(param.p);
  }
}

/** Forget the client's ephemeral kex secrets. @dropbear cli-kex.c cli_kex_free_param */
function cli_kex_free_param(ses: CliSession): void {
  freeCliKexParam(ses.cli_ses.kex_param);
  ses.cli_ses.kex_param = null;
}

/**
 * TS-only, for the session's cleanup: burn the ephemeral secrets a session that ends in the
 * middle of a key exchange still holds, its kex_param and a key pair made ahead and never sent
 * (cliKexParamAhead), rather than leave them to the garbage collector of a long-lived process.
 */
export function cliKexCleanup(ses: CliSession): void {
  cli_kex_free_param(ses);
  freeCliKexParam(ses.cli_ses.kex_param_ahead?.param ?? null);
  ses.cli_ses.kex_param_ahead = null;
}

/** A fresh ephemeral key pair for the kex method in ses.newkeys (the switch in C's send_msg_kexdh_init). */
function genCliKexParam(ses: CliSession): CliKexParam {
  const mode = ses.newkeys!.algo_kex!.mode;
  switch (mode) {
    case dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH:
      return { mode, p: gen_kexdh_param(ses) };
    case dropbear_kex_mode.DROPBEAR_KEX_ECDH:
      return { mode, p: gen_kexecdh_param(ses) };
    case dropbear_kex_mode.DROPBEAR_KEX_CURVE25519:
      return { mode, p: gen_kexcurve25519_param() };
    case dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID:
      return { mode, p: gen_kexpqhybrid_param(ses) };
  }
}

/**
 * TS-only: make the key pair for our first kex method while the server's KEXINIT is on its way,
 * for send_msg_kexdh_init to take if that method is agreed. Nothing goes on the wire (no guess):
 * an sntrup761 key pair takes tens of milliseconds in a fresh process, which would otherwise
 * come after the server's KEXINIT instead of while it travels.
 */
export function cliKexParamAhead(ses: CliSession, algo_kex: dropbear_kex): void {
  const newkeys = ses.newkeys;
  if (newkeys === null || newkeys.algo_kex !== null || ses.kexstate.recvkexinit) {
    return;
  }
  newkeys.algo_kex = algo_kex;
  try {
    ses.cli_ses.kex_param_ahead = { algo_kex, param: genCliKexParam(ses) };
  } finally {
    // recv_msg_kexinit sets the agreed method.
    newkeys.algo_kex = null;
  }
}

/** Send our half of the key exchange. @dropbear cli-kex.c send_msg_kexdh_init */
export function send_msg_kexdh_init(ses: CliSession): void {
  TRACE("send_msg_kexdh_init()");
  cli_kex_free_param(ses);
  const ahead = ses.cli_ses.kex_param_ahead;
  ses.cli_ses.kex_param_ahead = null;
  let param: CliKexParam;
  if (ahead !== null && ahead.algo_kex === ses.newkeys!.algo_kex) {
    param = ahead.param;
  } else {
    freeCliKexParam(ahead?.param ?? null);
    param = genCliKexParam(ses);
  }
  const wp = ses.writepayload;
  buf_putbytes(wp, Buffer.of(SSH_MSG_KEXDH_INIT));
  switch (param.mode) {
    case dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH:
      buf_putmpint(wp, param.p.pub);
      break;
    case dropbear_kex_mode.DROPBEAR_KEX_ECDH:
      buf_put_ecc_raw_pubkey_string(wp, param.p.key);
      break;
    case dropbear_kex_mode.DROPBEAR_KEX_CURVE25519:
      buf_putstring(wp, param.p.pub);
      break;
    case dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID:
      buf_putbufstring(wp, param.p.concat_public!);
      break;
  }
  ses.cli_ses.kex_param = param;
  encrypt_packet(ses);
}

/**
 * The server's KEXDH_REPLY: check its host key (first kex; a rekey must bring the same one),
 * derive K and H, verify the signature over H, then send NEWKEYS. @dropbear cli-kex.c recv_msg_kexdh_reply
 */
export function recv_msg_kexdh_reply(ses: CliSession): void {
  TRACE("enter recv_msg_kexdh_reply");
  const cli_ses = ses.cli_ses;
  if (cli_ses.kex_state !== cli_kex_state.KEXDH_INIT_SENT) {
    dropbear_exit("Received out-of-order kexdhreply");
  }
  const payload = ses.payload!;
  const newkeys = ses.newkeys!;
  const keytype = newkeys.algo_hostkey as signkey_type;
  const hostkey = new_sign_key();
  const keybloblen = buf_getint(payload);
  const keyblob = Buffer.from(buf_getptr(payload, keybloblen));
  if (!ses.kexstate.donefirstkex) {
    checkhostkey(ses, keyblob);
    cli_ses.first_hostkey = keyblob;
  } else if (cli_ses.first_hostkey === null || !keyblob.equals(cli_ses.first_hostkey)) {
    // Beyond Dropbear, which checks only the first exchange's key: as OpenSSH, a server whose
    // key changes mid-session is not the one the user accepted.
    dropbear_exit("Host key changed during rekey", "EHOSTKEY");
  }
  if (buf_get_pub_key(payload, hostkey, keytype) === null) {
    TRACE("failed getting pubkey");
    dropbear_exit("Bad KEX packet");
  }
  const param = cli_ses.kex_param;
  if (param === null || param.mode !== newkeys.algo_kex!.mode) {
    dropbear_exit("Received out-of-order kexdhreply");
  }
  switch (param.mode) {
    case dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH: {
      const dh_f = buf_getmpint(payload);
      if (dh_f === null) {
        TRACE("failed getting mpint");
        dropbear_exit("Bad KEX packet");
      }
      kexdh_comb_key(ses, param.p, dh_f, hostkey);
      break;
    }
    case dropbear_kex_mode.DROPBEAR_KEX_ECDH:
      kexecdh_comb_key(ses, param.p, buf_getstringbuf(payload), hostkey);
      break;
    case dropbear_kex_mode.DROPBEAR_KEX_CURVE25519:
      kexcurve25519_comb_key(ses, param.p, buf_getstringbuf(payload), hostkey);
      break;
    case dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID:
      kexpqhybrid_comb_key(ses, param.p, buf_getstringbuf(payload), hostkey);
      break;
  }
  cli_kex_free_param(ses);
  if (!buf_verify(payload, hostkey, newkeys.algo_signature as signature_type, hashBuf(ses.hash!))) {
    dropbear_exit("Bad hostkey signature", "EHOSTKEY");
  }
  send_msg_newkeys(ses);
  ses.requirenext = SSH_MSG_NEWKEYS;
  TRACE("leave recv_msg_kexdh_init");
}

/** How much of the host key question's answer line is read at a time. */
const ANSWER_PART = 64;

/** The start of one line from the controlling terminal (or stdin), blocking as C's getc does. */
function readAnswer(): string {
  let fd: number;
  let own = true;
  try {
    fd = openSync("/dev/tty", "r");
  } catch {
    fd = 0;
    own = false;
  }
  let answer = "";
  try {
    // ^C or a kill while it waits for the user must act then, not after the Enter.
    readInterruptibly(() => {
      let part = readAnswerLine(fd, ANSWER_PART);
      answer = part.toString("latin1");
      // The rest of a long line too, so it is not left for the session's input.
      while (part.length === ANSWER_PART && part[ANSWER_PART - 1] !== 0x0a) {
        part = readAnswerLine(fd, ANSWER_PART);
      }
    });
  } finally {
    if (own) closeSync(fd);
  }
  return answer;
}

/** An unknown host key: refuse, accept, or ask, as the options say. @dropbear cli-kex.c ask_to_confirm */
function ask_to_confirm(ses: CliSession, keyblob: Buffer, algoname: string): void {
  const cli_opts = ses.cli_ses.cli_opts;
  const fp = sign_key_fingerprint(keyblob);
  if (!cli_opts.ask_hostkey) {
    dropbear_log(LOG_INFO, `\nHost '${cli_opts.remotehost}' key unknown.\n(${algoname} fingerprint ${fp})`);
    dropbear_exit("Not accepted automatically", "EHOSTKEY");
  }
  if (cli_opts.always_accept_key) {
    dropbear_log(LOG_INFO, `\nHost '${cli_opts.remotehost}' key accepted unconditionally.\n(${algoname} fingerprint ${fp})\n`);
    return;
  }
  process.stderr.write(`\nHost '${cli_opts.remotehost}' is not in the trusted hosts file.\n(${algoname} fingerprint ${fp})\n`);
  if (cli_opts.batch_mode) {
    dropbear_exit("Didn't validate host key", "EHOSTKEY");
  }
  process.stderr.write("Do you want to continue connecting? (y/n) ");
  if (readAnswer().startsWith("y")) {
    return;
  }
  dropbear_exit("Didn't validate host key", "EHOSTKEY");
}

/**
 * ~/.ssh/known_hosts's directory and name (the file a library caller named instead, with no
 * directory to make), or null without a home directory.
 */
function knownHostsPath(ses: CliSession): { homedir: string | null; filename: string } | null {
  const given = ses.cli_ses.cli_opts.known_hosts_file;
  if (given !== null) {
    return { homedir: null, filename: given };
  }
  let homedir = process.env.HOME ?? null;
  if (homedir === null) {
    try {
      homedir = userInfo().homedir;
    } catch {
      homedir = null;
    }
  }
  return homedir === null ? null : { homedir, filename: `${homedir}/.ssh/known_hosts` };
}

/** ~/.ssh/known_hosts (or a caller's file), made if missing (not for a library); null when it can't be used. @dropbear cli-kex.c open_known_hosts_file */
function open_known_hosts_file(ses: CliSession): { filename: string; readonly: boolean } | null {
  const path = knownHostsPath(ses);
  if (path === null) {
    dropbear_log(LOG_WARNING, "Failed to open (null)/.ssh/known_hosts");
    return null;
  }
  const { homedir, filename } = path;
  if (!ses.owns_process) {
    // Beyond C: a library session never adds a host (an unknown one is refused), so it makes
    // nothing in the caller's home, no ~/.ssh and no empty file; it reads what is there.
    try {
      closeSync(openSync(filename, "r"));
      return { filename, readonly: true };
    } catch (e) {
      dropbear_log(LOG_WARNING, `Failed to open ${filename}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      return null;
    }
  }
  try {
    if (homedir !== null) {
      mkdirSync(`${homedir}/.ssh`, { mode: 0o700 });
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
      // C's one line, with strerror's words; it does not go on to say the file failed to open.
      dropbear_log(LOG_INFO, `Warning: failed creating ${homedir}/.ssh: ${strerror(e)}`);
      return null;
    }
  }
  try {
    closeSync(openSync(filename, "a+"));
    return { filename, readonly: false };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EROFS") {
      try {
        closeSync(openSync(filename, "r"));
        return { filename, readonly: true };
      } catch {
        // fall through to the warning
      }
    }
  }
  dropbear_log(LOG_WARNING, `Failed to open ${filename}`);
  return null;
}

/**
 * A library caller decides on the host key. An answer that comes later is awaited by the loop
 * before anything else is sent or read (our NEWKEYS waits in the queue); a refusal ends the
 * session as an unaccepted key does.
 */
function hostkeyByCaller(ses: CliSession, keyblob: Buffer, algoname: string): void {
  const verify = ses.cli_ses.verify_hostkey!;
  const decide = (ok: boolean): void => {
    // Only true accepts: a caller's truthy string or object is no answer.
    if (ok !== true) {
      dropbear_exit("Host key not accepted", "EHOSTKEY");
    }
  };
  const answer = verify(keyblob, algoname, sign_key_fingerprint(keyblob));
  if (typeof answer === "boolean") {
    decide(answer);
  } else {
    ses.awaitAfterPacket = Promise.resolve(answer).then(decide);
  }
}

// Beyond Dropbear, known_hosts is read as OpenSSH reads it (sshd(8) "SSH_KNOWN_HOSTS FILE
// FORMAT"): comma-separated host patterns (with * ? and !), hashed |1|salt|hmac names, the
// [host]:port name for a port other than 22, @revoked keys, @cert-authority lines skipped.
// Dropbear files name the host alone whatever the port, so for another port those entries
// still count when the file has none under [host]:port. docs/deviations.md says more.

/**
 * The name a host is filed under: the host for port 22, else [host]:port (OpenSSH's rule), the
 * port as a number when it was given as a service name (`-p ssh` is port 22, as OpenSSH files it).
 */
export function knownHostsName(host: string, port: string): string {
  const p = String(servicePort(port) ?? port);
  return p === "22" ? host : `[${host}]:${p}`;
}

/** Whether a known_hosts host field names `name`: a hashed |1|salt|hmac-sha1, or a pattern list. */
export function knownHostsFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|")) {
    const parts = field.split("|");
    if (parts.length !== 4 || parts[0] !== "" || parts[1] !== "1") {
      return false;
    }
    const salt = Buffer.from(parts[2]!, "base64");
    const hash = Buffer.from(parts[3]!, "base64");
    // OpenSSH's salt and hash are both SHA-1 sized; anything else is not its format.
    if (salt.length !== 20 || hash.length !== 20) {
      return false;
    }
    return createHmac("sha1", salt).update(name, "latin1").digest().equals(hash);
  }
  return hostMatches(name, field.split(","));
}

/** One known_hosts line's host field and key, or null for a comment, a marker we skip or a short line. */
function knownHostsEntry(raw: string): { field: string; key: KnownHostKey } | null {
  const line = raw.trim();
  if (line === "" || line.startsWith("#")) {
    return null;
  }
  let fields = line.split(/[ \t]+/);
  let revoked = false;
  if (fields[0]!.startsWith("@")) {
    // @cert-authority keys sign host certificates, which we do not take; unknown markers are skipped too.
    if (fields[0] !== "@revoked") {
      return null;
    }
    revoked = true;
    fields = fields.slice(1);
  }
  if (fields.length < 3) {
    return null;
  }
  return { field: fields[0]!, key: { revoked, algoname: fields[1]!, base64: fields[2]! } };
}

/**
 * The keys known_hosts (its lines, read once) holds for host:port: those under its OpenSSH
 * name, and for a port other than 22 with none there, those under the bare host name (as
 * Dropbear files every port).
 */
export function knownHostsKeys(lines: Iterable<string>, host: string, port: string): KnownHostKey[] {
  // OpenSSH compares (and hashes) the lower-cased name, tolower() in ASCII only. The lines are
  // bytes, one Latin-1 character each (fileLines): the name is matched as its bytes too, so a
  // name that is not ASCII ("café", written out as UTF-8) finds its own line again.
  const lhost = Buffer.from(textBytes(host.replace(/[A-Z]/g, (c) => c.toLowerCase()))).toString("latin1");
  const name = knownHostsName(lhost, port);
  const keys: KnownHostKey[] = [];
  const bare: KnownHostKey[] = [];
  for (const raw of lines) {
    const entry = knownHostsEntry(raw);
    if (entry === null) {
      continue;
    }
    if (knownHostsFieldMatches(entry.field, name)) {
      keys.push(entry.key);
    }
    if (port !== "22" && knownHostsFieldMatches(entry.field, lhost)) {
      bare.push(entry.key);
    }
  }
  if (port !== "22" && !keys.some((k) => !k.revoked)) {
    keys.push(...bare);
  }
  return keys;
}

/** The key types we can check that known_hosts holds (unrevoked) for the host we reach. */
function knownHostTypes(keys: readonly KnownHostKey[]): Set<signkey_type> {
  const types = new Set<signkey_type>();
  for (const k of keys) {
    const type = signkey_type_from_name(k.algoname);
    if (!k.revoked && type !== DROPBEAR_SIGNKEY_NONE) {
      types.add(type);
    }
  }
  return types;
}

/** Whether the base64 key of a known_hosts entry is this key blob of this type; fills fingerprint. */
function knownKeyMatches(keyblob: Buffer, algoname: string, k: KnownHostKey, fingerprint: { value: string | null }): boolean {
  const line = buf_new(k.base64.length);
  buf_putbytes(line, Buffer.from(k.base64, "latin1"));
  buf_setpos(line, 0);
  return cmp_base64_key(keyblob, algoname, line, fingerprint);
}

/**
 * Before the first KEXINIT: put the host key algorithms of the types known_hosts already holds
 * for this host first, so the server signs with a key we can check rather than one we would
 * have to refuse (OpenSSH's order_hostkeyalgs). Nothing changes for an unknown host.
 */
export function cliPreferKnownHostkeyAlgos(ses: CliSession): void {
  const cli_opts = ses.cli_ses.cli_opts;
  const path = knownHostsPath(ses);
  if (cli_opts.no_hostkey_check || path === null || cli_opts.remotehost === null) {
    return;
  }
  let keys: KnownHostKey[];
  try {
    keys = knownHostsKeys(fileLines(path.filename, MAX_KNOWNHOSTS_LINE), cli_opts.remotehost, cli_opts.remoteport ?? "22");
  } catch {
    return;
  }
  ses.cli_ses.known_host_keys = keys;
  const types = knownHostTypes(keys);
  if (types.size === 0) {
    return;
  }
  const known = (a: algo_type): boolean => types.has(signkey_type_from_signature(a.val as signature_type));
  const sigalgs = ses.algos.sigalgs;
  sigalgs.splice(0, sigalgs.length, ...sigalgs.filter(known), ...sigalgs.filter((a) => !known(a)));
  TRACE(() => `known host key types first: ${sigalgs.map((a) => a.name).join(",")}`);
}

/** The exit for a key that is not the one known_hosts (`where`) holds. */
function hostKeyMismatch(remotehost: string, algoname: string, keyblob: Buffer, expected: string, where: string): never {
  dropbear_exit(
    `\n\n${algoname} host key mismatch for ${remotehost} !\n` +
      `Fingerprint is ${sign_key_fingerprint(keyblob)}\n` +
      `Expected ${expected}\n` +
      `If you know that the host key is correct you can\nremove the bad entry from ${where}`,
    "EHOSTKEY",
  );
}

/**
 * Compare the server's host key with ~/.ssh/known_hosts: a match goes on; a revoked key, a
 * different key of the type, or a key of a type the host has no entry for when it has others
 * exits with a clear warning; an unknown host asks (and is added).
 * @dropbear cli-kex.c checkhostkey
 */
function checkhostkey(ses: CliSession, keyblob: Buffer): void {
  const cli_opts = ses.cli_ses.cli_opts;
  const remotehost = cli_opts.remotehost!;
  const remoteport = cli_opts.remoteport ?? "22";
  if (cli_opts.no_hostkey_check) {
    dropbear_log(LOG_INFO, `Caution, skipping hostkey check for ${remotehost}\n`);
    return;
  }
  const algoname = signkey_name_from_type(ses.newkeys!.algo_hostkey);
  if (ses.cli_ses.verify_hostkey !== null) {
    hostkeyByCaller(ses, keyblob, algoname);
    return;
  }
  const hostsfile = open_known_hosts_file(ses);
  if (hostsfile === null) {
    ask_to_confirm(ses, keyblob, algoname);
    return;
  }
  // As the first KEXINIT found them (a few milliseconds ago): a file of thousands of hashed
  // names costs an HMAC a line to read.
  const keys = ses.cli_ses.known_host_keys ?? knownHostsKeys(fileLines(hostsfile.filename, MAX_KNOWNHOSTS_LINE), remotehost, remoteport);
  // Dropbear's words name ~/.ssh/known_hosts; a library caller's own file is named as given.
  const where = cli_opts.known_hosts_file ?? "~/.ssh/known_hosts";
  const fingerprint = { value: null as string | null };
  for (const k of keys) {
    if (k.revoked && knownKeyMatches(keyblob, algoname, k, fingerprint)) {
      dropbear_exit(`\n\n${algoname} host key for ${remotehost} is marked as revoked in ${where}\nFingerprint is ${fingerprint.value}`, "EHOSTKEY");
    }
  }
  const sametype = keys.filter((k) => !k.revoked && k.algoname === algoname);
  for (const k of sametype) {
    if (knownKeyMatches(keyblob, algoname, k, fingerprint)) {
      DEBUG1(() => `server match ${fingerprint.value}`);
      return;
    }
  }
  if (sametype.length > 0) {
    knownKeyMatches(keyblob, algoname, sametype[0]!, fingerprint);
    hostKeyMismatch(remotehost, algoname, keyblob, fingerprint.value ?? "UNKNOWN", where);
  }
  // A host known by a key of another type: the server should have used that one (we asked for
  // it first), so this is a changed key, not a new host.
  const other = keys.find((k) => !k.revoked && signkey_type_from_name(k.algoname) !== DROPBEAR_SIGNKEY_NONE);
  if (other !== undefined) {
    const decoded = base64Decode(other.base64);
    hostKeyMismatch(remotehost, algoname, keyblob, `${other.algoname} ${decoded === null ? "UNKNOWN" : sign_key_fingerprint(decoded)}`, where);
  }
  ask_to_confirm(ses, keyblob, algoname);
  if (hostsfile.readonly) {
    TRACE("readonly");
    return;
  }
  const fd = openSync(hostsfile.filename, "a+");
  try {
    // A hand-edited file may lack its last newline; don't glue our entry onto that line.
    const size = fstatSync(fd).size;
    const last = Buffer.alloc(1);
    const sep = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a ? "\n" : "";
    writeSync(fd, `${sep}${knownHostsName(remotehost, remoteport)} ${algoname} ${keyblob.toString("base64")}\n`);
  } catch {
    // As in Dropbear: nothing useful to do if the append fails.
  } finally {
    closeSync(fd);
  }
}

/** The server's EXT_INFO: remember server-sig-algs (RFC 8308). @dropbear cli-kex.c recv_msg_ext_info */
export function recv_msg_ext_info(ses: CliSession): void {
  TRACE("enter recv_msg_ext_info");
  // Only right after the first NEWKEYS.
  if (!(ses.lastpacket === SSH_MSG_NEWKEYS && !ses.kexstate.donesecondkex)) {
    TRACE("leave recv_msg_ext_info: ignoring packet received at the wrong time");
    return;
  }
  const payload = ses.payload!;
  const cli_ses = ses.cli_ses;
  const num_ext = buf_getint(payload);
  TRACE(() => `received SSH_MSG_EXT_INFO with ${num_ext} items`);
  for (let i = 0; i < num_ext; i++) {
    const ext_name = buf_getstring(payload).toString("latin1");
    TRACE(() => `extension ${i} name '${ext_name}'`);
    if (cli_ses.server_sig_algs === null && ext_name === SSH_SERVER_SIG_ALGS) {
      const b: buffer = buf_getbuf(payload);
      buf_setpos(b, 4);
      cli_ses.server_sig_algs = b.data.subarray(4, b.len).toString("latin1").split(",");
    } else {
      // Other extensions' values may be longer than MAX_STRING_LEN.
      buf_eatstring(payload);
    }
  }
  TRACE("leave recv_msg_ext_info");
}
