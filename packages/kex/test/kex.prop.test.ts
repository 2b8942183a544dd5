// Hostile key exchange messages: KEXINIT name-lists, KEXDH_INIT and KEXDH_REPLY bodies, EXT_INFO,
// and packets out of order under strict kex. Each either does its work or ends the session with
// a DropbearExit; what is negotiated is always something both sides offered.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { algo_tables_new, sigalgs, sshciphers, sshhashes, sshkex } from "@dropbear-ts/algo";
import { buf_new, buf_putbytes, buf_setpos } from "@dropbear-ts/buffer";
import { cli_kex_state, cli_runopts, CliSession, runopts, svr_runopts, SvrSession, type algo_type, type sshsession } from "@dropbear-ts/core";
import { dequeue, isempty } from "@dropbear-ts/dbutil";
import {
  LOCAL_IDENT,
  SSH_MSG_EXT_INFO,
  SSH_MSG_KEXDH_INIT,
  SSH_MSG_KEXDH_REPLY,
  SSH_MSG_KEXINIT,
  SSH_MSG_NEWKEYS,
  SSH_MSG_UNIMPLEMENTED,
  SSH_SERVER_SIG_ALGS,
  TRANS_MAX_PAYLOAD_LEN,
} from "@dropbear-ts/options";
import { process_packet } from "@dropbear-ts/packet";
import {
  kexfirstinitialise,
  recv_msg_ext_info,
  recv_msg_kexdh_init,
  recv_msg_kexdh_reply,
  recv_msg_kexinit,
  send_msg_kexdh_init,
  send_msg_kexinit,
} from "../src/index.js";
import { hostkey, only } from "./harness.js";
import { cleanly, fuzzParams } from "../../../tests/helpers/fuzz.js";
import { sshString, u32 } from "../../../tests/helpers/wire.js";

const names = (t: readonly algo_type[]): string[] => t.map((a) => a.name);
/** One name of a list: a real one, a near miss, or junk (commas, NULs, long). */
const nameArb = (known: string[]) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...known) },
    { weight: 1, arbitrary: fc.constantFrom("", "none", "zlib", "3des-cbc", "ssh-dss", "kexguess2@matt.ucc.asn.au", "ext-info-c") },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ minLength: 60, maxLength: 80 }) },
  );
const listArb = (known: string[]) => fc.array(nameArb(known), { minLength: 1, maxLength: 8 }).map((l) => l.join(","));
const KEX = [...names(sshkex), "kex-strict-s-v00@openssh.com"];

/** A KEXINIT payload: the ten lists drawn from real and junk names, or the same with junk around it. */
const kexinitArb = fc
  .record({
    lists: fc.tuple(
      listArb(KEX),
      listArb(names(sigalgs)),
      listArb(names(sshciphers)),
      listArb(names(sshciphers)),
      listArb(names(sshhashes)),
      listArb(names(sshhashes)),
      listArb(["none", "zlib@openssh.com", "zlib"]),
      listArb(["none", "zlib@openssh.com", "zlib"]),
      fc.constantFrom("", "en"),
      fc.constantFrom("", "en"),
    ),
    follows: fc.integer({ min: 0, max: 255 }),
    tail: fc.oneof({ weight: 5, arbitrary: fc.constant(u32(0)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)) }),
    cut: fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }),
  })
  .map(({ lists, follows, tail, cut }) => {
    const p = Buffer.concat([Buffer.of(SSH_MSG_KEXINIT), Buffer.alloc(16, 1), ...lists.map((l) => sshString(l)), Buffer.of(follows), tail]);
    return { payload: cut === null ? p : p.subarray(0, cut % (p.length + 1)), lists };
  });

type Copying<S> = S & { transkexinitCopy?: Buffer };
function newSession(server: true, setup?: (ses: sshsession) => void): Copying<SvrSession>;
function newSession(server: false, setup?: (ses: sshsession) => void): Copying<CliSession>;
function newSession(server: boolean, setup?: (ses: sshsession) => void): Copying<sshsession>;
function newSession(server: boolean, setup?: (ses: sshsession) => void): Copying<sshsession> {
  const ses: Copying<sshsession> = server ? new SvrSession(new runopts(), Object.assign(new svr_runopts(), { hostkey })) : new CliSession(new runopts(), Object.assign(new cli_runopts(), { no_hostkey_check: true, remotehost: "fuzz" }));
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  // Both ends are us: each sees the other's ident as LOCAL_IDENT, so the hashes agree.
  ses.remoteident = LOCAL_IDENT;
  ses.algos = algo_tables_new();
  if (server) only(ses.algos.sigalgs, ["ssh-ed25519"]);
  else for (const a of ses.algos.sshkex) if (a.name === "kex-strict-s-v00@openssh.com") a.usable = false;
  setup?.(ses);
  kexfirstinitialise(ses);
  send_msg_kexinit(ses);
  ses.transkexinitCopy = drain(ses)[0];
  return ses;
}

function drain(ses: sshsession): Buffer[] {
  const out: Buffer[] = [];
  while (!isempty(ses.writequeue)) {
    const wb = dequeue(ses.writequeue);
    const len = wb.data.readUInt32BE(0);
    out.push(Buffer.from(wb.data.subarray(5, 5 + len - wb.data[4]! - 1)));
  }
  ses.writequeue_len = 0;
  return out;
}

function deliver<S extends sshsession>(ses: S, payload: Uint8Array, handler: (ses: S) => void): void {
  const b = buf_new(payload.length);
  buf_putbytes(b, payload);
  buf_setpos(b, Math.min(1, payload.length));
  ses.payload = b;
  ses.payload_beginning = 0;
  ses.recvseq = 1;
  try {
    handler(ses);
  } finally {
    ses.payload = null;
  }
}

const inList = (list: string, name: string): boolean => list.split(",").includes(name);

describe("KEXINIT from a hostile peer", () => {
  it("negotiates only what both offered, or ends the session cleanly", () => {
    fc.assert(
      fc.property(fc.boolean(), kexinitArb, (server, { payload, lists }) => {
        const ses = newSession(server);
        const exit = cleanly(() => deliver(ses, payload, recv_msg_kexinit));
        if (exit !== null) return;
        const nk = ses.newkeys!;
        const kex = ses.algos.sshkex.find((a) => a.data === nk.algo_kex && inList(lists[0], a.name));
        expect(kex?.usable).toBe(true);
        const [c2s, s2c] = server ? [nk.recv, nk.trans] : [nk.trans, nk.recv];
        expect(ses.algos.sshciphers.some((a) => a.data === c2s.algo_crypt && a.mode === c2s.crypt_mode && inList(lists[2], a.name))).toBe(true);
        expect(ses.algos.sshciphers.some((a) => a.data === s2c.algo_crypt && a.mode === s2c.crypt_mode && inList(lists[3], a.name))).toBe(true);
        if (c2s.crypt_mode.kind !== "aead") expect(ses.algos.sshhashes.some((a) => a.data === c2s.algo_mac && inList(lists[4], a.name))).toBe(true);
        expect(ses.kexstate.strict_kex).toBe(inList(lists[0], server ? "kex-strict-c-v00@openssh.com" : "kex-strict-s-v00@openssh.com"));
        expect(ses.kexhashbuf).not.toBeNull();
      }),
      fuzzParams(400),
    );
  });
});

const KEX_METHODS = sshkex.filter((a) => a.data !== null).map((a) => a.name);

/**
 * A client and a server that exchanged their real KEXINITs (the client offering only `kex`),
 * and the client's real KEXDH_INIT payload, not yet delivered.
 */
function exchange(kex: string): { cli: CliSession; svr: SvrSession; init: Buffer } {
  const cli = newSession(false, (c) => only(c.algos.sshkex, [kex]));
  const svr = newSession(true);
  deliver(svr, cli.transkexinitCopy!, recv_msg_kexinit);
  deliver(cli, svr.transkexinitCopy!, recv_msg_kexinit);
  send_msg_kexdh_init(cli);
  cli.cli_ses.kex_state = cli_kex_state.KEXDH_INIT_SENT;
  const [init] = drain(cli);
  return { cli, svr, init: init! };
}

/** Change a payload past its type byte: flip one bit, cut it short, or add bytes. */
const mutationArb = fc.oneof(
  fc.record({ flip: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ cut: fc.nat() }),
  fc.record({ add: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);
type Mutation = { flip: number; bit: number } | { cut: number } | { add: Uint8Array };
function mutate(p: Buffer, m: Mutation): Buffer {
  if ("flip" in m) {
    const q = Buffer.from(p);
    const i = 1 + (m.flip % (p.length - 1));
    q[i]! ^= 1 << m.bit;
    return q;
  }
  if ("cut" in m) return p.subarray(0, 1 + (m.cut % (p.length - 1)));
  return Buffer.concat([p, m.add]);
}

/** The value a KEXDH_INIT carries in place of the real one: any size, or edge values. */
const kexValueArb = fc.oneof(
  fc.constantFrom(32, 65, 97, 133, 256, 512, 1190, 1216).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  fc.uint8Array({ maxLength: 2000 }),
  fc.constantFrom(Buffer.alloc(0), Buffer.of(0), Buffer.of(1), Buffer.of(0x80), Buffer.alloc(32), Buffer.alloc(65, 4)),
);

describe("KEXDH_INIT from a hostile client", () => {
  it("a real one is answered with KEXDH_REPLY and NEWKEYS; a changed or made-up one is answered so or ends the session cleanly", () => {
    fc.assert(
      fc.property(fc.constantFrom(...KEX_METHODS), fc.option(fc.oneof(mutationArb, kexValueArb.map((v) => ({ value: v })))), (kex, change) => {
        const { svr, init } = exchange(kex);
        const payload = change === null ? init : "value" in change ? Buffer.concat([init.subarray(0, 1), sshString(Buffer.from(change.value))]) : mutate(init, change);
        const exit = cleanly(() => deliver(svr, payload, recv_msg_kexdh_init));
        const sent = drain(svr).map((p) => p[0]);
        if (change === null) expect(exit).toBeNull();
        if (exit === null) expect(sent.slice(0, 2)).toEqual([SSH_MSG_KEXDH_REPLY, SSH_MSG_NEWKEYS]);
        else expect(sent).toEqual([]);
      }),
      fuzzParams(60),
    );
  });
});

describe("KEXDH_REPLY from a hostile server", () => {
  it("a real one is verified and answered with NEWKEYS; any changed bit or cut ends the session cleanly", () => {
    fc.assert(
      fc.property(fc.constantFrom(...KEX_METHODS), fc.option(mutationArb), (kex, change) => {
        const { cli, svr, init } = exchange(kex);
        deliver(svr, init, recv_msg_kexdh_init);
        const [reply] = drain(svr);
        const exit = cleanly(() => deliver(cli, change === null ? reply! : mutate(reply!, change), recv_msg_kexdh_reply));
        const sent = drain(cli).map((p) => p[0]);
        // Two outer lengths are not checked, as in Dropbear: K_S's only delimits what known_hosts
        // is compared with (skipped here), the key being parsed from its own fields; the
        // signature blob's is skipped by buf_verify. A change there may pass.
        const sigAt = 1 + 4 + reply!.readUInt32BE(1) + 4 + reply!.readUInt32BE(5 + reply!.readUInt32BE(1));
        const at = change !== null && "flip" in change ? 1 + (change.flip % (reply!.length - 1)) : -1;
        if (at !== -1 && (at <= 4 || (at >= sigAt && at < sigAt + 4))) return;
        if (change === null || "add" in change) {
          // Bytes after the signature are not read, as in Dropbear.
          expect(exit).toBeNull();
          expect(sent).toEqual([SSH_MSG_NEWKEYS]);
          expect(cli.session_id).toEqual(svr.session_id);
        } else {
          expect(exit).not.toBeNull();
          expect(sent).toEqual([]);
        }
      }),
      fuzzParams(60),
    );
  });
});

describe("EXT_INFO from a hostile server", () => {
  it("reads server-sig-algs back as sent, and ends cleanly on anything malformed", () => {
    const extArb = fc.array(
      fc.oneof(
        fc.array(fc.stringMatching(/^[a-z0-9@.-]{1,20}$/), { minLength: 1, maxLength: 6 }).map((l) => ({ name: SSH_SERVER_SIG_ALGS, value: l.join(",") })),
        fc.record({ name: fc.string({ maxLength: 30 }), value: fc.string({ maxLength: 40 }) }),
      ),
      { maxLength: 4 },
    );
    fc.assert(
      fc.property(extArb, fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 0xffffffff })), fc.nat(), (exts, count, cut) => {
        const ses = newSession(false);
        ses.lastpacket = SSH_MSG_NEWKEYS;
        const full = Buffer.concat([Buffer.of(SSH_MSG_EXT_INFO), u32(count ?? exts.length), ...exts.flatMap((e) => [sshString(e.name), sshString(e.value)])]);
        const truncated = cut % 3 === 0;
        const payload = truncated ? full.subarray(0, cut % (full.length + 1)) : full;
        const exit = cleanly(() => deliver(ses, payload, recv_msg_ext_info));
        if (exit === null && !truncated && count === null) {
          const first = exts.find((e) => e.name === SSH_SERVER_SIG_ALGS);
          expect(ses.cli_ses.server_sig_algs).toEqual(first === undefined ? null : first.value.split(","));
        }
      }),
      fuzzParams(300),
    );
  });
});

describe("packet order during a strict first kex", () => {
  it("anything but the awaited message ends the session; without strict kex, transport types get UNIMPLEMENTED", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 }), (strict, type, body) => {
        const ses = newSession(true);
        ses.packettypes = [{ type: SSH_MSG_KEXDH_INIT, handler: recv_msg_kexdh_init }];
        const lists = [strict ? "curve25519-sha256,kex-strict-c-v00@openssh.com" : "curve25519-sha256", "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", ""];
        deliver(ses, Buffer.concat([Buffer.of(SSH_MSG_KEXINIT), Buffer.alloc(16), ...lists.map((l) => sshString(l)), Buffer.of(0), u32(0)]), recv_msg_kexinit);
        expect(ses.kexstate.strict_kex).toBe(strict);
        if (type === SSH_MSG_KEXDH_INIT) return;
        const b = buf_new(body.length + 1);
        buf_putbytes(b, Buffer.concat([Buffer.of(type), Buffer.from(body)]));
        buf_setpos(b, 0);
        ses.payload = b;
        ses.payload_beginning = 0;
        const exit = cleanly(() => process_packet(ses));
        const replies = drain(ses).map((p) => p[0]);
        if (strict || type === 1 || type === 5 || type === 6 || type === SSH_MSG_KEXINIT || type === 0 || type >= 50) {
          // (A DISCONNECT is an exit too, a clean one.)
          expect(exit).not.toBeNull();
          expect(replies).toEqual([]);
        } else if (type === 2 || type === 3 || type === 4) {
          expect(exit).toBeNull();
          expect(replies).toEqual([]);
        } else {
          expect(exit).toBeNull();
          expect(replies).toEqual([SSH_MSG_UNIMPLEMENTED]);
        }
      }),
      fuzzParams(300),
    );
  });
});
