#!/usr/bin/env node
// Packet layer alone, in one process, no sockets: CPU microseconds per packet to seal a
// channel-data payload (encrypt_packet) and to read and open it again (read_packet), per cipher
// and payload size, and nanoseconds per payload byte. Shows what the transport costs us per
// packet beside the kernel's socket path. Timed in CPU time (process.cpuUsage), best of many
// short batches, so other load on the machine disturbs it little.
//
//   npm run build && node bench/packet.mjs [--ciphers chacha,gcm,ctr] [--base DIR] [payload bytes ...]
//
// --base DIR also loads the packet layer as built in another checkout (say /work/main) and
// times both interleaved, batch by batch: an A/B of a change. A size written "16375:32759"
// gives base and this checkout different payload sizes (say 16 KiB against 32 KiB packets), to
// compare per byte.
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { benchArgs } from "./common.mjs";

const { values: A, positionals, fail } = benchArgs(
  "usage: node bench/packet.mjs [--ciphers chacha,gcm,ctr] [--base DIR] [payload bytes, or BASE:OURS ...]",
  { ciphers: { type: "string" }, base: { type: "string" } },
  { positionals: true },
);
const pick = A.ciphers?.split(",") ?? null;
const base = A.base ?? null;
const SIZES = positionals.length ? positionals : ["16375", "32759"];
if (!SIZES.every((s) => /^[1-9][0-9]*(:[1-9][0-9]*)?$/.test(s))) {
  fail(`payload sizes are byte counts (or BASE:OURS), not ${SIZES.join(" ")}`);
}
const BATCHES = 30;
const PER_BATCH = 100;

const here = fileURLToPath(new URL("..", import.meta.url));
const roots = base ? [base, here] : [here];

/** The packages a packet needs, from one checkout's build. */
async function load(root) {
  const L = {};
  for (const p of ["buffer", "core", "crypto", "dbutil", "packet"]) {
    Object.assign(L, await import(`${root}/packages/${p}/dist/index.js`));
  }
  // Bulk chacha20-poly1305 runs on libsodium's Poly1305 (a session loads it after 256 KiB).
  await L.poly1305_load();
  return L;
}
const libs = await Promise.all(roots.map(load));

const suites = [
  { name: "chacha20-poly1305", cipher: "dropbear_chachapoly", mode: "dropbear_mode_chachapoly" },
  { name: "aes128-gcm", cipher: "dropbear_aes128", mode: "dropbear_mode_gcm" },
  { name: "aes128-ctr+hmac-sha2-256", cipher: "dropbear_aes128", mode: "dropbear_mode_ctr" },
];

/**
 * A socket stand-in: readInto copies out queued wire bytes as StreamFd.readInto does; peekRead
 * and skipRead show the first chunk in place, as a StreamFd's ring does (read_packet opens the
 * body from there).
 */
class FakeFd {
  chunks = [];
  readReady() {
    return this.chunks.length > 0;
  }
  peekRead() {
    return this.chunks[0] ?? new Uint8Array(0);
  }
  skipRead(n) {
    const c = this.chunks[0];
    if (c === undefined || n > c.length) throw new Error("skipRead past the bytes that wait");
    if (n === c.length) this.chunks.shift();
    else this.chunks[0] = c.subarray(n);
  }
  readInto(dest, off, max) {
    const c = this.chunks[0];
    if (c === undefined) return null;
    const n = Math.min(max, c.length);
    dest.set(c.subarray(0, n), off);
    this.skipRead(n);
    return n;
  }
}

/** A sending and a receiving session keyed alike (as gen_new_keys would), joined by a FakeFd. */
function pair(L, s) {
  const cipher = L[s.cipher];
  const mode = L[s.mode];
  const tx = new L.sshsession(new L.runopts(), { svr_opts: new L.svr_runopts() });
  const rx = new L.sshsession(new L.runopts(), { cli_opts: new L.cli_runopts() });
  for (const ses of [tx, rx]) {
    ses.writepayload = L.buf_new(40000);
    ses.dataallowed = true;
  }
  rx.sock_in = new FakeFd();
  const k = randomBytes(64);
  const iv = randomBytes(16);
  const mk = randomBytes(32);
  for (const dir of [tx.keys.trans, rx.keys.recv]) {
    dir.algo_crypt = cipher;
    dir.crypt_mode = mode;
    dir.algo_mac = mode.aead_mac ?? L.dropbear_sha2_256;
    dir.mac_etm = false;
    dir.cipher_state = mode.start(cipher.cipherdesc, iv, k, cipher.keysize, 0);
    dir.mackey = mk;
  }
  return { L, tx, rx };
}

const data = randomBytes(64 * 1024);

/** CPU microseconds per packet over n packets of `size` payload bytes, sealed then opened. */
function batch({ L, tx, rx }, n, size) {
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    L.buf_putbyte(tx.writepayload, 94);
    L.buf_putint(tx.writepayload, 0);
    L.buf_putint(tx.writepayload, size);
    L.buf_putbytes(tx.writepayload, data, size);
    L.encrypt_packet(tx);
    while (!L.isempty(tx.writequeue)) {
      const wb = L.dequeue(tx.writequeue);
      rx.sock_in.chunks.push(wb.data.subarray(wb.pos, wb.len));
    }
    tx.writequeue_len = 0;
    while (rx.payload === null) L.read_packet(rx);
    rx.payload = null;
  }
  const u = process.cpuUsage(t);
  return (u.user + u.system) / n;
}

const label = (root) => (root === here ? "this checkout" : root);
for (const s of suites.filter((x) => !pick || pick.some((p) => x.name.includes(p)))) {
  for (const spec of SIZES) {
    const sizes = spec.split(":").map(Number);
    const sizeOf = (j) => sizes[Math.min(j, sizes.length - 1)];
    const pairs = libs.map((L) => pair(L, s));
    const best = pairs.map(() => Infinity);
    for (let b = 0; b < BATCHES; b++) {
      pairs.forEach((p, j) => (best[j] = Math.min(best[j], batch(p, PER_BATCH, sizeOf(j)))));
    }
    const nsPerByte = best.map((us, j) => (us * 1000) / sizeOf(j));
    const cols = best.map((us, j) => `${label(roots[j])}: ${String(sizeOf(j)).padStart(6)} B ${us.toFixed(1).padStart(6)} µs/packet ${nsPerByte[j].toFixed(2)} ns/B`);
    const ratio = base ? `  per byte ${(nsPerByte[1] / nsPerByte[0]).toFixed(2)}× base` : "";
    console.log(`${s.name.padEnd(25)} ${cols.join("  |  ")}${ratio}`);
  }
}
