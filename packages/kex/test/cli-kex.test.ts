import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fileLines } from "@dropbear-ts/buffer";
import { MAX_KNOWNHOSTS_LINE, knownHostsFieldMatches, knownHostsKeys, knownHostsName } from "../src/cli-kex.js";
import { send_msg_kexinit } from "../src/index.js";
import { fullKex, kexPair, pump, type KexPair } from "./harness.js";

// known_hosts as OpenSSH writes it (issue 9): hashed names, [host]:port, pattern lists,
// markers; Dropbear's bare-host entries still count for other ports when nothing else does.

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

describe("known_hosts names", () => {
  it("port 22 is the bare host, any other [host]:port", () => {
    expect(knownHostsName("example.org", "22")).toBe("example.org");
    expect(knownHostsName("127.0.0.1", "2222")).toBe("[127.0.0.1]:2222");
    expect(knownHostsName("::1", "2222")).toBe("[::1]:2222");
    // A service name given to -p is filed as its port, as OpenSSH files it.
    expect(knownHostsName("example.org", "ssh")).toBe("example.org");
    expect(knownHostsName("127.0.0.1", "postgresql")).toBe("[127.0.0.1]:5432");
  });

  it("hashed fields match only their own name", () => {
    const f = hashed("[127.0.0.1]:2222");
    expect(knownHostsFieldMatches(f, "[127.0.0.1]:2222")).toBe(true);
    expect(knownHostsFieldMatches(f, "127.0.0.1")).toBe(false);
    expect(knownHostsFieldMatches(f, "[127.0.0.1]:2223")).toBe(false);
    // Malformed hashes never match (and never throw).
    expect(knownHostsFieldMatches("|1|AAAA|BBBB", "x")).toBe(false);
    expect(knownHostsFieldMatches("|2|" + f.slice(3), "[127.0.0.1]:2222")).toBe(false);
    expect(knownHostsFieldMatches("|1|", "x")).toBe(false);
  });

  it("pattern lists: commas, wildcards, negation, case-insensitive", () => {
    expect(knownHostsFieldMatches("a.example,b.example", "b.example")).toBe(true);
    expect(knownHostsFieldMatches("*.example,!bad.example", "good.example")).toBe(true);
    expect(knownHostsFieldMatches("*.example,!bad.example", "bad.example")).toBe(false);
    expect(knownHostsFieldMatches("[127.0.0.1]:2222", "[127.0.0.1]:2222")).toBe(true);
    expect(knownHostsFieldMatches("[127.0.0.1]:2222", "127.0.0.1")).toBe(false);
    expect(knownHostsFieldMatches("Host.Example", "host.example")).toBe(true);
  });
});

describe("known_hosts keys for a host", () => {
  const file = [
    "# comment",
    "",
    `${hashed("[127.0.0.1]:2222")} ssh-ed25519 AAAAkey1 comment words`,
    "other,127.0.0.1\tecdsa-sha2-nistp256  AAAAkey2",
    "@revoked * ssh-rsa AAAAkey3",
    "@cert-authority *.example ssh-ed25519 AAAAca",
    "@unknown 127.0.0.1 ssh-ed25519 AAAAx",
    "127.0.0.1 ssh-ed25519",
    "[127.0.0.1]:3333 ssh-rsa AAAAkey4\r",
  ].join("\n").split("\n");

  it("port 22: bare and pattern entries, revoked keys marked, other markers and short lines skipped", () => {
    expect(knownHostsKeys(file, "127.0.0.1", "22")).toEqual([
      { revoked: false, algoname: "ecdsa-sha2-nistp256", base64: "AAAAkey2" },
      { revoked: true, algoname: "ssh-rsa", base64: "AAAAkey3" },
    ]);
  });

  it("another port: its [host]:port entries (hashed too), not the bare host's", () => {
    expect(knownHostsKeys(file, "127.0.0.1", "2222")).toEqual([
      { revoked: false, algoname: "ssh-ed25519", base64: "AAAAkey1" },
      { revoked: true, algoname: "ssh-rsa", base64: "AAAAkey3" },
    ]);
    expect(knownHostsKeys(file, "127.0.0.1", "3333").map((k) => k.base64)).toEqual(["AAAAkey3", "AAAAkey4"]);
  });

  it("another port with no entry of its own: the bare host's (Dropbear files every port so)", () => {
    expect(knownHostsKeys(file, "127.0.0.1", "4444").map((k) => k.base64)).toEqual(["AAAAkey3", "AAAAkey2", "AAAAkey3"]);
    expect(knownHostsKeys(file, "10.0.0.1", "4444").map((k) => k.base64)).toEqual(["AAAAkey3", "AAAAkey3"]);
  });

  it("a name that is not ASCII matches its own line as written (UTF-8 bytes), plain or hashed, lower-cased in ASCII only", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-known-"));
    try {
      const f = join(dir, "known_hosts");
      const salt = randomBytes(20);
      const hashedCafe = `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(Buffer.from("[café]:2222")).digest("base64")}`;
      writeFileSync(f, `café ssh-ed25519 AAAAkey1\n${hashedCafe} ssh-ed25519 AAAAkey2\nCAFÉ ssh-ed25519 AAAAkey3\n`);
      const keys = (host: string, port: string): string[] => knownHostsKeys(fileLines(f, MAX_KNOWNHOSTS_LINE), host, port).map((k) => k.base64);
      expect(keys("café", "22")).toEqual(["AAAAkey1"]);
      expect(keys("Café", "22")).toEqual(["AAAAkey1"]);
      expect(keys("café", "2222")).toEqual(["AAAAkey2"]);
      // "É" is not "é": only ASCII letters fold, as OpenSSH's tolower() in the C locale.
      expect(keys("CAFÉ", "22")).toEqual(["AAAAkey3"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("read from a file as Dropbear reads it: a line over MAX_KNOWNHOSTS_LINE is skipped, one of 10000 bytes ends the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-known-"));
    try {
      const f = join(dir, "known_hosts");
      const entry = (key: string): string => `127.0.0.1 ssh-ed25519 ${key}\n`;
      writeFileSync(f, entry("A".repeat(5000)) + entry("AAAAkey1") + "x".repeat(10000) + "\n" + entry("AAAAkey2"));
      expect(knownHostsKeys(fileLines(f, MAX_KNOWNHOSTS_LINE), "127.0.0.1", "22").map((k) => k.base64)).toEqual(["AAAAkey1"]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe("a library caller's host key check (cli_ses.verify_hostkey)", () => {
  const open: { close: () => void }[] = [];
  afterEach(() => {
    while (open.length) open.pop()!.close();
  });

  async function kexWith(verify: (blob: Buffer, algo: string, fp: string) => boolean | Promise<boolean>): Promise<{ seen: string[]; k: KexPair }> {
    const seen: string[] = [];
    const k = await kexPair({
      setup: (cli) => {
        cli.cli_ses.cli_opts.no_hostkey_check = false;
        cli.cli_ses.verify_hostkey = (blob, algo, fp) => {
          seen.push(`${algo} ${fp} ${blob.length}`);
          return verify(blob, algo, fp);
        };
      },
    });
    open.push(k);
    return { seen, k };
  }

  it("is asked once, with the key's blob, algorithm and fingerprint; yes lets the kex finish", async () => {
    const { seen, k } = await kexWith(() => true);
    await fullKex(k);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^ssh-ed25519 SHA256:\S+ 51$/);
    expect(k.cli.session_id).toEqual(k.svr.session_id);
  });

  it("no ends the session before our NEWKEYS is sent", async () => {
    const { k } = await kexWith(() => false);
    await expect(fullKex(k)).rejects.toThrow("Host key not accepted");
    expect(k.svr.kexstate.recvnewkeys).toBe(false);
  });

  it("a later answer is left for the loop to await (NEWKEYS waits in the queue)", async () => {
    let answer!: (ok: boolean) => void;
    const { k } = await kexWith(() => new Promise<boolean>((r) => (answer = r)));
    send_msg_kexinit(k.cli);
    send_msg_kexinit(k.svr);
    await pump(k, () => k.cli.awaitAfterPacket !== null);
    const waiting = k.cli.awaitAfterPacket!;
    answer(false);
    await expect(waiting).rejects.toThrow("Host key not accepted");
  });
});
