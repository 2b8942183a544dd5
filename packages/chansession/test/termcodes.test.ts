import { describe, expect, it } from "vitest";
import { MAX_TERMCODE, TERMCODE_CONTROLCHAR, TERMCODE_INPUT, TERMCODE_LOCAL, TERMCODE_NONE, TERMCODE_OUTPUT, termcodes } from "../src/termcodes.js";
import { ECHO, ICRNL, IUTF8, OPOST, VINTR } from "../src/termios.js";

describe("termcodes", () => {
  it("has an entry for every opcode 0..MAX_TERMCODE", () => {
    expect(termcodes.length).toBe(MAX_TERMCODE + 1);
  });
  it("places RFC 4254 §8 opcodes where the RFC numbers them", () => {
    expect(termcodes[0]!.type).toBe(TERMCODE_NONE);
    expect(termcodes[1]).toEqual({ mapcode: VINTR, type: TERMCODE_CONTROLCHAR });
    expect(termcodes[36]).toEqual({ mapcode: ICRNL, type: TERMCODE_INPUT });
    expect(termcodes[42]).toEqual({ mapcode: IUTF8, type: TERMCODE_INPUT });
    expect(termcodes[53]).toEqual({ mapcode: ECHO, type: TERMCODE_LOCAL });
    expect(termcodes[70]).toEqual({ mapcode: OPOST, type: TERMCODE_OUTPUT });
  });
});
