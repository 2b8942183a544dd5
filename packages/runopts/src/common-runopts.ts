import { DROPBEAR_VERSION, MAX_RECV_WINDOW } from "@dropbear-ts/options";
import { LOG_INFO, LOG_WARNING, dropbear_exit, dropbear_log, exitQuietly, m_str_to_uint } from "@dropbear-ts/dbutil";
import type { runopts } from "@dropbear-ts/core";

/** The algorithm kinds -Q knows, in the order Dropbear lists them. */
const ALGO_KINDS = ["kex", "sig", "cipher", "mac", "compress"] as const;

/** Handle `-c help` / `-m help`; other lists are kept for the algorithm negotiation. @dropbear common-runopts.c parse_ciphers_macs */
export function parse_ciphers_macs(opts: runopts): void {
  // Checking a list (check_user_algos) and listing the choices both need the algorithm tables,
  // which are not ported yet: lists are stored as given, and "help" says so instead of lying.
  let printed_help = false;
  if (opts.cipher_list === "help") {
    dropbear_log(LOG_INFO, "-c help: not yet implemented in dropbear-ts (no algorithm tables yet)");
    printed_help = true;
  }
  if (opts.mac_list === "help") {
    dropbear_log(LOG_INFO, "-m help: not yet implemented in dropbear-ts (no algorithm tables yet)");
    printed_help = true;
  }
  if (printed_help) {
    // Dropbear ends a help listing through dropbear_exit, so the status is a failure.
    dropbear_exit(".");
  }
}

/** Print "Dropbear v<version>" to stderr. @dropbear common-runopts.c print_version */
export function print_version(): void {
  process.stderr.write(`Dropbear v${DROPBEAR_VERSION}\n`);
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
 * -Q: print the usable algorithms of one kind to stdout, one per line, and exit.
 * @dropbear common-runopts.c print_algos
 */
export function print_algos(algo: string): never {
  if ((ALGO_KINDS as readonly string[]).includes(algo)) {
    dropbear_exit(`not yet implemented in dropbear-ts: -Q ${algo} (no algorithm tables yet)`);
  }
  process.stdout.write(ALGO_KINDS.map((k) => `${k}\n`).join(""));
  if (algo === "help") {
    exitQuietly(0);
  }
  process.stdout.write(`Unknown -Q '${algo}'\n`);
  exitQuietly(1);
}
