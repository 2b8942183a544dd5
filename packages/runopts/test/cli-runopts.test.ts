import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { DropbearExit, get_debug_trace } from "@dropbear-ts/dbutil";
import { QuietExit } from "@dropbear-ts/dbutil";
import { DROPBEAR_KEX_FIRST_FOLLOWS } from "@dropbear-ts/options";
import { cli_getopts, isDefaultIdentity } from "../src/cli-runopts.js";
import { runopts } from "@dropbear-ts/core";
import { capture, isQuiet } from "./capture.js";

// A HOME of our own, so ~/.ssh/id_dropbear is under the test's control.
const home = mkdtempSync(join(tmpdir(), "cli-runopts-"));
const savedHome = process.env.HOME;
beforeAll(() => {
  process.env.HOME = home;
});
afterAll(() => {
  process.env.HOME = savedHome;
  rmSync(home, { recursive: true, force: true });
});

const parse = (...args: string[]) => capture(() => cli_getopts(["dbclient", ...args]));

function ok(...args: string[]) {
  const c = parse(...args);
  if (c.exit !== undefined) {
    throw new Error(`unexpected exit ${c.exit.exitcode}: ${c.exit.exitmsg}`);
  }
  return c.result!;
}

function fails(msg: string, ...args: string[]) {
  const c = parse(...args);
  expect(c.exit).toBeInstanceOf(DropbearExit);
  expect(c.exit).not.toBeInstanceOf(QuietExit);
  expect(c.exit?.exitcode).toBe(1);
  expect(c.exit?.exitmsg).toBe(msg);
  return c;
}

describe("cli-runopts.c host, user, port and command", () => {
  it("fills defaults from a bare host", () => {
    const { opts, cli_opts } = ok("example.org");
    expect(cli_opts.progname).toBe("dbclient");
    expect(cli_opts.remotehost).toBe("example.org");
    expect(cli_opts.remoteport).toBe("22");
    expect(cli_opts.own_user).toBe(userInfo().username);
    expect(cli_opts.username).toBe(userInfo().username);
    expect(cli_opts.cmd).toBeNull();
    expect(cli_opts.ask_hostkey).toBe(true);
    expect(cli_opts.password_authentication).toBe(true);
    expect(cli_opts.proxyexec).toBeNull();
    expect(cli_opts.agent_fd).toBe(-1);
    expect([0, 1]).toContain(cli_opts.wantpty);
    expect(opts.usingsyslog).toBe(false);
    expect(opts.compression).toBe(false);
    expect(opts.recv_window).toBe(2097152);
  });

  it.each([
    ["u@h", "u", "h", "22"],
    ["u@h^2222", "u", "h", "2222"],
    ["u@h/2222", "u", "h", "2222"],
    ["h^1/2", null, "h", "1/2"],
    ["a@b@c", "a", "b@c", "22"],
  ])("%j", (arg, user, host, port) => {
    const { cli_opts } = ok(arg);
    expect(cli_opts.username).toBe(user ?? userInfo().username);
    expect(cli_opts.remotehost).toBe(host);
    expect(cli_opts.remoteport).toBe(port);
  });

  it("lets user@host/port win over -l, -p and -o Port", () => {
    expect(ok("-l", "x", "-p", "1", "u@h/2").cli_opts).toMatchObject({ username: "u", remoteport: "2" });
    expect(ok("-l", "x", "-p", "1", "h").cli_opts).toMatchObject({ username: "x", remoteport: "1" });
    expect(ok("-o", "Port=5", "-p", "1", "h").cli_opts.remoteport).toBe("1");
    expect(ok("-p", "1", "-o", "Port=5", "h").cli_opts.remoteport).toBe("1");
    expect(ok("-o", "Port=5", "h").cli_opts.remoteport).toBe("5");
  });

  it("joins the command with spaces and stops flag parsing there", () => {
    const { cli_opts } = ok("-T", "h", "-p", "23", "ls", "-la", "a b", "-p");
    expect(cli_opts.remoteport).toBe("23");
    expect(cli_opts.cmd?.toString()).toBe("ls -la a b -p");
    expect(cli_opts.wantpty).toBe(0);
  });

  it("decides the pty from the command when neither -t nor -T is given", () => {
    expect(ok("h", "uptime").cli_opts.wantpty).toBe(0);
    expect(ok("-t", "h", "uptime").cli_opts.wantpty).toBe(1);
    expect(ok("-tT", "h").cli_opts.wantpty).toBe(0);
  });

  it("rejects bad hosts", () => {
    fails("Bad hostname.", "u@");
    fails("Bad hostname.", "");
    fails("Bad hostname.", "/22");
  });

  it("needs a host", () => {
    const c = fails("Remote host needs to be provided.", "-p", "22");
    expect(c.stderr).toContain("Usage: dbclient [options]");
  });

  it("treats a lone '-' as no flag at all", () => {
    expect(ok("-", "h").cli_opts.remotehost).toBe("h");
  });
});

describe("cli-runopts.c flags", () => {
  it("takes single and combined flags", () => {
    const { opts, cli_opts } = ok("-qNsAz", "-g", "-u", "h");
    expect(cli_opts.quiet).toBe(true);
    expect(cli_opts.no_cmd).toBe(true);
    expect(cli_opts.is_subsystem).toBe(true);
    expect(cli_opts.agent_fwd).toBe(true);
    expect(opts.disable_ip_tos).toBe(true);
    expect(opts.listen_fwd_all).toBe(true);
  });

  it("counts -y", () => {
    expect(ok("-y", "h").cli_opts).toMatchObject({ always_accept_key: true, no_hostkey_check: false });
    expect(ok("-yy", "h").cli_opts).toMatchObject({ always_accept_key: true, no_hostkey_check: true });
    expect(ok("-y", "h", "-y").cli_opts.no_hostkey_check).toBe(true);
  });

  it("-f needs a command or -N", () => {
    fails("Command required for -f", "-f", "h");
    expect(ok("-f", "h", "true").cli_opts.backgrounded).toBe(true);
    expect(ok("-fN", "h").cli_opts.backgrounded).toBe(true);
  });

  it("parses -W -K -I -M", () => {
    const { opts } = ok("-W65536", "-K", "15", "-I", "60", "-M", "120", "h");
    expect(opts).toMatchObject({ recv_window: 65536, keepalive_secs: 15, idle_timeout_secs: 60, max_duration_secs: 120 });
    fails("Bad keepalive 'x'", "-K", "x", "h");
    fails("Bad idle_timeout 'x'", "-I", "x", "h");
    fails("Bad max_duration 'x'", "-M", "x", "h");
    const w = parse("-W", "-1", "h");
    expect(w.result?.opts.recv_window).toBe(2097152);
    expect(w.logs).toEqual(["Bad recv window '-1', using 2097152"]);
  });

  it("stores -c and -m lists", () => {
    const { opts } = ok("-c", "aes256-ctr", "-mhmac-sha2-256", "h");
    expect(opts.cipher_list).toBe("aes256-ctr");
    expect(opts.mac_list).toBe("hmac-sha2-256");
    expect(parse("-c", "help").exit?.exitmsg).toBe(".");
  });

  it("-v raises the debug level", () => {
    const { result } = capture(() => {
      cli_getopts(["dbclient", "-vv", "h", "-v"]);
      return get_debug_trace();
    });
    expect(result).toBe(3);
  });

  it("only warns about unknown flags", () => {
    const { result, stderr } = parse("-xq", "h");
    expect(stderr).toBe("WARNING: Ignoring unknown option -x\n");
    expect(result?.cli_opts.quiet).toBe(true);
  });

  it("prints the version for -V and for OpenSSH's -F, -e, -D", () => {
    for (const f of ["-V", "-F", "-e", "-D"]) {
      const { exit, stderr } = parse(f, "h");
      expect(isQuiet(exit, 0)).toBe(true);
      expect(stderr).toMatch(/^Dropbear v2026\.94 \(dropbear-ts \d+\.\d+\.\d+[^)]*\)\n$/);
    }
  });

  it("-h prints the help and exits 0", () => {
    const { exit, stderr } = parse("-h");
    expect(isQuiet(exit, 0)).toBe(true);
    expect(stderr).toMatch(/^Dropbear SSH client v2026\.94/);
    for (const flag of ["-p", "-l", "-t", "-T", "-N", "-f", "-q", "-y", "-s", "-o", "-i", "-A", "-L", "-g", "-R", "-W", "-K", "-I", "-M", "-z", "-B", "-J", "-c", "-m", "-b", "-Q", "-V", "-v"]) {
      expect(stderr).toMatch(new RegExp(`^${flag} `, "m"));
    }
  });

  it("reports a missing value", () => {
    fails("Missing argument", "h", "-p");
    fails("Missing argument", "-L");
  });

  it("splits -b", () => {
    expect(ok("-b", "10.0.0.1:2000", "h").cli_opts).toMatchObject({ bind_address: "10.0.0.1", bind_port: "2000" });
    expect(ok("-b", ":2000", "h").cli_opts).toMatchObject({ bind_address: null, bind_port: "2000" });
    expect(ok("-b", "10.0.0.1", "h").cli_opts).toMatchObject({ bind_address: "10.0.0.1", bind_port: null });
    expect(ok("-b", "[::1]:5", "h").cli_opts).toMatchObject({ bind_address: "::1", bind_port: "5" });
    fails("Bad -b argument", "-b", "[::1", "h");
  });

  it("-J beats -o ProxyCommand", () => {
    expect(ok("-o", "ProxyCommand=nc h 22", "h").cli_opts.proxycmd).toBe("nc h 22");
    expect(ok("-J", "a", "-o", "ProxyCommand=b", "h").cli_opts.proxycmd).toBe("a");
  });

  // ssh's tokens, as in ~/.ssh/config (mosh's default --ssh command, ansible's
  // ProxyCommand="ssh -W %h:%p ..."); C runs the text as given, with no host in it.
  it("-o ProxyCommand's %h %p %r %% name the host reached; -J's program is run as given; multihop hands it on", () => {
    expect(ok("-o", "ProxyCommand=nc -X connect %h %p # %r 100%%", "-l", "me", "host.example/2222").cli_opts.proxycmd).toBe("nc -X connect host.example 2222 # me 100%");
    expect(ok("-o", "ProxyCommand=x %n %k", "u@host.example/2222").cli_opts.proxycmd).toBe("x host.example host.example");
    // Any other token (ssh 9.2 expands no %d %u %C %j here either), or a "%" at the end: ssh's
    // percent_expand stops it before it connects, and so do we.
    for (const t of ["x", "d", "u", "C", "j"]) {
      fails(`Unknown token %${t} in ProxyCommand 'nc %h %${t}'`, "-o", `ProxyCommand=nc %h %${t}`, "h");
    }
    fails(`A "%" ends ProxyCommand 'nc %h 100%'`, "-o", "ProxyCommand=nc %h 100%", "h");
    expect(ok("-J", "nc %h %p", "h").cli_opts.proxycmd).toBe("nc %h %p");
    const { cli_opts } = ok("-o", "ProxyCommand=nc %h %p", "a/2022,c");
    expect(cli_opts.proxycmd).toBeNull();
    expect(cli_opts.proxyexec).toEqual(["dbclient", "-o", "ProxyCommand=nc %h %p", "-B", "c:22", "a/2022"]);
  });

  // CVE-2023-51385's way in: a host, user or port from a URL reaching the ProxyCommand's shell
  // through a token, or a host name written to known_hosts as a line or a pattern of its own.
  it("a host name with shell, pattern or control characters is refused, as OpenSSH's ssh refuses it; so are a user and a port a ProxyCommand token would carry", () => {
    for (const host of ["h$(touch x)", "h;id", "h`id`", "u@-oProxyCommand=x", "a b", "a\n* ssh-ed25519 AAAA", "*", "[*]", "h?", "!h", "h\x7f"]) {
      fails("hostname contains invalid characters", "-o", "ProxyCommand=nc %h %p", host);
      fails("hostname contains invalid characters", host);
    }
    fails("remote username contains invalid characters", "-o", "ProxyCommand=ssh -l %r -W %h:%p j", "-l", "u;id", "h");
    fails("remote username contains invalid characters", "-o", "ProxyCommand=ssh -l %r -W %h:%p j", "-l", "u -oProxyCommand=x", "h");
    fails("Bad port '22;id'", "-o", "ProxyCommand=nc %h %p", "-p", "22;id", "h");
    // Names as users have them still go through; a user only matters where %r is used.
    expect(ok("-o", "ProxyCommand=nc %h %p # %r", "-l", "DOMAIN\\first last", "-p", "ssh", "fe80::1%eth0").cli_opts.proxycmd).toBe("nc fe80::1%eth0 ssh # DOMAIN\\first last");
    expect(ok("-l", "u;id", "host-1.example_2").cli_opts.remotehost).toBe("host-1.example_2");
  });
});

describe("cli-runopts.c addforward (-L / -R)", () => {
  const fwds = (flag: string, ...specs: string[]) => {
    const { cli_opts } = ok(...specs.flatMap((s) => [flag, s]), "h");
    const list = flag === "-L" ? cli_opts.localfwds : cli_opts.remotefwds;
    return [...list].map((f) => ({ ...f }));
  };

  it.each([
    ["8080:localhost:80", null, 8080, "localhost", 80],
    ["127.0.0.1:8080:db:5432", "127.0.0.1", 8080, "db", 5432],
    [":8080:db:5432", "", 8080, "db", 5432],
    ["0:h:0", null, 0, "h", 0],
    ["1: h:2", null, 1, " h", 2],
  ])("%j", (spec, listenaddr, listenport, connectaddr, connectport) => {
    const expected = { listenaddr, listenport, connectaddr, connectport, have_reply: false, refused: false, globalreq: -1 };
    expect(fwds("-L", spec)).toEqual([expected]);
    expect(fwds("-R", spec)).toEqual([expected]);
  });

  it("-o LocalForward= / RemoteForward= take ssh's \"[bind:]port host:port\", as -L / -R", () => {
    const { cli_opts } = ok("-o", "LocalForward=8080 db:5432", "-o", "LocalForward 127.0.0.2:1 h:2", "-o", "RemoteForward=9 localhost:22", "h");
    expect([...cli_opts.localfwds].map((f) => [f.listenaddr, f.listenport, f.connectaddr, f.connectport])).toEqual([[null, 8080, "db", 5432], ["127.0.0.2", 1, "h", 2]]);
    expect([...cli_opts.remotefwds].map((f) => [f.listenport, f.connectaddr, f.connectport])).toEqual([[9, "localhost", 22]]);
    // What -L cannot say ends dbclient before it connects, as a bad -L does.
    fails("Bad TCP forward '[::1]:1 h:2'", "-o", "LocalForward=[::1]:1 h:2", "h");
    fails("Bad TCP forward '1080'", "-o", "RemoteForward=1080", "h");
  });

  it("keeps order, takes attached values, and -g leaves the address for later", () => {
    const { opts, cli_opts } = ok("-gL1:a:2", "-L", "3:b:4", "-R5:c:6", "h");
    expect([...cli_opts.localfwds].map((f) => f.connectaddr)).toEqual(["a", "b"]);
    expect([...cli_opts.remotefwds].map((f) => f.listenport)).toEqual([5]);
    expect(opts.listen_fwd_all).toBe(true);
    expect([...cli_opts.localfwds][0].listenaddr).toBeNull();
  });

  it.each(["1:2", "8080", "x:h:80", "1:h:y", "1:h:2:3:4", "[::1]:1:h:2", "a:1:h:"])("rejects %j", (spec) => {
    fails(`Bad TCP forward '${spec}'`, "-L", spec, "h");
    fails(`Bad TCP forward '${spec}'`, "-R", spec, "h");
  });

  it("rejects ports above 65535", () => {
    fails("Bad TCP port in '70000:h:80'", "-L", "70000:h:80", "h");
    fails("Bad TCP port in '80:h:65536'", "-R", "80:h:65536", "h");
  });
});

describe("cli-runopts.c -B netcat", () => {
  it("parses host:port", () => {
    expect(ok("-B", "db:5432", "h").cli_opts).toMatchObject({ netcat_host: "db", netcat_port: 5432 });
    expect(ok("-B:22", "h").cli_opts).toMatchObject({ netcat_host: "", netcat_port: 22 });
  });

  it("parses [ipv6]:port, the form multihop hands an IPv6 hop on in", () => {
    expect(ok("-B", "[::1]:22", "h").cli_opts).toMatchObject({ netcat_host: "::1", netcat_port: 22 });
  });

  it.each(["db", "db:1:2", "db:x", "db:65536", "::1:22", "[::1]", "[::1]:", "[::1]:1:2", "[::1]x:22"])("rejects %j", (spec) => {
    fails(`Bad netcat endpoint '${spec}'`, "-B", spec, "h");
  });

  it("ignores a command in netcat mode, with a note", () => {
    const { logs } = parse("-B", "db:1", "h", "ls");
    expect(logs).toEqual(["Ignoring command 'ls' in netcat mode"]);
  });
});

describe("cli-runopts.c -o", () => {
  it.each([
    ["BatchMode=yes", "batch_mode", true],
    ["batchmode=no", "batch_mode", false],
    ["BATCHMODE yes", "batch_mode", true],
    ["  BatchMode = y", "batch_mode", true],
    ["DisableTrivialAuth=true", "disable_trivial_auth", true],
    ["ExitOnForwardFailure=yes", "exit_on_fwd_failure", true],
    ["ForwardAgent=yes", "agent_fwd", true],
    ["IdentitiesOnly=yes", "identities_only", true],
    ["PasswordAuthentication=no", "password_authentication", false],
    ["Port=2200", "remoteport", "2200"],
    ["Port= 2200", "remoteport", "2200"],
    ["Port=", "remoteport", ""],
    ["ProxyCommand=nc %h %p", "proxycmd", "nc h 22"],
    ["StrictHostKeyChecking=accept-new", "always_accept_key", true],
    ["StrictHostKeyChecking=yes", "ask_hostkey", false],
    ["StrictHostKeyChecking=no", "no_hostkey_check", true],
    ["StrictHostKeyChecking=ask", "ask_hostkey", true],
    ["BindAddress=1.2.3.4:9", "bind_address", "1.2.3.4"],
  ] as const)("%j", (opt, field, value) => {
    const { cli_opts } = ok("-o", opt, "h");
    expect(cli_opts[field]).toBe(value);
  });

  it("sets the shared options", () => {
    const { opts } = ok("-oCompression=yes", "-o", "GatewayPorts=yes", "-o", "UseSyslog=yes", "-o", "ServerAliveInterval=30", "h");
    expect(opts).toMatchObject({ compression: true, listen_fwd_all: true, usingsyslog: true, keepalive_secs: 30 });
    fails("Bad keepalive 'soon'", "-o", "ServerAliveInterval=soon", "h");
  });

  it("reads GatewayPorts and Compression as yes/no, y and n included, in command-line order", () => {
    // Dropbear 2026.92 (42731b31): any GatewayPorts value used to mean yes.
    expect(ok("-o", "GatewayPorts=no", "h").opts.listen_fwd_all).toBe(false);
    expect(ok("-g", "-o", "GatewayPorts=n", "h").opts.listen_fwd_all).toBe(false);
    expect(ok("-o", "GatewayPorts=no", "-g", "h").opts.listen_fwd_all).toBe(true);
    expect(ok("-o", "GatewayPorts=y", "h").opts.listen_fwd_all).toBe(true);
    // Dropbear 2026.91 (b7c5b37e, 819a2510): off unless asked for.
    expect(ok("h").opts.compression).toBe(false);
    expect(ok("-o", "Compression=y", "h").opts.compression).toBe(true);
    expect(ok("-o", "Compression=y", "-o", "Compression=n", "h").opts.compression).toBe(false);
  });

  it("rejects a bad yes/no", () => {
    fails("Bad yes/no argument 'Yes'", "-o", "BatchMode=Yes", "h");
    fails("Bad yes/no argument 'maybe'", "-o", "StrictHostKeyChecking=maybe", "h");
  });

  it("warns about unknown options, including a longer word that starts with a known one", () => {
    for (const o of ["Foo=bar", "PortX=1", "Port"]) {
      const { logs, exit } = parse("-o", o, "h");
      expect(exit).toBeUndefined();
      expect(logs).toEqual([`Ignoring unknown configuration option '${o}'`]);
    }
  });

  it("keeps Dropbear's quirk: leading blanks let a run-on word match", () => {
    expect(ok("-o", " Port2200", "h").cli_opts.remoteport).toBe("2200");
  });

  it("the last -o KexAlgorithms= / HostKeyAlgorithms= counts, as the last -c does (one more narrows nothing)", () => {
    const opts = new runopts();
    const c = capture(() =>
      cli_getopts(["dbclient", "-o", "KexAlgorithms=ecdh-sha2-nistp256", "-o", "KexAlgorithms=curve25519-sha256,nope", "-o", "HostKeyAlgorithms=ssh-ed25519", "-o", "HostKeyAlgorithms=rsa-sha2-256", "h"], opts),
    );
    expect(c.exit).toBeUndefined();
    expect(c.logs).toEqual(["This Dropbear program does not support 'nope' kex algorithm"]);
    expect(opts.algos.sshkex.filter((a) => a.data !== null).map((a) => a.name)).toEqual(["curve25519-sha256"]);
    expect(opts.algos.sigalgs.map((a) => a.name)).toEqual(["rsa-sha2-256"]);
  });

  it("-o KexAlgorithms= / HostKeyAlgorithms= take OpenSSH's list syntax: +append, ^first, -remove, * and ? patterns", () => {
    const lists = (...args: string[]) => {
      const opts = new runopts();
      const c = capture(() => cli_getopts(["dbclient", ...args, "h"], opts));
      expect(c.exit).toBeUndefined();
      return { kex: opts.algos.sshkex.filter((a) => a.data !== null).map((a) => a.name), sig: opts.algos.sigalgs.map((a) => a.name), logs: c.logs };
    };
    const defaults = lists();
    expect(defaults.kex.length).toBeGreaterThan(2);
    // What ssh users pass for old servers: the defaults go on, with a word for a name not built
    // (SHA-1 ssh-rsa is off in Dropbear's default build, and so in ours).
    expect(lists("-o", "HostKeyAlgorithms=+ssh-rsa")).toEqual({ ...defaults, logs: ["This Dropbear program does not support 'ssh-rsa' host key algorithm"] });
    expect(lists("-o", "HostKeyAlgorithms=+rsa-sha2-256")).toEqual(defaults);
    expect(defaults.sig[0]).not.toBe("rsa-sha2-512");
    expect(lists("-o", "HostKeyAlgorithms=^rsa-sha2-512").sig).toEqual(["rsa-sha2-512", ...defaults.sig.filter((n) => n !== "rsa-sha2-512")]);
    expect(lists("-o", "HostKeyAlgorithms=-ssh-ed25519,rsa-sha2-*").sig).toEqual(defaults.sig.filter((n) => !n.startsWith("rsa-sha2-") && n !== "ssh-ed25519"));
    expect(lists("-o", "KexAlgorithms=curve25519-sha256*").kex).toEqual(defaults.kex.filter((n) => n.startsWith("curve25519-sha256")));
    expect(lists("-o", "KexAlgorithms=-diffie-hellman-group?*").kex).toEqual(defaults.kex.filter((n) => !n.startsWith("diffie-hellman-group")));
    // Nothing left, or nothing matched: no valid names, as before.
    expect(parse("-o", "HostKeyAlgorithms=-*").exit?.exitmsg).toBe("No valid host key algorithms specified");
    expect(parse("-o", "KexAlgorithms=nope*").exit?.exitmsg).toBe("No valid kex algorithms specified");
  });

  it("-o Ciphers= / MACs= are -c / -m in OpenSSH's list syntax; the last of -c and -o Ciphers counts", () => {
    const lists = (...args: string[]) => {
      const opts = new runopts();
      const c = capture(() => cli_getopts(["dbclient", ...args, "h"], opts));
      expect(c.exit).toBeUndefined();
      return { ciphers: opts.algos.sshciphers.map((a) => a.name), macs: opts.algos.sshhashes.map((a) => a.name) };
    };
    const defaults = lists();
    expect(lists("-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256")).toEqual({ ciphers: ["aes128-ctr"], macs: ["hmac-sha2-256"] });
    expect(lists("-o", "Ciphers=-aes*").ciphers).toEqual(defaults.ciphers.filter((n) => !n.startsWith("aes")));
    expect(lists("-o", "MACs=^hmac-sha2-512").macs).toEqual(["hmac-sha2-512", ...defaults.macs.filter((n) => n !== "hmac-sha2-512")]);
    expect(lists("-c", "aes256-ctr", "-o", "Ciphers=aes128-ctr").ciphers).toEqual(["aes128-ctr"]);
    expect(lists("-o", "Ciphers=aes128-ctr", "-c", "aes256-ctr").ciphers).toEqual(["aes256-ctr"]);
    expect(parse("-o", "Ciphers=-*").exit?.exitmsg).toBe("No valid Ciphers specified");
  });

  it("no first-kex guess (DROPBEAR_KEX_FIRST_FOLLOWS is off in our build), nor after -o KexAlgorithms= / HostKeyAlgorithms=", () => {
    expect(DROPBEAR_KEX_FIRST_FOLLOWS).toBe(false);
    expect(ok("h").cli_opts.kex_first_guess).toBe(false);
    expect(ok("-c", "aes128-ctr", "-m", "hmac-sha2-256", "h").cli_opts.kex_first_guess).toBe(false);
    expect(ok("-o", "KexAlgorithms=curve25519-sha256", "h").cli_opts.kex_first_guess).toBe(false);
    expect(ok("-o", "HostKeyAlgorithms=ssh-ed25519", "h").cli_opts.kex_first_guess).toBe(false);
  });

  it("-o help lists the options and exits 0", () => {
    const { exit, logs } = parse("-o", "help");
    expect(isQuiet(exit, 0)).toBe(true);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^Available options:\n\tBatchMode\n/);
    // Dropbear's 14 options plus our Ciphers, ConnectTimeout, KexAlgorithms, HostKeyAlgorithms,
    // IdentitiesOnly, LocalForward, MACs, RemoteForward, ServerAliveCountMax, User and UserKnownHostsFile.
    expect(logs[0].split("\n\t")).toHaveLength(26);
    expect(logs[0]).toContain("\tKexAlgorithms\n");
  });
});

describe("cli-runopts.c identity files", () => {
  const dir = mkdtempSync(join(tmpdir(), "cli-keys-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const k1 = join(dir, "k1");
  const k2 = join(dir, "k2");
  writeFileSync(k1, "key");
  writeFileSync(k2, "key");

  it("collects readable -i files in order and warns about others", () => {
    const missing = join(dir, "missing");
    const { result, logs } = parse("-i", k1, `-i${k2}`, "-o", `IdentityFile=${missing}`, "h");
    expect([...result!.cli_opts.privkeys]).toEqual([k1, k2]);
    expect(logs).toEqual([`Failed loading keyfile '${missing}'\n`]);
  });

  // ansible's ssh plugin writes `-o 'IdentityFile="path"'` and `-o 'User="name"'`; ssh takes the quotes off (C would not).
  it("-o values in double quotes are taken without them, as ssh takes them; a ProxyCommand keeps its quotes", () => {
    const { cli_opts } = ok("-o", `IdentityFile="${k1}"`, "-o", 'User="ans ible"', "-o", 'Port="2200"', "-o", 'BatchMode = "yes"', "h");
    expect([...cli_opts.privkeys]).toEqual([k1]);
    expect(cli_opts).toMatchObject({ username: "ans ible", remoteport: "2200", batch_mode: true });
    expect(ok("-o", 'User=a"b"', "h").cli_opts.username).toBe('a"b"');
    expect(ok("-o", 'ProxyCommand="nc %h %p"', "h").cli_opts.proxycmd).toBe('"nc h 22"');
  });

  it("adds ~/.ssh/id_dropbear, then OpenSSH's id_ed25519, id_ecdsa, id_rsa last, silently, only if they exist", () => {
    expect([...ok("h").cli_opts.privkeys]).toEqual([]);
    mkdirSync(join(home, ".ssh"), { recursive: true });
    const d = (f: string): string => join(home, ".ssh", f);
    for (const f of ["id_rsa", "id_dropbear", "id_ed25519"]) writeFileSync(d(f), "key");
    const withK1 = ok("-i", k1, "h").cli_opts;
    expect([...withK1.privkeys]).toEqual([k1, d("id_dropbear"), d("id_ed25519"), d("id_rsa")]);
    expect(isDefaultIdentity(withK1, k1)).toBe(false);
    expect(isDefaultIdentity(withK1, d("id_ed25519"))).toBe(true);
    // Named by -i too: tried once, as the user's own (its failures are then reported).
    const named = ok("-i", "~/.ssh/id_ed25519", "h").cli_opts;
    expect([...named.privkeys]).toEqual([d("id_ed25519"), d("id_dropbear"), d("id_rsa")]);
    expect(isDefaultIdentity(named, d("id_ed25519"))).toBe(false);
    for (const f of ["id_rsa", "id_ed25519"]) rmSync(d(f));
  });
});

describe("cli-runopts.c multihop", () => {
  it("splits off the last hop and builds the inner dbclient's argv", () => {
    const { opts, cli_opts } = ok("a,b/2022,u@c^23");
    expect(cli_opts).toMatchObject({ remotehost: "c", remoteport: "23", username: "u" });
    expect(cli_opts.proxyexec).toEqual(["dbclient", "-B", "c:23", "a,b/2022"]);
    expect(opts.compression).toBe(false);
  });

  it("passes -q, -y, BatchMode, Compression, -J, -W and -i on to the inner hops", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-hop-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const key = join(dir, "k");
    writeFileSync(key, "key");
    const { opts, cli_opts } = ok("-qyy", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "Compression=yes", "-J", "px", "-W", "65536", "-i", key, "a,c");
    expect(cli_opts.proxyexec).toEqual([
      "dbclient", "-q", "-y", "-y", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "Compression=yes",
      "-J", "px", "-W", "65536", "-i", key, "-B", "c:22", "a",
    ]);
    expect(cli_opts.proxycmd).toBeNull();
    expect(opts.compression).toBe(false);
  });

  it("hands an IPv6 hop on as -B [addr]:port", () => {
    const { cli_opts } = ok("a,u@::1/2022");
    expect(cli_opts).toMatchObject({ remotehost: "::1", remoteport: "2022" });
    expect(cli_opts.proxyexec).toEqual(["dbclient", "-B", "[::1]:2022", "a"]);
  });

  it("does not pass the default id_dropbear as -i", () => {
    mkdirSync(join(home, ".ssh"), { recursive: true });
    writeFileSync(join(home, ".ssh", "id_dropbear"), "key");
    const { cli_opts } = ok("a,c");
    expect(cli_opts.proxyexec).toEqual(["dbclient", "-B", "c:22", "a"]);
    expect([...cli_opts.privkeys]).toEqual([join(home, ".ssh", "id_dropbear")]);
  });

  it("glues back a -l user that holds a hop list (scp/rsync style)", () => {
    const { cli_opts } = ok("-l", "u1@a,u2", "c");
    expect(cli_opts).toMatchObject({ remotehost: "c", username: "u2" });
    expect(cli_opts.proxyexec?.at(-1)).toBe("u1@a");
  });

  it("rejects empty hops", () => {
    fails("Bad multi-hop hostnames", ",c");
    fails("Bad hostname.", "a,");
  });
});
