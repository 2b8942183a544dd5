#!/usr/bin/env node
// Transport crypto throughput: MB/s for 32 KiB packets, sealing (encrypt + MAC, as
// encrypt_packet does) and opening (decrypt + check, as decrypt_packet does), one row per
// cipher+MAC combination and per AEAD. About one second per row. Then the post-quantum KEMs:
// median milliseconds for key generation, encapsulation and decapsulation (keygen + decaps is
// what a client spends per sntrup761x25519-sha512 / mlkem768x25519-sha256 key exchange), with
// @oqs/liboqs-js's WebAssembly sntrup761 alongside when it happens to be installed.
// Build first:
//   npx tsc -b packages/crypto && node bench/crypto.mjs          (everything)
//   npx tsc -b packages/crypto && node bench/crypto.mjs --kem    (only the KEMs)
// Not run by the tests; numbers depend on the machine.

import {
  CRYPT_OK,
  LTC_DECRYPT,
  LTC_ENCRYPT,
  computeMac,
  macKey,
  mlkem768_desc,
  sntrup761_desc,
  poly1305_load,
  verifyMac,
} from "../packages/crypto/dist/index.js";
import { sshciphers, sshhashes } from "../packages/algo/dist/index.js";
import { MAC_MODE_ETM } from "../packages/core/dist/index.js";
import { benchArgs } from "./common.mjs";

// What the programs offer, from the algorithm tables.
const cipherAlgorithms = sshciphers.map((a) => ({ name: a.name, cipher: a.data, mode: a.mode }));
const macAlgorithms = sshhashes.map((a) => ({ name: a.name, hash: a.data, etm: a.mode === MAC_MODE_ETM }));

const PACKET = 32 * 1024;
const SECONDS_PER_COLUMN = 0.5;

/** Run fn repeatedly for about `seconds`; returns MB/s of `bytes` per call. */
function rate(fn, bytes, seconds = SECONDS_PER_COLUMN) {
  for (let i = 0; i < 20; i++) fn(); // warm up
  let n = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  do {
    for (let i = 0; i < 16; i++) fn();
    n += 16;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return (n * bytes) / 1e6 / (Number(elapsed) / 1e9);
}

function check(ret) {
  if (ret !== CRYPT_OK) throw new Error("crypto hook failed");
}

function rowPlain(algo, mac) {
  const key = Buffer.alloc(algo.cipher.keysize, 1);
  const iv = Buffer.alloc(16, 2);
  const mackey = macKey(mac.hash, Buffer.alloc(mac.hash.keysize, 3));
  const tx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0);
  const rx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0);
  const wire = Buffer.alloc(PACKET + mac.hash.hashsize);
  const body = wire.subarray(0, PACKET);
  const tag = wire.subarray(PACKET);
  const check2 = Buffer.alloc(mac.hash.hashsize);
  let seq = 0;
  const seal = () => {
    // encrypt-and-MAC over the clear packet; -etm MACs the ciphertext instead (same cost).
    computeMac(mackey, seq, body, PACKET, tag);
    check(algo.mode.encrypt(body, body, PACKET, tx));
    seq++;
  };
  let rseq = 0;
  const open = () => {
    check(algo.mode.decrypt(body, body, PACKET, rx));
    computeMac(mackey, rseq, body, PACKET, check2);
    verifyMac(check2, tag, mac.hash.hashsize);
    rseq++;
  };
  return [`${algo.name} + ${mac.name}`, rate(seal, PACKET), rate(open, PACKET)];
}

function rowAead(algo) {
  const key = Buffer.alloc(algo.cipher.keysize, 1);
  const iv = Buffer.alloc(16, 2);
  const taglen = algo.mode.aead_mac.hashsize;
  const tx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0);
  const packets = [];
  // Seal a batch first so the opening side has valid packets to open in order.
  const BATCH = 64;
  for (let i = 0; i < BATCH; i++) {
    const wire = Buffer.alloc(PACKET + taglen);
    wire.writeUInt32BE(PACKET - 4, 0);
    check(algo.mode.aead_crypt(i, wire, wire, PACKET, taglen, tx, LTC_ENCRYPT));
    packets.push(wire);
  }
  const scratch = Buffer.alloc(PACKET + taglen);
  let seq = BATCH;
  const seal = () => {
    check(algo.mode.aead_crypt(seq++, scratch, scratch, PACKET, taglen, tx, LTC_ENCRYPT));
  };
  // Opening needs fresh state per pass (GCM's counter) and untouched packets.
  const sealed = packets.map((p) => Buffer.from(p));
  let rx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0);
  let i = 0;
  const open = () => {
    if (i === BATCH) {
      i = 0;
      rx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0);
    }
    const p = packets[i];
    sealed[i].copy(p);
    algo.mode.aead_getlength(i, p, algo.cipher.blocksize, rx);
    check(algo.mode.aead_crypt(i, p, p, PACKET, taglen, rx, LTC_DECRYPT));
    i++;
  };
  return [algo.name, rate(seal, PACKET), rate(open, PACKET)];
}

const kemOnly = benchArgs("usage: node bench/crypto.mjs [--kem]", { kem: { type: "boolean" } }).values.kem === true;
// Bulk chacha20-poly1305 runs on libsodium's Poly1305 (a session loads it after 256 KiB).
await poly1305_load();

const rows = [];
for (const algo of kemOnly ? [] : cipherAlgorithms) {
  if (algo.mode.kind === "aead") {
    rows.push(rowAead(algo));
  } else {
    for (const mac of macAlgorithms.filter((m) => !m.etm)) {
      rows.push(rowPlain(algo, mac));
    }
  }
}

if (!kemOnly) {
  const width = Math.max(...rows.map((r) => r[0].length), 9);
  console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}, ${PACKET / 1024} KiB packets`);
  console.log(`${"algorithm".padEnd(width)}  ${"seal MB/s".padStart(10)}  ${"open MB/s".padStart(10)}`);
  for (const [name, seal, open] of rows) {
    console.log(`${name.padEnd(width)}  ${seal.toFixed(0).padStart(10)}  ${open.toFixed(0).padStart(10)}`);
  }
  console.log();
}

// ---- KEMs: median ms per operation

const KEM_RUNS = 200;

/**
 * Milliseconds per call of fn over KEM_RUNS calls, after a warm-up: the median wall-clock time
 * of one call, and the mean CPU time this process spent (user + system), which other load on
 * the machine inflates much less.
 */
function kemMs(fn) {
  for (let i = 0; i < 20; i++) fn();
  const t = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < KEM_RUNS; i++) {
    const start = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const cpu = process.cpuUsage(cpu0);
  t.sort((a, b) => a - b);
  return { wall: t[t.length >> 1], cpu: (cpu.user + cpu.system) / 1000 / KEM_RUNS };
}

/** Timings of keygen, encaps and decaps for a desc-shaped KEM. */
function kemRow(name, gen, enc, dec, sizes) {
  const [pkLen, skLen, ctLen, ssLen] = sizes;
  const pk = new Uint8Array(pkLen);
  const sk = new Uint8Array(skLen);
  const ct = new Uint8Array(ctLen);
  const ss = new Uint8Array(ssLen);
  gen(pk, sk);
  enc(ct, ss, pk);
  const g = kemMs(() => gen(new Uint8Array(pkLen), new Uint8Array(skLen)));
  const e = kemMs(() => enc(new Uint8Array(ctLen), new Uint8Array(ssLen), pk));
  const d = kemMs(() => dec(new Uint8Array(ssLen), ct, sk));
  return [name, g, e, d];
}

const kemRows = [];
for (const [name, desc] of [
  ["sntrup761 (TypeScript)", sntrup761_desc],
  ["mlkem768", mlkem768_desc],
]) {
  const sizes = [desc.public_len, desc.secret_len, desc.ciphertext_len, desc.output_len];
  kemRows.push(kemRow(name, desc.kem_gen, desc.kem_enc, desc.kem_dec, sizes));
}
try {
  const { createSntrup761 } = await import("@oqs/liboqs-js/kem");
  const oqs = await createSntrup761();
  kemRows.push(
    kemRow(
      "sntrup761 (liboqs-js wasm)",
      (pk, sk) => {
        const k = oqs.generateKeyPair();
        pk.set(k.publicKey);
        sk.set(k.secretKey);
      },
      (ct, ss, pk) => {
        const r = oqs.encapsulate(pk);
        ct.set(r.ciphertext);
        ss.set(r.sharedSecret);
      },
      (ss, ct, sk) => ss.set(oqs.decapsulate(ct, sk)),
      [1158, 1763, 1039, 32],
    ),
  );
} catch {
  // liboqs-js is no dependency any more; compare only where it is still installed.
}
const kw = Math.max(...kemRows.map((r) => r[0].length), 3);
const [load1] = (await import("node:os")).loadavg();
console.log(
  `node ${process.version}, ${KEM_RUNS} runs each, load average ${load1.toFixed(1)}; ms as median wall-clock / mean CPU`,
);
const cell = (t) => `${t.wall.toFixed(2)} / ${t.cpu.toFixed(2)}`.padStart(13);
console.log(
  `${"KEM".padEnd(kw)}  ${"keygen".padStart(13)}  ${"encaps".padStart(13)}  ${"decaps".padStart(13)}  ${"keygen+decaps".padStart(13)}`,
);
for (const [name, g, e, d] of kemRows) {
  const both = { wall: g.wall + d.wall, cpu: g.cpu + d.cpu };
  console.log(`${name.padEnd(kw)}  ${cell(g)}  ${cell(e)}  ${cell(d)}  ${cell(both)}`);
}
