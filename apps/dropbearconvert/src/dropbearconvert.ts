// Beyond Dropbear: an encrypted OpenSSH input key is not refused outright; the passphrase is
// asked for on the terminal (see readPassphrase).
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { DropbearExit, argText, withoutMessages } from "@dropbear-ts/dbutil";
import { _PATH_TTY } from "@dropbear-ts/options";
import {
  KEYFILE_DROPBEAR,
  KEYFILE_OPENSSH,
  type Passphrase,
  import_encrypted,
  import_read,
  import_write,
  type sign_key,
  sign_key_free,
  signkey_name_from_type,
} from "@dropbear-ts/signkey";

/** What dropbearconvert's command line asks for. */
export interface DropbearconvertArgs {
  intype: number;
  outtype: number;
  infile: string;
  outfile: string;
}

/** Usage text for dropbearconvert on stderr. @dropbear dropbearconvert.c printhelp */
function printhelp(progname: string): void {
  process.stderr.write(
    `Usage: ${progname} <inputtype> <outputtype> <inputfile> <outputfile>

WARNING: this tool is a convenience only. Do not run it on key files you do not
trust: a hostile input file might be able to run code of its choosing.
All four arguments are required, in this order.

Each type is one of:
openssh
dropbear

Example:
dropbearconvert openssh dropbear /etc/ssh/ssh_host_ed25519_key /etc/dropbear/dropbear_ed25519_host_key
`,
  );
}

/** A type word: only its first letter counts, as in Dropbear. */
function keyfileType(word: string): number | null {
  if (word[0] === "d") {
    return KEYFILE_DROPBEAR;
  }
  if (word[0] === "o") {
    return KEYFILE_OPENSSH;
  }
  return null;
}

/**
 * The command-line half of dropbearconvert's main: exactly four positional words, no flags
 * (so -h and -V are usage errors, as in Dropbear). Returns null after printing the usage.
 */
export function parseDropbearconvertArgs(argv: readonly string[]): DropbearconvertArgs | null {
  const progname = argv[0] ?? "dropbearconvert";
  if (argv.length !== 5) {
    process.stderr.write("All arguments must be specified\n");
    printhelp(progname);
    return null;
  }
  const intype = keyfileType(argv[1]);
  if (intype === null) {
    process.stderr.write("Invalid input key type\n");
    printhelp(progname);
    return null;
  }
  const outtype = keyfileType(argv[2]);
  if (outtype === null) {
    process.stderr.write("Invalid output key type\n");
    printhelp(progname);
    return null;
  }
  // The file names as their bytes (argText): names that are not UTF-8 are opened as given.
  return { intype, outtype, infile: argText(argv, 3), outfile: argText(argv, 4) };
}

/**
 * dropbearconvert: parse the command line, then convert the key. New files are private to
 * the user whatever the caller's umask. Returns the exit status.
 * @dropbear dropbearconvert.c dropbearconvert_main
 */
export function dropbearconvert_main(argv: readonly string[]): number {
  const args = parseDropbearconvertArgs(argv);
  if (args === null) {
    return 1;
  }
  process.umask(0o077);
  return do_convert(args.intype, args.infile, args.outtype, args.outfile);
}

/**
 * Read the key in `infile` and write it to the new file `outfile` in the other format,
 * reporting on stderr. Returns the exit status. @dropbear dropbearconvert.c do_convert
 */
function do_convert(intype: number, infile: string, outtype: number, outfile: string): number {
  const passphrase = askPassphraseIfEncrypted(intype, infile);
  let key: sign_key | null;
  try {
    key = import_read(infile, passphrase, intype);
  } finally {
    if (passphrase instanceof Uint8Array) {
      passphrase.fill(0);
    }
  }
  if (key === null) {
    process.stderr.write(`Error reading key from '${infile}'\n`);
    return 1;
  }
  try {
    process.stderr.write(`Key is a ${signkey_name_from_type(key.type)} key\n`);
    if (!import_write(outfile, key, null, outtype)) {
      process.stderr.write(`Error writing key to '${outfile}'\n`);
      return 1;
    }
    process.stderr.write(`Wrote key to '${outfile}'\n`);
    return 0;
  } finally {
    sign_key_free(key);
  }
}

/**
 * The passphrase for an encrypted OpenSSH input file, asked on the terminal; null when the
 * file is not one (or is stdin, which can be read only once), or no terminal is there, in
 * which case import_read refuses the key as Dropbear does.
 */
function askPassphraseIfEncrypted(intype: number, infile: string): Passphrase {
  if (intype !== KEYFILE_OPENSSH || infile === "-") {
    return null;
  }
  let encrypted: boolean;
  try {
    // import_read, run next on the same file, says again why a file is unreadable: once is enough.
    encrypted = withoutMessages(() => import_encrypted(infile, intype));
  } catch (e) {
    // A malformed file: import_read meets the same trouble next and reports it.
    if (e instanceof DropbearExit) {
      return null;
    }
    throw e;
  }
  return encrypted ? readPassphrase(`Enter passphrase for key '${infile}': `) : null;
}

/**
 * Show `prompt` on the controlling terminal and read one line there with echo off, as
 * getpass(3) does. Null when there is no terminal. The terminal's settings are put back
 * afterwards (and Node restores them itself if a signal ends us mid-read).
 */
function readPassphrase(prompt: string): Uint8Array | null {
  let fd: number;
  try {
    fd = openSync(_PATH_TTY, "r+");
  } catch {
    return null;
  }
  try {
    const saved = stty(fd, "-g")?.trim() ?? "echo";
    stty(fd, "-echo");
    const line: number[] = [];
    try {
      writeSync(fd, prompt);
      const b = Buffer.alloc(1);
      while (readSync(fd, b, 0, 1, null) === 1 && b[0] !== 0x0a && b[0] !== 0x0d) {
        line.push(b[0]);
      }
    } finally {
      stty(fd, saved);
      writeSync(fd, "\n");
    }
    const pass = Uint8Array.from(line);
    line.fill(0);
    return pass;
  } finally {
    closeSync(fd);
  }
}

/** Run stty(1) on the terminal `fd`; its output, or null if it failed. */
function stty(fd: number, setting: string): string | null {
  const r = spawnSync("stty", [setting], { stdio: [fd, "pipe", "ignore"], encoding: "utf8" });
  return r.status === 0 ? r.stdout : null;
}
