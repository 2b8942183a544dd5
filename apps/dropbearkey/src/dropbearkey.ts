import { closeSync, constants, fsyncSync, openSync, writeSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { buf_burn_free, buf_free, buf_getptr, buf_new, buf_readfile, buf_setpos } from "@dropbear-ts/buffer";
import { DROPBEAR_DEFAULT_RSA_SIZE, MAX_PRIVKEY_SIZE, MAX_PUBKEY_SIZE } from "@dropbear-ts/options";
import { DROPBEAR_VERBOSE_LEVEL, EXIT_SUCCESS, argBytes, argText, LOG_ERR, dropbear_exit, dropbear_log, exitQuietly, fsPath, set_debug_trace, strerror } from "@dropbear-ts/dbutil";
import {
  DROPBEAR_SIGNKEY_ANY,
  DROPBEAR_SIGNKEY_ECDSA_KEYGEN,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  ECDSA_DEFAULT_SIZE,
  buf_get_priv_key,
  buf_put_pub_key,
  new_sign_key,
  type sign_key,
  sign_key_fingerprint,
  sign_key_free,
  signkey_generate,
  signkey_generate_get_bits,
  signkey_name_from_type,
} from "@dropbear-ts/signkey";

// exit(DROPBEAR_FAILURE) in C: -1, which the shell sees as 255.
const EXIT_DROPBEAR_FAILURE = 255;

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
  /** -C's bytes as given (a comment in Latin-1 stays Latin-1, as in C). */
  comment: Buffer | null;
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
  let next: ((value: string, at: number) => void) | null = null;
  // Assigned from the `next` closures: the `as` keeps TypeScript from deciding they stay null.
  let filename = null as string | null;
  let typetext: string = DEFAULT_KEY_TYPE_NAME;
  let sizetext = null as string | null;
  let passphrase = null as string | null;
  let comment = null as Buffer | null;
  let printpub = false;

  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i];
    if (next !== null) {
      next(arg, i);
      next = null;
      continue;
    }
    if (arg[0] !== "-") {
      continue;
    }
    switch (arg[1]) {
      case "f":
        next = (_v, at) => (filename = argText(argv, at));
        break;
      case "t":
        next = (v) => (typetext = v);
        break;
      case "s":
        next = (v) => (sizetext = v);
        break;
      case "C":
        next = (_v, at) => (comment = argBytes(argv, at));
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

/** The signkey_type dropbearkey generates for a -t name. */
const KEYGEN_TYPES: Record<KeyTypeName, number> = {
  rsa: DROPBEAR_SIGNKEY_RSA,
  ecdsa: DROPBEAR_SIGNKEY_ECDSA_KEYGEN,
  ed25519: DROPBEAR_SIGNKEY_ED25519,
};

/**
 * dropbearkey: parse the command line, then generate a key (and its .pub file) or, with -y,
 * print the public half of an existing one. Returns the exit status.
 * @dropbear dropbearkey.c dropbearkey_main
 */
export function dropbearkey_main(argv: readonly string[]): number {
  const args = parseDropbearkeyArgs(argv);
  if (args.printpub) {
    return printpubfile(args.filename, null, false) ? EXIT_SUCCESS : EXIT_DROPBEAR_FAILURE;
  }

  const keytype = KEYGEN_TYPES[args.keytype];
  // C keeps the size in an unsigned int but hands it on as an int: "-s -1" is announced as
  // 4294967295 bits and then refused as -1 bits, and we do the same.
  const bits = args.bits | 0;
  const genbits = signkey_generate_get_bits(keytype, bits) >>> 0;
  process.stderr.write(`Generating ${genbits} bit ${args.keytype} key, this may take a while...\n`);
  if (!signkey_generate(keytype, bits, args.filename, false)) {
    dropbear_exit("Failed to generate key.\n");
  }

  printpubfile(args.filename, args.comment, true);
  return EXIT_SUCCESS;
}

/**
 * Load the Dropbear-format private key in `filename` and print its public half; with
 * `create_pub_file` also save that line to `<filename>.pub`. False (after saying why on
 * stderr) when the file cannot be read or holds no key. @dropbear dropbearkey.c printpubfile
 */
function printpubfile(filename: string, comment: Buffer | null, create_pub_file: boolean): boolean {
  const buf = buf_new(MAX_PRIVKEY_SIZE);
  const key = new_sign_key();
  try {
    if (!buf_readfile(buf, filename)) {
      process.stderr.write(`Failed reading '${filename}'\n`);
      return false;
    }
    buf_setpos(buf, 0);
    const keytype = buf_get_priv_key(buf, key, DROPBEAR_SIGNKEY_ANY);
    if (keytype === null) {
      process.stderr.write(`Bad key in '${filename}'\n`);
      return false;
    }
    printpubkey(key, keytype, comment, create_pub_file, filename);
    return true;
  } finally {
    buf_burn_free(buf);
    sign_key_free(key);
  }
}

/**
 * Print "Public key portion is:", the public key line and its fingerprint to stdout; with
 * `create_pub_file` the line also goes to a new `<filename>.pub` (mode 0600, never replacing
 * a file: failing to make it is logged, not fatal). Without a comment the line ends in
 * user@host. @dropbear dropbearkey.c printpubkey
 */
function printpubkey(key: sign_key, keytype: number, comment: Buffer | null, create_pub_file: boolean, filename: string): void {
  let filename_pub: string | null = null;
  let pubkey_fd: number | null = null;
  if (create_pub_file) {
    filename_pub = `${filename}.pub`;
    try {
      pubkey_fd = openSync(
        fsPath(filename_pub),
        constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_EXCL,
        0o600,
      );
    } catch (err) {
      dropbear_log(LOG_ERR, `Save public key to ${filename_pub} failed: ${strerror(err)}`);
    }
  }

  const buf = buf_new(MAX_PUBKEY_SIZE);
  buf_put_pub_key(buf, key, keytype);
  // Skip the string length: the line and the fingerprint are over the bare blob.
  buf_setpos(buf, 4);
  const blob = buf_getptr(buf, buf.len - buf.pos);

  const base64key = blob.toString("base64");
  const typestring = signkey_name_from_type(keytype);
  // An empty -C still counts as a comment, as in C: the line then ends in a space.
  const line = Buffer.concat([Buffer.from(`${typestring} ${base64key} `), comment ?? Buffer.from(defaultComment()), Buffer.from("\n")]);

  process.stdout.write("Public key portion is:\n");
  process.stdout.write(line);
  if (pubkey_fd !== null) {
    try {
      writeSync(pubkey_fd, line);
    } catch {
      // C's buffered fprintf drops write errors silently; so do we.
    }
  }
  process.stdout.write(`Fingerprint: ${sign_key_fingerprint(blob)}\n`);
  buf_free(buf);

  if (pubkey_fd !== null) {
    try {
      fsyncSync(pubkey_fd);
    } catch (err) {
      dropbear_log(LOG_ERR, `fsync of ${filename_pub} failed: ${strerror(err)}`);
    }
    closeSync(pubkey_fd);
  }
}

/** "user@host" for the running user, the informative comment used when -C is absent. */
function defaultComment(): string {
  let username = "";
  try {
    username = userInfo().username;
  } catch {
    // No passwd entry for our uid: C leaves the user part empty.
  }
  // C reads the host name into a 100-byte buffer, so at most 99 characters survive.
  return `${username}@${hostname().slice(0, 99)}`;
}
