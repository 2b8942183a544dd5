import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { algo_tables_new, kex_curve25519, kex_dh_group14_sha256, sshkex } from "@dropbear-ts/algo";
import { buf_new, buf_putbytes, buf_setpos } from "@dropbear-ts/buffer";
import { cli_runopts, CliSession, dropbear_kex_mode, key_context, runopts, svr_runopts, SvrSession, type dropbear_kex, type sshsession } from "@dropbear-ts/core";
import { bytes_to_mp, dh_p_14 } from "@dropbear-ts/crypto";
import { DropbearExit, dequeue, isempty } from "@dropbear-ts/dbutil";
import { LOCAL_IDENT, SSH_MSG_IGNORE, SSH_MSG_KEXINIT, TRANS_MAX_PAYLOAD_LEN } from "@dropbear-ts/options";
import { DROPBEAR_SIGNKEY_ED25519, DROPBEAR_SIGNATURE_ED25519, buf_put_pub_key } from "@dropbear-ts/signkey";
import { cliKexCleanup, cliKexParamAhead, kexWarmUpSteps, kexcurve25519_comb_key, kexdh_comb_key, kexfirstinitialise, recv_msg_kexdh_init, recv_msg_kexinit, send_msg_kexinit, svrKexWarmUpSteps } from "../src/index.js";
import { process_packet } from "@dropbear-ts/packet";
import { fullKex, hostkey, kexPair, only, pump, sendTest, type KexPair } from "./harness.js";
import { cleanly } from "../../../tests/helpers/fuzz.js";
import { sshString, u32 } from "../../../tests/helpers/wire.js";

const pairs: KexPair[] = [];
afterEach(() => {
  while (pairs.length) pairs.pop()!.close();
});

async function pair(...a: Parameters<typeof kexPair>): Promise<KexPair> {
  const k = await kexPair(...a);
  pairs.push(k);
  return k;
}

/** Application data both ways under the new keys: both sides derived the same ones. */
async function talk(k: KexPair): Promise<void> {
  sendTest(k.cli, Buffer.from("from the client"));
  sendTest(k.svr, Buffer.from("from the server"));
  await pump(k, () => k.got.get(k.cli)!.length === 1 && k.got.get(k.svr)!.length === 1);
  expect(k.got.get(k.svr)![0]!.subarray(1).toString()).toBe("from the client");
  expect(k.got.get(k.cli)![0]!.subarray(1).toString()).toBe("from the server");
}

const KEX_NAMES = sshkex.filter((a) => a.data !== null).map((a) => a.name);

describe("a whole key exchange over a socket pair", () => {
  for (const name of KEX_NAMES) {
    it(`${name}: both sides agree on H and the keys`, async () => {
      const k = await pair({ setup: (cli) => only(cli.algos.sshkex, [name]) });
      await fullKex(k);
      expect(k.cli.session_id).not.toBeNull();
      expect(k.cli.session_id).toEqual(k.svr.session_id);
      expect(k.cli.session_id!.length).toBe((k.cli.keys.algo_kex as dropbear_kex).hash_desc.hashsize);
      expect(k.cli.keys.algo_kex).toBe(sshkex.find((a) => a.name === name)!.data);
      await talk(k);
    });
  }

  for (const [svrKex, kept] of [
    ["curve25519-sha256", true],
    ["ecdh-sha2-nistp256", false],
  ] as const) {
    it(`a key pair made ahead for curve25519-sha256 is ${kept ? "what KEXDH_INIT carries when that is agreed" : "burned, and a fresh one made, when the server picks " + svrKex}`, async () => {
      const k = await pair({
        setup: (cli, svr) => {
          only(cli.algos.sshkex, ["curve25519-sha256", "ecdh-sha2-nistp256"]);
          only(svr.algos.sshkex, [svrKex]);
        },
      });
      send_msg_kexinit(k.cli);
      const first = k.cli.algos.sshkex.find((a) => a.name === "curve25519-sha256")!.data as dropbear_kex;
      cliKexParamAhead(k.cli, first);
      const ahead = k.cli.cli_ses.kex_param_ahead!;
      expect(ahead.algo_kex).toBe(first);
      // Only made: nothing sent, and the agreed method is still recv_msg_kexinit's to set.
      expect(k.cli.newkeys!.algo_kex).toBeNull();
      send_msg_kexinit(k.svr);
      await pump(k, () => k.cli.cli_ses.kex_param !== null);
      expect(k.cli.cli_ses.kex_param_ahead).toBeNull();
      expect(k.cli.cli_ses.kex_param === ahead.param).toBe(kept);
      if (!kept && ahead.param.mode === dropbear_kex_mode.DROPBEAR_KEX_CURVE25519) {
        expect(ahead.param.p.priv.every((b) => b === 0)).toBe(true);
      }
      await pump(k, () => k.cli.kexstate.donefirstkex && k.svr.kexstate.donefirstkex && k.cli.newkeys === null && k.svr.newkeys === null && isempty(k.svr.writequeue));
      expect(k.cli.session_id).toEqual(k.svr.session_id);
      await talk(k);
    });
  }

  it("cliKexCleanup burns a key pair made ahead that a session ending before KEXDH_INIT never sent", async () => {
    const k = await pair();
    send_msg_kexinit(k.cli);
    const first = k.cli.algos.sshkex.find((a) => a.name === "sntrup761x25519-sha512")!.data as dropbear_kex;
    cliKexParamAhead(k.cli, first);
    const ahead = k.cli.cli_ses.kex_param_ahead!.param;
    expect(ahead.mode).toBe(dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID);
    const secrets = ahead.mode === dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID ? [ahead.p.kem_cli_secret!, ahead.p.curve25519.priv] : [];
    cliKexCleanup(k.cli);
    expect(k.cli.cli_ses.kex_param_ahead).toBeNull();
    expect(secrets.map((b) => b.every((x) => x === 0))).toEqual([true, true]);
  });

  for (const [cipher, mac] of [
    ["aes128-ctr", "hmac-sha2-256"],
    ["aes256-ctr", "hmac-sha2-512-etm@openssh.com"],
    ["aes256-gcm@openssh.com", "hmac-sha2-256"],
    ["chacha20-poly1305@openssh.com", "hmac-sha2-256"],
  ] as const) {
    it(`${cipher} with ${mac}: the MAC keys match and the packets pass`, async () => {
      const k = await pair({
        setup: (cli) => {
          only(cli.algos.sshciphers, [cipher]);
          only(cli.algos.sshhashes, [mac]);
        },
      });
      await fullKex(k);
      expect(k.cli.keys.trans.algo_crypt).toBe(k.svr.keys.recv.algo_crypt);
      expect(k.cli.keys.trans.mackey).toEqual(k.svr.keys.recv.mackey);
      expect(k.svr.keys.trans.mackey).toEqual(k.cli.keys.recv.mackey);
      await talk(k);
    });
  }

  it("strict kex (both offer it): sequence numbers restart at NEWKEYS, and the server sends EXT_INFO", async () => {
    const k = await pair();
    await fullKex(k);
    expect(k.cli.kexstate.strict_kex).toBe(true);
    expect(k.svr.kexstate.strict_kex).toBe(true);
    await pump(k, () => k.cli.cli_ses.server_sig_algs !== null);
    expect(k.cli.cli_ses.server_sig_algs).toContain("ssh-ed25519");
    // The server sent only EXT_INFO after its NEWKEYS, the client nothing.
    expect(k.svr.transseq).toBe(1);
    expect(k.cli.recvseq).toBe(1);
    expect(k.cli.transseq).toBe(0);
    await talk(k);
  });

  it("without strict kex the sequence numbers run on", async () => {
    const k = await pair({
      // A peer without strict kex on either side: each side only looks for the other's marker.
      setup: (cli, svr) => {
        for (const ses of [cli, svr]) for (const a of ses.algos.sshkex) if (a.name.startsWith("kex-strict")) a.usable = false;
      },
    });
    await fullKex(k);
    expect(k.svr.kexstate.strict_kex).toBe(false);
    expect(k.cli.transseq).toBe(3); // KEXINIT, KEXDH_INIT, NEWKEYS
    await talk(k);
  });

  it("strict kex: anything before the peer's KEXINIT ends the session", async () => {
    const k = await pair();
    send_msg_kexinit(k.svr);
    // An IGNORE first, then the client's KEXINIT.
    sendTest(k.cli, Buffer.alloc(0), SSH_MSG_IGNORE);
    send_msg_kexinit(k.cli);
    await expect(pump(k, () => false)).rejects.toThrow(new DropbearExit(1, "First packet wasn't kexinit"));
  });

  it("a second exchange (rekey) keeps the session id and still talks", async () => {
    const k = await pair();
    await fullKex(k);
    const id = Buffer.from(k.svr.session_id!);
    const before = k.cli.keys.trans.mackey;
    await fullKex(k);
    expect(k.cli.kexstate.donesecondkex).toBe(true);
    expect(k.svr.session_id).toEqual(id);
    expect(k.cli.session_id).toEqual(id);
    expect(k.cli.keys.trans.mackey).not.toBe(before);
    await talk(k);
  });
});

/** The ten name-lists of a KEXINIT, in wire order. */
interface Lists {
  kex: string;
  hostkey: string;
  enc: [string, string];
  mac: [string, string];
  comp: [string, string];
}

const DEFAULT_LISTS: Lists = {
  kex: "curve25519-sha256,ext-info-c,kex-strict-c-v00@openssh.com",
  hostkey: "ssh-ed25519",
  enc: ["aes128-ctr", "aes128-ctr"],
  mac: ["hmac-sha2-256", "hmac-sha2-256"],
  comp: ["none", "none"],
};

/** A peer's KEXINIT payload, type byte first. */
function kexinitPayload(l: Partial<Lists> = {}, first_follows = 0): Buffer {
  const x = { ...DEFAULT_LISTS, ...l };
  const lists = [x.kex, x.hostkey, ...x.enc, ...x.mac, ...x.comp, "", ""];
  return Buffer.concat([Buffer.of(SSH_MSG_KEXINIT), Buffer.alloc(16, 7), ...lists.map((n) => sshString(n)), Buffer.of(first_follows), u32(0)]);
}

/** A session that has sent its KEXINIT, as the loop has it when the peer's arrives. */
function kexSession(server: true): SvrSession;
function kexSession(server: false): CliSession;
function kexSession(server: boolean): sshsession;
function kexSession(server: boolean): sshsession {
  const ses = server ? new SvrSession(new runopts(), new svr_runopts()) : new CliSession(new runopts(), new cli_runopts());
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  ses.remoteident = "SSH-2.0-peer";
  ses.algos = algo_tables_new();
  kexfirstinitialise(ses);
  send_msg_kexinit(ses);
  while (!isempty(ses.writequeue)) dequeue(ses.writequeue);
  return ses;
}

/** Hand a payload to a handler as process_packet does (first packet: recvseq 1). */
function deliver<S extends sshsession>(ses: S, payload: Buffer, handler: (ses: S) => void, recvseq = 1): void {
  const b = buf_new(payload.length);
  buf_putbytes(b, payload);
  buf_setpos(b, 1);
  ses.payload = b;
  ses.payload_beginning = 0;
  ses.recvseq = recvseq;
  try {
    handler(ses);
  } finally {
    ses.payload = null;
  }
}

function exitOf(fn: () => void): string {
  return cleanly(fn)?.exitmsg ?? "(no exit)";
}

const nameOf = (table: readonly { name: string; data: unknown }[], data: unknown): string | undefined => table.find((a) => a.data === data)?.name;

describe("recv_msg_kexinit: negotiation", () => {
  it("takes the client's first choice the server also has, on either side", () => {
    const svr = kexSession(true);
    deliver(svr, kexinitPayload({ kex: "ecdh-sha2-nistp256,curve25519-sha256" }), recv_msg_kexinit);
    expect(nameOf(sshkex, svr.newkeys!.algo_kex)).toBe("ecdh-sha2-nistp256");
    const cli = kexSession(false);
    // Our client prefers curve25519 over nistp256 whatever order the server lists them in.
    deliver(cli, kexinitPayload({ kex: "ecdh-sha2-nistp256,curve25519-sha256" }), recv_msg_kexinit);
    expect(nameOf(sshkex, cli.newkeys!.algo_kex)).toBe("curve25519-sha256");
    expect(cli.newkeys!.algo_signature).toBe(DROPBEAR_SIGNATURE_ED25519);
    expect(cli.newkeys!.algo_hostkey).toBe(DROPBEAR_SIGNKEY_ED25519);
  });

  it("starts the exchange hash with V_C, V_S, I_C, I_S in that order", () => {
    const peer = kexinitPayload();
    const svr = kexSession(true);
    const ours = Buffer.from(svr.transkexinit!.data.subarray(0, svr.transkexinit!.len));
    deliver(svr, peer, recv_msg_kexinit);
    const h = svr.kexhashbuf!;
    const want = Buffer.concat([sshString("SSH-2.0-peer"), sshString(LOCAL_IDENT), sshString(peer), sshString(ours)]);
    expect(Buffer.from(h.data.subarray(0, h.len))).toEqual(want);
    const cli = kexSession(false);
    const cliOurs = Buffer.from(cli.transkexinit!.data.subarray(0, cli.transkexinit!.len));
    deliver(cli, peer, recv_msg_kexinit);
    const ch = cli.kexhashbuf!;
    expect(Buffer.from(ch.data.subarray(0, ch.len))).toEqual(Buffer.concat([sshString(LOCAL_IDENT), sshString("SSH-2.0-peer"), sshString(cliOurs), sshString(peer)]));
  });

  it("names what failed to match", () => {
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload({ kex: "diffie-hellman-group1-sha1" }), recv_msg_kexinit))).toBe("No matching algo kex");
    // The markers alone are no kex method.
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload({ kex: "ext-info-c,kex-strict-c-v00@openssh.com" }), recv_msg_kexinit))).toBe("No matching algo kex");
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload({ hostkey: "ssh-dss" }), recv_msg_kexinit))).toBe("No matching algo hostkey");
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload({ enc: ["3des-cbc", "aes128-ctr"] }), recv_msg_kexinit))).toBe("No matching algo enc c->s");
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload({ enc: ["aes128-ctr", "3des-cbc"] }), recv_msg_kexinit))).toBe("No matching algo enc s->c");
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload({ mac: ["hmac-md5", "hmac-sha2-256"] }), recv_msg_kexinit))).toBe("No matching algo mac c->s");
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload({ comp: ["zlib", "none"] }), recv_msg_kexinit))).toBe("No matching algo comp c->s");
  });

  it("an AEAD cipher needs no MAC match", () => {
    const svr = kexSession(true);
    deliver(svr, kexinitPayload({ enc: ["chacha20-poly1305@openssh.com", "chacha20-poly1305@openssh.com"], mac: ["hmac-md5", "hmac-md5"] }), recv_msg_kexinit);
    expect(svr.newkeys!.recv.crypt_mode.kind).toBe("aead");
  });

  it("ext-info-c lets the server send EXT_INFO; the client does not look for it", () => {
    const svr = kexSession(true);
    deliver(svr, kexinitPayload(), recv_msg_kexinit);
    expect(svr.allow_ext_info).toBe(true);
    const svr2 = kexSession(true);
    deliver(svr2, kexinitPayload({ kex: "curve25519-sha256" }), recv_msg_kexinit);
    expect(svr2.allow_ext_info).toBe(false);
    const cli = kexSession(false);
    deliver(cli, kexinitPayload(), recv_msg_kexinit);
    expect(cli.allow_ext_info).toBe(false);
  });

  it("strict kex: on when the peer's marker is there, and the KEXINIT must be its first packet", () => {
    const svr = kexSession(true);
    deliver(svr, kexinitPayload(), recv_msg_kexinit);
    expect(svr.kexstate.strict_kex).toBe(true);
    const cli = kexSession(false);
    // The client looks for the server's marker, not its own.
    deliver(cli, kexinitPayload(), recv_msg_kexinit);
    expect(cli.kexstate.strict_kex).toBe(false);
    const cli2 = kexSession(false);
    deliver(cli2, kexinitPayload({ kex: "curve25519-sha256,kex-strict-s-v00@openssh.com" }), recv_msg_kexinit);
    expect(cli2.kexstate.strict_kex).toBe(true);
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload(), recv_msg_kexinit, 2))).toBe("First packet wasn't kexinit");
    // Without strict kex an earlier packet is fine.
    expect(exitOf(() => deliver(kexSession(true), kexinitPayload({ kex: "curve25519-sha256" }), recv_msg_kexinit, 2))).toBe("(no exit)");
  });

  it("a second KEXINIT in one exchange ends the session", () => {
    const svr = kexSession(true);
    deliver(svr, kexinitPayload(), recv_msg_kexinit);
    expect(exitOf(() => deliver(svr, kexinitPayload(), recv_msg_kexinit))).toBe("Unexpected KEXINIT");
  });

  it("first_kex_packet_follows: a wrong guess's packet is ignored, a right one is not", () => {
    const wrong = kexSession(true);
    deliver(wrong, kexinitPayload({ kex: "ecdh-sha2-nistp256,curve25519-sha256" }, 1), recv_msg_kexinit);
    expect(wrong.kexstate.them_firstfollows).toBe(true);
    expect(wrong.ignorenext).toBe(true);
    const right = kexSession(true);
    deliver(right, kexinitPayload({ kex: `${sshkex[0]!.name},curve25519-sha256` }, 1), recv_msg_kexinit);
    expect(right.ignorenext).toBe(false);
    // kexguess2: only the first kex and host key algorithms must match ours.
    const g2 = kexSession(true);
    deliver(g2, kexinitPayload({ kex: "curve25519-sha256,kexguess2@matt.ucc.asn.au" }, 1), recv_msg_kexinit);
    expect(g2.ignorenext).toBe(false);
  });

  it("first_kex_packet_follows: a wrong guess's packet of another kex (a group exchange request) is ignored, not answered, and the real KEXDH_INIT is not", () => {
    const svr = kexSession(true);
    deliver(svr, kexinitPayload({ kex: "diffie-hellman-group-exchange-sha256,curve25519-sha256" }, 1), recv_msg_kexinit);
    const sent = svr.transseq;
    // SSH_MSG_KEX_DH_GEX_REQUEST (34), the guessed kex's first packet.
    const gexRequest = buf_new(13);
    buf_putbytes(gexRequest, Buffer.concat([Buffer.of(34), u32(2048), u32(3072), u32(8192)]));
    buf_setpos(gexRequest, 0);
    svr.payload = gexRequest;
    process_packet(svr);
    // No UNIMPLEMENTED sent, and the real KEXDH_INIT will be taken.
    expect(svr.transseq).toBe(sent);
    expect(svr.ignorenext).toBe(false);
    expect(svr.requirenext).toBe(30);
  });

  it("a truncated KEXINIT ends the session cleanly", () => {
    const full = kexinitPayload();
    for (const cut of [1, 17, 30, full.length - 5, full.length - 1]) {
      expect(exitOf(() => deliver(kexSession(true), full.subarray(0, cut), recv_msg_kexinit))).not.toBe("(no exit)");
    }
  });
});

describe("KEXDH_INIT", () => {
  it("before KEXINIT, or with bytes after the value, ends the session", () => {
    expect(exitOf(() => deliver(kexSession(true), Buffer.concat([Buffer.of(30), sshString(Buffer.alloc(32, 9))]), recv_msg_kexdh_init))).toBe("Premature kexdh_init message received");
    const svr = kexSession(true);
    svr.svr_ses.svr_opts.hostkey = hostkey;
    deliver(svr, kexinitPayload(), recv_msg_kexinit);
    expect(exitOf(() => deliver(svr, Buffer.concat([Buffer.of(30), sshString(Buffer.alloc(32, 9)), Buffer.of(0)]), recv_msg_kexdh_init))).toBe("Bad kex value");
  });

  it("refuses a curve25519 value of the wrong length or a low-order point", () => {
    for (const q of [Buffer.alloc(31, 9), Buffer.alloc(33, 9), Buffer.alloc(32, 0)]) {
      const svr = kexSession(true);
      svr.svr_ses.svr_opts.hostkey = hostkey;
      deliver(svr, kexinitPayload(), recv_msg_kexinit);
      expect(exitOf(() => deliver(svr, Buffer.concat([Buffer.of(30), sshString(q)]), recv_msg_kexdh_init))).toMatch(/curve25519/);
    }
  });
});

/** mpint as RFC 4251 §5 writes it, for a non-negative value. */
function mpint(v: bigint): Buffer {
  if (v === 0n) return u32(0);
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, "hex");
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.of(0), b]);
  return Buffer.concat([u32(b.length), b]);
}

/** A server session mid-exchange, its hash buffer holding `prefix`. */
function midKex(kex: dropbear_kex, prefix: Buffer): SvrSession {
  const ses = new SvrSession(new runopts(), new svr_runopts());
  ses.newkeys = new key_context();
  ses.newkeys.algo_kex = kex;
  ses.newkeys.algo_hostkey = DROPBEAR_SIGNKEY_ED25519;
  ses.kexhashbuf = buf_new(4096);
  buf_putbytes(ses.kexhashbuf, prefix);
  return ses;
}

/** K_S as an SSH string (buf_put_pub_key writes the length too). */
function pubBlob(): Buffer {
  const b = buf_new(200);
  buf_put_pub_key(b, hostkey, DROPBEAR_SIGNKEY_ED25519);
  return Buffer.from(b.data.subarray(0, b.len));
}

describe("the exchange hash from known values", () => {
  it("curve25519 (RFC 7748 §6.1's key pairs): K is the published shared secret, H = SHA-256 over K_S, Q_C, Q_S, K", () => {
    const hex = (s: string) => Buffer.from(s, "hex");
    const alicePub = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const bobPriv = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    const bobPub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    const shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    const prefix = Buffer.from("V_C V_S I_C I_S");
    const ses = midKex(kex_curve25519, prefix);
    const them = buf_new(32);
    buf_putbytes(them, alicePub);
    kexcurve25519_comb_key(ses, { priv: Buffer.from(bobPriv), pub: bobPub }, them, hostkey);
    // RFC 8731 §3.1: K is the shared secret's bytes read as a big-endian number.
    expect(ses.dh_K).toBe(bytes_to_mp(shared));
    const H = createHash("sha256").update(Buffer.concat([prefix, pubBlob(), sshString(alicePub), sshString(bobPub), mpint(bytes_to_mp(shared))])).digest();
    expect(ses.hash).toEqual(H);
    expect(ses.session_id).toEqual(H);
    expect(ses.kexhashbuf).toBeNull();
  });

  it("diffie-hellman-group14: K = e^y mod p and H over K_S, e, f, K; the peer's value must lie in [2, p-2]", () => {
    const p = bytes_to_mp(dh_p_14);
    const prefix = Buffer.from("prefix");
    const ses = midKex(kex_dh_group14_sha256, prefix);
    // Server private 3, public 2^3; the client's e = 5.
    kexdh_comb_key(ses, { priv: 3n, pub: 8n }, 5n, hostkey);
    expect(ses.dh_K).toBe(125n);
    const H = createHash("sha256").update(Buffer.concat([prefix, pubBlob(), mpint(5n), mpint(8n), mpint(125n)])).digest();
    expect(ses.hash).toEqual(H);
    for (const bad of [0n, 1n, p - 1n, p, p + 5n]) {
      expect(exitOf(() => kexdh_comb_key(midKex(kex_dh_group14_sha256, prefix), { priv: 3n, pub: 8n }, bad, hostkey))).toBe("Diffie-Hellman error");
    }
  });
});

describe("the spare connection process's warm-up steps", () => {
  it("run every usable kex, cipher, MAC and host key once without touching a session", () => {
    const algos = algo_tables_new();
    // As load_all_hostkeys leaves them: no host key signs with a security key.
    for (const a of algos.sigalgs) if (a.name.startsWith("sk-")) a.usable = false;
    const svr_opts = new svr_runopts();
    svr_opts.hostkey = hostkey;
    const steps = svrKexWarmUpSteps(svr_opts, algos);
    for (const step of steps) step();
    // The host key steps: ssh-ed25519 only, the one key loaded.
    expect(steps.length - kexWarmUpSteps(algos).length).toBe(1);
  });

  it("warm each KEM, and X25519 with each exchange hash, once however many names run them", () => {
    const algos = algo_tables_new();
    const usableKex = (names: string[]): void => {
      for (const a of algos.sshkex) a.usable = names.includes(a.name);
    };
    // sntrup761 and X25519 with SHA-512, under either name: two steps, then the cipher step.
    usableKex(["sntrup761x25519-sha512"]);
    expect(kexWarmUpSteps(algos)).toHaveLength(3);
    usableKex(["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"]);
    expect(kexWarmUpSteps(algos)).toHaveLength(3);
    // ML-KEM with SHA-256, and the curve25519-sha256 pair: its X25519 with SHA-256 is warmed already.
    usableKex(["mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org"]);
    expect(kexWarmUpSteps(algos)).toHaveLength(3);
    usableKex(["curve25519-sha256", "curve25519-sha256@libssh.org"]);
    expect(kexWarmUpSteps(algos)).toHaveLength(2);
  });

  it("skip what the tables say is not usable, and host keys not loaded (-R)", () => {
    const algos = algo_tables_new();
    for (const a of [...algos.sshkex, ...algos.sshciphers, ...algos.sshhashes, ...algos.sigalgs]) a.usable = false;
    // Only the (empty) cipher and MAC step is left.
    expect(svrKexWarmUpSteps(new svr_runopts(), algos)).toHaveLength(1);
  });
});
