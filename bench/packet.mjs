#!/usr/bin/env node
// Packet layer alone, in one process, no sockets: microseconds per packet to seal a channel-data
// payload (encrypt_packet) and to read and open it again (read_packet), per cipher and payload
// size. Shows what the transport costs us per packet beside the kernel's socket path.
//   npm run build && node bench/packet.mjs [payload bytes ...]
import { randomBytes } from "node:crypto";
import { buf_new, buf_putbyte, buf_putbytes, buf_putint } from "../packages/buffer/dist/index.js";
import { cli_runopts, runopts, sshsession, svr_runopts } from "../packages/core/dist/index.js";
import { dropbear_aes128, dropbear_chachapoly, dropbear_mode_chachapoly, dropbear_mode_ctr, dropbear_mode_gcm, dropbear_sha2_256, poly1305_load } from "../packages/crypto/dist/index.js";
import { dequeue, isempty } from "../packages/dbutil/dist/index.js";
import { encrypt_packet, read_packet } from "../packages/packet/dist/index.js";

const SIZES = process.argv.slice(2).map(Number);
if (SIZES.length === 0) SIZES.push(16384 - 9, 32768 - 9);
const SECONDS = 0.6;

const suites = [
  { name: "chacha20-poly1305", cipher: dropbear_chachapoly, mode: dropbear_mode_chachapoly, etm: false },
  { name: "aes128-gcm", cipher: dropbear_aes128, mode: dropbear_mode_gcm, etm: false },
  { name: "aes128-ctr+hmac-sha2-256", cipher: dropbear_aes128, mode: dropbear_mode_ctr, etm: false },
];

/** A socket stand-in: read(max) hands out queued wire bytes as a socket's stream would. */
class FakeFd {
  chunks = [];
  readReady() {
    return this.chunks.length > 0;
  }
  read(max) {
    const c = this.chunks[0];
    if (c === undefined) return null;
    if (c.length <= max) return this.chunks.shift();
    this.chunks[0] = c.subarray(max);
    return c.subarray(0, max);
  }
}

function key(dir, s, k, iv, mk) {
  dir.algo_crypt = s.cipher;
  dir.crypt_mode = s.mode;
  dir.algo_mac = s.mode.aead_mac ?? dropbear_sha2_256;
  dir.mac_etm = s.etm;
  dir.cipher_state = s.mode.start(s.cipher.cipherdesc, iv, k, s.cipher.keysize, 0);
  dir.mackey = mk;
}

function pair(s) {
  const tx = new sshsession(new runopts(), { svr_opts: new svr_runopts() });
  const rx = new sshsession(new runopts(), { cli_opts: new cli_runopts() });
  for (const ses of [tx, rx]) {
    ses.writepayload = buf_new(40000);
    ses.dataallowed = true;
  }
  rx.sock_in = new FakeFd();
  const k = randomBytes(64), iv = randomBytes(16), mk = randomBytes(32);
  key(tx.keys.trans, s, k, iv, mk);
  key(rx.keys.recv, s, k, iv, mk);
  return { tx, rx };
}

await poly1305_load();
const data = randomBytes(64 * 1024);
for (const s of suites) {
  for (const size of SIZES) {
    const { tx, rx } = pair(s);
    let tEnc = 0n, tDec = 0n, n = 0;
    const t0 = process.hrtime.bigint();
    while (process.hrtime.bigint() - t0 < BigInt(SECONDS * 1e9)) {
      for (let i = 0; i < 64; i++) {
        const a = process.hrtime.bigint();
        buf_putbyte(tx.writepayload, 94);
        buf_putint(tx.writepayload, 0);
        buf_putint(tx.writepayload, size);
        buf_putbytes(tx.writepayload, data, size);
        encrypt_packet(tx);
        const b = process.hrtime.bigint();
        while (!isempty(tx.writequeue)) {
          const wb = dequeue(tx.writequeue);
          rx.sock_in.chunks.push(wb.data.subarray(wb.pos, wb.len));
        }
        tx.writequeue_len = 0;
        while (rx.payload === null) read_packet(rx);
        rx.payload = null;
        const c = process.hrtime.bigint();
        tEnc += b - a;
        tDec += c - b;
        n++;
      }
    }
    const us = (t) => Number(t) / 1e3 / n;
    const mbs = (size * n) / 1e6 / (Number(tEnc + tDec) / 1e9);
    console.log(`${s.name.padEnd(26)} ${String(size).padStart(6)} B  seal ${us(tEnc).toFixed(1).padStart(5)} µs  open ${us(tDec).toFixed(1).padStart(5)} µs  (${mbs.toFixed(0)} MB/s both)`);
  }
}
