import { readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type LogHandler, setLogHandler } from "@dropbear-ts/dbutil";
import { buf_new, buf_readfile, buf_setpos } from "@dropbear-ts/buffer";
import { DROPBEAR_DEFAULT_RSA_SIZE, MAX_PRIVKEY_SIZE } from "@dropbear-ts/options";
import {
  DROPBEAR_SIGNKEY_ANY,
  DROPBEAR_SIGNKEY_ECDSA_KEYGEN,
  DROPBEAR_SIGNKEY_ECDSA_NISTP384,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  DROPBEAR_SIGNKEY_SK_ED25519,
  buf_get_priv_key,
  new_sign_key,
  signkey_generate,
  signkey_generate_get_bits,
} from "../src/index.js";
import { inTempDir } from "./helpers.js";

let logged: string[] = [];
let prevLog: LogHandler;
beforeEach(() => {
  logged = [];
  prevLog = setLogHandler((_p, msg) => logged.push(msg));
});
afterEach(() => {
  setLogHandler(prevLog);
});

function readKeyType(file: string): number | null {
  const buf = buf_new(MAX_PRIVKEY_SIZE);
  expect(buf_readfile(buf, file)).toBe(true);
  buf_setpos(buf, 0);
  return buf_get_priv_key(buf, new_sign_key(), DROPBEAR_SIGNKEY_ANY);
}

describe("signkey_generate_get_bits", () => {
  it("fills in Dropbear's defaults and keeps explicit sizes", () => {
    expect(signkey_generate_get_bits(DROPBEAR_SIGNKEY_RSA, 0)).toBe(DROPBEAR_DEFAULT_RSA_SIZE);
    expect(DROPBEAR_DEFAULT_RSA_SIZE).toBe(2048);
    expect(signkey_generate_get_bits(DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 0)).toBe(256);
    expect(signkey_generate_get_bits(DROPBEAR_SIGNKEY_ECDSA_NISTP384, 0)).toBe(384);
    expect(signkey_generate_get_bits(DROPBEAR_SIGNKEY_ED25519, 0)).toBe(256);
    expect(signkey_generate_get_bits(DROPBEAR_SIGNKEY_SK_ED25519, 0)).toBe(0);
    expect(signkey_generate_get_bits(DROPBEAR_SIGNKEY_RSA, 3072)).toBe(3072);
  });
});

describe("signkey_generate", () => {
  it("writes a 0600 Dropbear key file and leaves no temporary file", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "dropbear_ed25519_host_key");
      expect(signkey_generate(DROPBEAR_SIGNKEY_ED25519, 0, file, false)).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readKeyType(file)).toBe(DROPBEAR_SIGNKEY_ED25519);
      expect(readdirSync(dir)).toEqual(["dropbear_ed25519_host_key"]);
    });
  });

  it("picks the ECDSA curve from the bits", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "k");
      expect(signkey_generate(DROPBEAR_SIGNKEY_ECDSA_KEYGEN, 384, file, false)).toBe(true);
      expect(readKeyType(file)).toBe(DROPBEAR_SIGNKEY_ECDSA_NISTP384);
    });
  });

  it("never replaces an existing file", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "k");
      writeFileSync(file, "precious");
      expect(signkey_generate(DROPBEAR_SIGNKEY_ED25519, 0, file, false)).toBe(false);
      expect(readFileSync(file, "utf8")).toBe("precious");
      expect(logged.some((m) => m.startsWith(`Failed moving key file to ${file}: File exists`))).toBe(true);
      expect(readdirSync(dir)).toEqual(["k"]);
    });
  });

  it("counts an existing file as success with skip_exist (lost the race to another connection)", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "k");
      writeFileSync(file, "precious");
      expect(signkey_generate(DROPBEAR_SIGNKEY_ED25519, 0, file, true)).toBe(true);
      expect(readFileSync(file, "utf8")).toBe("precious");
    });
  });

  it("does not follow or replace a symlink", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "k");
      symlinkSync(join(dir, "elsewhere"), file);
      expect(signkey_generate(DROPBEAR_SIGNKEY_ED25519, 0, file, false)).toBe(false);
      expect(readdirSync(dir)).toEqual(["k"]);
    });
  });

  it("fails with Dropbear's log line when the directory is missing", async () => {
    await inTempDir((dir) => {
      const file = join(dir, "nope", "k");
      expect(signkey_generate(DROPBEAR_SIGNKEY_ED25519, 0, file, false)).toBe(false);
      expect(logged).toContain(`Couldn't create new file ${file}.tmp${process.pid}: No such file or directory`);
    });
  });

  it("exits on sizes Dropbear refuses", async () => {
    await inTempDir((dir) => {
      expect(() => signkey_generate(DROPBEAR_SIGNKEY_RSA, 1001, join(dir, "k"), false)).toThrow(
        "Bits must satisfy 512 <= bits <= 4096, and be a multiple of 8",
      );
      expect(readdirSync(dir)).toEqual([]);
    });
  });
});
