export * from "./termcodes.js";
export * from "./termios.js";
export * from "./cli-chansession.js";
