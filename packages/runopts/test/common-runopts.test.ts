import { describe, expect, it } from "vitest";
import { runopts } from "@dropbear-ts/core";
import { algo_tables_new } from "@dropbear-ts/algo";

/** Options with Dropbear's algorithm tables, as the getopts functions set them up. */
function withTables(): runopts {
  const o = new runopts();
  o.algos = algo_tables_new();
  return o;
}
import {
  parse_ciphers_macs,
  parse_recv_window,
  print_algos,
  print_version,
  split_address_port,
} from "../src/common-runopts.js";
import { expand_homedir_path_home, m_str_to_uint } from "@dropbear-ts/dbutil";
import { capture, isQuiet } from "./capture.js";

describe("dbutil.c m_str_to_uint", () => {
  it.each([
    ["0", 0],
    ["22", 22],
    ["+7", 7],
    ["  9", 9],
    ["\t10", 10],
    ["-0", 0],
    ["0004", 4],
    ["4294967295", 4294967295],
  ])("accepts %j", (s, v) => {
    expect(m_str_to_uint(s)).toBe(v);
  });

  it.each(["", " ", "x", "1x", "1 ", "-1", "-4294967295", "4294967296", "99999999999999999999", "0x10", "1.5"])(
    "rejects %j",
    (s) => {
      expect(m_str_to_uint(s)).toBeNull();
    },
  );
});

describe("dbutil.c expand_homedir_path_home", () => {
  it("expands only a leading ~/", () => {
    expect(expand_homedir_path_home("~/.ssh/id", "/home/u")).toBe("/home/u/.ssh/id");
    expect(expand_homedir_path_home("~user/x", "/home/u")).toBe("~user/x");
    expect(expand_homedir_path_home("/abs", "/home/u")).toBe("/abs");
    expect(expand_homedir_path_home("~/x", null)).toBe("~/x");
  });
});

describe("common-runopts.c split_address_port", () => {
  it.each([
    ["22", "22", null],
    [":22", null, "22"],
    ["1.2.3.4:22", "1.2.3.4", "22"],
    ["host:", "host", ""],
    ["[::1]:2022", "::1", "2022"],
    ["[::1]", "::1", null],
    ["[]:22", null, "22"],
    ["fe80::1:22", "fe80::1", "22"],
    ["", null, null],
  ])("%j", (spec, first, second) => {
    const { result, logs } = capture(() => split_address_port(spec));
    expect(result).toEqual({ first, second });
    expect(logs).toEqual([]);
  });

  it.each(["[::1", "[::1]x", "[::1]22"])("rejects %j with a warning", (spec) => {
    const { result, logs } = capture(() => split_address_port(spec));
    expect(result).toBeNull();
    expect(logs).toEqual([`Bad address '${spec}'`]);
  });
});

describe("common-runopts.c parse_recv_window", () => {
  it("takes a good value", () => {
    const opts = new runopts();
    const { logs } = capture(() => parse_recv_window(opts, "2097152"));
    expect(opts.recv_window).toBe(2097152);
    expect(logs).toEqual([]);
  });

  it("keeps the window and warns for zero or garbage", () => {
    for (const bad of ["0", "x", "-1", ""]) {
      const opts = new runopts();
      const { logs } = capture(() => parse_recv_window(opts, bad));
      expect(opts.recv_window).toBe(2097152);
      expect(logs).toEqual([`Bad recv window '${bad}', using 2097152`]);
    }
  });

  it("clamps a too large window to 10 MiB", () => {
    const opts = new runopts();
    const { logs } = capture(() => parse_recv_window(opts, "10485761"));
    expect(opts.recv_window).toBe(10485760);
    expect(logs).toEqual(["Bad recv window '10485761', using 10485760"]);
  });
});

describe("common-runopts.c print_version / print_algos / parse_ciphers_macs", () => {
  it("prints the version on stderr", () => {
    const { stderr, stdout } = capture(() => print_version());
    expect(stderr).toMatch(/^Dropbear v2026\.94 \(dropbear-ts \d+\.\d+\.\d+[^)]*\)\n$/);
    expect(stdout).toBe("");
  });

  it("-Q help lists the kinds and exits 0", () => {
    const { stdout, exit } = capture(() => print_algos(withTables(), "help"));
    expect(stdout).toBe("kex\nsig\ncipher\nmac\ncompress\n");
    expect(isQuiet(exit, 0)).toBe(true);
  });

  it("-Q of an unknown kind lists the kinds and exits 1", () => {
    const { stdout, exit } = capture(() => print_algos(withTables(), "bogus"));
    expect(stdout).toBe("kex\nsig\ncipher\nmac\ncompress\nUnknown -Q 'bogus'\n");
    expect(isQuiet(exit, 1)).toBe(true);
  });

  it("-Q of a kind lists its algorithms in preference order, kex without the extension markers", () => {
    const cipher = capture(() => print_algos(withTables(), "cipher"));
    expect(cipher.stdout).toBe("chacha20-poly1305@openssh.com\naes256-gcm@openssh.com\naes128-gcm@openssh.com\naes256-ctr\naes128-ctr\n");
    expect(isQuiet(cipher.exit, 0)).toBe(true);
    const kex = capture(() => print_algos(withTables(), "kex")).stdout.split("\n");
    expect(kex[0]).toBe("sntrup761x25519-sha512");
    expect(kex).toContain("mlkem768x25519-sha256");
    expect(kex).not.toContain("kexguess2@matt.ucc.asn.au");
    expect(kex).not.toContain("kex-strict-s-v00@openssh.com");
    expect(capture(() => print_algos(withTables(), "compress")).stdout).toBe("none\n");
  });

  it("narrows -c/-m to the user's list, warns about unknown names, and ends on help like Dropbear", () => {
    const opts = withTables();
    opts.cipher_list = "aes128-ctr,nonesuch,aes256-ctr,aes128-ctr";
    opts.mac_list = "hmac-sha2-256";
    const narrowed = capture(() => parse_ciphers_macs(opts));
    expect(narrowed.exit).toBeUndefined();
    expect(opts.algos.sshciphers.map((a) => a.name)).toEqual(["aes128-ctr", "aes256-ctr"]);
    expect(opts.algos.sshhashes.map((a) => a.name)).toEqual(["hmac-sha2-256"]);
    expect(narrowed.logs.join("\n")).toMatch(/does not support 'nonesuch' cipher algorithm/);

    const none = withTables();
    none.cipher_list = "nonesuch";
    expect(capture(() => parse_ciphers_macs(none)).exit?.exitmsg).toBe("No valid ciphers specified for '-c'");

    const help = withTables();
    help.mac_list = "help";
    const { exit, logs } = capture(() => parse_ciphers_macs(help));
    expect(exit?.exitmsg).toBe(".");
    expect(exit?.exitcode).toBe(1);
    expect(logs[0]).toMatch(/^Available MACs: hmac-sha2-256,hmac-sha2-512,/);
  });
});
