import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cli_getopts } from "../src/cli-runopts.js";
import { hostMatches, proxyjumpToHops, read_config_file } from "../src/cli-readconf.js";
import { capture } from "./capture.js";

// ~/.ssh/config as dbclient reads it (cli-readconf.c, extended to OpenSSH's matching rules):
// Host patterns, first value wins, flags win over the file, ProxyJump/ProxyCommand mapped to
// multihop / -J.

const home = mkdtempSync(join(tmpdir(), "cli-readconf-"));
const savedHome = process.env.HOME;
beforeAll(() => {
  process.env.HOME = home;
  mkdirSync(join(home, ".ssh"), { recursive: true });
});
afterAll(() => {
  process.env.HOME = savedHome;
  rmSync(home, { recursive: true, force: true });
});
beforeEach(() => writeFileSync(join(home, ".ssh", "config"), ""));

function config(text: string): void {
  writeFileSync(join(home, ".ssh", "config"), text);
}
function parse(...args: string[]) {
  const c = capture(() => cli_getopts(["dbclient", ...args]));
  if (c.exit !== undefined) throw new Error(`exit: ${c.exit.exitmsg}`);
  return { ...c.result!, logs: c.logs };
}

describe("Host patterns", () => {
  it("matches * ? and !negation, several patterns per line, case-insensitively", () => {
    expect(hostMatches("web1.example.com", ["*.example.com"])).toBe(true);
    expect(hostMatches("web1", ["web?"])).toBe(true);
    expect(hostMatches("web10", ["web?"])).toBe(false);
    expect(hostMatches("WEB1", ["web1"])).toBe(true);
    expect(hostMatches("db", ["web*", "db"])).toBe(true);
    expect(hostMatches("bastion.example.com", ["*.example.com", "!bastion.*"])).toBe(false);
    expect(hostMatches("a.b", ["a+b"])).toBe(false);
  });

  it("matches as OpenSSH's match_pattern: any run, one character, ASCII case, backtracking to the last *", () => {
    const cases: [string, string, boolean][] = [
      ["", "", true],
      ["", "*", true],
      ["", "?", false],
      ["a", "", false],
      ["abc", "a*c", true],
      ["abc", "a*b", false],
      ["abcbd", "a*b?", true],
      ["aXbYbZ", "a*b*Z", true],
      ["mississippi", "m*iss*p?i", true],
      ["mississippi", "m*iss*x*", false],
      ["[127.0.0.1]:2222", "[127.0.0.1]:*", true],
      ["[127.0.0.1]:2222", "[127.0.0.1]:22", false],
      ["Host.Example.COM", "host.example.com", true],
      ["h\u00e9", "H\u00c9", false],
      ["a\nb", "a?b", true],
      ["ab", "**a**b**", true],
      ["a*b", "a\\*b", false],
    ];
    for (const [name, pattern, want] of cases) {
      expect(hostMatches(name, [pattern]), `${JSON.stringify(name)} ~ ${JSON.stringify(pattern)}`).toBe(want);
    }
  });

  it("a Host line compares letters exactly, as ssh's and C's (known_hosts and Match fold case)", () => {
    expect(hostMatches("WEB1", ["web1"], false)).toBe(false);
    expect(hostMatches("web1", ["WEB*"], false)).toBe(false);
    expect(hostMatches("Web1", ["Web?"], false)).toBe(true);
    const lines = ["Host Web", "  HostName 127.0.0.9", "Match host web", "  User folded"];
    expect(read_config_file("/x/config", lines, "web").hostname).toBeUndefined();
    expect(read_config_file("/x/config", lines, "Web").hostname).toBe("127.0.0.9");
    expect(read_config_file("/x/config", lines, "WEB").user).toBe("folded");
  });

  it("first value wins across every matching section; other sections are skipped", () => {
    const c = read_config_file(
      "/x/config",
      ["Port 2000", "Host other", "  HostName wrong", "Host alias", "  HostName 127.0.0.9", "  User first", "Host *", "  User second", "  Port 3000", "  IdentityFile ~/.ssh/k1", "  IdentityFile rel/k2"],
      "alias",
    );
    expect(c.hostname).toBe("127.0.0.9");
    expect(c.user).toBe("first");
    expect(c.port).toBe("2000");
    expect(c.identityfiles).toEqual([join(home, ".ssh/k1"), "/x/rel/k2"]);
  });

  it("Match all, host (the HostName so far) and originalhost apply as in ssh; other criteria never do", () => {
    const lines = ["Host a", "  HostName real.example", "Match host *.example !originalhost b", "  Port 1111", "Match originalhost a,c", "  User ua", "Match exec true", "  User exec", "Match all", "  User everyone", "  Port 2222", "Match !all", "  HostName never"];
    expect(read_config_file("/x/config", lines, "a")).toMatchObject({ hostname: "real.example", port: "1111", user: "ua" });
    expect(read_config_file("/x/config", lines, "b")).toMatchObject({ port: "2222", user: "everyone" });
    expect(read_config_file("/x/config", lines, "d.example")).toMatchObject({ port: "1111", user: "everyone" });
    expect(read_config_file("/x/config", lines, "d.example").hostname).toBeUndefined();
  });

  it("Key=value and quoted values; ProxyCommand keeps its spaces and a '#' inside it", () => {
    const c = read_config_file("/x/config", ['Host h', '  ProxyCommand = nc -X 5 -x "proxy:1080" %h %p # not a comment', '# a comment', "  Port=22"], "h");
    expect(c.proxycommand).toBe('nc -X 5 -x "proxy:1080" %h %p # not a comment');
    expect(c.port).toBe("22");
  });

  it("values are split as ssh splits them: a '#' word ends the line, quotes and escapes, HostName's %%", () => {
    const lines = ["Host web # the web server", "  HostName real-%h.%%x # where", "  Port 2222 # not 22", '  User "bob smith" # quoted', "Host web2", "  User other", '  IdentityFile "~/my key"'];
    const c = read_config_file("/x/config", lines, "web");
    expect(c).toMatchObject({ hostname: "real-web.%x", port: "2222", user: "bob smith", identityfiles: [] });
    // "#", "the", "web" and "server" were never patterns: host "the" takes nothing from "Host web # the ...".
    expect(read_config_file("/x/config", lines, "the").hostname).toBeUndefined();
    expect(read_config_file("/x/config", lines, "web2").identityfiles).toEqual([join(home, "my key")]);
    expect(capture(() => read_config_file("/x/config", ["Port 22 23"], "h")).exit?.exitmsg).toBe("Extra arguments for Port at /x/config:1");
    expect(capture(() => read_config_file("/x/config", ["User # nobody"], "h")).exit?.exitmsg).toBe("Missing value for User at /x/config:1");
    expect(capture(() => read_config_file("/x/config", ['User "bob'], "h")).exit?.exitmsg).toBe("Unbalanced quotes for User at /x/config:1");
  });
});

describe("cli_getopts with ~/.ssh/config", () => {
  it("an alias takes HostName, Port and User", () => {
    config("Host myalias\n  HostName 127.0.0.7\n  Port 2222\n  User alice\n");
    const { cli_opts } = parse("myalias");
    expect(cli_opts.remotehost).toBe("127.0.0.7");
    expect(cli_opts.remoteport).toBe("2222");
    expect(cli_opts.username).toBe("alice");
  });

  it("flags win: -p, -l and user@host/port over the file", () => {
    config("Host myalias\n  HostName 127.0.0.7\n  Port 2222\n  User alice\n");
    expect(parse("-p", "1", "-l", "bob", "myalias").cli_opts).toMatchObject({ remoteport: "1", username: "bob", remotehost: "127.0.0.7" });
    expect(parse("carol@myalias/5").cli_opts).toMatchObject({ remoteport: "5", username: "carol", remotehost: "127.0.0.7" });
    expect(parse("-o", "Port=6", "-o", "User=dave", "myalias").cli_opts).toMatchObject({ remoteport: "6", username: "dave" });
  });

  it("IdentityFile is loaded (a missing one warned about), after -i keys", () => {
    const k = join(home, "idk");
    writeFileSync(k, "x");
    config(`Host h\n  IdentityFile ${k}\n  IdentityFile ~/missing-key\n`);
    const r = parse("h");
    expect([...r.cli_opts.privkeys]).toContain(k);
    expect(r.logs.join("\n")).toMatch(/Failed loading keyfile '.*missing-key'/);
  });

  it("Include: relative to ~/.ssh, globbed in order, in the including section's context, and nested", () => {
    mkdirSync(join(home, ".ssh", "conf.d"), { recursive: true });
    writeFileSync(join(home, ".ssh", "conf.d", "b.conf"), "Host inc\n  User from-b\n  Port 2002\n");
    writeFileSync(join(home, ".ssh", "conf.d", "a.conf"), "Host inc\n  User from-a\nInclude ~/.ssh/nested\n");
    writeFileSync(join(home, ".ssh", "conf.d", ".hidden.conf"), "Host inc\n  HostName hidden\n");
    writeFileSync(join(home, ".ssh", "nested"), "Host inc\n  HostName 127.0.0.5\n");
    writeFileSync(join(home, ".ssh", "only-h"), "User from-only-h\n");
    config("Include conf.d/*.conf missing-file\nHost h\n  Include only-h\nHost other\n  Include only-h\n");
    const r = parse("inc");
    expect(r.cli_opts).toMatchObject({ username: "from-a", remoteport: "2002", remotehost: "127.0.0.5" });
    expect(r.logs.join("\n")).not.toMatch(/Include/);
    // An Include inside a Host section is read only for that host.
    expect(parse("h").cli_opts.username).toBe("from-only-h");
    expect(parse("x").cli_opts.username).not.toBe("from-only-h");
    // glob(3)'s escapes: "br\\[1\\]" names the file "br[1]", not "br1".
    writeFileSync(join(home, ".ssh", "br[1]"), "User from-br\n");
    writeFileSync(join(home, ".ssh", "br1"), "User from-br1\n");
    config("Include br\\[1\\]\n");
    expect(parse("x").cli_opts.username).toBe("from-br");
  });

  it("IdentityFile tokens are expanded from the final host, port and user, as ssh does", () => {
    const own = userInfo().username;
    const k1 = join(home, ".ssh", "bob@127.0.0.7-h-2022%");
    const k2 = join(home, `k-${own}`);
    writeFileSync(k1, "x");
    writeFileSync(k2, "x");
    config("Host h\n  HostName 127.0.0.7\n  User alice\n  IdentityFile ~/.ssh/%r@%h-%n-%p%%\n  IdentityFile %d/k-%u\n");
    expect([...parse("-p", "2022", "bob@h").cli_opts.privkeys]).toEqual(expect.arrayContaining([k1, k2]));
    config("Host h\n  IdentityFile ~/%z\n");
    expect(() => parse("h")).toThrow(/Unknown token %z in IdentityFile/);
    config("Host h\n  IdentityFile ~/k%\n");
    expect(() => parse("h")).toThrow(/A "%" ends IdentityFile/);
  });

  it("an unsupported keyword in a section for this host is warned about, elsewhere ignored quietly", () => {
    config("Host h\n  VisualHostKey yes\nHost other\n  AddKeysToAgent yes\n");
    const r = parse("h");
    expect(r.logs.join("\n")).toMatch(/Ignoring unsupported option VisualHostKey/);
    expect(r.logs.join("\n")).not.toMatch(/AddKeysToAgent/);
  });

  it("the keywords -o knows do what -o does, each keyword's first value, in any case for yes/no", () => {
    const kh = join(home, "kh");
    config(
      `Host h\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile ${kh}\n  ServerAliveInterval 7\n  ForwardAgent Yes\n  BatchMode yes\n  IdentitiesOnly YES\n` +
        "  PasswordAuthentication no\n  GatewayPorts yes\n  ExitOnForwardFailure yes\n  BindAddress 127.0.0.2\n  KexAlgorithms curve25519-sha256\n" +
        "  HostKeyAlgorithms -rsa-sha2-*\nHost *\n  ServerAliveInterval 99\n  Compression yes\n",
    );
    const { opts, cli_opts, logs } = parse("h");
    expect(logs).toEqual([]);
    expect(cli_opts).toMatchObject({ always_accept_key: true, no_hostkey_check: false, known_hosts_file: kh, agent_fwd: true, batch_mode: true, identities_only: true });
    expect(cli_opts).toMatchObject({ password_authentication: false, exit_on_fwd_failure: true, bind_address: "127.0.0.2", kex_first_guess: false });
    expect(opts).toMatchObject({ keepalive_secs: 7, listen_fwd_all: true, compression: true });
    expect(opts.algos.sshkex.filter((a) => a.data !== null).map((a) => a.name)).toEqual(["curve25519-sha256"]);
    expect(opts.algos.sigalgs.map((a) => a.name).filter((n) => n.startsWith("rsa-sha2-"))).toEqual([]);
    expect(opts.algos.sigalgs.length).toBeGreaterThan(0);
    config("Host h\n  Ciphers aes256-ctr,nope-c\n  MACs hmac-sha2-512,nope-m\n");
    const withAlgos = parse("h");
    const algos = withAlgos.opts.algos;
    expect([algos.sshciphers.map((a) => a.name), algos.sshhashes.map((a) => a.name)]).toEqual([["aes256-ctr"], ["hmac-sha2-512"]]);
    // Names only OpenSSH has are no news at every connection (the file is OpenSSH's too).
    expect(withAlgos.logs).toEqual([]);
    expect(parse("-c", "aes128-ctr", "h").opts.algos.sshciphers.map((a) => a.name)).toEqual(["aes128-ctr"]);
    // ssh's "off"; and no check at all for "no", as -o StrictHostKeyChecking=no.
    config("Host h\n  StrictHostKeyChecking off\n");
    expect(parse("h").cli_opts.no_hostkey_check).toBe(true);
  });

  it("flags and -o win over the file's -o keywords; the file's are the target's, not a jump host's", () => {
    config("Host h\n  StrictHostKeyChecking no\n  ServerAliveInterval 7\n  ForwardAgent yes\n  KexAlgorithms curve25519-sha256\n  BatchMode yes\n  Compression yes\n  ProxyJump j\n");
    const { opts, cli_opts } = parse("-y", "-K", "3", "-o", "forwardagent=no", "-o", "KexAlgorithms=sntrup761x25519-sha512", "h");
    expect(cli_opts).toMatchObject({ always_accept_key: true, no_hostkey_check: false, agent_fwd: false, batch_mode: true });
    expect(opts.keepalive_secs).toBe(3);
    expect(opts.algos.sshkex.filter((a) => a.data !== null).map((a) => a.name)).toEqual(["sntrup761x25519-sha512"]);
    // The jump's dbclient gets the command line's -y alone, and the outer hop no compression.
    expect(cli_opts.proxyexec).toEqual(["dbclient", "-y", "-B", "h:22", "j"]);
    expect(opts.compression).toBe(false);
  });

  it("every LocalForward and RemoteForward line is an -L / -R; what those cannot say is warned about and passed over", () => {
    config("Host h\n  LocalForward 8080 db:5432\n  LocalForward 127.0.0.2:8081 db:5433\n  RemoteForward 9000 localhost:22\n  LocalForward [::1]:8082 db:1\n  RemoteForward 1080\n");
    const { cli_opts, logs } = parse("h");
    const fwds = (l: typeof cli_opts.localfwds) => [...l].map((f) => [f.listenaddr, f.listenport, f.connectaddr, f.connectport]);
    expect(fwds(cli_opts.localfwds)).toEqual([[null, 8080, "db", 5432], ["127.0.0.2", 8081, "db", 5433]]);
    expect(fwds(cli_opts.remotefwds)).toEqual([[null, 9000, "localhost", 22]]);
    expect(logs).toEqual([
      expect.stringMatching(/Ignoring LocalForward '\[::1\]:8082 db:1' \(not \[bind:\]port host:port\) at .*config:5/),
      expect.stringMatching(/Ignoring RemoteForward '1080' .* at .*config:6/),
    ]);
    // A jump host's section, read by the inner dbclient (-B): its forwards are not bound there.
    const inner = parse("-B", "target:22", "h").cli_opts;
    expect([...inner.localfwds, ...inner.remotefwds]).toEqual([]);
  });

  it("a bad value for one of them ends dbclient as its -o would, saying where the line is", () => {
    for (const [line, msg] of [
      ["ConnectTimeout soon", "Bad ConnectTimeout 'soon'"],
      ["StrictHostKeyChecking maybe", "Bad yes/no argument 'maybe'"],
      ["KexAlgorithms nope", "No valid kex algorithms specified"],
    ]) {
      config(`Host h\n  ${line}\n`);
      expect(() => parse("h")).toThrow(`${msg} at ${join(home, ".ssh", "config")}:2`);
    }
  });

  it("UserKnownHostsFile with several files is warned about and not used (-o takes one)", () => {
    config("Host h\n  UserKnownHostsFile ~/.ssh/known_hosts ~/.ssh/known_hosts2\n");
    const r = parse("h");
    expect(r.cli_opts.known_hosts_file).toBeNull();
    expect(r.logs.join("\n")).toMatch(/Ignoring UserKnownHostsFile with more than one file at .*config:2/);
  });

  it("ProxyJump becomes multihop: the inner dbclient reaches the jumps, -B the target", () => {
    config("Host target\n  HostName 10.1.1.1\n  Port 2200\n  ProxyJump ju@jump1:2022,[::1]:23\n");
    const { cli_opts } = parse("target");
    expect(cli_opts.remotehost).toBe("10.1.1.1");
    expect(cli_opts.proxyexec).not.toBeNull();
    const argv = cli_opts.proxyexec!;
    expect(argv.slice(-3)).toEqual(["-B", "10.1.1.1:2200", "ju@jump1/2022,::1/23"]);
  });

  it("a ProxyJump to the host itself (Host * without !jumphost) is a loop, refused as ssh does", () => {
    config("Host *\n  ProxyJump jump\n");
    expect(() => parse("jump")).toThrow(/jumphost loop via jump/);
    expect(parse("target").cli_opts.proxyexec).not.toBeNull();
    config("Host *\n  ProxyJump u@jump:2200\n");
    expect(() => parse("-p", "2200", "u@jump")).toThrow(/jumphost loop via jump/);
    // Another user or port on the same host is a real jump.
    expect(parse("v@jump/2200").cli_opts.proxyexec).not.toBeNull();
  });

  it("ProxyCommand becomes -J with %h %p %r; -J on the command line wins", () => {
    config("Host t\n  HostName 10.0.0.2\n  User u\n  ProxyCommand nc %h %p # as %r\n");
    expect(parse("t").cli_opts.proxycmd).toBe("nc 10.0.0.2 22 # as u");
    // %n (and %k, without HostKeyAlias) is the host as typed, before HostName, as in ssh.
    config("Host t\n  HostName 10.0.0.2\n  ProxyCommand nc %h %p # %n %k\n");
    expect(parse("u@t/2200").cli_opts.proxycmd).toBe("nc 10.0.0.2 2200 # t t");
    expect(parse("-o", "ProxyCommand=x %n:%h", "t").cli_opts.proxycmd).toBe("x t:10.0.0.2");
    expect(parse("-J", "mine", "t").cli_opts.proxycmd).toBe("mine");
  });

  it("-o ProxyCommand=none connects directly, over the file's ProxyCommand or ProxyJump (as ssh)", () => {
    config("Host t\n  HostName 127.0.0.1\n  ProxyCommand /no/such/proxy %h %p\nHost j\n  HostName 127.0.0.1\n  ProxyJump u@jump\n");
    for (const none of ["none", "NONE"]) {
      const viaCommand = parse("-o", `ProxyCommand=${none}`, "t").cli_opts;
      expect([viaCommand.proxycmd, viaCommand.proxyexec]).toEqual([null, null]);
      const viaJump = parse("-o", `ProxyCommand=${none}`, "j").cli_opts;
      expect([viaJump.proxycmd, viaJump.proxyexec, viaJump.remotehost]).toEqual([null, null, "127.0.0.1"]);
    }
    // Without a file entry too, and a multihop's inner dbclient is not handed it.
    expect(parse("-o", "ProxyCommand=none", "h").cli_opts.proxycmd).toBeNull();
    expect(parse("-o", "ProxyCommand=none", "a,b").cli_opts.proxyexec).not.toContain("ProxyCommand=none");
    // -J's program is run whatever its name, as C runs it.
    expect(parse("-J", "none", "h").cli_opts.proxycmd).toBe("none");
  });

  it("a multihop host list does not read the file (as C)", () => {
    config("Host a\n  HostName 127.0.0.7\n");
    expect(parse("a,a").cli_opts.remotehost).toBe("a");
  });

  it("proxyjumpToHops: none, user, ports, IPv6", () => {
    expect(proxyjumpToHops("none")).toBeNull();
    expect(proxyjumpToHops("h")).toBe("h");
    expect(proxyjumpToHops("u@h:1,[fe80::1]:2,u2@[::1]")).toBe("u@h/1,fe80::1/2,u2@::1");
  });

  it("proxyjumpToHops: ssh URIs, as ssh reads them (parameters ignored, the user URL-decoded, no path)", () => {
    expect(proxyjumpToHops("ssh://u@h:2022,ssh://h2,ssh://[::1]:23/")).toBe("u@h/2022,h2,::1/23");
    expect(proxyjumpToHops("ssh://a%20b;fp=x@h/,j")).toBe("a b@h,j");
    expect(proxyjumpToHops("ssh://a+b@h")).toBe("a b@h");
    for (const bad of ["ssh://@h", "ssh://u@", "ssh://h/path", "ssh://h:0", "ssh://h:65536", "ssh://h:", "ssh://h:x", "ssh://%zz@h", "ssh://a%40b@h", "ssh://u@h@x", "ssh://[::1", "ssh://::1"]) {
      expect(() => proxyjumpToHops(bad), bad).toThrow(/Bad ProxyJump/);
    }
  });
});
