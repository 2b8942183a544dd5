// Interop with Debian's real tools, by absolute path: keys made by dropbearkey and ssh-keygen
// must read here, and the files we write must read there.
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect } from "vitest";
import { type LogHandler, setLogHandler } from "@dropbear-ts/dbutil";
import { buf_new, buf_setpos } from "@dropbear-ts/buffer";
import {
  DROPBEAR_SIGNKEY_ECDSA_KEYGEN,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  KEYFILE_DROPBEAR,
  KEYFILE_OPENSSH,
  buf_put_sign,
  buf_verify,
  import_encrypted,
  MAX_BCRYPT_ROUNDS,
  import_read,
  import_write,
  parsePubLine,
  type sign_key,
  signkeyFingerprint,
  signkeyPubLine,
  signkey_generate,
} from "../src/index.js";
import { PEERS, itWithPeers } from "../../../tests/helpers/peers.js";
import { bufOf, inTempDir, sigtypeFor } from "./helpers.js";

let prevLog: LogHandler;
beforeEach(() => {
  prevLog = setLogHandler(() => {});
});
afterEach(() => {
  setLogHandler(prevLog);
});

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** `type base64` and the fingerprint, as `dropbearkey -y -f` prints them (comment dropped). */
function dropbearkeyY(file: string): { line: string; fingerprint: string } {
  const out = run(PEERS.dropbearkey, ["-y", "-f", file]).split("\n");
  expect(out[0]).toBe("Public key portion is:");
  const [type, b64] = out[1].split(" ");
  const fp = /^Fingerprint: (\S+)$/.exec(out[2]);
  expect(fp).not.toBeNull();
  return { line: `${type} ${b64}`, fingerprint: fp![1] };
}

/** `type base64` from `ssh-keygen -y -f` (comment dropped). */
function sshKeygenY(file: string, passphrase?: string): string {
  const args = ["-y", "-f", file];
  if (passphrase !== undefined) {
    args.push("-P", passphrase);
  }
  return run(PEERS["ssh-keygen"], args).trim().split(" ").slice(0, 2).join(" ");
}

/** The key can sign, and its public half (as another tool printed it) verifies that. */
function expectSignsFor(key: sign_key, publine: string): void {
  const pub = parsePubLine(publine)!.key;
  const data = bufOf("interop");
  const sig = buf_new(1000);
  buf_put_sign(sig, key, sigtypeFor(key.type), data);
  buf_setpos(sig, 0);
  expect(buf_verify(sig, pub, sigtypeFor(key.type), data)).toBe(true);
}

const DROPBEARKEY_TYPES: [string, string[]][] = [
  ["ed25519", ["-t", "ed25519"]],
  ["ecdsa 256", ["-t", "ecdsa", "-s", "256"]],
  ["ecdsa 384", ["-t", "ecdsa", "-s", "384"]],
  ["ecdsa 521", ["-t", "ecdsa", "-s", "521"]],
  ["rsa 2048", ["-t", "rsa", "-s", "2048"]],
];

describe("keys made by Debian's dropbearkey", () => {
  for (const [label, args] of DROPBEARKEY_TYPES) {
    itWithPeers(["dropbearkey"], `${label}: we read it; our public line and fingerprint match dropbearkey -y`, async () => {
      await inTempDir((dir) => {
        const file = join(dir, "key");
        run(PEERS.dropbearkey, [...args, "-f", file]);
        const key = import_read(file, null, KEYFILE_DROPBEAR);
        expect(key).not.toBeNull();
        const theirs = dropbearkeyY(file);
        expect(signkeyPubLine(key!)).toBe(theirs.line);
        expect(signkeyFingerprint(key!)).toBe(theirs.fingerprint);
        expectSignsFor(key!, theirs.line);
      });
    });
  }
});

const OUR_TYPES: [string, number, number][] = [
  ["ed25519", DROPBEAR_SIGNKEY_ED25519, 0],
  ["ecdsa 256", DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 256],
  ["ecdsa 384", DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 384],
  ["ecdsa 521", DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 521],
  ["rsa 2048", DROPBEAR_SIGNKEY_RSA, 2048],
];

describe("key files we write", () => {
  for (const [label, type, bits] of OUR_TYPES) {
    itWithPeers(["dropbearkey"], `${label}: dropbearkey -y reads our Dropbear file and prints our public key`, async () => {
      await inTempDir((dir) => {
        const file = join(dir, "key");
        expect(signkey_generate(type, bits, file, false)).toBe(true);
        const key = import_read(file, null, KEYFILE_DROPBEAR)!;
        const theirs = dropbearkeyY(file);
        expect(theirs.line).toBe(signkeyPubLine(key));
        expect(theirs.fingerprint).toBe(signkeyFingerprint(key));
      });
    });

    itWithPeers(
      ["ssh-keygen", "dropbearconvert", "dropbearkey"],
      `${label}: ssh-keygen and dropbearconvert accept our openssh-key-v1 export`,
      async () => {
        await inTempDir((dir) => {
          const dbfile = join(dir, "key");
          const osshfile = join(dir, "key.openssh");
          const back = join(dir, "key.back");
          expect(signkey_generate(type, bits, dbfile, false)).toBe(true);
          const key = import_read(dbfile, null, KEYFILE_DROPBEAR)!;
          expect(import_write(osshfile, key, null, KEYFILE_OPENSSH)).toBe(true);
          chmodSync(osshfile, 0o600);
          expect(sshKeygenY(osshfile)).toBe(signkeyPubLine(key));
          run(PEERS.dropbearconvert, ["openssh", "dropbear", osshfile, back]);
          expect(dropbearkeyY(back).line).toBe(signkeyPubLine(key));
          // Same private key too: Dropbear's own conversion gives back our exact file.
          expect(readFileSync(back).equals(readFileSync(dbfile))).toBe(true);
        });
      },
    );
  }

  itWithPeers(["dropbearkey", "dropbearconvert"], "dropbearconvert's openssh output of a dropbearkey key reads here", async () => {
    await inTempDir((dir) => {
      const dbfile = join(dir, "key");
      const osshfile = join(dir, "key.openssh");
      run(PEERS.dropbearkey, ["-t", "ecdsa", "-s", "384", "-f", dbfile]);
      run(PEERS.dropbearconvert, ["dropbear", "openssh", dbfile, osshfile]);
      const key = import_read(osshfile, null, KEYFILE_OPENSSH)!;
      expect(signkeyPubLine(key)).toBe(dropbearkeyY(dbfile).line);
    });
  });
});

const SSH_KEYGEN_TYPES: [string, string[]][] = [
  ["ed25519", ["-t", "ed25519"]],
  ["ecdsa 256", ["-t", "ecdsa", "-b", "256"]],
  ["ecdsa 384", ["-t", "ecdsa", "-b", "384"]],
  ["ecdsa 521", ["-t", "ecdsa", "-b", "521"]],
  ["rsa 2048", ["-t", "rsa", "-b", "2048"]],
  ["rsa 2048 PEM", ["-t", "rsa", "-b", "2048", "-m", "PEM"]],
  ["ecdsa 256 PEM", ["-t", "ecdsa", "-b", "256", "-m", "PEM"]],
  ["ed25519 PKCS8", ["-t", "ed25519", "-m", "PKCS8"]],
];

describe("keys made by ssh-keygen", () => {
  for (const [label, args] of SSH_KEYGEN_TYPES) {
    itWithPeers(["ssh-keygen"], `${label}: we read it and its public key matches ssh-keygen -y`, async () => {
      await inTempDir((dir) => {
        const file = join(dir, "id");
        run(PEERS["ssh-keygen"], ["-q", ...args, "-N", "", "-C", "test", "-f", file]);
        expect(import_encrypted(file, KEYFILE_OPENSSH)).toBe(false);
        const key = import_read(file, null, KEYFILE_OPENSSH);
        expect(key).not.toBeNull();
        const theirs = sshKeygenY(file);
        expect(signkeyPubLine(key!)).toBe(theirs);
        expectSignsFor(key!, theirs);
      });
    });
  }

  const ENCRYPTED: [string, string[]][] = [
    ["ed25519, aes256-ctr (the default)", ["-t", "ed25519"]],
    ["ecdsa 384, aes256-gcm@openssh.com", ["-t", "ecdsa", "-b", "384", "-Z", "aes256-gcm@openssh.com"]],
    ["rsa 2048, aes128-ctr", ["-t", "rsa", "-b", "2048", "-Z", "aes128-ctr"]],
    ["ecdsa 256, aes256-cbc", ["-t", "ecdsa", "-b", "256", "-Z", "aes256-cbc"]],
    ["ed25519, chacha20-poly1305@openssh.com", ["-t", "ed25519", "-Z", "chacha20-poly1305@openssh.com"]],
    ["rsa 2048, chacha20-poly1305@openssh.com", ["-t", "rsa", "-b", "2048", "-Z", "chacha20-poly1305@openssh.com"]],
    ["ecdsa 521, 3des-cbc", ["-t", "ecdsa", "-b", "521", "-Z", "3des-cbc"]],
  ];
  for (const [label, args] of ENCRYPTED) {
    itWithPeers(["ssh-keygen"], `encrypted ${label}: read with the passphrase, refused without or with a wrong one`, async () => {
      await inTempDir((dir) => {
        const file = join(dir, "id");
        run(PEERS["ssh-keygen"], ["-q", ...args, "-N", "secret", "-a", "4", "-C", "test", "-f", file]);
        expect(import_encrypted(file, KEYFILE_OPENSSH)).toBe(true);
        const errors: string[] = [];
        const write = process.stderr.write.bind(process.stderr);
        process.stderr.write = ((chunk: string) => errors.push(chunk) > 0) as typeof process.stderr.write;
        try {
          expect(import_read(file, null, KEYFILE_OPENSSH)).toBeNull();
          expect(import_read(file, "wrong", KEYFILE_OPENSSH)).toBeNull();
        } finally {
          process.stderr.write = write;
        }
        expect(errors.join("")).toContain("Encrypted keys are not supported");
        expect(errors.join("")).toContain("incorrect passphrase");
        const key = import_read(file, "secret", KEYFILE_OPENSSH);
        expect(key).not.toBeNull();
        const theirs = sshKeygenY(file, "secret");
        expect(signkeyPubLine(key!)).toBe(theirs);
        expectSignsFor(key!, theirs);
      });
    });
  }

  /** ssh-keygen's ed25519 key in `dir` encrypted with "secret": its file, its decoded body, and a rewrite of the file with another body. */
  function encryptedKey(dir: string): { file: string; blob: Buffer; rewrite: (body: Buffer) => void } {
    const file = join(dir, "id");
    run(PEERS["ssh-keygen"], ["-q", "-t", "ed25519", "-N", "secret", "-a", "4", "-f", file]);
    const [head, body, tail] = readFileSync(file, "utf8").split(/(?<=-----\n)|(?=-----END)/);
    return { file, blob: Buffer.from(body!, "base64"), rewrite: (b) => writeFileSync(file, `${head}${b.toString("base64")}\n${tail}`) };
  }

  /** What import_read printed on stderr failing to read `file` with the passphrase "secret". */
  function readFailure(file: string): string {
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => errors.push(chunk) > 0) as typeof process.stderr.write;
    try {
      expect(import_read(file, "secret", KEYFILE_OPENSSH)).toBeNull();
    } finally {
      process.stderr.write = write;
    }
    return errors.join("");
  }

  itWithPeers(["ssh-keygen"], "an encrypted key asking for more bcrypt rounds than MAX_BCRYPT_ROUNDS is refused at once, not derived for years", async () => {
    await inTempDir((dir) => {
      const { file, blob, rewrite } = encryptedKey(dir);
      // kdfoptions after "bcrypt": its length, the salt's length, the 16-byte salt, then rounds.
      blob.writeUInt32BE(0xffffffff, blob.indexOf("bcrypt") + 6 + 4 + 4 + 16);
      rewrite(blob);
      expect(readFailure(file)).toContain(`Too many KDF rounds (4294967295, at most ${MAX_BCRYPT_ROUNDS})`);
    });
  });

  itWithPeers(["ssh-keygen"], "an encrypted key with malformed KDF options is 'Error decoding OpenSSH key', not an exit", async () => {
    await inTempDir((dir) => {
      const { file, blob, rewrite } = encryptedKey(dir);
      const at = blob.indexOf("bcrypt") + 6;
      // kdfoptions: a salt length past its end ("String too long"), or empty ("Bad buf_getptr").
      const cases = [
        Buffer.concat([blob.subarray(0, at), Buffer.from([0, 0, 0, 4, 0, 0, 0xff, 0xff]), blob.subarray(at + 4 + 24)]),
        Buffer.concat([blob.subarray(0, at), Buffer.from([0, 0, 0, 0]), blob.subarray(at + 4 + 24)]),
      ];
      for (const bad of cases) {
        rewrite(bad);
        expect(readFailure(file)).toBe("Error: Error decoding OpenSSH key\n");
      }
    });
  });

  itWithPeers(["ssh-keygen"], "ssh-keygen -l agrees with our fingerprints", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "id");
      run(PEERS["ssh-keygen"], ["-q", "-t", "ecdsa", "-b", "521", "-N", "", "-f", file]);
      const key = import_read(file, null, KEYFILE_OPENSSH)!;
      const theirs = run(PEERS["ssh-keygen"], ["-l", "-E", "sha256", "-f", `${file}.pub`]).split(" ")[1];
      expect(signkeyFingerprint(key)).toBe(theirs);
    });
  });
});
