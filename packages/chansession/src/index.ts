export * from "./termcodes.js";
export * from "./termios.js";
export * from "./common-chansession.js";
export * from "./sshpty.js";
export * from "./loginrec.js";
export * from "./svr-chansession.js";
export * from "./cli-chansession.js";
