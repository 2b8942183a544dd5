import { DROPBEAR_DEFAULT_RSA_SIZE } from "@dropbear-ts/options";
import { dropbear_exit, set_debug_trace } from "@dropbear-ts/dbutil";
import { exitQuietly } from "@dropbear-ts/dbutil";

// TODO(options): move to @dropbear-ts/options (debug.h DROPBEAR_VERBOSE_LEVEL, the trace level
// -v selects here).
const DROPBEAR_VERBOSE_LEVEL = 4;
// TODO(options): move to @dropbear-ts/options (ecdsa.h ECDSA_DEFAULT_SIZE).
const ECDSA_DEFAULT_SIZE = 256;

/** The key types this build generates, by their -t names. */
export type KeyTypeName = "rsa" | "ecdsa" | "ed25519";

/** The type used without -t. @dropbear dropbearkey.c DEFAULT_KEY_TYPE_NAME */
export const DEFAULT_KEY_TYPE_NAME: KeyTypeName = "ed25519";

/** What dropbearkey's command line asks for. */
export interface DropbearkeyArgs {
  filename: string;
  keytype: KeyTypeName;
  /** -s; 0 when absent, meaning the type's default size. */
  bits: number;
  comment: string | null;
  /** -y: print the public part of an existing key instead of generating one. */
  printpub: boolean;
}

/** Usage text for dropbearkey on stderr. @dropbear dropbearkey.c printhelp */
function printhelp(progname: string): void {
  process.stderr.write(
    `Usage: ${progname} -t <type> -f <filename> [-s bits]
-t type         Kind of key to make (default ${DEFAULT_KEY_TYPE_NAME}), one of:
                rsa
                ecdsa
                ed25519
-f filename     File the private key is written to.
                For a client key, ~/.ssh/id_dropbear is the usual place.
-s bits         Key size in bits, a multiple of 8 (optional)
                RSA: 1024 to 4096 (default ${DROPBEAR_DEFAULT_RSA_SIZE})
                ECDSA: 256 384 521 (default ${ECDSA_DEFAULT_SIZE})
                Ed25519: always 256
-y              Print the public key and fingerprint of the private key
                in <filename> instead of generating one.
-C comment      Comment (e.g. an email address) to put in the public key.
-v              Debug output
`,
  );
}

/** Reject sizes a type cannot have; ECDSA sizes are checked when generating. @dropbear dropbearkey.c check_signkey_bits */
function check_signkey_bits(keytype: KeyTypeName, bits: number): void {
  switch (keytype) {
    case "ed25519":
      if (bits !== 256) {
        dropbear_exit("Ed25519 keys have a fixed size of 256 bits\n");
      }
      break;
    case "rsa":
      if (bits < 1024 || bits > 4096 || bits % 8 !== 0) {
        dropbear_exit("Bits must satisfy 1024 <= bits <= 4096, and be a multiple of 8\n");
      }
      break;
    case "ecdsa":
      break;
  }
}

/**
 * sscanf("%u"): leading blanks, an optional sign, digits, and anything after them ignored.
 * Negative or too large values wrap the way glibc stores them into an unsigned int.
 */
function scanUnsigned(text: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(text);
  if (m === null) {
    return null;
  }
  const ULONG_MAX = (1n << 64n) - 1n;
  let v = BigInt(m[2]);
  if (v > ULONG_MAX) {
    v = ULONG_MAX;
  } else if (m[1] === "-") {
    v = (ULONG_MAX + 1n - v) & ULONG_MAX;
  }
  return Number(v & 0xffff_ffffn);
}

/**
 * The command-line half of dropbearkey's main. Its rules differ from dropbear's: only the
 * letter right after "-" counts, a value is always the whole next word, and words without
 * "-" are skipped. Usage errors print and throw QuietExit(1); -h throws QuietExit(0).
 */
export function parseDropbearkeyArgs(argv: readonly string[]): DropbearkeyArgs {
  const progname = argv[0] ?? "dropbearkey";
  let next: ((value: string) => void) | null = null;
  // Assigned from the `next` closures: the `as` keeps TypeScript from deciding they stay null.
  let filename = null as string | null;
  let typetext: string = DEFAULT_KEY_TYPE_NAME;
  let sizetext = null as string | null;
  let passphrase = null as string | null;
  let comment = null as string | null;
  let printpub = false;

  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i];
    if (next !== null) {
      next(arg);
      next = null;
      continue;
    }
    if (arg[0] !== "-") {
      continue;
    }
    switch (arg[1]) {
      case "f":
        next = (v) => (filename = v);
        break;
      case "t":
        next = (v) => (typetext = v);
        break;
      case "s":
        next = (v) => (sizetext = v);
        break;
      case "C":
        next = (v) => (comment = v);
        break;
      case "y":
        printpub = true;
        break;
      case "h":
        printhelp(progname);
        exitQuietly(0);
      case "v":
        set_debug_trace(DROPBEAR_VERBOSE_LEVEL);
        break;
      case "q":
        // -q: output is already minimal.
        break;
      case "N":
        next = (v) => (passphrase = v);
        break;
      default:
        process.stderr.write(`Unknown argument ${arg}\n`);
        printhelp(progname);
        exitQuietly(1);
    }
  }

  if (filename === null) {
    process.stderr.write("Must specify a key filename\n");
    printhelp(progname);
    exitQuietly(1);
  }

  if (printpub) {
    return { filename, keytype: DEFAULT_KEY_TYPE_NAME, bits: 0, comment: null, printpub };
  }

  if (typetext !== "rsa" && typetext !== "ecdsa" && typetext !== "ed25519") {
    process.stderr.write(`Unknown key type '${typetext}'\n`);
    printhelp(progname);
    exitQuietly(1);
  }

  let bits = 0;
  if (sizetext !== null) {
    const scanned = scanUnsigned(sizetext);
    if (scanned === null) {
      process.stderr.write("Bits must be an integer\n");
      exitQuietly(1);
    }
    bits = scanned;
    check_signkey_bits(typetext, bits);
  }

  if (passphrase !== null && passphrase !== "") {
    process.stderr.write("Only empty passphrase is supported\n");
    exitQuietly(1);
  }

  return { filename, keytype: typetext, bits, comment, printpub };
}

/**
 * dropbearkey: parse the command line, then generate a key or print one. Returns the exit
 * status; key handling is not ported yet, so a valid command line ends with status 1.
 * @dropbear dropbearkey.c dropbearkey_main
 */
export function dropbearkey_main(argv: readonly string[]): number {
  const args = parseDropbearkeyArgs(argv);
  const what = args.printpub ? "printing a public key (-y)" : "key generation";
  process.stderr.write(`dropbearkey: not yet implemented in dropbear-ts: ${what}\n`);
  return 1;
}
