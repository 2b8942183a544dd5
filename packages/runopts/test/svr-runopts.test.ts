import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { DropbearExit, get_debug_trace } from "@dropbear-ts/dbutil";
import { QuietExit } from "@dropbear-ts/dbutil";
import { DROPBEAR_SIGNATURE_RSA_SHA1, DROPBEAR_SIGNKEY_ECDSA_NISTP256, DROPBEAR_SIGNKEY_ED25519, KEYFILE_DROPBEAR, import_write, signkeyGenerateKey } from "@dropbear-ts/signkey";
import { load_all_hostkeys, svr_getopts } from "../src/svr-runopts.js";
import { capture, isQuiet } from "./capture.js";

const parse = (...args: string[]) => capture(() => svr_getopts(["dropbear", ...args]));

/** Parse, expecting success with no output; returns the options. */
function ok(...args: string[]) {
  const c = parse(...args);
  if (c.exit !== undefined) {
    throw new Error(`unexpected exit ${c.exit.exitcode}: ${c.exit.exitmsg}`);
  }
  return c.result!;
}

/** Parse, expecting dropbear_exit with this message. */
function fails(msg: string, ...args: string[]) {
  const c = parse(...args);
  expect(c.exit).toBeInstanceOf(DropbearExit);
  expect(c.exit).not.toBeInstanceOf(QuietExit);
  expect(c.exit?.exitcode).toBe(1);
  expect(c.exit?.exitmsg).toBe(msg);
  return c;
}

describe("svr-runopts.c svr_getopts defaults", () => {
  it("matches Dropbear's defaults with no arguments", () => {
    const { opts, svr_opts } = ok();
    expect(svr_opts.ports).toEqual(["22"]);
    expect(svr_opts.addresses).toEqual([""]);
    expect(svr_opts.portcount).toBe(1);
    expect(svr_opts.forkbg).toBe(true);
    expect(svr_opts.domotd).toBe(true);
    expect(svr_opts.maxauthtries).toBe(10);
    expect(svr_opts.pidfile).toBe("/var/run/dropbear.pid");
    expect(svr_opts.authorized_keys_dir).toBe("~/.ssh");
    expect(svr_opts.reexec_childpipe).toBe(-1);
    expect(svr_opts.hostkey_files).toEqual([]);
    expect(svr_opts.num_hostkey_files).toBe(0);
    expect(svr_opts.banner).toBeNull();
    expect(opts.usingsyslog).toBe(true);
    expect(opts.compression).toBe(true);
    expect(opts.recv_window).toBe(2097152);
    expect(opts.keepalive_secs).toBe(0);
    expect(opts.idle_timeout_secs).toBe(0);
    expect(opts.max_duration_secs).toBe(0);
    expect(opts.listen_fwd_all).toBe(false);
    expect(opts.disable_ip_tos).toBe(false);
  });
});

describe("svr-runopts.c svr_getopts flags", () => {
  it("takes single flags", () => {
    const { opts, svr_opts } = ok("-F", "-E", "-m", "-w", "-j", "-k", "-a", "-R", "-e", "-i", "-z", "-s", "-g", "-u");
    expect(svr_opts.forkbg).toBe(false);
    expect(opts.usingsyslog).toBe(false);
    expect(svr_opts.domotd).toBe(false);
    expect(svr_opts.norootlogin).toBe(true);
    expect(svr_opts.nolocaltcp).toBe(true);
    expect(svr_opts.noremotefwd).toBe(true);
    expect(opts.listen_fwd_all).toBe(true);
    expect(svr_opts.delay_hostkey).toBe(true);
    expect(svr_opts.pass_on_env).toBe(true);
    expect(svr_opts.inetdmode).toBe(true);
    expect(opts.disable_ip_tos).toBe(true);
    expect(svr_opts.noauthpass).toBe(true);
    expect(svr_opts.norootpass).toBe(true);
  });

  it("takes combined flags", () => {
    const { opts, svr_opts } = ok("-FE", "-Bw");
    expect(svr_opts.forkbg).toBe(false);
    expect(opts.usingsyslog).toBe(false);
    expect(svr_opts.allowblankpass).toBe(true);
    expect(svr_opts.norootlogin).toBe(true);
  });

  it("ends a flag cluster at a letter that takes a value", () => {
    const { svr_opts } = ok("-Fp2222", "-wP", "/tmp/x.pid");
    expect(svr_opts.forkbg).toBe(false);
    expect(svr_opts.ports).toEqual(["2222"]);
    expect(svr_opts.norootlogin).toBe(true);
    expect(svr_opts.pidfile).toBe("/tmp/x.pid");
  });

  it("takes values attached or as the next word, even if it starts with '-'", () => {
    const { svr_opts } = ok("-c", "-rf", "-Dkeys", "-l", "eth0");
    expect(svr_opts.forced_command).toBe("-rf");
    expect(svr_opts.authorized_keys_dir).toBe("keys");
    expect(svr_opts.interface).toBe("eth0");
  });

  it("logs the forced command and the interface", () => {
    const { logs } = parse("-c", "uptime", "-l", "eth0");
    expect(logs).toEqual(["Forced command set to 'uptime'", "Binding to interface 'eth0'"]);
  });

  it("-v raises the debug level each time", () => {
    const { result } = capture(() => {
      svr_getopts(["dropbear", "-v", "-vv", "-Fv"]);
      return get_debug_trace();
    });
    expect(result).toBe(4);
  });
});

describe("svr-runopts.c -p", () => {
  it.each([
    [["-p", "2222"], [""], ["2222"]],
    [["-p2222"], [""], ["2222"]],
    [["-p", "127.0.0.1:2022"], ["127.0.0.1"], ["2022"]],
    [["-p", "[::1]:2022"], ["::1"], ["2022"]],
    [["-p", ":2022"], [""], ["2022"]],
    [["-p", "1", "-p", "host:2"], ["", "host"], ["1", "2"]],
  ])("%j", (args, addresses, ports) => {
    const { svr_opts } = ok(...args);
    expect(svr_opts.addresses).toEqual(addresses);
    expect(svr_opts.ports).toEqual(ports);
    expect(svr_opts.portcount).toBe(ports.length);
  });

  it("keeps the first 10 and ignores the rest", () => {
    const args = Array.from({ length: 12 }, (_, k) => `-p${1000 + k}`);
    const { svr_opts } = ok(...args);
    expect(svr_opts.portcount).toBe(10);
    expect(svr_opts.ports.at(-1)).toBe("1009");
  });

  it("rejects bad specs", () => {
    fails("Bad port", "-p", "host:");
    fails("Bad port", "-p", "");
    fails("Bad -p argument", "-p", "[::1");
    expect(fails("Bad -p argument", "-p", "[::1]x").logs).toEqual(["Bad address '[::1]x'"]);
    fails("Missing argument", "-p");
  });
});

describe("svr-runopts.c host keys", () => {
  it("collects -r and -d up to 6 files", () => {
    const { svr_opts } = ok("-r", "/a", "-d/b", "-r", "c");
    expect(svr_opts.hostkey_files).toEqual(["/a", "/b", "c"]);
    expect(svr_opts.num_hostkey_files).toBe(3);
    const six = ["1", "2", "3", "4", "5", "6"].flatMap((k) => ["-r", k]);
    expect(ok(...six).svr_opts.num_hostkey_files).toBe(6);
    fails("Too many hostkeys", ...six, "-r", "7");
  });
});

describe("svr-runopts.c numeric options", () => {
  it("parses -W -K -I -M -T", () => {
    const { opts, svr_opts } = ok("-W", "65536", "-K30", "-I", "600", "-M", "3600", "-T", "3");
    expect(opts.recv_window).toBe(65536);
    expect(opts.keepalive_secs).toBe(30);
    expect(opts.idle_timeout_secs).toBe(600);
    expect(opts.max_duration_secs).toBe(3600);
    expect(svr_opts.maxauthtries).toBe(3);
  });

  it("only warns about a bad window, and -W takes '-1' as its value", () => {
    const { result, logs } = parse("-W", "-1", "-F");
    expect(result?.opts.recv_window).toBe(2097152);
    expect(result?.svr_opts.forkbg).toBe(false);
    expect(logs).toEqual(["Bad recv window '-1', using 2097152"]);
    expect(parse("-W", "20000000").result?.opts.recv_window).toBe(10485760);
  });

  it("exits on bad numbers with Dropbear's messages", () => {
    fails("Bad keepalive 'x'", "-K", "x");
    fails("Bad idle_timeout '-5'", "-I", "-5");
    fails("Bad max_duration '1h'", "-M", "1h");
    fails("Bad maxauthtries 'many'", "-T", "many");
  });

  it("takes the hidden -2 childpipe fd", () => {
    expect(ok("-2", "5").svr_opts.reexec_childpipe).toBe(5);
    fails("Bad -2", "-2", "x");
    fails("Bad -2", "-2", "3000000000");
  });
});

describe("svr-runopts.c checks", () => {
  it("refuses incompatible auth flags", () => {
    fails("-t and -s are incompatible", "-ts");
    fails("-t and -B are incompatible", "-t", "-B");
    expect(ok("-t").svr_opts.multiauthmethod).toBe(true);
  });

  it("refuses an empty -D", () => {
    fails("Bad -D", "-D", "");
  });

  it("resolves -G to a gid", () => {
    expect(ok("-G", "root").svr_opts.restrict_group_gid).toBe(0);
    fails("Cannot restrict logins to group 'no-such-group-xyz' as the group does not exist", "-G", "no-such-group-xyz");
  });

  it("rejects words that are not flags", () => {
    fails("Invalid argument: foo", "foo");
    fails("Invalid argument: -", "-");
    fails("Invalid argument: ", "");
  });
});

describe("svr-runopts.c banner", () => {
  const dir = mkdtempSync(join(tmpdir(), "svr-runopts-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("loads the banner file", () => {
    const f = join(dir, "banner");
    writeFileSync(f, "hello\n");
    const { svr_opts } = ok("-b", f);
    expect(svr_opts.bannerfile).toBe(f);
    expect(Buffer.from(svr_opts.banner!).toString()).toBe("hello\n");
  });

  it("only warns about a missing or oversized banner", () => {
    const missing = join(dir, "missing");
    const c1 = parse("-b", missing);
    expect(c1.exit).toBeUndefined();
    expect(c1.result?.svr_opts.banner).toBeNull();
    expect(c1.logs).toEqual([`Error opening banner file '${missing}'`]);

    const big = join(dir, "big");
    writeFileSync(big, "x".repeat(2051));
    const c2 = parse("-b", big);
    expect(c2.result?.svr_opts.banner).toBeNull();
    expect(c2.logs).toEqual(["Banner file too large, max is 2050 bytes"]);
  });

  it("reads no more than the size stat() gives: /dev/zero (size 0) is an empty banner, as in C", () => {
    const c = parse("-b", "/dev/zero");
    expect(c.exit).toBeUndefined();
    expect(c.logs).toEqual([]);
    expect(c.result?.svr_opts.banner).toEqual(new Uint8Array(0));
  });
});

describe("svr-runopts.c -h -V -Q and unknown flags", () => {
  it("-h prints the help to stderr and exits 0", () => {
    const { exit, stderr, stdout } = parse("-F", "-h");
    expect(isQuiet(exit, 0)).toBe(true);
    expect(stderr).toMatch(/^Dropbear server v2026\.94/);
    expect(stderr).toContain("Usage: dropbear [options]");
    for (const flag of ["-b", "-r", "-D", "-R", "-F", "-e", "-E", "-m", "-w", "-G", "-s", "-g", "-B", "-t", "-T", "-j", "-k", "-a", "-c", "-p", "-P", "-l", "-i", "-W", "-K", "-I", "-M", "-z", "-Q", "-V", "-v"]) {
      expect(stderr).toMatch(new RegExp(`^${flag} `, "m"));
    }
    expect(stdout).toBe("");
  });

  it("-V prints the version and exits 0; the first of -h/-V wins", () => {
    const v = parse("-V");
    expect(isQuiet(v.exit, 0)).toBe(true);
    expect(v.stderr).toMatch(/^Dropbear v2026\.94 \(dropbear-ts \d+\.\d+\.\d+[^)]*\)\n$/);
    expect(parse("-Vh").stderr).toMatch(/^Dropbear v2026\.94 \(dropbear-ts \d+\.\d+\.\d+[^)]*\)\n$/);
    expect(parse("-hV").stderr).toContain("Usage:");
  });

  it("an unknown flag prints the help and exits 1", () => {
    const { exit, stderr } = parse("-Fx");
    expect(isQuiet(exit, 1)).toBe(true);
    expect(stderr).toMatch(/^Invalid option -x\nDropbear server/);
  });

  it("-A is unknown: plugins are not built by default", () => {
    expect(isQuiet(parse("-A", "plugin.so").exit, 1)).toBe(true);
  });

  it("-Q runs after the other checks", () => {
    const { exit, stdout } = parse("-Q", "help");
    expect(isQuiet(exit, 0)).toBe(true);
    expect(stdout).toBe("kex\nsig\ncipher\nmac\ncompress\n");
    fails("Bad keepalive 'x'", "-Q", "help", "-K", "x");
  });
});

describe("svr-runopts.c load_all_hostkeys", () => {
  it("does not take a host key whose numbers cannot sign, and says why", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-hostkeys-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const bad = signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_NISTP256, 256);
    bad.ecckey256!.k = 0n;
    import_write(join(dir, "ecdsa"), bad, null, KEYFILE_DROPBEAR);
    import_write(join(dir, "ed25519"), signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0), null, KEYFILE_DROPBEAR);
    const both = ok("-r", join(dir, "ecdsa"), "-r", join(dir, "ed25519"));
    const loaded = capture(() => load_all_hostkeys(both.opts, both.svr_opts));
    expect(loaded.logs).toEqual([`Failed loading ${join(dir, "ecdsa")}: ecdsa-sha2-nistp256: private value out of range`]);
    expect(both.svr_opts.hostkey.ecckey256).toBeNull();
    expect(both.svr_opts.hostkey.ed25519key).not.toBeNull();
    const alone = ok("-r", join(dir, "ecdsa"));
    expect(capture(() => load_all_hostkeys(alone.opts, alone.svr_opts)).exit?.exitmsg).toMatch(/^No hostkeys available/);
  });

  it("without an RSA host key offers no RSA signature, ssh-rsa included when built in (Dropbear a113381c)", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-hostkeys-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    import_write(join(dir, "ed25519"), signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0), null, KEYFILE_DROPBEAR);
    const o = ok("-r", join(dir, "ed25519"));
    // A build with DROPBEAR_RSA_SHA1 on has this entry (off by default).
    o.opts.algos.sigalgs.push({ name: "ssh-rsa", val: DROPBEAR_SIGNATURE_RSA_SHA1, data: null, usable: true, mode: null });
    capture(() => load_all_hostkeys(o.opts, o.svr_opts));
    const offered = o.opts.algos.sigalgs.filter((a) => a.usable).map((a) => a.name);
    expect(offered).toEqual(["ssh-ed25519"]);
  });
});
