import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { withV8Flags } from "../src/v8flags.js";

describe("withV8Flags", () => {
  it("sets the flags for the call only, and sets them back when it throws too", () => {
    // --expose-gc shows in a new context: `gc` is there while the flag is set, gone after.
    expect(withV8Flags(["--expose-gc"], () => runInNewContext("typeof gc"))).toBe("function");
    expect(runInNewContext("typeof gc")).toBe("undefined");
    expect(() =>
      withV8Flags(["--expose-gc"], () => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(runInNewContext("typeof gc")).toBe("undefined");
  });
});
