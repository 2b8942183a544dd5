import { statSync } from "node:fs";
import { buf_new, buf_readfile } from "@dropbear-ts/buffer";
import {
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_KEEPALIVE,
  DEFAULT_MAX_DURATION,
  DROPBEAR_DEFADDRESS,
  DROPBEAR_DEFPORT,
  DROPBEAR_MAX_PORTS,
  DROPBEAR_PIDFILE,
  DROPBEAR_VERSION,
  ECDSA_PRIV_FILENAME,
  ED25519_PRIV_FILENAME,
  MAX_AUTH_TRIES,
  MAX_BANNER_SIZE,
  MAX_HOSTKEYS,
  RSA_PRIV_FILENAME,
} from "@dropbear-ts/options";
import {
  fsPath,
  getgrnam_gid,
  LOG_INFO,
  TRACE,
  LOG_WARNING,
  dropbear_exit,
  dropbear_log,
  exitQuietly,
  expand_homedir_path,
  get_debug_trace,
  m_str_to_uint,
  set_debug_trace,
} from "@dropbear-ts/dbutil";
import { algo_tables_new } from "@dropbear-ts/algo";
import { OUR_DEFAULT_RECV_WINDOW, runopts, svr_runopts, type AlgoTables } from "@dropbear-ts/core";
import {
  DROPBEAR_SIGNATURE_ECDSA_NISTP256,
  DROPBEAR_SIGNATURE_ECDSA_NISTP384,
  DROPBEAR_SIGNATURE_ECDSA_NISTP521,
  DROPBEAR_SIGNATURE_ED25519,
  DROPBEAR_SIGNATURE_RSA_SHA1,
  DROPBEAR_SIGNATURE_RSA_SHA256,
  DROPBEAR_SIGNATURE_RSA_SHA512,
  DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256,
  DROPBEAR_SIGNATURE_SK_ED25519,
  DROPBEAR_SIGNKEY_ANY,
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ECDSA_NISTP384,
  DROPBEAR_SIGNKEY_ECDSA_NISTP521,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  ECDSA_DEFAULT_SIZE,
  new_sign_key,
  signkeyPrivateProblem,
  type SignKeyMember,
} from "@dropbear-ts/signkey";
import {
  parse_recv_window,
  print_algos,
  print_version,
  split_address_port,
  readhostkey,
  flagValue,
  flagValueText,
  uintOption,
} from "./common-runopts.js";

/** What svr_getopts fills in: Dropbear's `opts` and `svr_opts`, owned by one program run. */
export interface SvrOptions {
  opts: runopts;
  svr_opts: svr_runopts;
}

/** Usage text for dropbear on stderr. @dropbear svr-runopts.c printhelp */
function printhelp(progname: string): void {
  process.stderr.write(
    `Dropbear server v${DROPBEAR_VERSION} (dropbear-ts, a TypeScript port of Dropbear)
Usage: ${progname} [options]
-b bannerfile   Send the contents of bannerfile to clients before they log in
                (default: none)
-r keyfile      Host key file; repeat -r for several keys. Without -r these are used:
                - rsa ${RSA_PRIV_FILENAME}
                - ecdsa ${ECDSA_PRIV_FILENAME}
                - ed25519 ${ED25519_PRIV_FILENAME}
-D dir          Directory that holds each user's authorized_keys (default ~/.ssh)
-R              Generate a missing host key when it is first needed
-F              Stay in the foreground
-e              Give child processes the server's environment
-E              Log to stderr instead of syslog
-m              Do not show the message of the day at login
-w              Refuse logins as root
-G group        Only members of group may log in
-s              Refuse password logins
-g              Refuse password logins as root
-B              Accept logins with an empty password
-t              Two-factor: require both a password and a public key
-T n            Authentication attempts allowed per connection (default ${MAX_AUTH_TRIES})
-j              Refuse local port and stream forwarding
-k              Refuse remote port and stream forwarding
-a              Let any host connect to remotely forwarded ports
-c command      Run command whatever the client asks for
-p [address:]port
                Listen on this TCP port, on one address only if given;
                up to ${DROPBEAR_MAX_PORTS} times (default port ${DROPBEAR_DEFPORT} when no -p)
-P pidfile      Write the server's process id to pidfile
                (default ${DROPBEAR_PIDFILE})
-l interface    Bind listening sockets to this network interface
-i              inetd mode: serve the one connection on stdin/stdout
-W bytes        Channel receive window (default ${OUR_DEFAULT_RECV_WINDOW}, at most 10MB;
                a larger window can be faster)
-K seconds      Keepalive interval (0 = never, default ${DEFAULT_KEEPALIVE})
-I seconds      Idle timeout (0 = never, default ${DEFAULT_IDLE_TIMEOUT})
-M seconds      Longest a session may last (0 = no limit, default ${DEFAULT_MAX_DURATION})
-z              Do not set IP TOS (QoS) on connections
-Q algo         List the supported algorithms of a kind (-Q help lists the kinds)
-V              Print the version
-v              More debug output (repeat for more)
`,
  );
}

/**
 * Parse dropbear's command line (argv[0] is the program name). -h, -V, -Q and bad options
 * end the program by throwing (QuietExit or DropbearExit) after printing what Dropbear prints.
 * @dropbear svr-runopts.c svr_getopts
 */
export function svr_getopts(
  argv: readonly string[],
  opts: runopts = new runopts(),
  svr_opts: svr_runopts = new svr_runopts(),
): SvrOptions {
  const progname = argv[0] ?? "dropbear";
  // Assigned from the `next` closures: the `as` keeps TypeScript from deciding they stay null.
  let recv_window_arg = null as string | null;
  let keepalive_arg = null as string | null;
  let idle_timeout_arg = null as string | null;
  let max_duration_arg = null as string | null;
  let maxauthtries_arg = null as string | null;
  let reexec_fd_arg = null as string | null;
  let algo_print_arg = null as string | null;

  opts.algos = algo_tables_new();
  // The struct defaults are the client's where the two programs differ.
  opts.compression = true;
  opts.usingsyslog = true;
  svr_opts.pidfile = expand_homedir_path(DROPBEAR_PIDFILE);

  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i];
    if (arg[0] !== "-" || arg.length === 1) {
      dropbear_exit(`Invalid argument: ${arg}`);
    }

    // A letter that takes a value stops the scan of its cluster: the value is the rest of
    // this word ("-p2222") or, if nothing is left, the next word.
    let next: ((value: string) => void) | null = null;
    let nextisport = false;
    // A value taken as its bytes (argText): a command or file name that is not UTF-8 must
    // reach the shell, or name its file, unchanged.
    let keepbytes = false;
    let j = 1;
    for (; j < arg.length && next === null && !nextisport; j++) {
      const c = arg[j];
      switch (c) {
        case "b":
          keepbytes = true;
          next = (v) => (svr_opts.bannerfile = v);
          break;
        case "c":
          keepbytes = true;
          next = (v) => (svr_opts.forced_command = v);
          break;
        case "d":
        case "r":
          keepbytes = true;
          next = (v) => addhostkey(svr_opts, v);
          break;
        case "D":
          next = (v) => (svr_opts.authorized_keys_dir = v);
          break;
        case "R":
          svr_opts.delay_hostkey = true;
          break;
        case "F":
          svr_opts.forkbg = false;
          break;
        case "E":
          opts.usingsyslog = false;
          break;
        case "e":
          svr_opts.pass_on_env = true;
          break;
        case "j":
          svr_opts.nolocaltcp = true;
          break;
        case "k":
          svr_opts.noremotefwd = true;
          break;
        case "a":
          opts.listen_fwd_all = true;
          break;
        case "i":
          svr_opts.inetdmode = true;
          break;
        case "2":
          next = (v) => (reexec_fd_arg = v);
          break;
        case "p":
          nextisport = true;
          break;
        case "P":
          next = (v) => (svr_opts.pidfile = v);
          break;
        case "l":
          next = (v) => (svr_opts.interface = v);
          break;
        case "m":
          svr_opts.domotd = false;
          break;
        case "w":
          svr_opts.norootlogin = true;
          break;
        case "G":
          next = (v) => (svr_opts.restrict_group = v);
          break;
        case "W":
          next = (v) => (recv_window_arg = v);
          break;
        case "K":
          next = (v) => (keepalive_arg = v);
          break;
        case "I":
          next = (v) => (idle_timeout_arg = v);
          break;
        case "M":
          next = (v) => (max_duration_arg = v);
          break;
        case "T":
          next = (v) => (maxauthtries_arg = v);
          break;
        case "s":
          svr_opts.noauthpass = true;
          break;
        case "g":
          svr_opts.norootpass = true;
          break;
        case "B":
          svr_opts.allowblankpass = true;
          break;
        case "t":
          svr_opts.multiauthmethod = true;
          break;
        case "Q":
          next = (v) => (algo_print_arg = v);
          break;
        case "h":
          printhelp(progname);
          exitQuietly(0);
        case "u":
          // Accepted and ignored: the old urandom option.
          break;
        case "v":
          set_debug_trace(get_debug_trace() + 1);
          break;
        case "V":
          print_version();
          exitQuietly(0);
        case "z":
          opts.disable_ip_tos = true;
          break;
        default:
          process.stderr.write(`Invalid option -${c}\n`);
          printhelp(progname);
          exitQuietly(1);
      }
    }

    if (next === null && !nextisport) {
      continue;
    }

    const i0 = i;
    const taken = flagValue(argv, i, j);
    const value = keepbytes ? flagValueText(argv, i0, j, taken) : taken.value;
    i = taken.i;

    if (nextisport) {
      addportandaddress(svr_opts, value);
    } else if (next !== null) {
      next(value);
    }
  }

  if (svr_opts.portcount === 0) {
    svr_opts.ports[0] = DROPBEAR_DEFPORT;
    svr_opts.addresses[0] = DROPBEAR_DEFADDRESS;
    svr_opts.portcount = 1;
  }

  if (svr_opts.bannerfile !== null) {
    load_banner(svr_opts);
  }

  if (svr_opts.restrict_group !== null) {
    const gid = getgrnam_gid(svr_opts.restrict_group);
    if (gid === null) {
      dropbear_exit(
        `Cannot restrict logins to group '${svr_opts.restrict_group}' as the group does not exist`,
      );
    }
    svr_opts.restrict_group_gid = gid;
  }

  if (recv_window_arg !== null) {
    parse_recv_window(opts, recv_window_arg);
  }

  if (maxauthtries_arg !== null) {
    svr_opts.maxauthtries = uintOption("maxauthtries", maxauthtries_arg);
  }

  if (keepalive_arg !== null) {
    opts.keepalive_secs = uintOption("keepalive", keepalive_arg);
  }

  if (idle_timeout_arg !== null) {
    opts.idle_timeout_secs = uintOption("idle_timeout", idle_timeout_arg);
  }

  if (max_duration_arg !== null) {
    opts.max_duration_secs = uintOption("max_duration", max_duration_arg);
  }

  if (svr_opts.forced_command !== null) {
    dropbear_log(LOG_INFO, `Forced command set to '${svr_opts.forced_command}'`);
  }

  if (svr_opts.interface !== null) {
    dropbear_log(LOG_INFO, `Binding to interface '${svr_opts.interface}'`);
  }

  if (reexec_fd_arg !== null) {
    const fd = m_str_to_uint(reexec_fd_arg);
    // C stores the unsigned value in an int, so anything above INT_MAX reads as negative.
    if (fd === null || fd > 0x7fff_ffff) {
      dropbear_exit("Bad -2");
    }
    svr_opts.reexec_childpipe = fd;
  }

  if (svr_opts.multiauthmethod && svr_opts.noauthpass) {
    dropbear_exit("-t and -s are incompatible");
  }
  if (svr_opts.multiauthmethod && svr_opts.allowblankpass) {
    dropbear_exit("-t and -B are incompatible");
  }

  if (svr_opts.authorized_keys_dir.length === 0) {
    dropbear_exit("Bad -D");
  }

  if (algo_print_arg !== null) {
    print_algos(opts, algo_print_arg);
  }

  return { opts, svr_opts };
}

/** Record one -p [address:]port; extra ones past DROPBEAR_MAX_PORTS are ignored. @dropbear svr-runopts.c addportandaddress */
function addportandaddress(svr_opts: svr_runopts, spec: string): void {
  if (svr_opts.portcount >= DROPBEAR_MAX_PORTS) {
    return;
  }

  const split = split_address_port(spec);
  if (split === null) {
    dropbear_exit("Bad -p argument");
  }

  let address = split.first;
  let port = split.second;
  if (port === null) {
    // A bare port.
    port = address;
    address = null;
  }
  if (address === null) {
    address = DROPBEAR_DEFADDRESS;
  }
  // An empty spec leaves no port at all; Dropbear would dereference NULL there, we call it a
  // bad port like the empty one.
  if (port === null || port === "") {
    dropbear_exit("Bad port");
  }

  svr_opts.ports[svr_opts.portcount] = port;
  svr_opts.addresses[svr_opts.portcount] = address;
  svr_opts.portcount++;
}

/** Remember one -r key file; loading happens later. @dropbear svr-runopts.c addhostkey */
function addhostkey(svr_opts: svr_runopts, keyfile: string): void {
  if (svr_opts.num_hostkey_files >= MAX_HOSTKEYS) {
    dropbear_exit("Too many hostkeys");
  }
  svr_opts.hostkey_files[svr_opts.num_hostkey_files] = keyfile;
  svr_opts.num_hostkey_files++;
}

/** Read -b's file into svr_opts.banner; problems only warn. @dropbear svr-runopts.c load_banner */
function load_banner(svr_opts: svr_runopts): void {
  const bannerfile = svr_opts.bannerfile as string;
  let size: number;
  try {
    size = statSync(fsPath(bannerfile)).size;
  } catch {
    dropbear_log(LOG_WARNING, `Error opening banner file '${bannerfile}'`);
    return;
  }

  if (size > MAX_BANNER_SIZE) {
    dropbear_log(LOG_WARNING, `Banner file too large, max is ${MAX_BANNER_SIZE} bytes`);
    return;
  }

  // No more than stat() said: a device or a growing file (/dev/zero has size 0) is cut there.
  const buf = buf_new(size);
  if (!buf_readfile(buf, bannerfile)) {
    dropbear_log(LOG_WARNING, `Error reading banner file '${bannerfile}'`);
    svr_opts.banner = null;
    return;
  }
  svr_opts.banner = new Uint8Array(buf.data.subarray(0, buf.len));
}

/** Stop offering one signature type (no host key for it). @dropbear svr-runopts.c disablekey */
function disablekey(opts: runopts, type: number): void {
  TRACE(() => `Disabling key type ${type}`);
  const a = opts.algos.sigalgs.find((x) => x.val === type);
  if (a !== undefined) {
    a.usable = false;
  }
}

/**
 * Stop offering every signature type but `allow_type`, after the first key exchange: a rekey must
 * sign with the same host key, which (with -R) the session, by then the user, could not make.
 * Only the session's own tables change. @dropbear svr-runopts.c disable_sig_except
 */
export function disable_sig_except(algos: AlgoTables, allow_type: number): void {
  TRACE(() => `Disabling other sigs except ${allow_type}`);
  for (const a of algos.sigalgs) {
    if (a.val !== allow_type) {
      a.usable = false;
    }
  }
}

/** Which sign_key member holds each key type, with the name Dropbear's duplicate error uses. */
const HOSTKEY_MEMBERS: ReadonlyArray<[number, SignKeyMember, string]> = [
  [DROPBEAR_SIGNKEY_RSA, "rsakey", "RSA"],
  [DROPBEAR_SIGNKEY_ECDSA_NISTP256, "ecckey256", "ECDSA256"],
  [DROPBEAR_SIGNKEY_ECDSA_NISTP384, "ecckey384", "ECDSA384"],
  [DROPBEAR_SIGNKEY_ECDSA_NISTP521, "ecckey521", "ECDSA521"],
  [DROPBEAR_SIGNKEY_ED25519, "ed25519key", "ed25519"],
];

/** Read one host key file into svr_opts.hostkey; a second key of one type is an error with -r. @dropbear svr-runopts.c loadhostkey */
function loadhostkey(svr_opts: svr_runopts, keyfile: string, fatal_duplicate: boolean): void {
  const read_key = new_sign_key();
  const expand_path = expand_homedir_path(keyfile);
  const type = readhostkey(expand_path, read_key, DROPBEAR_SIGNKEY_ANY);
  if (type === null) {
    if (!svr_opts.delay_hostkey) {
      dropbear_log(LOG_WARNING, `Failed loading ${expand_path}`);
    }
    return;
  }
  // A key whose numbers cannot sign would fail every key exchange (Dropbear's signatures with
  // it are refused by clients); treated as a file that does not load.
  read_key.type = type;
  const problem = signkeyPrivateProblem(read_key);
  if (problem !== null) {
    dropbear_log(LOG_WARNING, `Failed loading ${expand_path}: ${problem}`);
    return;
  }
  for (const [t, member, name] of HOSTKEY_MEMBERS) {
    if (t !== type) continue;
    if (svr_opts.hostkey[member] !== null) {
      if (fatal_duplicate) {
        dropbear_exit(`Only one ${name} key can be specified`);
      }
    } else {
      (svr_opts.hostkey as unknown as Record<SignKeyMember, unknown>)[member] = read_key[member];
    }
  }
  TRACE("leave loadhostkey");
}

/**
 * Load the -r host keys (or the default files), and stop offering signature types we have no
 * key for: one ECDSA size at most. Exits when no key at all is usable.
 * @dropbear svr-runopts.c load_all_hostkeys
 */
export function load_all_hostkeys(opts: runopts, svr_opts: svr_runopts): void {
  svr_opts.hostkey = new_sign_key();
  for (const f of svr_opts.hostkey_files) {
    loadhostkey(svr_opts, f, true);
  }
  if (svr_opts.num_hostkey_files === 0) {
    loadhostkey(svr_opts, RSA_PRIV_FILENAME, false);
    loadhostkey(svr_opts, ECDSA_PRIV_FILENAME, false);
    loadhostkey(svr_opts, ED25519_PRIV_FILENAME, false);
  }
  const hk = svr_opts.hostkey;
  const delay = svr_opts.delay_hostkey;
  let any_keys = false;
  if (!delay && hk.rsakey === null) {
    disablekey(opts, DROPBEAR_SIGNATURE_RSA_SHA256);
    disablekey(opts, DROPBEAR_SIGNATURE_RSA_SHA512);
    // ssh-rsa too, for a build with DROPBEAR_RSA_SHA1 (a no-op otherwise: not in the table).
    disablekey(opts, DROPBEAR_SIGNATURE_RSA_SHA1);
  } else {
    any_keys = true;
  }
  // Advertise one ECDSA size: the loaded one, or with -R the default size.
  const loaded_any_ecdsa = hk.ecckey256 !== null || hk.ecckey384 !== null || hk.ecckey521 !== null;
  any_keys ||= loaded_any_ecdsa || delay;
  const ecdsa: Array<[unknown, number, number]> = [
    [hk.ecckey256, 256, DROPBEAR_SIGNATURE_ECDSA_NISTP256],
    [hk.ecckey384, 384, DROPBEAR_SIGNATURE_ECDSA_NISTP384],
    [hk.ecckey521, 521, DROPBEAR_SIGNATURE_ECDSA_NISTP521],
  ];
  for (const [key, size, sig] of ecdsa) {
    if (key === null && (!delay || loaded_any_ecdsa || ECDSA_DEFAULT_SIZE !== size)) {
      disablekey(opts, sig);
    }
  }
  if (!delay && hk.ed25519key === null) {
    disablekey(opts, DROPBEAR_SIGNATURE_ED25519);
  } else {
    any_keys = true;
  }
  // Security-key types are user keys only, never host keys.
  disablekey(opts, DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256);
  disablekey(opts, DROPBEAR_SIGNATURE_SK_ED25519);
  if (!any_keys) {
    dropbear_exit("No hostkeys available. 'dropbear -R' may be useful or run dropbearkey.");
  }
}
