import { linkSync, unlinkSync } from "node:fs";
import { LOG_ERR, dropbear_exit, dropbear_log, errnoCode, fsPath, fsync_parent_dir, strerror } from "@dropbear-ts/dbutil";
import { buf_burn_free, buf_new, buf_setpos, buf_writefile } from "@dropbear-ts/buffer";
import { DROPBEAR_DEFAULT_RSA_SIZE, MAX_PRIVKEY_SIZE } from "@dropbear-ts/options";
import { ECDSA_DEFAULT_SIZE, ecdsa_signkey_type, gen_ecdsa_priv_key } from "./ecdsa.js";
import { gen_ed25519_priv_key } from "./gened25519.js";
import { gen_rsa_priv_key } from "./genrsa.js";
import {
  DROPBEAR_SIGNKEY_ECDSA_KEYGEN,
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ECDSA_NISTP384,
  DROPBEAR_SIGNKEY_ECDSA_NISTP521,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  buf_put_priv_key,
  new_sign_key,
  type sign_key,
  signkey_key_ptr,
  type signkey_type,
} from "./signkey.js";

/** A type's default size in bits, or 0 if it has none. @dropbear gensignkey.c get_default_bits */
function get_default_bits(keytype: number): number {
  switch (keytype) {
    case DROPBEAR_SIGNKEY_RSA:
      return DROPBEAR_DEFAULT_RSA_SIZE;
    case DROPBEAR_SIGNKEY_ECDSA_KEYGEN:
      return ECDSA_DEFAULT_SIZE;
    case DROPBEAR_SIGNKEY_ECDSA_NISTP521:
      return 521;
    case DROPBEAR_SIGNKEY_ECDSA_NISTP384:
      return 384;
    case DROPBEAR_SIGNKEY_ECDSA_NISTP256:
      return 256;
    case DROPBEAR_SIGNKEY_ED25519:
      return 256;
    default:
      return 0;
  }
}

/** `bits`, or the type's default when it is 0. @dropbear gensignkey.c signkey_generate_get_bits */
export function signkey_generate_get_bits(keytype: number, bits: number): number {
  return bits === 0 ? get_default_bits(keytype) : bits;
}

/**
 * Make a new key of `keytype` (DROPBEAR_SIGNKEY_ECDSA_KEYGEN lets `bits` pick the curve) and
 * return it with `type` set. Bad sizes exit with Dropbear's messages.
 */
export function signkeyGenerateKey(keytype: number, bits: number): sign_key {
  bits = signkey_generate_get_bits(keytype, bits);
  const key = new_sign_key();
  switch (keytype) {
    case DROPBEAR_SIGNKEY_RSA:
      key.rsakey = gen_rsa_priv_key(bits);
      key.type = DROPBEAR_SIGNKEY_RSA;
      break;
    case DROPBEAR_SIGNKEY_ECDSA_KEYGEN:
    case DROPBEAR_SIGNKEY_ECDSA_NISTP521:
    case DROPBEAR_SIGNKEY_ECDSA_NISTP384:
    case DROPBEAR_SIGNKEY_ECDSA_NISTP256: {
      const ecckey = gen_ecdsa_priv_key(bits);
      const type: signkey_type = ecdsa_signkey_type(ecckey);
      const member = signkey_key_ptr(type);
      if (member !== "ecckey256" && member !== "ecckey384" && member !== "ecckey521") {
        dropbear_exit("Internal error");
      }
      key[member] = ecckey;
      key.type = type;
      break;
    }
    case DROPBEAR_SIGNKEY_ED25519:
      key.ed25519key = gen_ed25519_priv_key(bits);
      key.type = DROPBEAR_SIGNKEY_ED25519;
      break;
    default:
      dropbear_exit("Internal error");
  }
  return key;
}

/**
 * Generate a key and write it in Dropbear's format to `filename`, never replacing an existing
 * file: it goes to `<filename>.tmp<pid>` first (O_EXCL) and is hard-linked into place, then the
 * directory is fsynced. With `skip_exist`, losing a race to another writer of the same file is
 * success. Where hard links are refused (EPERM, EACCES, ENOSYS) the file is written directly.
 * @dropbear gensignkey.c signkey_generate
 */
export function signkey_generate(keytype: number, bits: number, filename: string, skip_exist: boolean): boolean {
  const key = signkeyGenerateKey(keytype, bits);
  const buf = buf_new(MAX_PRIVKEY_SIZE);
  buf_put_priv_key(buf, key, key.type);
  buf_setpos(buf, 0);

  const fn_temp = `${filename}.tmp${process.pid}`;
  let ret = buf_writefile(buf, fn_temp, false);
  try {
    if (!ret) {
      return false;
    }
    try {
      linkSync(fsPath(fn_temp), fsPath(filename));
    } catch (err) {
      const code = errnoCode(err);
      if (!(skip_exist && code === "EEXIST")) {
        if (code === "EPERM" || code === "EACCES" || code === "ENOSYS") {
          buf_setpos(buf, 0);
          ret = buf_writefile(buf, filename, skip_exist);
        } else {
          dropbear_log(LOG_ERR, `Failed moving key file to ${filename}: ${strerror(err)}`);
          ret = false;
        }
        return ret;
      }
    }
    fsync_parent_dir(filename);
    return ret;
  } finally {
    buf_burn_free(buf);
    try {
      unlinkSync(fsPath(fn_temp));
    } catch {
      // Already gone, or never made: nothing to clean.
    }
  }
}
