import { constants } from "node:os";
import type { SigMap } from "@dropbear-ts/core";

// common-chansession.c: the signal names both sides use for "signal" and "exit-signal"
// requests (RFC 4254 §6.10, without the "SIG" prefix). The numbers are this system's.

const sig = constants.signals;

/** Signal numbers and their SSH names. @dropbear common-chansession.c signames */
export const signames: readonly SigMap[] = [
  { signal: sig.SIGABRT, name: "ABRT" },
  { signal: sig.SIGALRM, name: "ALRM" },
  { signal: sig.SIGBUS, name: "BUS" },
  { signal: sig.SIGFPE, name: "FPE" },
  { signal: sig.SIGHUP, name: "HUP" },
  { signal: sig.SIGILL, name: "ILL" },
  { signal: sig.SIGINT, name: "INT" },
  { signal: sig.SIGKILL, name: "KILL" },
  { signal: sig.SIGPIPE, name: "PIPE" },
  { signal: sig.SIGQUIT, name: "QUIT" },
  { signal: sig.SIGSEGV, name: "SEGV" },
  { signal: sig.SIGTERM, name: "TERM" },
  { signal: sig.SIGTRAP, name: "TRAP" },
  { signal: sig.SIGUSR1, name: "USR1" },
  { signal: sig.SIGUSR2, name: "USR2" },
];
