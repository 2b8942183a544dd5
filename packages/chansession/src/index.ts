export * from "./termcodes.js";
export * from "./termios.js";
