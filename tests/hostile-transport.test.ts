import { randomBytes } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { PEERS, PYTHON, itPyCryptography, itWithPeers } from "./helpers/peers.js";
import { run, scratch, startOurDropbearWithHostKeys, useOurDropbear } from "./helpers/servers.js";
import { clearAnswers, kexinit, packet, sshString, u32, x25519Share } from "./helpers/wire.js";

// Issue 3: malformed transport input ends that connection with a clear log line; the server
// goes on serving. Packets before the first NEWKEYS travel in clear, so a raw socket can speak.

const ours = useOurDropbear("dbts-hostile-");

/**
 * Connect, send our ident and then `frames` (written one by one), and wait for the server to
 * close the connection. Returns what the server logged for that connection.
 */
async function hostile(frames: Buffer[], ident = "SSH-2.0-hostile_1.0\r\n"): Promise<string> {
  const before = ours.server.log().length;
  const sock = net.connect(ours.server.port, "127.0.0.1");
  sock.on("error", () => undefined);
  sock.on("data", () => undefined);
  await once(sock, "connect");
  sock.write(ident);
  for (const f of frames) sock.write(f);
  const closed = once(sock, "close");
  const timer = setTimeout(() => sock.destroy(), 15_000);
  await closed;
  clearTimeout(timer);
  // The child logs its exit just before it goes.
  await expect.poll(() => ours.server.log().slice(before), { timeout: 5000 }).toMatch(/Exit before auth/);
  return ours.server.log().slice(before);
}

/** The server's clear packet types after our ident and `frames`, up to `until` (at most 10 s). */
function answered(frames: Buffer[], until: number): Promise<number[]> {
  return clearAnswers(ours.server.port, "SSH-2.0-hostile_1.0", frames, until, 10_000);
}

const ignore = packet(Buffer.concat([Buffer.of(2), sshString("x")]));

/** The listener still serves: a real client completes kex and reaches userauth. */
async function stillServing(): Promise<void> {
  const r = await run(
    PEERS.ssh,
    ["-v", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=none", "-p", String(ours.server.port), "nobody@127.0.0.1", "true"],
    { timeoutMs: 20_000 },
  );
  expect(r.stderr).toMatch(/SSH2_MSG_SERVICE_ACCEPT received/);
}

describe("hostile transport input", () => {
  it("a version line that is not SSH-2 is refused", async () => {
    const log = await hostile([], "SSH-1.5-ancient\r\n");
    expect(log).toMatch(/Incompatible remote version 'SSH-1\.5-ancient'/);
  });

  it("a long refused version line is cut in the log as C's buffers cut it (a reason of 149 bytes)", async () => {
    const log = await hostile([], `SSH-1.5-${"x".repeat(500)}\r\n`);
    const line = /Exit before auth from <[^>]*>: (.*)$/m.exec(log);
    expect(line, log).not.toBeNull();
    expect(line![1]).toBe(`Incompatible remote version 'SSH-1.5-${"x".repeat(149 - "Incompatible remote version 'SSH-1.5-".length)}`);
  });

  it("a packet length over the limit", async () => {
    const log = await hostile([Buffer.concat([u32(0x7fffffff), Buffer.alloc(4)])]);
    expect(log).toMatch(/Integrity error \(bad packet size \d+\)/);
  });

  it("a packet length that is not a multiple of the block size", async () => {
    const log = await hostile([Buffer.concat([u32(13), Buffer.alloc(13)])]);
    expect(log).toMatch(/Integrity error \(bad packet size 17\)/);
  });

  it("padding longer than the packet", async () => {
    const body = Buffer.concat([Buffer.of(200), Buffer.of(20), Buffer.alloc(10)]);
    const log = await hostile([Buffer.concat([u32(body.length), body])]);
    // 16 - 200 - 5 as C's unsigned int prints it.
    expect(log).toMatch(/Bad packet size 4294967107\b/);
  });

  it("a non-transport message before the key exchange", async () => {
    const log = await hostile([packet(Buffer.concat([Buffer.of(50), sshString("root"), sshString("ssh-connection"), sshString("none")]))]);
    expect(log).toMatch(/Unexpected packet type 50, expected 20/);
  });

  it("strict kex: any packet before KEXINIT ends it (Terrapin)", async () => {
    const log = await hostile([packet(Buffer.concat([Buffer.of(2), sshString("x")])), packet(kexinit("curve25519-sha256"))]);
    expect(log).toMatch(/First packet wasn't kexinit/);
  });

  it("without strict kex, IGNORE, DEBUG and UNIMPLEMENTED before and during the exchange are passed over (RFC 4253 §11)", async () => {
    const debug = packet(Buffer.concat([Buffer.of(4), Buffer.of(0), sshString("d"), sshString("")]));
    const unimplemented = packet(Buffer.concat([Buffer.of(3), u32(0)]));
    const types = await answered([ignore, packet(kexinit("curve25519-sha256", false)), ignore, debug, unimplemented, x25519Share(), ignore], 21);
    expect(types).toEqual([20, 31, 21]);
  });

  it("strict kex: an IGNORE between KEXINIT and KEXDH_INIT ends it (Terrapin)", async () => {
    const log = await hostile([packet(kexinit("curve25519-sha256")), ignore, x25519Share()]);
    expect(log).toMatch(/Unexpected packet type 2, expected 30/);
  });

  it("strict kex: a second KEXINIT during the exchange", async () => {
    const log = await hostile([packet(kexinit("curve25519-sha256")), packet(kexinit("curve25519-sha256"))]);
    expect(log).toMatch(/Unexpected packet type 20, expected 30/);
  });

  it("no algorithm in common", async () => {
    const log = await hostile([packet(kexinit("diffie-hellman-group1-sha1", false))]);
    expect(log).toMatch(/No matching algo kex/);
  });

  it("curve25519: a low-order (all-zero) public value", async () => {
    const log = await hostile([packet(kexinit("curve25519-sha256")), packet(Buffer.concat([Buffer.of(30), sshString(Buffer.alloc(32))]))]);
    expect(log).toMatch(/Bad curve25519/);
  });

  it("curve25519: a public value of the wrong length", async () => {
    const log = await hostile([packet(kexinit("curve25519-sha256")), packet(Buffer.concat([Buffer.of(30), sshString(Buffer.alloc(31, 9))]))]);
    expect(log).toMatch(/Bad curve25519/);
  });

  it("ecdh-sha2-nistp256: a point not on the curve", async () => {
    const point = Buffer.concat([Buffer.of(4), randomBytes(64)]);
    const log = await hostile([packet(kexinit("ecdh-sha2-nistp256")), packet(Buffer.concat([Buffer.of(30), sshString(point)]))]);
    expect(log).toMatch(/ECC error/);
  });

  it("diffie-hellman-group14-sha256: e = 1 and e = p-1 are out of range", async () => {
    for (const e of [Buffer.of(1), Buffer.concat([Buffer.of(0), Buffer.alloc(256, 0xff)])]) {
      const log = await hostile([packet(kexinit("diffie-hellman-group14-sha256")), packet(Buffer.concat([Buffer.of(30), sshString(e)]))]);
      expect(log).toMatch(/Diffie-Hellman error/);
    }
  });

  it("mlkem768x25519: a client share of the wrong size", async () => {
    const log = await hostile([packet(kexinit("mlkem768x25519-sha256")), packet(Buffer.concat([Buffer.of(30), sshString(randomBytes(100))]))]);
    expect(log).toMatch(/Bad buf_getptr|Bad sntrup|Bad buf_incrpos/);
  });

  it("sntrup761x25519: a client share one byte short or long", async () => {
    const share = (n: number): Buffer => packet(Buffer.concat([Buffer.of(30), sshString(randomBytes(n))]));
    expect(await hostile([packet(kexinit("sntrup761x25519-sha512")), share(1158 + 32 - 1)])).toMatch(/Bad buf_getptr/);
    expect(await hostile([packet(kexinit("sntrup761x25519-sha512")), share(1158 + 32 + 1)])).toMatch(/Bad sntrup/);
  });

  it("name-lists are read as Dropbear reads them: names over 64 characters are passed over, a 51st name ends it", async () => {
    // 40 names of 100 characters (over C's intended limit of 50 * 65 bytes, which it never applies).
    const long = Array.from({ length: 40 }, (_, i) => `${i}`.padEnd(100, "x")).join(",");
    expect(await answered([packet(kexinit(`${long},curve25519-sha256`, false)), x25519Share()], 31)).toEqual([20, 31]);
    const many = Array.from({ length: 50 }, (_, i) => `k${i}`).join(",");
    expect(await hostile([packet(kexinit(`${many},curve25519-sha256`, false))])).toMatch(/Too many remote algorithms/);
  });

  it("truncated KEXINIT fields", async () => {
    const log = await hostile([packet(Buffer.concat([Buffer.of(20), randomBytes(16), u32(1000), Buffer.from("curve")]))]);
    expect(log).toMatch(/Bad buf_getptr|String too long/);
  });

  itWithPeers(["ssh"], "after all of that the server still serves", async () => {
    await stillServing();
  });
});

describe("a key re-exchange (tests/helpers/transport-peer.py)", () => {
  const PEER = fileURLToPath(new URL("./helpers/transport-peer.py", import.meta.url));

  itPyCryptography("offers only the host key type of the first exchange, as Dropbear 2026.94 does (-R cannot make a key once the session is the user's)", async () => {
    const work = scratch("dbts-rekeyhk-");
    const { server } = await startOurDropbearWithHostKeys(work.dir, ["ed25519", "ecdsa"]);
    try {
      const peer = async (algos: string): Promise<{ first: string; rekey?: string; next: number | string }> => {
        const r = await run(PYTHON, [PEER, String(server.port), "rekey-hostkeys", algos], { timeoutMs: 20_000 });
        expect(r.status, r.stderr).toBe(0);
        return JSON.parse(r.stdout) as { first: string; rekey?: string; next: number | string };
      };
      const same = await peer("ecdsa-sha2-nistp256,ssh-ed25519");
      expect(same.first).toMatch(/^ssh-ed25519,ecdsa-sha2-nistp256/);
      expect(same).toMatchObject({ rekey: "ssh-ed25519", next: 31 });
      const before = server.log().length;
      expect(await peer("ecdsa-sha2-nistp256")).toMatchObject({ next: "closed" });
      await expect.poll(() => server.log().slice(before), { timeout: 5000 }).toMatch(/Exit before auth from <[^>]*>: No matching algo hostkey/);
    } finally {
      await server.stop();
      work.cleanup();
    }
  });
});
