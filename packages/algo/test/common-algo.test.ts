import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { MAC_MODE_ETM } from "@dropbear-ts/core";
import { algo_tables_new, buf_match_algo, sshciphers, sshhashes } from "../src/common-algo.js";
import { buf_new, buf_putstring, buf_setpos } from "@dropbear-ts/buffer";

describe("common-algo.c tables", () => {
  it("lists the ciphers in Dropbear's order with its key and block sizes", () => {
    const table = sshciphers.map((a) => [a.name, a.data.keysize, a.data.blocksize, a.mode.kind === "aead"]);
    expect(table).toEqual([
      ["chacha20-poly1305@openssh.com", 64, 8, true],
      ["aes256-gcm@openssh.com", 32, 16, true],
      ["aes128-gcm@openssh.com", 16, 16, true],
      ["aes256-ctr", 32, 16, false],
      ["aes128-ctr", 16, 16, false],
    ]);
  });

  it("lists the MACs, the -etm variants as the same primitive with the etm mark, and no SHA-1", () => {
    expect(sshhashes.map((m) => [m.name, m.data.hashsize, m.mode === MAC_MODE_ETM])).toEqual([
      ["hmac-sha2-256", 32, false],
      ["hmac-sha2-512", 64, false],
      ["hmac-sha2-256-etm@openssh.com", 32, true],
      ["hmac-sha2-512-etm@openssh.com", 64, true],
    ]);
    expect(sshhashes.some((m) => m.name.startsWith("hmac-sha1"))).toBe(false);
  });

  it("buf_match_algo picks the client's first choice the server also has", () => {
    const t = algo_tables_new();
    const list = (s: string) => {
      const b = buf_new(4 + s.length);
      buf_putstring(b, s);
      buf_setpos(b, 0);
      return b;
    };
    // Server side: the remote list is the client's preference.
    expect(buf_match_algo(list("nonesuch,aes128-ctr,aes256-ctr"), t.sshciphers, true, false).algo?.name).toBe("aes128-ctr");
    // Client side: our order wins.
    expect(buf_match_algo(list("aes128-ctr,aes256-ctr"), t.sshciphers, false, false).algo?.name).toBe("aes256-ctr");
    expect(buf_match_algo(list("nonesuch"), t.sshciphers, true, false).algo).toBeNull();
  });
});

describe("the post-quantum KEMs and WebAssembly", () => {
  it("offers sntrup761 and ML-KEM first where Node has WebAssembly, and leaves them out where it has none (--jitless)", () => {
    const dist = new URL("../dist/common-algo.js", import.meta.url).href;
    const script = `import(${JSON.stringify(dist)}).then((m) => console.log(m.sshkex.filter((a) => a.usable && a.data).map((a) => a.name).slice(0, 3).join(",")))`;
    const names = (flags: string[]) => spawnSync(process.execPath, [...flags, "-e", script], { encoding: "utf8" }).stdout.trim();
    expect(names([])).toBe("sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,mlkem768x25519-sha256");
    expect(names(["--jitless"])).toBe("curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp521");
  });
});
