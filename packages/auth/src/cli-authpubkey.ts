import {
  buf_getint,
  buf_getptr,
  buf_getstring,
  buf_getstringbuf,
  buf_new,
  buf_putbufstring,
  buf_putbyte,
  buf_putbytes,
  buf_putstring,
  buf_setlen,
  buf_setpos,
  type buffer,
} from "@dropbear-ts/buffer";
import { AUTH_METHOD_PUBKEY, AUTH_TYPE_NONE, cli_state, type CliSession } from "@dropbear-ts/core";
import {
  DEBUG1,
  DropbearExit,
  LOG_INFO,
  LOG_WARNING,
  TRACE,
  dropbear_exit,
  dropbear_log,
  list_append,
  list_new,
  list_remove,
  type m_list,
  type m_list_elem,
  withoutMessages,
  textBytes,
} from "@dropbear-ts/dbutil";
import {
  DROPBEAR_CLI_AGENTFWD,
  DROPBEAR_RSA,
  DROPBEAR_RSA_SHA1,
  DROPBEAR_RSA_SHA256,
  MAX_PUBKEY_SIZE,
  SSH_MSG_USERAUTH_REQUEST,
  SSH_SERVICE_CONNECTION,
  SSH_SIGNATURE_RSA_SHA256,
  SSH_SIGNKEY_RSA,
  SSH_SIGNKEY_RSA_LEN,
} from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { isDefaultIdentity, readhostkey } from "@dropbear-ts/runopts";
import {
  DROPBEAR_SIGNATURE_NONE,
  DROPBEAR_SIGNATURE_RSA_SHA1,
  DROPBEAR_SIGNATURE_RSA_SHA256,
  DROPBEAR_SIGNATURE_RSA_SHA512,
  DROPBEAR_SIGNKEY_ANY,
  DROPBEAR_SIGNKEY_RSA,
  KEYFILE_OPENSSH,
  SIGNKEY_SOURCE_AGENT,
  SIGNKEY_SOURCE_RAW_FILE,
  SSH_SIGNATURE_RSA_SHA512,
  base64Decode,
  buf_get_pub_key,
  buf_put_pub_key,
  buf_put_sign,
  import_encrypted,
  import_read,
  new_sign_key,
  parsePubLine,
  sign_key_free,
  signature_name_from_type,
  signature_type_from_name,
  signature_type_from_signkey,
  signkeyFingerprint,
  signkeyPrivateProblem,
  signkeyPubBlob,
  signkey_type_from_signature,
  type sign_key,
  type signature_type,
  readKeyFileText,
} from "@dropbear-ts/signkey";
import { cliAuthHooks, checkPromptInput, hasTty } from "./cli-auth.js";

// Dropbear loads each -i file into cli_opts.privkeys while parsing options; here the options
// keep file names and the keys are loaded when publickey auth first needs them, into a list per
// session. Beyond Dropbear, -i also takes OpenSSH-format keys. An encrypted openssh-key-v1 file
// carries its public key in clear, so it is offered like any key and only decrypted (asking for
// the passphrase) when the server says it would accept it; other encrypted formats likewise
// when their .pub lies beside them, else they are decrypted when loaded. The loaded list is
// clientsession.privkeys.

/** Public halves of encrypted openssh-key-v1 files, decrypted on PK_OK. */
const encryptedKeys = new WeakSet<sign_key>();

/**
 * Encrypted keys whose passphrase will not be asked for (dropUnaskable): default identities with
 * no terminal to ask on (true: their going is said), and BatchMode's (false: quietly, as before).
 */
const unaskableKeys = new WeakMap<sign_key, boolean>();

function skipUnaskable(filename: string): void {
  dropbear_log(LOG_INFO, `Skipping encrypted key '${filename}': no terminal to ask its passphrase`);
}

/** Drop the encrypted default identities no agent key took the place of, saying so. */
function dropUnaskable(list: m_list<sign_key>): void {
  for (let iter = list.first; iter !== null; ) {
    const next = iter.next;
    const say = unaskableKeys.get(iter.item);
    if (say !== undefined) {
      if (say) {
        skipUnaskable(iter.item.filename ?? "");
      } else {
        TRACE(`BatchMode: not asking for the passphrase of ${iter.item.filename ?? ""}`);
      }
      sign_key_free(list_remove(iter));
    }
    iter = next;
  }
}

/** Tries at a passphrase, as OpenSSH gives. */
const PASSPHRASE_TRIES = 3;

/** The PEM armour of an openssh-key-v1 file. */
const OSSH_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OSSH_END = "-----END OPENSSH PRIVATE KEY-----";

/** The public key in the clear header of an openssh-key-v1 file (PROTOCOL.key), or null. */
function opensshPublicKey(text: string): sign_key | null {
  const begin = text.indexOf(OSSH_BEGIN);
  const end = text.indexOf(OSSH_END);
  if (begin < 0 || end < begin) {
    return null;
  }
  const blob = base64Decode(text.slice(begin + OSSH_BEGIN.length, end));
  const magic = Buffer.from("openssh-key-v1\0", "latin1");
  if (blob === null || blob.length < magic.length || !blob.subarray(0, magic.length).equals(magic)) {
    return null;
  }
  const buf = buf_new(blob.length);
  buf_putbytes(buf, blob);
  buf_setpos(buf, magic.length);
  return unlessMalformed(() => {
    buf_getstring(buf); // ciphername
    buf_getstring(buf); // kdfname
    buf_getstring(buf); // kdfoptions
    if (buf_getint(buf) !== 1) {
      return null;
    }
    const pubbuf = buf_getstringbuf(buf);
    const key = new_sign_key();
    const type = buf_get_pub_key(pubbuf, key, DROPBEAR_SIGNKEY_ANY);
    if (type === null) {
      return null;
    }
    key.type = type;
    return key;
  }, null);
}

/**
 * The public key in `filename`.pub, as ssh-keygen writes it beside a private key, or null. For
 * an encrypted key whose file hides its public half (PEM, PKCS#8: ssh-keygen's format before
 * OpenSSH 7.8), as OpenSSH's ssh reads it: the passphrase is then asked only once the server
 * would accept the key, and not at all when the agent holds it.
 */
function publicKeyBeside(filename: string): sign_key | null {
  const text = readKeyFileText(`${filename}.pub`);
  const line = text?.split("\n", 1)[0] ?? "";
  return parsePubLine(line)?.key ?? null;
}

/**
 * `fn`'s result, or `fallback` when it ends on a DropbearExit: a damaged key file, in either
 * format, trips the buffer bounds checks of its parser, which must cost that key only, not the run.
 */
function unlessMalformed<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DropbearExit) {
      TRACE(`key file parse failed: ${e.message}`);
      return fallback;
    }
    throw e;
  }
}

/** Ask for a passphrase and decrypt; null when the user gives up (empty answer) or never gets it right. */
function decryptKeyFile(ses: CliSession, filename: string): sign_key | null {
  if (ses.cli_ses.getpass === null) {
    checkPromptInput(ses);
  }
  // The terminal's answer stays bytes (a passphrase need not be UTF-8); a library caller's is text.
  const getpass: (prompt: string) => string | Buffer | null = ses.cli_ses.getpass ?? cliAuthHooks.getpass;
  for (let i = 0; i < PASSPHRASE_TRIES; i++) {
    const pass = getpass(`Enter passphrase for key '${filename}': `);
    if (pass === null || pass.length === 0) {
      return null;
    }
    const key = unlessMalformed(() => import_read(filename, pass, KEYFILE_OPENSSH), null);
    if (key !== null) {
      return key;
    }
  }
  return null;
}

/**
 * Load one identity file: Dropbear's format (as readhostkey reads host keys) or, beyond
 * Dropbear, an OpenSSH one. Unloadable files are warned about unless they are default
 * identities (~/.ssh/id_dropbear and OpenSSH's), which are also skipped when encrypted with no
 * terminal to ask on. @dropbear cli-runopts.c loadidentityfile
 */
function loadidentityfile(ses: CliSession, list: m_list<sign_key>, filename: string): void {
  const cli_opts = ses.cli_ses.cli_opts;
  const warnfail = !isDefaultIdentity(cli_opts, filename);
  let key: sign_key | null = null;
  const head = readKeyFileText(filename) ?? "";
  if (head.trimStart().startsWith("-----BEGIN ")) {
    // A file that import_encrypted cannot parse counts as unencrypted: import_read then fails
    // too, and says why (so import_encrypted's own report is dropped: the user hears it once).
    // A default identity's trouble stays unsaid, as its failure does.
    if (!unlessMalformed(() => withoutMessages(() => import_encrypted(filename, KEYFILE_OPENSSH)), false)) {
      const read = (): sign_key | null => import_read(filename, null, KEYFILE_OPENSSH);
      key = unlessMalformed(() => (warnfail ? read() : withoutMessages(read)), null);
    } else {
      // BatchMode asks nothing; nor can a default identity with no terminal (getpass would read
      // stdin, which belongs to the remote command). Its public half stays listed until the
      // agent's keys are in (dropUnaskable): the agent may hold it, and then signs with no word
      // said (under IdentitiesOnly the one way an agent's key is used).
      const noTty = !warnfail && !hasTty();
      const unaskable = cli_opts.batch_mode || noTty;
      key = opensshPublicKey(head) ?? publicKeyBeside(filename);
      if (key !== null) {
        encryptedKeys.add(key);
        if (unaskable) {
          unaskableKeys.set(key, !cli_opts.batch_mode);
        }
      } else if (cli_opts.batch_mode) {
        TRACE(`BatchMode: not asking for the passphrase of ${filename}`);
      } else if (noTty) {
        skipUnaskable(filename);
        return;
      } else {
        key = decryptKeyFile(ses, filename);
      }
    }
  } else {
    const k = new_sign_key();
    const type = unlessMalformed(() => readhostkey(filename, k, DROPBEAR_SIGNKEY_ANY), null);
    if (type !== null) {
      k.type = type;
      key = k;
    }
  }
  if (key === null) {
    if (warnfail) {
      // Dropbear's message carries its own trailing newline.
      dropbear_log(LOG_WARNING, `Failed loading keyfile '${filename}'\n`);
    }
    return;
  }
  // Dropbear's key buffers (MAX_PUBKEY_SIZE) are sized for RSA up to about 4096 bits; its own
  // files hold no more, but an OpenSSH one can (ssh-keygen -b 8192). Skipped with a warning, so
  // auth goes on with the next key or method instead of ending on a buffer bound.
  if (key.rsakey !== null && !rsaFitsPubkeyBuffers(key.rsakey.e, key.rsakey.n)) {
    dropbear_log(LOG_WARNING, `Skipping key '${filename}': RSA key too large`);
    return;
  }
  // Numbers that cannot sign (a key file made by hand or damaged): skipped as well, where
  // signing with them would end the session (Dropbear sends a signature the server refuses).
  if (!usablePrivateKey(key, filename)) {
    return;
  }
  // A default identity holding a key already listed (id_dropbear made from id_ed25519 with
  // dropbearconvert) is not offered again: each offer costs one of the server's MaxAuthTries.
  if (!warnfail && findSameKey(list, key) !== null) {
    TRACE(`${filename} holds a key already listed`);
    sign_key_free(key);
    return;
  }
  key.source = SIGNKEY_SOURCE_RAW_FILE;
  key.filename = filename;
  list_append(list, key);
}

/** The element of `list` holding a key with `key`'s type and public blob, or null. */
function findSameKey(list: m_list<sign_key>, key: sign_key): m_list_elem<sign_key> | null {
  const blob = signkeyPubBlob(key);
  for (let iter = list.first; iter !== null; iter = iter.next) {
    if (iter.item.type === key.type && signkeyPubBlob(iter.item).equals(blob)) {
      return iter;
    }
  }
  return null;
}

/** False, with a warning naming the file, when the key's private numbers cannot sign. */
function usablePrivateKey(key: sign_key, filename: string): boolean {
  const problem = signkeyPrivateProblem(key);
  if (problem !== null) {
    dropbear_log(LOG_WARNING, `Skipping key '${filename}': ${problem}`);
  }
  return problem === null;
}

/** Whether an RSA key's public blob and its signatures fit in MAX_PUBKEY_SIZE bytes. */
function rsaFitsPubkeyBuffers(e: bigint, n: bigint): boolean {
  const nbits = n.toString(2).length;
  // An mpint's bytes: the magnitude's, plus a zero byte when its top bit is set.
  const mpintLen = (bits: number): number => (bits >> 3) + 1;
  const nbytes = (nbits + 7) >> 3;
  const blob = 4 + SSH_SIGNKEY_RSA_LEN + 4 + mpintLen(e.toString(2).length) + 4 + mpintLen(nbits);
  const sig = 4 + SSH_SIGNATURE_RSA_SHA512.length + 4 + nbytes;
  return Math.max(blob, sig) <= MAX_PUBKEY_SIZE;
}

/** The session's keys for publickey auth, loaded from cli_opts.privkeys on first use. */
export function cliPrivkeys(ses: CliSession): m_list<sign_key> {
  let list = ses.cli_ses.privkeys;
  if (list === null) {
    list = list_new<sign_key>();
    ses.cli_ses.privkeys = list;
    for (const filename of ses.cli_ses.cli_opts.privkeys) {
      loadidentityfile(ses, list, filename);
    }
  }
  return list;
}

/** The list element holding `key`, or null. */
function findKey(list: m_list<sign_key>, key: sign_key | null): m_list_elem<sign_key> | null {
  for (let iter = list.first; iter !== null; iter = iter.next) {
    if (iter.item === key) {
      return iter;
    }
  }
  return null;
}

/** The server refused the key we offered: drop it from the list. @dropbear cli-authpubkey.c cli_pubkeyfail */
export function cli_pubkeyfail(ses: CliSession): void {
  const cli_ses = ses.cli_ses;
  const iter = findKey(cliPrivkeys(ses), cli_ses.lastprivkey);
  if (iter !== null) {
    sign_key_free(list_remove(iter));
    cli_ses.lastprivkey = null;
  }
}

/**
 * PK_OK: the server would take one of our keys. Find it by type and blob and send the signed
 * request (asking for its passphrase first if it is still encrypted).
 * @dropbear cli-authpubkey.c recv_msg_userauth_pk_ok
 */
export function recv_msg_userauth_pk_ok(ses: CliSession): void {
  TRACE("enter recv_msg_userauth_pk_ok");
  const payload = ses.payload!;
  const sigtype = signature_type_from_name(buf_getstring(payload));
  if (sigtype === DROPBEAR_SIGNATURE_NONE) {
    dropbear_exit("Bad pk_ok", "EAUTH");
  }
  const keytype = signkey_type_from_signature(sigtype);
  TRACE(`recv_msg_userauth_pk_ok: type ${sigtype}`);
  const remotelen = buf_getint(payload);

  const list = cliPrivkeys(ses);
  let iter = list.first;
  for (; iter !== null; iter = iter.next) {
    const key = iter.item;
    if (key.type !== keytype) {
      TRACE("types differed");
      continue;
    }
    const blob = signkeyPubBlob(key, keytype);
    if (blob.length !== remotelen) {
      TRACE(`lengths differed: localh ${blob.length + 4} remote ${remotelen}`);
      continue;
    }
    if (!blob.equals(buf_getptr(payload, remotelen))) {
      TRACE("data differed");
      continue;
    }
    break;
  }

  if (iter === null) {
    // C only traces this and waits, for ever: the server answered a query we never made, and
    // nothing more will come (OpenSSH ends the same way).
    dropbear_exit("Bad pk_ok: not a key we offered", "EAUTH");
  }
  TRACE("matching key");
  if (encryptedKeys.has(iter.item) && !decryptListedKey(ses, iter)) {
    TRACE("leave recv_msg_userauth_pk_ok: key not decrypted");
    return;
  }
  if (!send_msg_userauth_pubkey(ses, iter.item, sigtype, true)) {
    // Beyond Dropbear, which ends here: an agent that refused (a key added with `ssh-add -c`
    // and the use not confirmed, a token not touched) costs that key only, as with OpenSSH.
    dropbear_log(LOG_WARNING, `Agent failed signing key ${signkeyFingerprint(iter.item)}`);
    cli_pubkeyfail(ses);
    ses.cli_ses.state = cli_state.USERAUTH_FAIL_RCVD;
    ses.cli_ses.lastauthtype = AUTH_TYPE_NONE;
    TRACE("leave recv_msg_userauth_pk_ok: agent refused");
    return;
  }
  TRACE("leave recv_msg_userauth_pk_ok");
}

/**
 * Swap an encrypted key's public half for the decrypted key. If that fails the key is
 * dropped and the client moves on, as if the server had refused it.
 */
function decryptListedKey(ses: CliSession, iter: m_list_elem<sign_key>): boolean {
  const cli_ses = ses.cli_ses;
  const pub = iter.item;
  const filename = pub.filename!;
  const key = decryptKeyFile(ses, filename);
  const matches = key !== null && key.type === pub.type && signkeyPubBlob(key).equals(signkeyPubBlob(pub));
  if (!matches) {
    dropbear_log(LOG_WARNING, `Failed loading keyfile '${filename}'\n`);
  }
  if (!matches || !usablePrivateKey(key, filename)) {
    if (key !== null) {
      sign_key_free(key);
    }
    cli_pubkeyfail(ses);
    cli_ses.state = cli_state.USERAUTH_FAIL_RCVD;
    cli_ses.lastauthtype = AUTH_TYPE_NONE;
    return false;
  }
  key.source = SIGNKEY_SOURCE_RAW_FILE;
  key.filename = filename;
  iter.item = key;
  if (cli_ses.lastprivkey === pub) {
    cli_ses.lastprivkey = key;
  }
  sign_key_free(pub);
  return true;
}

/**
 * Sign with the key itself or through the agent holding it; false when the agent refused.
 * @dropbear cli-authpubkey.c cli_buf_put_sign
 */
function cli_buf_put_sign(ses: CliSession, buf: buffer, key: sign_key, sigtype: signature_type, data_buf: buffer): boolean {
  // Agent keys exist only where the client program installed the agent calls.
  const agent = ses.cli_ses.agent;
  if (DROPBEAR_CLI_AGENTFWD && key.source === SIGNKEY_SOURCE_AGENT && agent !== null) {
    // The agent returns the blob buf_put_sign would make; wrap it the same way.
    const sigblob = buf_new(MAX_PUBKEY_SIZE);
    if (!agent.buf_sign(ses, sigblob, key, data_buf, sigtype)) {
      return false;
    }
    buf_putbufstring(buf, sigblob);
  } else {
    buf_put_sign(buf, key, sigtype, data_buf);
  }
  return true;
}

/**
 * A publickey request: a query with the public key only, or (realsign) signed over the
 * session id and the request so far. Returns false, with nothing sent, when the agent
 * refused to sign. @dropbear cli-authpubkey.c send_msg_userauth_pubkey
 */
function send_msg_userauth_pubkey(ses: CliSession, key: sign_key, sigtype: signature_type, realsign: boolean): boolean {
  DEBUG1(`enter send_msg_userauth_pubkey ${signature_name_from_type(sigtype)}`);
  const cli_ses = ses.cli_ses;
  const wp = ses.writepayload;
  const keytype = signkey_type_from_signature(sigtype);
  buf_putbyte(wp, SSH_MSG_USERAUTH_REQUEST);
  buf_putstring(wp, textBytes(cli_ses.cli_opts.username ?? ""));
  buf_putstring(wp, SSH_SERVICE_CONNECTION);
  buf_putstring(wp, AUTH_METHOD_PUBKEY);
  buf_putbyte(wp, realsign ? 1 : 0);
  buf_putstring(wp, signature_name_from_type(sigtype));
  buf_put_pub_key(wp, key, keytype);

  if (realsign) {
    TRACE("realsign");
    const session_id = ses.session_id!;
    const sigbuf = buf_new(4 + session_id.length + wp.len);
    buf_putstring(sigbuf, session_id);
    buf_putbytes(sigbuf, wp.data.subarray(0, wp.len));
    if (!cli_buf_put_sign(ses, wp, key, sigtype, sigbuf)) {
      // The request built so far is dropped unsent.
      buf_setpos(wp, 0);
      buf_setlen(wp, 0);
      return false;
    }
    cli_ses.is_trivial_auth = false;
  }
  encrypt_packet(ses);
  TRACE("leave send_msg_userauth_pubkey");
  return true;
}

/**
 * Append the agent's keys after the files' (C's order), each key once: beyond Dropbear, whose
 * list holds only ~/.ssh/id_dropbear by default, ours also holds the OpenSSH keys users load
 * into their agent, and a key offered twice costs the server's MaxAuthTries twice (sshd's 6
 * were spent before the password). A file still encrypted gives way to the agent's copy, which
 * signs with no passphrase asked, as OpenSSH's ssh does. With `identitiesOnly` (ssh's
 * IdentitiesOnly) that is all the agent's keys are used for.
 */
function mergeAgentKeys(list: m_list<sign_key>, agentKeys: m_list<sign_key>, identitiesOnly: boolean): void {
  while (agentKeys.first !== null) {
    const key = list_remove(agentKeys.first);
    const same = findSameKey(list, key);
    if (same === null && identitiesOnly) {
      TRACE("IdentitiesOnly: agent key not from a file passed over");
      sign_key_free(key);
    } else if (same === null) {
      list_append(list, key);
    } else if (encryptedKeys.has(same.item)) {
      TRACE(`agent holds encrypted ${same.item.filename ?? ""}: the agent signs`);
      sign_key_free(same.item);
      same.item = key;
    } else {
      TRACE("agent key already listed from a file");
      sign_key_free(key);
    }
  }
}

/**
 * Offer the next key (a query, no signature yet). Keys the server's server-sig-algs rule out
 * are dropped first; RSA keys sign with rsa-sha2-512 where listed (beyond Dropbear,
 * as OpenSSH's ssh), else rsa-sha2-256. Returns whether a key was offered. @dropbear cli-authpubkey.c cli_auth_pubkey
 */
export function cli_auth_pubkey(ses: CliSession): boolean {
  TRACE("enter cli_auth_pubkey");
  const cli_ses = ses.cli_ses;
  const cli_opts = cli_ses.cli_opts;
  const privkeys = cliPrivkeys(ses);

  if (DROPBEAR_CLI_AGENTFWD && !cli_opts.agent_keys_loaded && cli_ses.agent !== null) {
    const agentKeys = list_new<sign_key>();
    cli_ses.agent.load_keys(ses, agentKeys);
    mergeAgentKeys(privkeys, agentKeys, cli_opts.identities_only);
    cli_opts.agent_keys_loaded = true;
    TRACE("cli_auth_pubkey: agent keys loaded");
  }
  dropUnaskable(privkeys);

  let sigtype: signature_type = DROPBEAR_SIGNATURE_NONE;
  const sig_algs = cli_ses.server_sig_algs;
  while (privkeys.first !== null) {
    const key = privkeys.first.item;
    if (sig_algs !== null) {
      if (DROPBEAR_RSA && key.type === DROPBEAR_SIGNKEY_RSA) {
        // rsa-sha2-512 first, as OpenSSH's ssh: sshd lists both in server-sig-algs whatever
        // its PubkeyAcceptedAlgorithms, so a server taking only one must be one ssh works with.
        if (sig_algs.includes(SSH_SIGNATURE_RSA_SHA512)) {
          sigtype = DROPBEAR_SIGNATURE_RSA_SHA512;
          TRACE("server-sig-algs allows rsa sha512");
          break;
        }
        if (DROPBEAR_RSA_SHA256 && sig_algs.includes(SSH_SIGNATURE_RSA_SHA256)) {
          sigtype = DROPBEAR_SIGNATURE_RSA_SHA256;
          TRACE("server-sig-algs allows rsa sha256");
          break;
        }
        if (DROPBEAR_RSA_SHA1 && sig_algs.includes(SSH_SIGNKEY_RSA)) {
          sigtype = DROPBEAR_SIGNATURE_RSA_SHA1;
          TRACE("server-sig-algs allows rsa sha1");
          break;
        }
      } else {
        sigtype = signature_type_from_signkey(key.type);
        const name = signature_name_from_type(sigtype);
        if (sig_algs.includes(name)) {
          TRACE(`server-sig-algs allows ${name}`);
          break;
        }
      }
      TRACE(`server-sig-algs no match keytype ${key.type}, skipping`);
      sign_key_free(list_remove(privkeys.first));
      continue;
    }
    // No server-sig-algs: anything but RSA, which would need SHA-1 signatures.
    if (DROPBEAR_RSA && key.type === DROPBEAR_SIGNKEY_RSA) {
      if (DROPBEAR_RSA_SHA1) {
        sigtype = DROPBEAR_SIGNATURE_RSA_SHA1;
        TRACE("no server-sig-algs, using rsa sha1");
        break;
      }
      TRACE("no server-sig-algs, skipping rsa sha256");
      sign_key_free(list_remove(privkeys.first));
      continue;
    }
    sigtype = signature_type_from_signkey(key.type);
    TRACE("no server-sig-algs, using key");
    break;
  }

  if (privkeys.first !== null) {
    const key = privkeys.first.item;
    send_msg_userauth_pubkey(ses, key, sigtype, false);
    cli_ses.lastprivkey = key;
    TRACE("leave cli_auth_pubkey-success");
    return true;
  }
  TRACE("leave cli_auth_pubkey-failure");
  return false;
}

/** Auth is over: close the agent connection and forget the keys. @dropbear cli-authpubkey.c cli_auth_pubkey_cleanup */
export function cli_auth_pubkey_cleanup(ses: CliSession): void {
  if (DROPBEAR_CLI_AGENTFWD) {
    ses.cli_ses.agent?.close(ses);
  }
  // Never load the keys just to drop them (a password login).
  const privkeys = ses.cli_ses.privkeys ?? list_new<sign_key>();
  ses.cli_ses.privkeys = privkeys;
  while (privkeys.first !== null) {
    sign_key_free(list_remove(privkeys.first));
  }
  ses.cli_ses.lastprivkey = null;
}
