import { createHash, type Hash } from "node:crypto";
import {
  buf_has_algo,
  buf_match_algo,
  buf_put_algolist,
  first_usable_algo,
  KEXGUESS2_ALGO_NAME,
  type AlgoMatch,
} from "@dropbear-ts/algo";
import {
  buf_eatstring,
  buf_getbool,
  buf_getint,
  buf_getptr,
  buf_getwriteptr,
  buf_incrpos,
  buf_incrwritepos,
  buf_new,
  buf_newcopy,
  buf_putbyte,
  buf_putint,
  buf_putstring,
  buf_setpos,
} from "@dropbear-ts/buffer";
import {
  DROPBEAR_COMP_ZLIB,
  DROPBEAR_COMP_ZLIB_DELAY,
  MAC_MODE_ETM,
  key_context,
  key_context_directional,
  sesCall,
  type AlgoTables,
  type algo_type,
  type dropbear_kex,
  dropbear_kex_mode,
  type mac_mode,
  type sshsession,
} from "@dropbear-ts/core";
import {
  LTC_DECRYPT,
  LTC_ENCRYPT,
  computeMac,
  curve25519Keypair,
  curve25519SharedSecret,
  freeCipherState,
  freeKeyStates,
  genrandom,
  macKey,
  noneCipherState,
  hash_process_mp,
  type cipher_state,
  type dropbear_cipher,
  type dropbear_cipher_mode,
  type dropbear_hash,
} from "@dropbear-ts/crypto";
import { DEBUG2, DEBUG3, TRACE, TRACE2, dropbear_exit, m_burn, monotonic_now } from "@dropbear-ts/dbutil";
import {
  KEXHASHBUF_MAX_INTS,
  LOCAL_IDENT,
  MAX_IV_LEN,
  MAX_KEY_LEN,
  SSH_EXT_INFO_C,
  SSH_MSG_KEXDH_INIT,
  SSH_MSG_KEXDH_REPLY,
  SSH_MSG_KEXINIT,
  SSH_MSG_NEWKEYS,
  SSH_STRICT_KEX_C,
  SSH_STRICT_KEX_S,
} from "@dropbear-ts/options";
import { encrypt_packet, zstreamIdleWork } from "@dropbear-ts/packet";
import { signkey_type_from_signature, type signature_type } from "@dropbear-ts/signkey";

/** Body bytes of the packet a cipher warm-up seals: a multiple of every cipher's block size. */
const WARMUP_BODY_LEN = 64;

/**
 * What a first key exchange with these tables runs, as steps to run once each on throwaway
 * values: per usable hybrid its KEM encapsulation, X25519 and exchange hash (X25519 kexes the
 * same without the KEM; each KEM and each hash once), then every usable cipher sealing and
 * opening one packet, then every usable HMAC. The server's spare connection process runs them
 * while it waits for a connection, so that V8 has compiled this code and the libraries have set
 * themselves up before a client waits on them (a fresh process's first sntrup761 encapsulation
 * costs over ten times a later one). Nothing is kept.
 */
export function kexWarmUpSteps(algos: AlgoTables): (() => void)[] {
  const steps: (() => void)[] = [];
  // Several names run the same code (sntrup761x25519-sha512 and its @openssh.com alias, the
  // two curve25519-sha256): each KEM, and X25519 with each hash, is warmed once.
  const kems = new Set<unknown>();
  const hashes = new Set<string>();
  for (const a of algos.sshkex) {
    const kex = a.data;
    if (!a.usable || kex === null) {
      continue;
    }
    if (kex.mode === dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID && !kems.has(kex.details)) {
      kems.add(kex.details);
      const kem = kex.details;
      steps.push(() => {
        // Any bytes make a public key the encapsulation accepts.
        const k = Buffer.alloc(kem.output_len);
        kem.kem_enc(Buffer.alloc(kem.ciphertext_len), k, Buffer.alloc(kem.public_len));
        m_burn(k);
      });
    }
    if ((kex.mode === dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID || kex.mode === dropbear_kex_mode.DROPBEAR_KEX_CURVE25519) && !hashes.has(kex.hash_desc.name)) {
      hashes.add(kex.hash_desc.name);
      steps.push(() => {
        const ours = curve25519Keypair();
        const theirs = curve25519Keypair();
        m_burn(curve25519SharedSecret(ours.priv, theirs.pub));
        m_burn(ours.priv);
        m_burn(theirs.priv);
        createHash(kex.hash_desc.name).update(LOCAL_IDENT).copy().digest();
      });
    }
  }
  steps.push(() => {
    for (const c of algos.sshciphers) {
      if (c.usable) {
        cipherWarmUp(c.data, c.mode);
      }
    }
    for (const m of algos.sshhashes) {
      if (m.usable && m.data.hash_desc !== null) {
        const key = macKey(m.data, Buffer.alloc(m.data.keysize));
        const packet = Buffer.alloc(4 + WARMUP_BODY_LEN);
        computeMac(key, 0, packet, packet.length, Buffer.alloc(m.data.hashsize));
        freeKeyStates({ cipher_state: noneCipherState, mac_state: key.mac_state });
      }
    }
  });
  return steps;
}

/** Key a cipher with zeros twice, as both ends would, and seal one packet with one and open it with the other. */
function cipherWarmUp(cipher: dropbear_cipher, mode: dropbear_cipher_mode): void {
  const cipherdesc = cipher.cipherdesc;
  if (cipherdesc === null) {
    return;
  }
  const start = (): cipher_state | null => mode.start(cipherdesc, Buffer.alloc(MAX_IV_LEN), Buffer.alloc(MAX_KEY_LEN), cipher.keysize, 0);
  const sender = start();
  const receiver = start();
  const len = 4 + WARMUP_BODY_LEN;
  const plain = Buffer.alloc(len);
  plain.writeUInt32BE(WARMUP_BODY_LEN);
  if (sender !== null && receiver !== null) {
    if (mode.kind === "aead") {
      const taglen = mode.aead_mac.hashsize;
      const sealed = Buffer.alloc(len + taglen);
      mode.aead_crypt(0, plain, sealed, len, taglen, sender, LTC_ENCRYPT);
      mode.aead_getlength(0, sealed, len, receiver);
      mode.aead_crypt(0, sealed, plain, len, taglen, receiver, LTC_DECRYPT);
    } else {
      const sealed = Buffer.alloc(len);
      mode.encrypt(plain, sealed, len, sender);
      mode.decrypt(sealed, plain, len, receiver);
    }
  }
  for (const state of [sender, receiver]) {
    if (state !== null) {
      freeCipherState(state);
    }
  }
}

/**
 * The negotiated kex method, narrowed to the family `mode` that the caller's dispatch on
 * `algo_kex.mode` has already chosen (so a DH step gets its prime, an ECDH step its curve).
 */
export function kexOfMode<M extends dropbear_kex_mode>(ses: sshsession, mode: M): Extract<dropbear_kex, { readonly mode: M }> {
  const kex = ses.newkeys?.algo_kex ?? null;
  if (kex === null || kex.mode !== mode) {
    dropbear_exit("Bad kex mode");
  }
  // TypeScript does not narrow a union by a generic discriminant; the check above did.
  return kex as Extract<dropbear_kex, { readonly mode: M }>;
}

/** Send our KEXINIT: every usable algorithm, newest preferences first. @dropbear common-kex.c send_msg_kexinit */
export function send_msg_kexinit(ses: sshsession): void {
  const wp = ses.writepayload;
  const algos = ses.algos;
  buf_putbyte(wp, SSH_MSG_KEXINIT);
  genrandom(buf_getwriteptr(wp, 16), 16);
  buf_incrwritepos(wp, 16);
  buf_put_algolist(wp, algos.sshkex);
  buf_put_algolist(wp, algos.sigalgs);
  buf_put_algolist(wp, algos.sshciphers);
  buf_put_algolist(wp, algos.sshciphers);
  buf_put_algolist(wp, algos.sshhashes);
  buf_put_algolist(wp, algos.sshhashes);
  buf_put_algolist(wp, ses.compress_algos_c2s);
  buf_put_algolist(wp, ses.compress_algos_s2c);
  buf_putstring(wp, "");
  buf_putstring(wp, "");
  buf_putbyte(wp, ses.send_kex_first_guess !== null ? 1 : 0);
  buf_putint(wp, 0);
  // Our KEXINIT goes into the exchange hash later.
  ses.transkexinit = buf_newcopy(wp);
  encrypt_packet(ses);
  ses.dataallowed = false;
  ses.kexstate.sentkexinit = true;
  ses.newkeys = new key_context();
  if (ses.send_kex_first_guess !== null) {
    ses.newkeys.algo_kex = first_usable_algo(algos.sshkex)!.data;
    ses.newkeys.algo_signature = first_usable_algo(algos.sigalgs)!.val;
    ses.newkeys.algo_hostkey = signkey_type_from_signature(ses.newkeys.algo_signature as signature_type);
    sesCall(ses, ses.send_kex_first_guess);
  }
  TRACE("DATAALLOWED=0");
  TRACE("-> KEXINIT");
}

/** Take each direction's new keys into use once that direction saw NEWKEYS. @dropbear common-kex.c switch_keys */
function switch_keys(ses: sshsession): void {
  TRACE2("enter switch_keys");
  if (!(ses.kexstate.sentkexinit && ses.kexstate.recvkexinit)) {
    dropbear_exit("Unexpected newkeys message");
  }
  const newkeys = ses.newkeys!;
  if (ses.kexstate.recvnewkeys && newkeys.recv.valid) {
    TRACE("switch_keys recv");
    gen_new_zstream(ses, newkeys.recv, false);
    // C overwrites (burns) the old keys in place; ours may hold OpenSSL contexts to free.
    freeKeyStates(ses.keys.recv);
    ses.keys.recv = newkeys.recv;
    newkeys.recv = new key_context_directional();
  }
  if (ses.kexstate.sentnewkeys && newkeys.trans.valid) {
    TRACE("switch_keys trans");
    gen_new_zstream(ses, newkeys.trans, true);
    freeKeyStates(ses.keys.trans);
    ses.keys.trans = newkeys.trans;
    newkeys.trans = new key_context_directional();
  }
  if (ses.kexstate.sentnewkeys && ses.kexstate.recvnewkeys) {
    TRACE("switch_keys done");
    ses.keys.algo_kex = newkeys.algo_kex;
    ses.keys.algo_hostkey = newkeys.algo_hostkey;
    ses.keys.algo_signature = newkeys.algo_signature;
    ses.newkeys = null;
    kexinitialise(ses);
  }
  TRACE2("leave switch_keys");
}

/** Send NEWKEYS and switch our sending side to the new keys. @dropbear common-kex.c send_msg_newkeys */
export function send_msg_newkeys(ses: sshsession): void {
  TRACE("enter send_msg_newkeys");
  buf_putbyte(ses.writepayload, SSH_MSG_NEWKEYS);
  encrypt_packet(ses);
  ses.kexstate.sentnewkeys = true;
  if (ses.kexstate.donefirstkex) {
    ses.kexstate.donesecondkex = true;
  }
  ses.kexstate.donefirstkex = true;
  ses.dataallowed = true;
  gen_new_keys(ses);
  switch_keys(ses);
  if (ses.kexstate.strict_kex) {
    ses.transseq = 0;
  }
  TRACE("leave send_msg_newkeys");
}

/** The peer's NEWKEYS: switch our receiving side. @dropbear common-kex.c recv_msg_newkeys */
export function recv_msg_newkeys(ses: sshsession): void {
  TRACE("enter recv_msg_newkeys");
  ses.kexstate.recvnewkeys = true;
  switch_keys(ses);
  if (ses.kexstate.strict_kex) {
    ses.recvseq = 0;
  }
  ses.kexstate.recvfirstnewkeys = true;
  TRACE("leave recv_msg_newkeys");
}

/**
 * A new zlib stream for a direction whose negotiated method compresses (the old one goes with
 * the old keys). Beyond C, it is made while the loop waits for the peer, or at its first packet
 * if that comes sooner (zstreamOf): loading the zlib code and making the stream took 9-12 ms,
 * which sat between a server's KEXDH_REPLY and its sending (Dropbear's own dbclient asks for
 * zlib@openssh.com, used only after auth). @dropbear common-kex.c gen_new_zstream_recv
 */
function gen_new_zstream(ses: sshsession, dir: key_context_directional, trans: boolean): void {
  dir.zstream = null;
  if (dir.algo_comp === DROPBEAR_COMP_ZLIB || dir.algo_comp === DROPBEAR_COMP_ZLIB_DELAY) {
    ses.idle_work.push(...zstreamIdleWork(dir, trans));
  }
}

/**
 * Which compression lists we offer: none unless compression is on; then the client offers
 * zlib both ways, and the server only server-to-client (it never inflates what clients send).
 * @dropbear common-kex.c kex_setup_compress
 */
function kex_setup_compress(ses: sshsession): void {
  const t = ses.algos;
  if (!ses.opts.compression) {
    ses.compress_algos_c2s = t.ssh_nocompress;
    ses.compress_algos_s2c = t.ssh_nocompress;
  } else if (!ses.isserver) {
    ses.compress_algos_c2s = t.ssh_compress;
    ses.compress_algos_s2c = t.ssh_compress;
  } else {
    ses.compress_algos_c2s = t.ssh_nocompress;
    ses.compress_algos_s2c = t.ssh_compress;
  }
}

/** Set up the kex state for the first time. @dropbear common-kex.c kexfirstinitialise */
export function kexfirstinitialise(ses: sshsession): void {
  kex_setup_compress(ses);
  kexinitialise(ses);
}

/** Reset the kex state for the next negotiation. @dropbear common-kex.c kexinitialise */
function kexinitialise(ses: sshsession): void {
  TRACE("kexinitialise()");
  const k = ses.kexstate;
  k.sentkexinit = false;
  k.recvkexinit = false;
  k.recvnewkeys = false;
  k.sentnewkeys = false;
  k.them_firstfollows = false;
  k.datatrans = 0;
  k.datarecv = 0;
  k.our_first_follows_matches = false;
  k.lastkextime = monotonic_now();
}

/** A hash already fed K and H, ready to be copied for each key letter. */
function kexHash(ses: sshsession): Hash {
  return createHash(ses.newkeys!.algo_kex!.hash_desc.name);
}

/**
 * Derive `outlen` bytes of key material for letter X from the hash state `hs` (which has taken
 * K and H), extending as RFC 4253 §7.2 says. @dropbear common-kex.c hashkeys
 */
function hashkeys(ses: sshsession, outlen: number, hs: Hash, X: string): Buffer {
  const out = Buffer.alloc(outlen);
  const hashsize = ses.newkeys!.algo_kex!.hash_desc.hashsize;
  let tmpout = hs.copy().update(X, "latin1").update(ses.session_id!).digest();
  tmpout.copy(out, 0, 0, Math.min(hashsize, outlen));
  for (let offset = hashsize; offset < outlen; offset += hashsize) {
    tmpout = hs.copy().update(out.subarray(0, offset)).digest();
    tmpout.copy(out, offset, 0, Math.min(outlen - offset, hashsize));
  }
  m_burn(tmpout);
  return out;
}

/** Key a cipher mode, or exit as Dropbear does on a crypto failure. */
function startCipher(dir: key_context_directional, IV: Buffer, key: Buffer): void {
  if (dir.algo_crypt.cipherdesc === null) {
    return;
  }
  const state = dir.crypt_mode.start(dir.algo_crypt.cipherdesc, IV, key, dir.algo_crypt.keysize, 0);
  if (state === null) {
    dropbear_exit("Crypto error");
  }
  dir.cipher_state = state;
}

/** Derive the new ciphers' IVs and keys and the MAC keys from K and H. @dropbear common-kex.c gen_new_keys */
function gen_new_keys(ses: sshsession): void {
  TRACE("enter gen_new_keys");
  const newkeys = ses.newkeys!;
  const hs = kexHash(ses);
  if (ses.dh_K !== null) {
    hash_process_mp(hs, ses.dh_K);
    ses.dh_K = null;
  }
  if (ses.dh_K_bytes !== null) {
    hs.update(ses.dh_K_bytes);
    m_burn(ses.dh_K_bytes);
    ses.dh_K_bytes = null;
  }
  hs.update(ses.hash!);
  m_burn(ses.hash!);
  ses.hash = null;

  const C2S_IV = hashkeys(ses, MAX_IV_LEN, hs, "A");
  const S2C_IV = hashkeys(ses, MAX_IV_LEN, hs, "B");
  const C2S_key = hashkeys(ses, MAX_KEY_LEN, hs, "C");
  const S2C_key = hashkeys(ses, MAX_KEY_LEN, hs, "D");
  const client = !ses.isserver;
  startCipher(newkeys.recv, client ? S2C_IV : C2S_IV, client ? S2C_key : C2S_key);
  startCipher(newkeys.trans, client ? C2S_IV : S2C_IV, client ? C2S_key : S2C_key);
  if (newkeys.trans.algo_mac.hash_desc !== null) {
    newkeys.trans.mackey = hashkeys(ses, newkeys.trans.algo_mac.keysize, hs, client ? "E" : "F");
  }
  if (newkeys.recv.algo_mac.hash_desc !== null) {
    newkeys.recv.mackey = hashkeys(ses, newkeys.recv.algo_mac.keysize, hs, client ? "F" : "E");
  }
  newkeys.trans.valid = true;
  newkeys.recv.valid = true;
  for (const b of [C2S_IV, S2C_IV, C2S_key, S2C_key]) {
    m_burn(b);
  }
  TRACE("leave gen_new_keys");
}

/**
 * The peer's KEXINIT: answer with ours if we haven't sent it, choose the algorithms, and start
 * the exchange hash with V_C, V_S, I_C, I_S. @dropbear common-kex.c recv_msg_kexinit
 */
export function recv_msg_kexinit(ses: sshsession): void {
  TRACE("<- KEXINIT");
  TRACE("enter recv_msg_kexinit");
  if (!ses.kexstate.sentkexinit) {
    send_msg_kexinit(ses);
    TRACE("continue recv_msg_kexinit: sent kexinit");
  }
  // RFC 4253 §7.1: only one KEXINIT per exchange.
  if (ses.kexstate.recvkexinit) {
    dropbear_exit("Unexpected KEXINIT");
  }
  const payload = ses.payload!;
  const remoteident = ses.remoteident!;
  const transkexinit = ses.transkexinit!;
  const kexhashbuf_len = LOCAL_IDENT.length + remoteident.length + transkexinit.len + payload.len + KEXHASHBUF_MAX_INTS;
  ses.kexhashbuf = buf_new(kexhashbuf_len);
  read_kex_algos(ses);
  const theirs = payload.data.subarray(ses.payload_beginning, payload.len);
  const ours = transkexinit.data.subarray(0, transkexinit.len);
  if (!ses.isserver) {
    buf_putstring(ses.kexhashbuf, LOCAL_IDENT);
    buf_putstring(ses.kexhashbuf, Buffer.from(remoteident, "latin1"));
    buf_putstring(ses.kexhashbuf, ours);
    buf_putstring(ses.kexhashbuf, theirs);
    ses.requirenext = SSH_MSG_KEXDH_REPLY;
  } else {
    buf_putstring(ses.kexhashbuf, Buffer.from(remoteident, "latin1"));
    buf_putstring(ses.kexhashbuf, LOCAL_IDENT);
    buf_putstring(ses.kexhashbuf, theirs);
    buf_putstring(ses.kexhashbuf, ours);
    ses.requirenext = SSH_MSG_KEXDH_INIT;
  }
  ses.transkexinit = null;
  ses.kexstate.recvkexinit = true;
  // Strict kex (Terrapin): the peer's KEXINIT must have been its very first packet.
  if (ses.kexstate.strict_kex && !ses.kexstate.donefirstkex && ses.recvseq !== 1) {
    dropbear_exit("First packet wasn't kexinit");
  }
  TRACE("leave recv_msg_kexinit");
}

/** Hash the exchange into H; the first H becomes the session id. @dropbear common-kex.c finish_kexhashbuf */
export function finish_kexhashbuf(ses: sshsession): void {
  const kexhashbuf = ses.kexhashbuf!;
  const hash_desc = ses.newkeys!.algo_kex!.hash_desc;
  buf_setpos(kexhashbuf, 0);
  ses.hash = createHash(hash_desc.name).update(buf_getptr(kexhashbuf, kexhashbuf.len)).digest();
  m_burn(kexhashbuf.data);
  ses.kexhashbuf = null;
  if (ses.session_id === null) {
    ses.session_id = Buffer.from(ses.hash);
  }
}

/** Match one directional cipher/MAC/compression list or exit naming what failed. */
function must<A extends algo_type>(ses: sshsession, m: AlgoMatch<A>, what: string): A {
  if (m.algo === null) {
    dropbear_exit(`No matching algo ${what}`, "EKEX");
  }
  return m.algo;
}

/** One direction's MAC: an AEAD cipher's own tag, else the HMAC the lists agreed on. */
interface ChosenMac {
  readonly algo_mac: dropbear_hash;
  readonly mac_etm: boolean;
  /** For the debug line. */
  readonly name: string;
}

/** An AEAD cipher brings its own MAC, so the MAC list is read but does not have to match. */
function chooseMac(ses: sshsession, mode: dropbear_cipher_mode, m: AlgoMatch<algo_type<dropbear_hash, mac_mode>>, what: string): ChosenMac {
  if (mode.kind === "aead") {
    return { algo_mac: mode.aead_mac, mac_etm: false, name: "<implicit>" };
  }
  const hash = must(ses, m, what);
  return { algo_mac: hash.data, mac_etm: hash.mode === MAC_MODE_ETM, name: hash.name };
}

/** Read the peer's algorithm lists and choose one of each. @dropbear common-kex.c read_kex_algos */
function read_kex_algos(ses: sshsession): void {
  const payload = ses.payload!;
  const algos = ses.algos;
  const isserver = ses.isserver;
  const newkeys = ses.newkeys!;
  buf_incrpos(payload, 16); // the cookie

  const kexguess2 = buf_has_algo(payload, KEXGUESS2_ALGO_NAME);
  if (isserver && !ses.kexstate.donefirstkex && buf_has_algo(payload, SSH_EXT_INFO_C)) {
    ses.allow_ext_info = true;
  }
  if (!ses.kexstate.donefirstkex && buf_has_algo(payload, isserver ? SSH_STRICT_KEX_C : SSH_STRICT_KEX_S)) {
    ses.kexstate.strict_kex = true;
  }

  let allgood = true;
  const kexm = buf_match_algo(payload, algos.sshkex, isserver, kexguess2);
  allgood &&= kexm.goodguess;
  // The extension markers (kexguess2, ext-info, strict) carry no data and never count.
  if (kexm.algo === null || kexm.algo.data === null) {
    dropbear_exit("No matching algo kex", "EKEX");
  }
  TRACE(() => `kexguess2 ${kexguess2 ? 1 : 0}`);
  DEBUG3(() => `kex algo ${kexm.algo!.name}`);
  newkeys.algo_kex = kexm.algo.data;

  const sigm = buf_match_algo(payload, algos.sigalgs, isserver, kexguess2);
  allgood &&= sigm.goodguess;
  const sig = must(ses, sigm, "hostkey");
  DEBUG2(() => `hostkey algo ${sig.name}`);
  newkeys.algo_signature = sig.val;
  newkeys.algo_hostkey = signkey_type_from_signature(sig.val as signature_type);

  const c2s_cipher = must(ses, buf_match_algo(payload, algos.sshciphers, isserver, false), "enc c->s");
  DEBUG2(() => `enc  c2s is ${c2s_cipher.name}`);
  const s2c_cipher = must(ses, buf_match_algo(payload, algos.sshciphers, isserver, false), "enc s->c");
  DEBUG2(() => `enc  s2c is ${s2c_cipher.name}`);
  const c2s_mac = chooseMac(ses, c2s_cipher.mode, buf_match_algo(payload, algos.sshhashes, isserver, false), "mac c->s");
  DEBUG2(() => `hmac c2s is ${c2s_mac.name}`);
  const s2c_mac = chooseMac(ses, s2c_cipher.mode, buf_match_algo(payload, algos.sshhashes, isserver, false), "mac s->c");
  DEBUG2(() => `hmac s2c is ${s2c_mac.name}`);
  const c2s_comp = must(ses, buf_match_algo(payload, ses.compress_algos_c2s, isserver, false), "comp c->s");
  DEBUG2(() => `comp c2s is ${c2s_comp.name}`);
  const s2c_comp = must(ses, buf_match_algo(payload, ses.compress_algos_s2c, isserver, false), "comp s->c");
  DEBUG2(() => `comp s2c is ${s2c_comp.name}`);
  buf_eatstring(payload); // languages c2s
  buf_eatstring(payload); // languages s2c

  if (buf_getbool(payload)) {
    TRACE(() => `them kex firstfollows. allgood ${allgood ? 1 : 0}`);
    ses.kexstate.them_firstfollows = true;
    // A wrong guess: its kex packet is already on the way and must be dropped.
    if (!allgood) {
      ses.ignorenext = true;
    }
  }

  const setDir = (dir: key_context_directional, cipher: typeof c2s_cipher, mac: ChosenMac, comp: typeof c2s_comp): void => {
    dir.algo_crypt = cipher.data;
    dir.crypt_mode = cipher.mode;
    dir.algo_mac = mac.algo_mac;
    dir.mac_etm = mac.mac_etm;
    dir.algo_comp = comp.val;
  };
  if (!isserver) {
    setDir(newkeys.recv, s2c_cipher, s2c_mac, s2c_comp);
    setDir(newkeys.trans, c2s_cipher, c2s_mac, c2s_comp);
  } else {
    setDir(newkeys.recv, c2s_cipher, c2s_mac, c2s_comp);
    setDir(newkeys.trans, s2c_cipher, s2c_mac, s2c_comp);
  }
  buf_getint(payload); // reserved
  if (ses.send_kex_first_guess !== null && allgood) {
    TRACE("our_first_follows_matches 1");
    ses.kexstate.our_first_follows_matches = true;
  }
}
