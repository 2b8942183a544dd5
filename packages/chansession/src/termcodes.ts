import {
  CS7,
  CS8,
  ECHO,
  ECHOCTL,
  ECHOE,
  ECHOK,
  ECHOKE,
  ECHONL,
  ICANON,
  ICRNL,
  IEXTEN,
  IGNCR,
  IGNPAR,
  IMAXBEL,
  INLCR,
  INPCK,
  ISIG,
  ISTRIP,
  IUCLC,
  IUTF8,
  IXANY,
  IXOFF,
  IXON,
  NOFLSH,
  OCRNL,
  OLCUC,
  ONLCR,
  ONLRET,
  ONOCR,
  OPOST,
  PARENB,
  PARMRK,
  PARODD,
  PENDIN,
  TOSTOP,
  VDISCARD,
  VEOF,
  VEOL,
  VEOL2,
  VERASE,
  VINTR,
  VKILL,
  VLNEXT,
  VQUIT,
  VREPRINT,
  VSTART,
  VSTOP,
  VSUSP,
  VWERASE,
  XCASE,
} from "./termios.js";

// The RFC 4254 §8 terminal mode opcodes and what each is on Linux. Opcodes whose flag Linux
// lacks (VDSUSP, VFLUSH, VSWTCH, VSTATUS) are TERMCODE_NONE, as Dropbear's #ifdefs leave them.

/** @dropbear termcodes.h TERMCODE_NONE */
export const TERMCODE_NONE = 0;
/** @dropbear termcodes.h TERMCODE_CONTROL */
export const TERMCODE_CONTROL = 1;
/** @dropbear termcodes.h TERMCODE_INPUT */
export const TERMCODE_INPUT = 2;
/** @dropbear termcodes.h TERMCODE_OUTPUT */
export const TERMCODE_OUTPUT = 3;
/** @dropbear termcodes.h TERMCODE_LOCAL */
export const TERMCODE_LOCAL = 4;
/** @dropbear termcodes.h TERMCODE_CONTROLCHAR */
export const TERMCODE_CONTROLCHAR = 5;

/** The highest opcode in the table (PARODD). @dropbear termcodes.h MAX_TERMCODE */
export const MAX_TERMCODE = 93;

/** An opcode's meaning: a c_cc index or a flag bit, and which field. @dropbear termcodes.h TermCode */
export interface TermCode {
  readonly mapcode: number;
  readonly type: number;
}

const none: TermCode = { mapcode: 0, type: TERMCODE_NONE };
const cc = (mapcode: number): TermCode => ({ mapcode, type: TERMCODE_CONTROLCHAR });
const iflag = (mapcode: number): TermCode => ({ mapcode, type: TERMCODE_INPUT });
const lflag = (mapcode: number): TermCode => ({ mapcode, type: TERMCODE_LOCAL });
const oflag = (mapcode: number): TermCode => ({ mapcode, type: TERMCODE_OUTPUT });
const cflag = (mapcode: number): TermCode => ({ mapcode, type: TERMCODE_CONTROL });
const gap = (n: number): TermCode[] => Array.from({ length: n }, () => none);

/** Opcode → TermCode, indexed 0..MAX_TERMCODE. @dropbear termcodes.c termcodes */
export const termcodes: readonly TermCode[] = [
  none, // 0: TTY_OP_END
  cc(VINTR), // 1
  cc(VQUIT),
  cc(VERASE),
  cc(VKILL),
  cc(VEOF),
  cc(VEOL),
  cc(VEOL2),
  cc(VSTART),
  cc(VSTOP),
  cc(VSUSP), // 10
  none, // 11: VDSUSP
  cc(VREPRINT),
  cc(VWERASE),
  cc(VLNEXT),
  none, // 15: VFLUSH
  none, // 16: VSWTCH
  none, // 17: VSTATUS
  cc(VDISCARD), // 18
  ...gap(11), // 19-29
  iflag(IGNPAR), // 30
  iflag(PARMRK),
  iflag(INPCK),
  iflag(ISTRIP),
  iflag(INLCR),
  iflag(IGNCR),
  iflag(ICRNL),
  iflag(IUCLC),
  iflag(IXON),
  iflag(IXANY),
  iflag(IXOFF), // 40
  iflag(IMAXBEL),
  iflag(IUTF8), // 42
  ...gap(7), // 43-49
  lflag(ISIG), // 50
  lflag(ICANON),
  lflag(XCASE),
  lflag(ECHO),
  lflag(ECHOE),
  lflag(ECHOK),
  lflag(ECHONL),
  lflag(NOFLSH),
  lflag(TOSTOP),
  lflag(IEXTEN),
  lflag(ECHOCTL), // 60
  lflag(ECHOKE),
  lflag(PENDIN), // 62
  ...gap(7), // 63-69
  oflag(OPOST), // 70
  oflag(OLCUC),
  oflag(ONLCR),
  oflag(OCRNL),
  oflag(ONOCR),
  oflag(ONLRET), // 75
  ...gap(14), // 76-89
  cflag(CS7), // 90
  cflag(CS8),
  cflag(PARENB),
  cflag(PARODD), // 93
];
