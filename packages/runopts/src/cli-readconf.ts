import { readdirSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import type { cli_runopts } from "@dropbear-ts/core";
import { DEBUG1, LOG_WARNING, dropbear_exit, dropbear_log, expand_homedir_path } from "@dropbear-ts/dbutil";

// The client's configuration file (cli-readconf.c). Dropbear builds it only with
// DROPBEAR_USE_SSH_CONFIG, reads ~/.ssh/dropbear_config, matches "Host" by exact name, uses only
// the first matching section and exits on any keyword it does not know. We read the file
// OpenSSH users already have, ~/.ssh/config, so it is read as ssh reads it (docs/deviations.md):
// Host patterns (* ? and !negation, several per line), every matching section applies and the
// first value obtained for a keyword wins; keywords we do not implement are ignored (with a
// warning when they sit in a section that applies to this host, so nothing is ignored
// silently). Include is followed and Match evaluated for the criteria that need only names.
// Command-line flags win over the file: cli_getopts applies them afterwards.

/** The keywords we act on (lower case, as matched). @dropbear cli-readconf.c config_options */
const config_options = ["host", "hostname", "port", "user", "identityfile", "proxyjump", "proxycommand", "include"] as const;
type cfg_option = (typeof config_options)[number];

/**
 * The file's keywords that are also dbclient's -o options, by lower-case keyword: ssh reads its
 * -o and its file alike, so a user's `StrictHostKeyChecking`, `ServerAliveInterval` or
 * `HostKeyAlgorithms` line does what the same -o does (cli-runopts.ts add_extendedopt).
 */
const CONFIG_EXTENDED_OPTIONS: ReadonlyMap<string, string> = new Map(
  [
    "BatchMode",
    "BindAddress",
    "Ciphers",
    "Compression",
    "ConnectTimeout",
    "ExitOnForwardFailure",
    "ForwardAgent",
    "GatewayPorts",
    "HostKeyAlgorithms",
    "IdentitiesOnly",
    "KexAlgorithms",
    "MACs",
    "PasswordAuthentication",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "StrictHostKeyChecking",
    "UserKnownHostsFile",
  ].map((name) => [name.toLowerCase(), name]),
);

/**
 * ssh's LocalForward / RemoteForward value, "[bind_address:]port host:hostport" (two words), as
 * dbclient's -L / -R argument, or null where that cannot say it: an IPv6 address in brackets, a
 * socket path, a dynamic (SOCKS) forward's single word.
 */
export function forwardSpec(words: readonly string[]): string | null {
  if (words.length !== 2 || words.some((w) => /[[\]/]/.test(w))) {
    return null;
  }
  return `${words[0]}:${words[1]}`;
}

/** Those of them whose value is yes or no, which ssh takes in any case (C's -o: lower case only). */
const CONFIG_FLAG_OPTIONS = new Set(["batchmode", "compression", "exitonforwardfailure", "forwardagent", "gatewayports", "identitiesonly", "passwordauthentication", "stricthostkeychecking"]);

/** What the file sets for this host, each keyword's first value. */
export interface ConfigSettings {
  hostname?: string;
  port?: string;
  user?: string;
  identityfiles: string[];
  /** IdentityFile values with %-tokens, expanded once the final host, port and user are known. */
  identitytemplates: IdentityTemplate[];
  proxyjump?: string;
  proxycommand?: string;
  /** -o options the file sets (CONFIG_EXTENDED_OPTIONS), "Name" → value and "file:line", each keyword's first. */
  extended: Map<string, { value: string; where: string }>;
  /** Every LocalForward and RemoteForward line, as -L / -R arguments (ssh applies them all). */
  localforwards: string[];
  remoteforwards: string[];
}

/** An IdentityFile value with tokens, the file it came from and the host named on the command line. */
export interface IdentityTemplate {
  value: string;
  filename: string;
  alias: string;
}

/** An IdentityFile value as a path: "~/..." from home, a relative path beside the file, as C does. */
function identityPath(value: string, filename: string): string {
  if (value.startsWith("~/")) {
    return expand_homedir_path(value);
  }
  return value.startsWith("/") ? value : `${dirname(filename)}/${value}`;
}

/**
 * An IdentityFile's tokens as ssh expands them (%% %d %h %i %L %l %n %p %r %u; ssh_config(5)
 * TOKENS), from the final host, port and user; any other token, or a "%" at the end, ends
 * dbclient, as in ssh.
 */
export function expandIdentityFile(t: IdentityTemplate, cli_opts: cli_runopts): string {
  const value = t.value.replace(/%(.?)/gs, (_m, c: string) => {
    switch (c) {
      case "%":
        return "%";
      case "d":
        return expand_homedir_path("~/").replace(/\/$/, "");
      case "h":
        return cli_opts.remotehost ?? "";
      case "i":
        return String(process.getuid?.() ?? "");
      case "L":
        return hostname().replace(/\..*$/s, "");
      case "l":
        return hostname();
      case "n":
        return t.alias;
      case "p":
        return cli_opts.remoteport ?? "22";
      case "r":
        return cli_opts.username ?? "";
      case "u":
        return cli_opts.own_user ?? "";
      default:
        return badToken(c, `IdentityFile '${t.value}' at ${t.filename}`);
    }
  });
  return identityPath(value, t.filename);
}

/** A token ssh does not expand where it is, or a "%" ending the value: ssh's error, in our words. */
function badToken(c: string, where: string): never {
  return dropbear_exit(c === "" ? `A "%" ends ${where}` : `Unknown token %${c} in ${where}`);
}

/** An ASCII letter's lower case (OpenSSH lowers host names and patterns with tolower in C's locale). */
function asciiLower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

/**
 * OpenSSH's match_pattern: `*` any run, `?` one character, the rest literal, ASCII letters in
 * either case where `foldCase` (host names as known_hosts and Match compare them). A walk over both strings that returns to the last `*` on a
 * mismatch, not a RegExp: known_hosts is matched line by line, and compiling a RegExp per line
 * cost a client with a few hundred lines milliseconds.
 */
export function matchPattern(name: string, pattern: string, foldCase: boolean): boolean {
  let n = 0;
  let p = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    const pc = p < pattern.length ? pattern.charCodeAt(p) : -1;
    if (pc === 0x2a) {
      starP = p++;
      starN = n;
    } else if (pc === 0x3f || (pc >= 0 && (foldCase ? asciiLower(pc) === asciiLower(name.charCodeAt(n)) : pc === name.charCodeAt(n)))) {
      p++;
      n++;
    } else if (starP >= 0) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 0x2a) {
    p++;
  }
  return p === pattern.length;
}

/**
 * Patterns against a host name: any positive match and no negated one. A Host line compares
 * letters exactly, as ssh's (and C's strcmp of the name); known_hosts and Match fold their case.
 */
export function hostMatches(host: string, patterns: readonly string[], foldCase = true): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith("!")) {
      if (matchPattern(host, p.slice(1), foldCase)) {
        return false;
      }
    } else if (matchPattern(host, p, foldCase)) {
      matched = true;
    }
  }
  return matched;
}

/** A value written as one "quoted word" without its quotes (ssh's `User "me"`, ansible's `-o User="me"`); any other as it is. */
export function unquoteValue(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/** "Key value", "Key=value" or "Key = value": the keyword and the rest of the line, unsplit (ProxyCommand's command). */
function splitLine(line: string): { key: string; value: string } | null {
  const m = /^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+)(.*?)\s*$/.exec(line);
  if (m === null) {
    return null;
  }
  return { key: m[1]!, value: m[2]! };
}

/**
 * A value's words as ssh splits them (OpenSSH's argv_split, misc.c): blanks separate words,
 * "..." and '...' quote, a backslash escapes a quote, a backslash or (outside quotes) a space,
 * and a word starting with '#' ends the line, so "Host web # the server" names one host and
 * "Port 2222 # ssh" is port 2222. Null for a quote left open.
 */
export function argv_split(s: string): string[] | null {
  const words: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === "#") {
      break;
    }
    let word = "";
    let quote = "";
    for (; i < s.length; i++) {
      const ch = s[i]!;
      const next = s[i + 1];
      if (ch === "\\") {
        if (next === "'" || next === '"' || next === "\\" || (quote === "" && next === " ")) {
          i++;
          word += next;
        } else {
          word += ch;
        }
      } else if (quote === "" && (ch === " " || ch === "\t")) {
        break;
      } else if (quote === "" && (ch === '"' || ch === "'")) {
        quote = ch;
      } else if (quote !== "" && ch === quote) {
        quote = "";
      } else {
        word += ch;
      }
    }
    if (quote !== "") {
      return null;
    }
    words.push(word);
  }
  return words;
}

/**
 * Whether a Match line applies, for the criteria that need nothing but the names: `all`,
 * `host` (the HostName set so far, else the host as given) and `originalhost` (as given), each
 * a comma-separated pattern list and each negated by a leading "!", all of which must hold, as
 * in ssh. A line with any other criterion (exec, user, localuser, canonical, final, ...) never
 * applies. @see OpenSSH readconf.c match_cfg_line
 */
function match_cfg_line(words: readonly string[], host: string, out: ConfigSettings): boolean {
  if (words.length === 0) {
    return false;
  }
  for (let i = 0; i < words.length; i++) {
    let attr = words[i]!.toLowerCase();
    const negate = attr.startsWith("!");
    if (negate) {
      attr = attr.slice(1);
    }
    if (attr === "all") {
      if (negate) {
        return false;
      }
      continue;
    }
    const arg = words[++i];
    let subject: string;
    if (attr === "host") {
      subject = out.hostname ?? host;
    } else if (attr === "originalhost") {
      subject = host;
    } else {
      return false;
    }
    if (arg === undefined || hostMatches(subject, arg.split(",")) === negate) {
      return false;
    }
  }
  return true;
}

/** How deep Include may nest, as ssh's READCONF_MAX_DEPTH. */
const READCONF_MAX_DEPTH = 16;

/** One path component of a glob(3) pattern (`*`, `?`, `[...]`, `[!...]`, `\\` escapes) as a RegExp. */
function globComponent(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\" && i + 1 < pattern.length) {
      // An escaped character is itself.
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    } else if (c === "*") {
      re += "[^/]*";
    } else if (c === "?") {
      re += "[^/]";
    } else if (c === "[" && pattern.indexOf("]", i + 2) > 0) {
      const end = pattern.indexOf("]", i + 2);
      let set = pattern.slice(i + 1, end);
      if (set.startsWith("!")) {
        set = `^${set.slice(1)}`;
      }
      re += `[${set.replace(/[\\\]]/g, "\\$&")}]`;
      i = end;
    } else {
      re += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }
  }
  // A wildcard does not match a leading ".", only a "." written in the pattern does.
  return new RegExp(pattern.startsWith(".") ? `^${re}$` : `^(?!\\.)${re}$`, "s");
}

/** The files an Include pattern names, sorted, as glob(3) finds them (none when nothing matches). */
function globPaths(pattern: string): string[] {
  let paths = [pattern.startsWith("/") ? "/" : ""];
  const parts = pattern.split("/").filter((p) => p !== "");
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of paths) {
      const join = (name: string): string => (dir === "" ? name : dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`);
      if (!/[*?[]/.test(part)) {
        next.push(join(part.replace(/\\(.)/gs, "$1")));
        continue;
      }
      const re = globComponent(part);
      let names: string[];
      try {
        names = readdirSync(dir === "" ? "." : dir);
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        if (re.test(name)) {
          next.push(join(name));
        }
      }
    }
    paths = next;
  }
  return paths;
}

/**
 * Read the lines of `filename` for `host` (the name given on the command line).
 * A line with a keyword and no value ends dbclient, as in C ("Missing value").
 * `openLines` reads an Include'd file's lines (null when it cannot be read); without it,
 * Include is ignored.
 * @dropbear cli-readconf.c read_config_file
 */
export function read_config_file(
  filename: string,
  lines: Iterable<string>,
  host: string,
  openLines?: (path: string) => Iterable<string> | null,
): ConfigSettings {
  const out: ConfigSettings = { identityfiles: [], identitytemplates: [], extended: new Map(), localforwards: [], remoteforwards: [] };
  readConfigLines(filename, lines, host, out, openLines, 0);
  return out;
}

function readConfigLines(
  filename: string,
  lines: Iterable<string>,
  host: string,
  out: ConfigSettings,
  openLines: ((path: string) => Iterable<string> | null) | undefined,
  depth: number,
): void {
  DEBUG1(() => `Reading '${filename}'`);
  // Lines before any Host line apply to every host, as in ssh; so do an Include'd file's
  // first lines, when the Include line applies.
  let in_host_section = true;
  let linenum = 0;
  for (const line of lines) {
    linenum++;
    // Comments are whole lines in ssh_config; C also drops a '#' mid-line, which would cut a
    // ProxyCommand, so only a '#' that starts the line (after blanks) is one.
    if (/^\s*(#|$)/.test(line)) {
      continue;
    }
    const kv = splitLine(line);
    if (kv === null) {
      const key = line.trim();
      dropbear_exit(`Missing value for ${key} at ${filename}:${linenum}`);
    }
    const key = kv.key.toLowerCase();
    // Our keywords' values are read as ssh reads them, in words; ProxyCommand keeps the line's
    // rest for the shell (a '#' in it too, as in ssh).
    let words: string[] = [];
    const extended = CONFIG_EXTENDED_OPTIONS.get(key);
    const forward = key === "localforward" || key === "remoteforward";
    if (key === "host" || key === "match" || extended !== undefined || forward || ((config_options as readonly string[]).includes(key) && key !== "proxycommand")) {
      const split = argv_split(kv.value);
      if (split === null) {
        dropbear_exit(`Unbalanced quotes for ${kv.key} at ${filename}:${linenum}`);
      }
      words = split;
      if (key !== "host" && key !== "match" && (words.length === 0 || words[0] === "")) {
        dropbear_exit(`Missing value for ${kv.key} at ${filename}:${linenum}`);
      }
      if (key !== "host" && key !== "match" && key !== "include" && key !== "userknownhostsfile" && !forward && words.length > 1) {
        // ssh refuses the line as well ("extra arguments at end of line").
        dropbear_exit(`Extra arguments for ${kv.key} at ${filename}:${linenum}`);
      }
    }
    if (key === "host") {
      in_host_section = hostMatches(host, words, false);
      continue;
    }
    if (key === "include") {
      // As ssh: each pattern (~/ from home, a relative one under ~/.ssh) is globbed and its
      // files read in order, in this section's context; a Host line in them ends at their end.
      if (in_host_section && openLines !== undefined) {
        if (depth >= READCONF_MAX_DEPTH) {
          dropbear_exit(`Include nested too deeply at ${filename}:${linenum}`);
        }
        for (const w of words) {
          const pattern = w.startsWith("~/") || w.startsWith("/") ? expand_homedir_path(w) : expand_homedir_path(`~/.ssh/${w}`);
          for (const path of globPaths(pattern)) {
            const included = openLines(path);
            if (included !== null) {
              readConfigLines(path, included, host, out, openLines, depth + 1);
            }
          }
        }
      }
      continue;
    }
    if (key === "match") {
      in_host_section = match_cfg_line(words, host, out);
      continue;
    }
    if (!in_host_section) {
      continue;
    }
    if (forward) {
      const spec = forwardSpec(words);
      if (spec === null) {
        // What -L and -R cannot say is passed over, as before, not the whole connection.
        dropbear_log(LOG_WARNING, `Ignoring ${kv.key} '${kv.value}' (not [bind:]port host:port) at ${filename}:${linenum}`);
      } else {
        (key === "localforward" ? out.localforwards : out.remoteforwards).push(spec);
      }
      continue;
    }
    if (extended !== undefined) {
      if (key === "userknownhostsfile" && words.length > 1) {
        // ssh reads several in turn; -o takes one. Taking the first alone would pass over keys
        // the others hold, so the line goes as it went before, unused.
        dropbear_log(LOG_WARNING, `Ignoring ${kv.key} with more than one file at ${filename}:${linenum}`);
      } else if (!out.extended.has(extended)) {
        const value = CONFIG_FLAG_OPTIONS.has(key) ? words[0]!.toLowerCase() : words[0]!;
        // ssh's "off" for StrictHostKeyChecking is its "no".
        out.extended.set(extended, { value: key === "stricthostkeychecking" && value === "off" ? "no" : value, where: `${filename}:${linenum}` });
      }
      continue;
    }
    if (!(config_options as readonly string[]).includes(key)) {
      dropbear_log(LOG_WARNING, `Ignoring unsupported option ${kv.key} at ${filename}:${linenum}`);
      continue;
    }
    const cfg_opt = key as cfg_option;
    // A whole ProxyCommand in quotes is the command.
    const cfg_val = cfg_opt === "proxycommand" ? unquoteValue(kv.value) : words[0]!;
    switch (cfg_opt) {
      case "hostname":
        out.hostname ??= cfg_val.replace(/%([h%])/g, (_m, t: string) => (t === "h" ? host : "%"));
        break;
      case "port":
        out.port ??= cfg_val;
        break;
      case "user":
        out.user ??= cfg_val;
        break;
      case "identityfile":
        if (cfg_val.includes("%")) {
          out.identitytemplates.push({ value: cfg_val, filename, alias: host });
        } else {
          out.identityfiles.push(identityPath(cfg_val, filename));
        }
        break;
      case "proxyjump":
        out.proxyjump ??= cfg_val;
        break;
      case "proxycommand":
        out.proxycommand ??= cfg_val;
        break;
      case "include":
      default:
        break;
    }
  }
}

/**
 * OpenSSH's ProxyJump list ("[user@]host[:port]" or "ssh://" URIs, comma-separated; "none" for
 * no jump) as dbclient's multihop hops ("user@host/port,..."); IPv6 literals in brackets keep
 * their colons.
 */
export function proxyjumpToHops(proxyjump: string): string | null {
  if (proxyjump.toLowerCase() === "none") {
    return null;
  }
  return proxyjump
    .split(",")
    .map((hop) => {
      const fromUri = sshUriToHop(hop);
      if (fromUri !== null) {
        return fromUri;
      }
      const at = hop.lastIndexOf("@");
      const user = at >= 0 ? hop.slice(0, at + 1) : "";
      let rest = hop.slice(at + 1);
      let port = "";
      const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
      if (m !== null) {
        rest = m[1]!;
        port = m[2] ?? "";
      } else {
        const colon = rest.lastIndexOf(":");
        if (colon >= 0 && rest.indexOf(":") === colon) {
          port = rest.slice(colon + 1);
          rest = rest.slice(0, colon);
        }
      }
      return `${user}${rest}${port !== "" ? `/${port}` : ""}`;
    })
    .join(",");
}

/**
 * One ProxyJump hop written as an ssh URI, "ssh://[user[;params]@]host[:port][/]"
 * (draft-ietf-secsh-scp-sftp-ssh-uri), as a multihop hop; null when it is not one. As ssh
 * reads it: connection parameters are ignored, the user is URL-decoded, and a URI with a
 * path, an empty user or a bad port is refused.
 */
function sshUriToHop(hop: string): string | null {
  if (!hop.startsWith("ssh://")) {
    return null;
  }
  const bad = (): never => dropbear_exit(`Bad ProxyJump '${hop}'`);
  let rest = hop.slice("ssh://".length);
  let user = "";
  const at = rest.indexOf("@");
  if (at >= 0) {
    const encoded = rest.slice(0, at).replace(/;.*$/s, "");
    let decoded: string;
    try {
      decoded = decodeURIComponent(encoded.replace(/\+/g, " "));
    } catch {
      return bad();
    }
    // A multihop hop cannot carry an "@", a "," or a NUL in its user.
    if (decoded === "" || /[@,\0]/.test(decoded)) {
      return bad();
    }
    user = `${decoded}@`;
    rest = rest.slice(at + 1);
  }
  // The host (an IPv6 literal in brackets), an optional port, and at most an empty path.
  const m = /^(?:\[([^\]@,]*)\]|([^:/[\]@,]*))(?::([^/]*))?\/?$/.exec(rest);
  const host = m?.[1] ?? m?.[2] ?? "";
  const port = m?.[3];
  const portOk = port === undefined || (/^[0-9]{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535);
  if (host === "" || !portOk) {
    return bad();
  }
  return `${user}${host}${port !== undefined ? `/${port}` : ""}`;
}

/**
 * Whether a host name may reach a shell command or known_hosts: not an option ("-..."), no
 * shell metacharacter, quote, comma, white space or control character (OpenSSH's
 * ssh_valid_hostname, readconf.c, which ssh applies to the command line's host), nor a
 * pattern character (* ? !): written to known_hosts, such a name is a pattern matching
 * other hosts, and in a shell a glob.
 */
export function validHostname(s: string): boolean {
  return !s.startsWith("-") && !/['`"$\\;&<>|(){},*?!\x00-\x20\x7f]/.test(s);
}

/**
 * Whether a user name may be put in a shell command: OpenSSH's ssh_valid_ruser (no option,
 * control character or shell metacharacter; no "-" after white space; no "\\" at the end).
 */
export function validRuser(s: string): boolean {
  return !s.startsWith("-") && !/['`";&<>|(){}\x00-\x1f\x7f]/.test(s) && !/\s-/.test(s) && !s.endsWith("\\");
}

/**
 * ProxyCommand's %h %n %k %p %r %% tokens, as ssh expands them (%n the host as the command
 * line names it, before HostName; %k the same, as ssh's without a HostKeyAlias); any other, or a
 * "%" at the end, ends dbclient before it connects, as ssh's percent_expand. The command is
 * run by the shell, so a token whose value could do more than name the host, port or user ends
 * dbclient, in OpenSSH's words (CVE-2023-51385: a host name such as "h$(cmd)" from a git
 * submodule URL ran cmd through a configured ProxyCommand).
 */
export function expandProxyCommand(cmd: string, cli_opts: cli_runopts): string {
  return cmd.replace(/%(.?)/gs, (_m, t: string) => {
    switch (t) {
      case "n":
      case "k": {
        const host = cli_opts.remotehost_arg ?? cli_opts.remotehost ?? "";
        if (!validHostname(host)) {
          dropbear_exit("hostname contains invalid characters");
        }
        return host;
      }
      case "h": {
        const host = cli_opts.remotehost ?? "";
        if (!validHostname(host)) {
          dropbear_exit("hostname contains invalid characters");
        }
        return host;
      }
      case "p": {
        const port = cli_opts.remoteport ?? "22";
        // A port number or a service name (/etc/services: letters, digits, "-", "_", ".").
        if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/.test(port)) {
          dropbear_exit(`Bad port '${port}'`);
        }
        return port;
      }
      case "r": {
        const user = cli_opts.username ?? "";
        if (!validRuser(user)) {
          dropbear_exit("remote username contains invalid characters");
        }
        return user;
      }
      case "%":
        return "%";
      default:
        return badToken(t, `ProxyCommand '${cmd}'`);
    }
  });
}
