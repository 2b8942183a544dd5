/** Key file formats dropbearconvert reads and writes. @dropbear keyimport.h KEYFILE_DROPBEAR */
export const KEYFILE_DROPBEAR = 0;
/** @dropbear keyimport.h KEYFILE_OPENSSH */
export const KEYFILE_OPENSSH = 1;

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
  return { intype, outtype, infile: argv[3], outfile: argv[4] };
}

/**
 * dropbearconvert: parse the command line, then convert the key. Returns the exit status;
 * conversion is not ported yet, so a valid command line ends with status 1.
 * @dropbear dropbearconvert.c dropbearconvert_main
 */
export function dropbearconvert_main(argv: readonly string[]): number {
  const args = parseDropbearconvertArgs(argv);
  if (args === null) {
    return 1;
  }
  process.stderr.write("dropbearconvert: not yet implemented in dropbear-ts: key conversion\n");
  return 1;
}
