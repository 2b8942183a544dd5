import { algolist_string, check_user_algos } from "@dropbear-ts/algo";
import { buf_burn_free, buf_new, buf_readfile, buf_setpos } from "@dropbear-ts/buffer";
import type { algo_type, runopts } from "@dropbear-ts/core";
import { LOG_INFO, LOG_WARNING, argText, dropbear_exit, dropbear_log, exitQuietly, m_str_to_uint } from "@dropbear-ts/dbutil";
import { DROPBEAR_TS_VERSION, DROPBEAR_VERSION, MAX_PRIVKEY_SIZE, MAX_RECV_WINDOW } from "@dropbear-ts/options";
import { buf_get_priv_key, type sign_key, type signkey_type } from "@dropbear-ts/signkey";

/**
 * -c / -m: "help" lists what we have (and exits), anything else narrows the tables to the
 * user's list, in the user's order. @dropbear common-runopts.c parse_ciphers_macs
 */
export function parse_ciphers_macs(opts: runopts): void {
  let printed_help = false;
  if (opts.cipher_list !== null) {
    if (opts.cipher_list === "help") {
      dropbear_log(LOG_INFO, `Available ciphers: ${algolist_string(opts.algos.sshciphers)}`);
      printed_help = true;
    } else if (check_user_algos(opts.cipher_list, opts.algos.sshciphers, "cipher") === 0) {
      dropbear_exit("No valid ciphers specified for '-c'");
    }
  }
  if (opts.mac_list !== null) {
    if (opts.mac_list === "help") {
      dropbear_log(LOG_INFO, `Available MACs: ${algolist_string(opts.algos.sshhashes)}`);
      printed_help = true;
    } else if (check_user_algos(opts.mac_list, opts.algos.sshhashes, "MAC") === 0) {
      dropbear_exit("No valid MACs specified for '-m'");
    }
  }
  if (printed_help) {
    // Dropbear ends a help listing through dropbear_exit, so the status is a failure.
    dropbear_exit(".");
  }
}

/**
 * Read a Dropbear-format private key file into `hostkey`; the type read (or null) is returned.
 * @dropbear common-runopts.c readhostkey
 */
export function readhostkey(filename: string, hostkey: sign_key, type: signkey_type): signkey_type | null {
  const buf = buf_new(MAX_PRIVKEY_SIZE);
  try {
    if (!buf_readfile(buf, filename)) {
      return null;
    }
    buf_setpos(buf, 0);
    return buf_get_priv_key(buf, hostkey, type);
  } finally {
    buf_burn_free(buf);
  }
}

/** An unsigned option value, or Dropbear's "Bad <what> '<value>'" exit. */
export function uintOption(what: string, value: string): number {
  const val = m_str_to_uint(value);
  if (val === null) {
    dropbear_exit(`Bad ${what} '${value}'`);
  }
  return val;
}

/**
 * The value of a flag at argv[i][j-1]: the rest of that word if any ("-p2222"), else the next
 * word ("-p 2222"), whose index is returned too. No next word is "Missing argument".
 */
export function flagValue(argv: readonly string[], i: number, j: number): { value: string; i: number } {
  const arg = argv[i]!;
  if (j < arg.length) {
    return { value: arg.slice(j), i };
  }
  if (i + 1 >= argv.length) {
    dropbear_exit("Missing argument");
  }
  return { value: argv[i + 1]!, i: i + 1 };
}

/**
 * The value flagValue took from argv[i] (the flag at j - 1) as argText keeps its bytes: the
 * user name of -l or -o User=, or dropbear's -c command, goes on as given.
 */
export function flagValueText(argv: readonly string[], i: number, j: number, taken: { value: string; i: number }): string {
  if (taken.i !== i) {
    return argText(argv, taken.i);
  }
  const text = argText(argv, i);
  const flags = argv[i]!.slice(0, j);
  return text.startsWith(flags) ? text.slice(j) : taken.value;
}

/**
 * Print "Dropbear v<version>" to stderr, followed by which dropbear-ts this is: Dropbear's line
 * stays a prefix for scripts, and a user with Debian's Dropbear too can tell which one ran.
 * @dropbear common-runopts.c print_version
 */
export function print_version(): void {
  process.stderr.write(`Dropbear v${DROPBEAR_VERSION} (dropbear-ts ${DROPBEAR_TS_VERSION})\n`);
}

/**
 * Set opts.recv_window from -W. A bad value only warns: zero or unparsable keeps the current
 * window, too large clamps to MAX_RECV_WINDOW.
 * @dropbear common-runopts.c parse_recv_window
 */
export function parse_recv_window(opts: runopts, recv_window_arg: string): void {
  const rw = m_str_to_uint(recv_window_arg);
  if (rw === null || rw === 0 || rw > MAX_RECV_WINDOW) {
    if (rw !== null && rw > MAX_RECV_WINDOW) {
      opts.recv_window = MAX_RECV_WINDOW;
    }
    dropbear_log(LOG_WARNING, `Bad recv window '${recv_window_arg}', using ${opts.recv_window}`);
  } else {
    opts.recv_window = rw;
  }
}

/** The two halves split_address_port finds; a half is null when absent. */
export interface AddressPort {
  first: string | null;
  second: string | null;
}

/**
 * Split "addr:port" at the last colon, or "[v6addr]:port" at its bracket:
 * ":port" gives (null, "port"), "port" gives ("port", null), "addr:" gives ("addr", "").
 * Returns null (DROPBEAR_FAILURE, after a warning) for a malformed bracket.
 * @dropbear common-runopts.c split_address_port
 */
export function split_address_port(spec: string): AddressPort | null {
  let addr: string;
  let rest: string | null;
  if (spec.startsWith("[")) {
    const close = spec.indexOf("]", 1);
    if (close < 0) {
      dropbear_log(LOG_WARNING, `Bad address '${spec}'`);
      return null;
    }
    addr = spec.slice(1, close);
    const after = spec.slice(close + 1);
    if (after === "") {
      rest = null;
    } else if (after.startsWith(":")) {
      rest = after.slice(1);
    } else {
      dropbear_log(LOG_WARNING, `Bad address '${spec}'`);
      return null;
    }
  } else {
    const colon = spec.lastIndexOf(":");
    addr = colon < 0 ? spec : spec.slice(0, colon);
    rest = colon < 0 ? null : spec.slice(colon + 1);
  }
  return { first: addr.length > 0 ? addr : null, second: rest };
}

/**
 * -Q: print every algorithm of one kind to stdout, one per line, and exit.
 * @dropbear common-runopts.c print_algos
 */
export function print_algos(opts: runopts, algo: string): never {
  const t = opts.algos;
  const lists: Record<string, readonly algo_type[]> = {
    kex: t.sshkex,
    sig: t.sigalgs,
    cipher: t.sshciphers,
    mac: t.sshhashes,
    compress: opts.compression ? t.ssh_compress : t.ssh_nocompress,
  };
  const list = lists[algo];
  if (list === undefined) {
    process.stdout.write("kex\nsig\ncipher\nmac\ncompress\n");
    if (algo === "help") {
      exitQuietly(0);
    }
    process.stdout.write(`Unknown -Q '${algo}'\n`);
    exitQuietly(1);
  }
  // Extension markers in the kex list (kexguess2, ext-info, strict) are not algorithms.
  const names = list.filter((a) => algo !== "kex" || a.data !== null).map((a) => `${a.name}\n`);
  process.stdout.write(names.join(""));
  exitQuietly(0);
}
