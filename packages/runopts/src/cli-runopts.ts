import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { userInfo } from "node:os";
import {
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_KEEPALIVE,
  DEFAULT_MAX_DURATION,
  DROPBEAR_CLI_COMPRESSION,
  DROPBEAR_DEFAULT_CLI_AUTHKEY,
  DROPBEAR_MAX_LINE_LENGTH,
  DROPBEAR_VERSION,
} from "@dropbear-ts/options";
import { fileLines } from "@dropbear-ts/buffer";
import {
  fsPath,
  argBytes,
  argText,
  bytesText,
  textShown,
  DEBUG1,
  LOG_INFO,
  LOG_WARNING,
  ascii_isspace,
  ascii_tolower,
  DropbearExit,
  dropbear_exit,
  dropbear_log,
  exitQuietly,
  expand_homedir_path,
  get_debug_trace,
  list_append,
  m_str_to_uint,
  set_debug_trace,
  type m_list,
} from "@dropbear-ts/dbutil";
import { algo_tables_new, check_user_algos } from "@dropbear-ts/algo";
import { OUR_DEFAULT_RECV_WINDOW, TCPFwdEntry, cli_runopts, runopts, type algo_type } from "@dropbear-ts/core";
import {
  parse_ciphers_macs,
  parse_recv_window,
  print_algos,
  print_version,
  split_address_port,
  flagValue,
  flagValueText,
  uintOption,
} from "./common-runopts.js";
import { expandIdentityFile, expandProxyCommand, forwardSpec, matchPattern, proxyjumpToHops, read_config_file, unquoteValue, validHostname, type ConfigSettings } from "./cli-readconf.js";

/** The configuration file dbclient reads: OpenSSH's, not Dropbear's ~/.ssh/dropbear_config (docs/deviations.md). */
const CLI_SSH_CONFIG = "~/.ssh/config";

/** What cli_getopts fills in: Dropbear's `opts` and `cli_opts`, owned by one program run. */
export interface CliOptions {
  opts: runopts;
  cli_opts: cli_runopts;
}

/** Usage text for dbclient on stderr. @dropbear cli-runopts.c printhelp */
function printhelp(cli_opts: cli_runopts): void {
  process.stderr.write(
    `Dropbear SSH client v${DROPBEAR_VERSION} (dropbear-ts, a TypeScript port of Dropbear)
Usage: ${cli_opts.progname} [options] [user@]host[/port][,[user@]host/port],...] [command]
-p <remoteport>
-l <username>
-t    Ask for a pty
-T    Do not ask for a pty
-N    Run no remote command
-f    Go to the background once authenticated
-n    Read nothing from stdin: the session gets /dev/null (as ssh -n)
-q    Quiet: do not print the server's banner
-y    Accept an unknown host key (and remember it)
-y -y Skip host key checking altogether (dangerous)
-s    The command is a subsystem name (as sftp uses)
-o option     An OpenSSH-style option ('-o help' lists them)
-i <identityfile>   (repeatable, default ${DROPBEAR_DEFAULT_CLI_AUTHKEY},
                     then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)
-A    Forward the authentication agent
-L <[listenaddress:]listenport:remotehost:remoteport> Local port forward
-g    Let other hosts connect to forwarded ports
-R <[listenaddress:]listenport:remotehost:remoteport> Remote port forward
-W <receive_window_buffer> (default ${OUR_DEFAULT_RECV_WINDOW}, at most 10MB; larger can be faster)
-K <keepalive>  (0 = never, default ${DEFAULT_KEEPALIVE})
-I <idle_timeout>  (0 = never, default ${DEFAULT_IDLE_TIMEOUT})
-M <max_duration>  (0 = no limit, default ${DEFAULT_MAX_DURATION}, in seconds)
-z    Do not set IP TOS (QoS)
-B <endhost:endport> Netcat mode: connect stdin/stdout to endhost:endport
-J <proxy_program> Talk through this program's stdin/stdout instead of TCP
-c <cipher list> Preferred ciphers ('-c help' lists them)
-m <MAC list> Preferred MACs ('-m help' lists them)
-b    [bind_address][:bind_port]
-Q    <algo>   List the supported algorithms of a kind (-Q help lists the kinds)
-V    Print the version
-v    More debug output (repeat for more)
`,
  );
}

type OptKind =
  | "OPT_EXTENDED_OPTIONS"
  | "OPT_AUTHKEY"
  | "OPT_LOCALTCPFWD"
  | "OPT_REMOTETCPFWD"
  | "OPT_NETCAT"
  | "OPT_USERNAME"
  | "OPT_PROXYCMD"
  | "OPT_OTHER";

/**
 * Parse dbclient's command line (argv[0] is the program name). Flags may come before and after
 * the host; the first word after the host that is not a flag starts the remote command. -h, -V,
 * help lists and errors end the program by throwing (QuietExit or DropbearExit) after printing.
 * @dropbear cli-runopts.c cli_getopts
 */
export function cli_getopts(
  argv: readonly string[],
  opts: runopts = new runopts(),
  cli_opts: cli_runopts = new cli_runopts(),
): CliOptions {
  // Assigned from the `next` closures: the `as` keeps TypeScript from deciding they stay null.
  let recv_window_arg = null as string | null;
  let idle_timeout_arg = null as string | null;
  let max_duration_arg = null as string | null;
  let host_arg: string | null = null;
  let proxycmd_arg = null as string | null;
  let remoteport_arg = null as string | null;
  let username_arg = null as string | null;
  let algo_print_arg = null as string | null;
  /** -o keywords (lower case) the command line sets, by -o or a flag: the file's do not count then. */
  const cmdline_set = new Set<string>();

  cli_opts.progname = argv[0] ?? "dbclient";
  opts.algos = algo_tables_new();
  opts.compression = DROPBEAR_CLI_COMPRESSION;
  opts.usingsyslog = false;

  fill_own_user(cli_opts);

  let i = 1;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg[0] !== "-") {
      if (host_arg === null) {
        // As its bytes: a user name in it that is not UTF-8 must reach the server unchanged.
        host_arg = argText(argv, i);
        continue;
      }
      // The remote command starts here; it takes every remaining word.
      break;
    }

    let opt: OptKind = "OPT_OTHER";
    let next: ((value: string) => void) | null = null;
    let j = 1;
    for (; j < arg.length && next === null && opt === "OPT_OTHER"; j++) {
      const c = arg[j];
      switch (c) {
        case "y":
          cmdline_set.add("stricthostkeychecking");
          // Once accepts a new host key; twice skips the check entirely.
          if (cli_opts.always_accept_key) {
            cli_opts.no_hostkey_check = true;
          }
          cli_opts.always_accept_key = true;
          break;
        case "q":
          cli_opts.quiet = true;
          break;
        case "p":
          next = (v) => (remoteport_arg = v);
          break;
        case "i":
          opt = "OPT_AUTHKEY";
          break;
        case "t":
          cli_opts.wantpty = 1;
          break;
        case "T":
          cli_opts.wantpty = 0;
          break;
        case "N":
          cli_opts.no_cmd = true;
          break;
        case "f":
          cli_opts.backgrounded = true;
          break;
        case "n":
          cli_opts.stdin_null = true;
          break;
        case "s":
          cli_opts.is_subsystem = true;
          break;
        case "o":
          opt = "OPT_EXTENDED_OPTIONS";
          break;
        case "L":
          opt = "OPT_LOCALTCPFWD";
          break;
        case "g":
          cmdline_set.add("gatewayports");
          opts.listen_fwd_all = true;
          break;
        case "R":
          opt = "OPT_REMOTETCPFWD";
          break;
        case "B":
          opt = "OPT_NETCAT";
          break;
        case "J":
          opt = "OPT_PROXYCMD";
          break;
        case "l":
          opt = "OPT_USERNAME";
          break;
        case "Q":
          next = (v) => (algo_print_arg = v);
          break;
        case "h":
          printhelp(cli_opts);
          exitQuietly(0);
        case "u":
          // Accepted and ignored: the old urandom option.
          break;
        case "W":
          next = (v) => (recv_window_arg = v);
          break;
        case "K":
          cmdline_set.add("serveraliveinterval");
          next = (v) => (cli_opts.keepalive_arg = v);
          break;
        case "I":
          next = (v) => (idle_timeout_arg = v);
          break;
        case "M":
          next = (v) => (max_duration_arg = v);
          break;
        case "A":
          cmdline_set.add("forwardagent");
          cli_opts.agent_fwd = true;
          break;
        case "c":
          cmdline_set.add("ciphers");
          next = (v) => (opts.cipher_list = v);
          break;
        case "m":
          cmdline_set.add("macs");
          next = (v) => (opts.mac_list = v);
          break;
        case "v":
          set_debug_trace(get_debug_trace() + 1);
          break;
        // OpenSSH's -F, -e and -D mean nothing to Dropbear, which prints its version for them.
        case "F":
        case "e":
        case "D":
        case "V":
          print_version();
          exitQuietly(0);
        case "b":
          cmdline_set.add("bindaddress");
          next = (v) => (cli_opts.bind_arg = v);
          break;
        case "z":
          opts.disable_ip_tos = true;
          break;
        default:
          process.stderr.write(`WARNING: Ignoring unknown option -${c}\n`);
          break;
      }
    }

    if (next === null && opt === "OPT_OTHER") {
      continue;
    }

    const i0 = i;
    const taken = flagValue(argv, i, j);
    const value = taken.value;
    i = taken.i;

    switch (opt) {
      case "OPT_EXTENDED_OPTIONS": {
        cmdline_set.add((/^\s*([A-Za-z]*)/.exec(value)?.[1] ?? "").toLowerCase());
        const user = add_extendedopt(opts, cli_opts, value);
        if (user !== null) {
          username_arg = extendedopt_value(flagValueText(argv, i0, j, taken), "User") ?? user;
        }
        break;
      }
      case "OPT_USERNAME":
        username_arg = flagValueText(argv, i0, j, taken);
        break;
      case "OPT_PROXYCMD":
        // As its bytes: the shell runs the command C would (shell_proxy_cmd).
        proxycmd_arg = flagValueText(argv, i0, j, taken);
        break;
      case "OPT_AUTHKEY":
        // As its bytes: a file name that is not UTF-8 names its file (fsPath).
        loadidentityfile(cli_opts, flagValueText(argv, i0, j, taken), true);
        break;
      case "OPT_REMOTETCPFWD":
        addforward(value, cli_opts.remotefwds);
        break;
      case "OPT_LOCALTCPFWD":
        addforward(value, cli_opts.localfwds);
        break;
      case "OPT_NETCAT":
        add_netcat(cli_opts, value);
        break;
      case "OPT_OTHER":
        next?.(value);
        break;
    }
  }

  // Checked before the host so that "-c help" works alone.
  parse_ciphers_macs(opts);
  // Like -c and -m, the last -o KexAlgorithms= / HostKeyAlgorithms= is the one that counts.
  if (cli_opts.hostkey_algos !== null) {
    user_algo_option(cli_opts, cli_opts.hostkey_algos, opts.algos.sigalgs, "host key");
  }
  if (cli_opts.kex_algos !== null) {
    user_algo_option(cli_opts, cli_opts.kex_algos, opts.algos.sshkex, "kex");
  }

  if (algo_print_arg !== null) {
    print_algos(opts, algo_print_arg);
  }

  if (host_arg === null) {
    printhelp(cli_opts);
    dropbear_exit("Remote host needs to be provided.");
  }

  // The config file first, so that every flag below wins over it.
  let config: ConfigSettings | null = null;
  // The file's last jump, "[user@]host[/port]", checked against the target below.
  let config_jump: string | null = null;
  if (!host_arg.includes(",")) {
    config = apply_config_settings(cli_opts, host_arg);
    if (config?.proxyjump !== undefined && proxycmd_arg === null && cli_opts.proxycmd === null) {
      // ProxyJump is ssh's multihop: the jumps go in front of the host.
      const hops = proxyjumpToHops(config.proxyjump);
      if (hops !== null) {
        host_arg = `${hops},${host_arg}`;
        config_jump = hops.slice(hops.lastIndexOf(",") + 1);
      }
    }
  }

  // -p and -l win over -o Port; user@host/port, applied last, wins over both.
  if (remoteport_arg !== null) {
    cli_opts.remoteport = remoteport_arg;
  } else if (cli_opts.remoteport === null) {
    cli_opts.remoteport = "22";
  }

  if (username_arg !== null) {
    cli_opts.username = username_arg;
  } else if (cli_opts.username === null) {
    cli_opts.username = cli_opts.own_user;
  }

  if (i < argv.length) {
    // The command's bytes as given: a name that is not UTF-8 must reach the server unchanged.
    const words: Buffer[] = [];
    for (let k = i; k < argv.length; k++) {
      if (k > i) words.push(Buffer.from(" "));
      words.push(argBytes(argv, k));
    }
    cli_opts.cmd = Buffer.concat(words);
  }

  if (proxycmd_arg !== null) {
    cli_opts.proxycmd = proxycmd_arg;
  }

  // Without -t or -T: a pty only for an interactive shell on a terminal. -n's stdin is
  // /dev/null, no terminal (as ssh -n: the shell then reads its end of input and exits).
  if (cli_opts.wantpty === 9) {
    cli_opts.wantpty = cli_opts.cmd === null && !cli_opts.stdin_null && process.getBuiltinModule("node:tty").isatty(0) ? 1 : 0;
  }

  if (cli_opts.backgrounded && cli_opts.cmd === null && !cli_opts.no_cmd) {
    dropbear_exit("Command required for -f");
  }

  if (recv_window_arg !== null) {
    parse_recv_window(opts, recv_window_arg);
  }

  if (idle_timeout_arg !== null) {
    opts.idle_timeout_secs = uintOption("idle_timeout", idle_timeout_arg);
  }

  if (max_duration_arg !== null) {
    opts.max_duration_secs = uintOption("max_duration", max_duration_arg);
  }

  if (cli_opts.cmd !== null && cli_opts.netcat_host !== null) {
    dropbear_log(LOG_INFO, `Ignoring command '${cli_opts.cmd.toString()}' in netcat mode`);
  }

  // Beyond Dropbear, as ssh: -o ProxyCommand=none (any case) connects directly, over the
  // file's ProxyCommand and ProxyJump too (the one way to bypass them for a run); C would run a
  // program named "none". -J's program is always run, as C runs it.
  const proxycmd_none = proxycmd_arg === null && cli_opts.proxycmd !== null && cli_opts.proxycmd.toLowerCase() === "none";
  if (proxycmd_none) {
    cli_opts.proxycmd = null;
  }

  // Beyond Dropbear, as ssh: -o ProxyCommand's %h %p %r %% name the host it reaches (the
  // first hop's, in the inner dbclient, under multihop), as in the config file below; -J's
  // program is run as given, as C runs it.
  const proxycmd_tokens = proxycmd_arg === null && cli_opts.proxycmd !== null;

  // The host comes last: multihop copies -i, -y, -W and friends into the inner command.
  parse_multihop_hostname(opts, cli_opts, host_arg, cli_opts.progname, proxycmd_tokens);
  if (config_jump !== null) {
    check_jump_loop(cli_opts, config_jump);
  }
  if (proxycmd_tokens && cli_opts.proxycmd !== null) {
    cli_opts.proxycmd = expandProxyCommand(cli_opts.proxycmd, cli_opts);
  }

  // ProxyCommand from the file only when nothing else says how to get there; its %h %p %r
  // need the final host, port and user.
  if (config?.proxycommand !== undefined && config.proxyjump === undefined && !proxycmd_none && cli_opts.proxycmd === null && cli_opts.proxyexec === null) {
    if (config.proxycommand.toLowerCase() !== "none") {
      cli_opts.proxycmd = expandProxyCommand(config.proxycommand, cli_opts);
    }
  }

  // The file's IdentityFile names with tokens (%h %r %p ...) need the final host, port and user:
  // they are the target's keys, so they are not handed to a jump host either (as in ssh).
  for (const t of config?.identitytemplates ?? []) {
    loadidentityfile(cli_opts, expandIdentityFile(t, cli_opts), true);
  }

  // The file's -o keywords are the target's, not handed to a jump host (as in ssh); so they
  // come after multihop has built the inner dbclient's command.
  if (config !== null) {
    apply_config_extended(opts, cli_opts, config, cmdline_set);
    // Not for -B, as ssh's -W clears them: a jump host's own forwards would be bound by every
    // inner dbclient that reaches through it.
    if (cli_opts.netcat_host === null) {
      config.localforwards.forEach((spec) => addforward(spec, cli_opts.localfwds));
      config.remoteforwards.forEach((spec) => addforward(spec, cli_opts.remotefwds));
    }
  }
  if (cli_opts.bind_arg !== null) {
    const split = split_address_port(cli_opts.bind_arg);
    if (split === null) {
      dropbear_exit("Bad -b argument");
    }
    cli_opts.bind_address = split.first;
    cli_opts.bind_port = split.second;
  }

  if (cli_opts.keepalive_arg !== null) {
    opts.keepalive_secs = uintOption("keepalive", cli_opts.keepalive_arg);
  }

  // Loaded after multihop so the default keys are not passed on as an explicit -i.
  for (const f of CLI_DEFAULT_IDENTITIES) {
    const path = expand_homedir_path(f);
    if (!listHas(cli_opts.privkeys, path)) {
      loadidentityfile(cli_opts, f, false);
      if (listHas(cli_opts.privkeys, path)) {
        cli_opts.default_identities.add(path);
      }
    }
  }

  return { opts, cli_opts };
}

/**
 * The file's lines (fileLines gives each byte as a Latin-1 character) as text: UTF-8 decoded,
 * with bytesText escapes for what is not UTF-8, so a User or ProxyCommand goes on as its bytes
 * and an IdentityFile path in UTF-8 names its file (Latin-1 decoding made "clé" "clÃ©").
 */
function* configLines(lines: Iterable<string>): Generator<string> {
  for (const line of lines) {
    yield bytesText(Buffer.from(line, "latin1"));
  }
}

/**
 * Read ~/.ssh/config for the host named on the command line (not for a multihop list): its
 * HostName, Port, User and IdentityFile go in now, before the flags that override them.
 * ProxyJump and ProxyCommand are returned for the caller to place.
 * @dropbear cli-runopts.c apply_config_settings
 */
function apply_config_settings(cli_opts: cli_runopts, cli_host_arg: string): ConfigSettings | null {
  const config_path = expand_homedir_path(CLI_SSH_CONFIG);
  let lines: Iterable<string>;
  try {
    // Lines of any length ssh takes, up to Dropbear's DROPBEAR_MAX_LINE_LENGTH, which ends the file.
    lines = configLines(fileLines(config_path, DROPBEAR_MAX_LINE_LENGTH));
  } catch {
    DEBUG1(() => `Configuration file '${config_path}' not found.`);
    return null;
  }
  // The key into the file: the host part of [user@]host[/port], as parse_hostname gives it.
  let host = cli_host_arg.slice(cli_host_arg.indexOf("@") + 1);
  const sep = host.indexOf("^") >= 0 ? host.indexOf("^") : host.indexOf("/");
  if (sep >= 0) {
    host = host.slice(0, sep);
  }
  // Include'd files are read as this one; one that cannot be opened is passed over, as ssh does.
  const openLines = (path: string): Iterable<string> | null => {
    try {
      return configLines(fileLines(path, DROPBEAR_MAX_LINE_LENGTH));
    } catch {
      return null;
    }
  };
  const config = read_config_file(config_path, lines, host, openLines);
  if (config.hostname !== undefined) {
    cli_opts.remotehost = textShown(config.hostname);
    // The command line's host is only the alias from here on.
    cli_opts.remotehostfixed = true;
  }
  // Nothing has set the port yet but -o Port, which wins over the file as every flag does.
  if (config.port !== undefined && cli_opts.remoteport === null) {
    cli_opts.remoteport = config.port;
  }
  if (config.user !== undefined) {
    cli_opts.username = config.user;
  }
  for (const f of config.identityfiles) {
    loadidentityfile(cli_opts, f, true);
  }
  return config;
}

/**
 * The file's -o keywords (its first value of each), through add_extendedopt as -o gives them,
 * except those the command line set by -o or a flag: flags win over the file. A bad value ends
 * dbclient as its -o would, saying where the line is.
 */
function apply_config_extended(opts: runopts, cli_opts: cli_runopts, config: ConfigSettings, cmdline_set: ReadonlySet<string>): void {
  const tables: Record<string, algo_type[]> = {
    Ciphers: opts.algos.sshciphers,
    MACs: opts.algos.sshhashes,
    HostKeyAlgorithms: opts.algos.sigalgs,
    KexAlgorithms: opts.algos.sshkex,
  };
  for (const [name, { value, where }] of config.extended) {
    // The outer hop of a multihop carries an encrypted stream, which will not compress.
    if (cmdline_set.has(name.toLowerCase()) || (name === "Compression" && cli_opts.proxyexec !== null)) {
      continue;
    }
    const table = Object.hasOwn(tables, name) ? tables[name] : undefined;
    let v = value;
    if (table !== undefined) {
      // The file is OpenSSH's too: names only OpenSSH has (certificates, umac, group exchange)
      // are not ours to warn of at every connection, as -o's are; a list with none of ours
      // still ends dbclient.
      const names = assemble_algo_names(value, table.map((a) => a.name)).split(",");
      const ours = names.filter((n) => table.some((a) => a.name === n));
      DEBUG1(() => `${name} at ${where}: not ours, passed over: ${names.filter((n) => !ours.includes(n)).join(",")}`);
      v = ours.join(",");
    }
    try {
      add_extendedopt(opts, cli_opts, `${name}=${v}`);
      // The command line's lists were narrowed as it was read; the file's only now.
      if ((name === "Ciphers" || name === "MACs") && table !== undefined) {
        // This list alone: parse_ciphers_macs would look at the command line's other one again.
        if (check_user_algos((name === "Ciphers" ? opts.cipher_list : opts.mac_list) ?? "", table, name) === 0) {
          dropbear_exit(`No valid ${name} specified`);
        }
      } else if (name === "HostKeyAlgorithms") {
        user_algo_option(cli_opts, v, opts.algos.sigalgs, "host key");
      } else if (name === "KexAlgorithms") {
        user_algo_option(cli_opts, v, opts.algos.sshkex, "kex");
      }
    } catch (e) {
      if (e instanceof DropbearExit) {
        dropbear_exit(`${e.exitmsg} at ${where}`);
      }
      throw e;
    }
  }
}

/**
 * The identities tried without -i: Dropbear's ~/.ssh/id_dropbear, then (beyond Dropbear) the
 * OpenSSH keys users already have. A file named by -i too is tried once, as given.
 */
export const CLI_DEFAULT_IDENTITIES: readonly string[] = [
  DROPBEAR_DEFAULT_CLI_AUTHKEY,
  "~/.ssh/id_ed25519",
  "~/.ssh/id_ecdsa",
  "~/.ssh/id_rsa",
];

/** Whether a privkeys entry is a default identity nobody asked for (its failures stay quiet). */
export function isDefaultIdentity(cli_opts: cli_runopts, path: string): boolean {
  return cli_opts.default_identities.has(path);
}

function listHas(list: cli_runopts["privkeys"], item: string): boolean {
  for (let iter = list.first; iter !== null; iter = iter.next) {
    if (iter.item === item) {
      return true;
    }
  }
  return false;
}

/**
 * Add an identity file to privkeys, warning if asked when it cannot be read. Keys are only
 * named for now: parsing them needs the signkey package, so a file counts as loadable when it
 * is a readable regular file.
 * @dropbear cli-runopts.c loadidentityfile
 */
export function loadidentityfile(cli_opts: cli_runopts, filename: string, warnfail: boolean): void {
  const id_key_path = expand_homedir_path(filename);
  const path = fsPath(id_key_path);
  let readable = false;
  try {
    readable = statSync(path).isFile();
    accessSync(path, fsConstants.R_OK);
  } catch {
    readable = false;
  }
  if (!readable) {
    if (warnfail) {
      // Dropbear's message carries its own trailing newline.
      dropbear_log(LOG_WARNING, `Failed loading keyfile '${id_key_path}'\n`);
    }
    return;
  }
  list_append(cli_opts.privkeys, id_key_path);
}

/**
 * The argv of the dbclient that carries us to the last hop: the options worth repeating, then
 * `-B lasthost:port priorhops`. It is run without a shell.
 * @dropbear cli-runopts.c multihop_args
 */
function multihop_args(opts: runopts, cli_opts: cli_runopts, argv0: string, prior_hops: string, proxycmd_tokens: boolean): string[] {
  const args = [argv0];
  if (cli_opts.quiet) {
    args.push("-q");
  }
  if (cli_opts.no_hostkey_check) {
    args.push("-y", "-y");
  } else if (cli_opts.always_accept_key) {
    args.push("-y");
  }
  if (cli_opts.batch_mode) {
    args.push("-o", "BatchMode=yes");
  }
  if (cli_opts.identities_only) {
    args.push("-o", "IdentitiesOnly=yes");
  }
  if (opts.compression) {
    args.push("-o", "Compression=yes");
  }
  if (cli_opts.proxycmd !== null) {
    // An -o ProxyCommand stays one, for the inner dbclient to expand with its own host.
    args.push(...(proxycmd_tokens ? ["-o", `ProxyCommand=${cli_opts.proxycmd}`] : ["-J", cli_opts.proxycmd]));
  }
  if (opts.recv_window !== OUR_DEFAULT_RECV_WINDOW) {
    args.push("-W", String(opts.recv_window));
  }
  for (const key of cli_opts.privkeys) {
    args.push("-i", key);
  }
  // parse_hostname has just set the host, and the port is 22 unless given.
  args.push("-B", netcat_endpoint(cli_opts.remotehost!, cli_opts.remoteport!));
  args.push(prior_hops);
  return args;
}

/**
 * A ProxyJump whose last jump is the host itself (same name, port and user), which `Host *`
 * with a ProxyJump and no `!jumphost` gives the jump host: its inner dbclient would read the
 * same line and start another, without end. Refused in ssh's words.
 */
function check_jump_loop(cli_opts: cli_runopts, jump: string): void {
  const at = jump.lastIndexOf("@");
  const user = at >= 0 ? jump.slice(0, at) : cli_opts.username;
  const rest = jump.slice(at + 1);
  const slash = rest.lastIndexOf("/");
  const host = slash >= 0 ? rest.slice(0, slash) : rest;
  const port = slash >= 0 ? rest.slice(slash + 1) : "22";
  if (host === cli_opts.remotehost && port === cli_opts.remoteport && user === cli_opts.username) {
    dropbear_exit(`jumphost loop via ${host}`);
  }
}

/**
 * Split "hop1,hop2,...,last": the last hop becomes remotehost/remoteport and the others become
 * proxyexec, the inner dbclient's argv (started later, by cli-main).
 * @dropbear cli-runopts.c parse_multihop_hostname
 */
function parse_multihop_hostname(
  opts: runopts,
  cli_opts: cli_runopts,
  orighostarg: string,
  argv0: string,
  proxycmd_tokens = false,
): void {
  // scp and rsync turn "user@host" into "-l user host"; when that user name holds a whole hop
  // list ("a,u@b"), glue it back on.
  let userhostarg =
    cli_opts.username !== null && cli_opts.username.includes(",") && cli_opts.username.includes("@")
      ? `${cli_opts.username}@${orighostarg}`
      : orighostarg;

  let prior_hops: string | null = null;
  const last_hop = userhostarg.lastIndexOf(",");
  if (last_hop >= 0) {
    if (last_hop === 0) {
      dropbear_exit("Bad multi-hop hostnames");
    }
    prior_hops = userhostarg.slice(0, last_hop);
    userhostarg = userhostarg.slice(last_hop + 1);
  }

  parse_hostname(cli_opts, userhostarg);

  if (prior_hops !== null) {
    cli_opts.proxyexec = multihop_args(opts, cli_opts, argv0, prior_hops, proxycmd_tokens);
    // -J now lives in proxyexec.
    cli_opts.proxycmd = null;
    // The outer hop carries an encrypted stream, which will not compress.
    opts.compression = false;
  }
}

/** Parse "[user@]host[^port|/port]" into username, remotehost and remoteport. @dropbear cli-runopts.c parse_hostname */
function parse_hostname(cli_opts: cli_runopts, orighostarg: string): void {
  let remotehost = orighostarg;
  const at = remotehost.indexOf("@");
  if (at >= 0) {
    cli_opts.username = remotehost.slice(0, at);
    remotehost = remotehost.slice(at + 1);
  }

  // "^" is the separator; "/" is the older one, used only when there is no "^".
  let port = remotehost.indexOf("^");
  if (port < 0) {
    port = remotehost.indexOf("/");
  }
  if (port >= 0) {
    cli_opts.remoteport = remotehost.slice(port + 1);
    remotehost = remotehost.slice(0, port);
  }

  // Only the user name keeps argText's bytes: the host is looked up and stored as a string.
  remotehost = textShown(remotehost);
  if (cli_opts.remoteport !== null) {
    cli_opts.remoteport = textShown(cli_opts.remoteport);
  }
  if (remotehost === "") {
    dropbear_exit("Bad hostname.");
  }
  // Beyond Dropbear, as OpenSSH's ssh: the name is written to known_hosts as it is (a line
  // break in it would add a line of the caller's choosing, a "*" pattern trusting a key for
  // every host) and may reach a ProxyCommand's shell through %h.
  if (!validHostname(remotehost)) {
    dropbear_exit("hostname contains invalid characters");
  }

  cli_opts.remotehost_arg = remotehost;
  if (!cli_opts.remotehostfixed) {
    cli_opts.remotehost = remotehost;
  }
}

/**
 * Parse -B's "host:port" (exactly one colon), or "[host]:port" for an IPv6 address, which
 * Dropbear refuses: multihop hands each hop's host to the next dbclient this way
 * (multihop_args), so without it no hop of a chain (nor a ProxyJump) could be an IPv6 address.
 * @dropbear cli-runopts.c add_netcat
 */
function add_netcat(cli_opts: cli_runopts, origstr: string): void {
  const bracketed = /^\[([^\]]+)\]:([^:]*)$/.exec(origstr);
  const colon = origstr.indexOf(":");
  const host = bracketed !== null ? bracketed[1]! : origstr.slice(0, colon);
  const portstr = bracketed !== null ? bracketed[2]! : colon < 0 ? null : origstr.slice(colon + 1);
  const port = portstr === null || portstr.includes(":") ? null : m_str_to_uint(portstr);
  if (port === null || port > 65535) {
    dropbear_exit(`Bad netcat endpoint '${origstr}'`);
  }
  cli_opts.netcat_port = port;
  cli_opts.netcat_host = host;
}

/** A host and port as add_netcat reads them back: an IPv6 address (it has colons) in brackets. */
function netcat_endpoint(host: string, port: string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Find the local user's name, or carry on as "unknown". @dropbear cli-runopts.c fill_own_user */
function fill_own_user(cli_opts: cli_runopts): void {
  try {
    cli_opts.own_user = userInfo().username;
  } catch {
    dropbear_log(LOG_INFO, "Warning: failed to identify current user. Trying anyway.");
    cli_opts.own_user = "unknown";
  }
}

/**
 * Parse "[listenaddr:]listenport:connectaddr:connectport" and append it to fwdlist. Split at
 * plain colons, so an IPv6 literal cannot be written here (as in Dropbear).
 * @dropbear cli-runopts.c addforward
 */
function addforward(origstr: string, fwdlist: m_list<TCPFwdEntry>): void {
  const badfwd = `Bad TCP forward '${origstr}'`;

  // Three cuts at the first colons; whatever follows the third stays in the last part.
  const c1 = origstr.indexOf(":");
  if (c1 < 0) {
    dropbear_exit(badfwd);
  }
  const c2 = origstr.indexOf(":", c1 + 1);
  if (c2 < 0) {
    dropbear_exit(badfwd);
  }
  const c3 = origstr.indexOf(":", c2 + 1);
  const part1 = origstr.slice(0, c1);
  const part2 = origstr.slice(c1 + 1, c2);
  const part3 = c3 < 0 ? origstr.slice(c2 + 1) : origstr.slice(c2 + 1, c3);
  const part4 = c3 < 0 ? null : origstr.slice(c3 + 1);

  const newfwd = new TCPFwdEntry();
  let listenport: string;
  let connectport: string;
  if (part4 !== null) {
    newfwd.listenaddr = part1;
    listenport = part2;
    newfwd.connectaddr = part3;
    connectport = part4;
  } else {
    newfwd.listenaddr = null;
    listenport = part1;
    newfwd.connectaddr = part2;
    connectport = part3;
  }

  const lport = m_str_to_uint(listenport);
  if (lport === null) {
    dropbear_exit(badfwd);
  }
  const cport = m_str_to_uint(connectport);
  if (cport === null) {
    dropbear_exit(badfwd);
  }
  if (lport > 65535 || cport > 65535) {
    dropbear_exit(`Bad TCP port in '${origstr}'`);
  }
  newfwd.listenport = lport;
  newfwd.connectport = cport;
  newfwd.have_reply = false;
  list_append(fwdlist, newfwd);
}

/**
 * If str starts (after blanks) with optname, case-insensitively, followed by blanks and/or one
 * "=", return the rest (the value); else null.
 * @dropbear cli-runopts.c match_extendedopt
 */
function match_extendedopt(str: string, optname: string): string | null {
  let pos = 0;
  while (ascii_isspace(str[pos])) {
    pos++;
  }
  for (let k = 0; k < optname.length; k++) {
    if (ascii_tolower(str[pos + k] ?? "") !== ascii_tolower(optname[k])) {
      return null;
    }
  }
  pos += optname.length;

  let seen_eq = false;
  while (ascii_isspace(str[pos]) || (!seen_eq && str[pos] === "=")) {
    if (str[pos] === "=") {
      seen_eq = true;
    }
    pos++;
  }

  // Dropbear measures from the start of the string, leading blanks included, to decide that
  // only a prefix of a longer word matched ("PortX"); keep that measure.
  if (pos === optname.length) {
    return null;
  }
  return str.slice(pos);
}

/**
 * match_extendedopt's value, beyond Dropbear without the double quotes around it that ssh takes
 * off (ansible passes `-o User="name"` and `-o IdentityFile="path"`, which C would use quotes and
 * all). A ProxyCommand keeps them, as ssh hands its text to the shell as written.
 */
function extendedopt_value(str: string, optname: string): string | null {
  const v = match_extendedopt(str, optname);
  return v === null || optname === "ProxyCommand" ? v : unquoteValue(v);
}

/** yes/y/true or no/n/false (exact case); anything else is fatal. @dropbear cli-runopts.c parse_flag_value */
function parse_flag_value(value: string): boolean {
  if (value === "yes" || value === "y" || value === "true") {
    return true;
  }
  if (value === "no" || value === "n" || value === "false") {
    return false;
  }
  dropbear_exit(`Bad yes/no argument '${value}'`);
}

/** The names -o accepts, as `-o help` lists them. */
const EXTENDED_OPTIONS = [
  "BatchMode",
  "BindAddress",
  "Ciphers",
  "Compression",
  "ConnectTimeout",
  "DisableTrivialAuth",
  "ExitOnForwardFailure",
  "ForwardAgent",
  "GatewayPorts",
  "HostKeyAlgorithms",
  "IdentitiesOnly",
  "IdentityFile",
  "KexAlgorithms",
  "LocalForward",
  "MACs",
  "PasswordAuthentication",
  "Port",
  "ProxyCommand",
  "RemoteForward",
  "ServerAliveCountMax",
  "ServerAliveInterval",
  "StrictHostKeyChecking",
  "UseSyslog",
  "User",
  "UserKnownHostsFile",
] as const;

/**
 * An OpenSSH algorithm list as the plain list of names check_user_algos takes (ssh_config(5),
 * KexAlgorithms; OpenSSH's kex_assemble_names): "+list" after the defaults, "^list" before them,
 * "-list" the defaults less those the list's patterns match; a `*` or `?` pattern stands for
 * every name of ours it matches, in our order. Users pass these to reach old servers
 * (`HostKeyAlgorithms=+ssh-rsa`), where a plain list would end dbclient with no valid names.
 */
function assemble_algo_names(list: string, names: readonly string[]): string {
  const items = list.slice(/^[-+^]/.test(list) ? 1 : 0).split(",");
  if (list.startsWith("-")) {
    return names.filter((n) => !items.some((p) => matchPattern(n, p, false))).join(",");
  }
  const ordered = list.startsWith("+") ? [...names, ...items] : list.startsWith("^") ? [...items, ...names] : items;
  return ordered.flatMap((p) => (/[*?]/.test(p) ? names.filter((n) => matchPattern(n, p, false)) : [p])).join(",");
}

/**
 * Beyond Dropbear: -o KexAlgorithms= / HostKeyAlgorithms= narrow those tables the way -c narrows
 * the ciphers (OpenSSH's option names). The kex table's extension markers (ext-info, strict
 * kex, kexguess2) stay, after the user's choice. No first-kex guess then: a narrowed list
 * usually names what the server supports but does not prefer, the one case where peers judge
 * a guess differently (RFC 4253 §7 says wrong, asyncssh's server answers it), which fails the
 * key exchange. The guess saves one round trip, and only when it is right.
 */
export function user_algo_option(cli_opts: cli_runopts, list: string, algos: algo_type[], algo_desc: string): void {
  cli_opts.kex_first_guess = false;
  const markers = algos.filter((a) => a.data === null && algo_desc === "kex");
  const chosen = algos.filter((a) => !markers.includes(a));
  const names = assemble_algo_names(list, chosen.map((a) => a.name));
  if (names === "" || check_user_algos(names, chosen, algo_desc) === 0) {
    dropbear_exit(`No valid ${algo_desc} algorithms specified`);
  }
  algos.splice(0, algos.length, ...chosen, ...markers);
}

/**
 * Apply one OpenSSH-style -o option ("Key=value" or "Key value"). Returns the name `User` gives
 * (beyond Dropbear, as ssh takes it; the caller treats it as -l), else null.
 * @dropbear cli-runopts.c add_extendedopt
 */
function add_extendedopt(opts: runopts, cli_opts: cli_runopts, origstr: string): string | null {
  if (origstr === "help") {
    dropbear_log(LOG_INFO, `Available options:\n${EXTENDED_OPTIONS.map((o) => `\t${o}\n`).join("")}`);
    exitQuietly(0);
  }

  let v: string | null;
  if ((v = extendedopt_value(origstr, "BatchMode")) !== null) {
    cli_opts.batch_mode = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "BindAddress")) !== null) {
    cli_opts.bind_arg = v;
    return null;
  }
  for (const [name, algos, set] of [
    ["Ciphers", opts.algos.sshciphers, (l: string) => (opts.cipher_list = l)],
    ["MACs", opts.algos.sshhashes, (l: string) => (opts.mac_list = l)],
  ] as const) {
    if ((v = extendedopt_value(origstr, name)) !== null) {
      // Beyond Dropbear, ssh's names for -c and -m, in its list syntax; the last one given
      // counts, as for -c and -m.
      const names = assemble_algo_names(v, algos.map((a) => a.name));
      if (names === "") {
        dropbear_exit(`No valid ${name} specified`);
      }
      set(names);
      return null;
    }
  }
  if ((v = extendedopt_value(origstr, "Compression")) !== null) {
    opts.compression = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "ConnectTimeout")) !== null) {
    // Beyond Dropbear, OpenSSH's: whole seconds (ssh also takes "1m" and the like).
    opts.connect_timeout_secs = uintOption("ConnectTimeout", v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "DisableTrivialAuth")) !== null) {
    cli_opts.disable_trivial_auth = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "ExitOnForwardFailure")) !== null) {
    cli_opts.exit_on_fwd_failure = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "ForwardAgent")) !== null) {
    cli_opts.agent_fwd = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "GatewayPorts")) !== null) {
    opts.listen_fwd_all = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "HostKeyAlgorithms")) !== null) {
    cli_opts.hostkey_algos = v;
    return null;
  }
  if ((v = extendedopt_value(origstr, "KexAlgorithms")) !== null) {
    cli_opts.kex_algos = v;
    return null;
  }
  if ((v = extendedopt_value(origstr, "IdentitiesOnly")) !== null) {
    cli_opts.identities_only = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "IdentityFile")) !== null) {
    loadidentityfile(cli_opts, v, true);
    return null;
  }
  for (const [name, list] of [
    ["LocalForward", cli_opts.localfwds],
    ["RemoteForward", cli_opts.remotefwds],
  ] as const) {
    if ((v = extendedopt_value(origstr, name)) !== null) {
      // Beyond Dropbear, ssh's: "[bind:]port host:port", as -L / -R take it with a colon.
      const spec = forwardSpec(v.trim().split(/\s+/));
      if (spec === null) {
        dropbear_exit(`Bad TCP forward '${v}'`);
      }
      addforward(spec, list);
      return null;
    }
  }
  if ((v = extendedopt_value(origstr, "PasswordAuthentication")) !== null) {
    cli_opts.password_authentication = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "Port")) !== null) {
    cli_opts.remoteport = v;
    return null;
  }
  if ((v = extendedopt_value(origstr, "ProxyCommand")) !== null) {
    cli_opts.proxycmd = v;
    return null;
  }
  if ((v = extendedopt_value(origstr, "ServerAliveCountMax")) !== null) {
    // Beyond Dropbear, ssh's: N keepalives unanswered, then one more interval, end it.
    opts.keepalive_limit = uintOption("ServerAliveCountMax", v) + 1;
    return null;
  }
  if ((v = extendedopt_value(origstr, "ServerAliveInterval")) !== null) {
    cli_opts.keepalive_arg = v;
    return null;
  }
  if ((v = extendedopt_value(origstr, "StrictHostKeyChecking")) !== null) {
    if (v === "accept-new") {
      cli_opts.always_accept_key = true;
    } else if (v !== "ask") {
      // "yes": the key must already be known; "no": no check at all. "ask" is the default.
      if (parse_flag_value(v)) {
        cli_opts.ask_hostkey = false;
      } else {
        cli_opts.no_hostkey_check = true;
      }
    }
    return null;
  }
  if ((v = extendedopt_value(origstr, "UseSyslog")) !== null) {
    opts.usingsyslog = parse_flag_value(v);
    return null;
  }
  if ((v = extendedopt_value(origstr, "User")) !== null) {
    return v;
  }
  if ((v = extendedopt_value(origstr, "UserKnownHostsFile")) !== null) {
    // Beyond Dropbear, as ssh's: the file host keys are checked against and added to. One
    // file only: ssh's list of several, read in turn, is refused rather than half taken.
    const files = v.trim().split(/\s+/);
    if (files.length !== 1 || files[0] === "") {
      dropbear_exit(`Bad UserKnownHostsFile '${v}': give one file`);
    }
    // ssh's "none" (any case): no file of the user's, nothing read and nothing recorded, not
    // a file named "none" in the current directory.
    cli_opts.known_hosts_file = files[0]!.toLowerCase() === "none" ? "/dev/null" : expand_homedir_path(files[0]!);
    return null;
  }

  dropbear_log(LOG_WARNING, `Ignoring unknown configuration option '${origstr}'`);
  return null;
}
