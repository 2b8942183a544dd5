import { dropbear_ed25519_make_key } from "@dropbear-ts/crypto";
import { dropbear_exit } from "@dropbear-ts/dbutil";
import { type dropbear_ed25519_key, dropbear_ED25519_Key } from "./ed25519.js";

/** A new Ed25519 key; `size` must be 256. @dropbear gened25519.c gen_ed25519_priv_key */
export function gen_ed25519_priv_key(size: number): dropbear_ed25519_key {
  if (size !== 256) {
    dropbear_exit("Ed25519 keys have a fixed size of 256 bits");
  }
  const key = new dropbear_ED25519_Key();
  dropbear_ed25519_make_key(key.pub, key.priv);
  return key;
}
