import { afterEach, describe, expect, it } from "vitest";
import { DROPBEAR_COMP_ZLIB, DROPBEAR_COMP_ZLIB_DELAY } from "@dropbear-ts/core";
import { fullKex, kexPair, only, pump, sendTest, type KexPair } from "./harness.js";

// A compressing direction's zlib stream is not made at NEWKEYS (loading the zlib code there
// delayed a server's KEXDH_REPLY by 9-12 ms): idle work makes it while the loop waits for the
// peer, or its first packet does.

const pairs: KexPair[] = [];
afterEach(() => {
  while (pairs.length) pairs.pop()!.close();
});

async function compressingPair(method: string): Promise<KexPair> {
  const k = await kexPair({
    setup: (cli, svr) => {
      cli.opts.compression = true;
      svr.opts.compression = true;
      // Client to server stays "none": the server never offers to inflate.
      only(cli.algos.ssh_compress, [method, "none"]);
    },
  });
  pairs.push(k);
  await fullKex(k);
  return k;
}

describe("zlib streams after NEWKEYS", () => {
  it("zlib@openssh.com: the new keys carry no stream yet; the server's idle work makes it", async () => {
    const k = await compressingPair("zlib@openssh.com");
    const trans = k.svr.keys.trans;
    expect(trans.algo_comp).toBe(DROPBEAR_COMP_ZLIB_DELAY);
    expect(trans.zstream).toBeNull();
    expect(k.svr.idle_work.length).toBeGreaterThanOrEqual(2);
    while (k.svr.idle_work.length > 0) k.svr.idle_work.shift()!();
    expect(trans.zstream).not.toBeNull();
    // The client's receiving side: the same steps, its warm-up inflating as well.
    expect(k.cli.keys.recv.zstream).toBeNull();
    while (k.cli.idle_work.length > 0) k.cli.idle_work.shift()!();
    expect(k.cli.keys.recv.zstream).not.toBeNull();
    // Once auth is done the streams carry data; the warm-up's own streams touched neither.
    k.svr.authstate.authdone = true;
    k.cli.authstate.authdone = true;
    const body = Buffer.alloc(2000, "after auth ");
    sendTest(k.svr, body);
    await pump(k, () => k.got.get(k.cli)!.length === 1);
    expect(k.got.get(k.cli)![0]!.subarray(1)).toEqual(body);
  });

  it("zlib: with the idle work not run, the first packets after NEWKEYS make both ends' streams and arrive intact", async () => {
    const k = await compressingPair("zlib");
    expect(k.svr.keys.trans.algo_comp).toBe(DROPBEAR_COMP_ZLIB);
    expect(k.cli.keys.recv.algo_comp).toBe(DROPBEAR_COMP_ZLIB);
    const bodies = [Buffer.alloc(3000, "compress me "), Buffer.from("and once more")];
    for (const b of bodies) sendTest(k.svr, b);
    await pump(k, () => k.got.get(k.cli)!.length === bodies.length);
    expect(k.got.get(k.cli)!.map((p) => p.subarray(1).toString())).toEqual(bodies.map((b) => b.toString()));
    expect(k.svr.keys.trans.zstream).not.toBeNull();
    expect(k.cli.keys.recv.zstream).not.toBeNull();
  });
});
