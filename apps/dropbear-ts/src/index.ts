// dropbear-ts as a library: Dropbear's client (and server) driven from code, on the same
// session loop and functions as the dbclient and dropbear programs.
export type { LogLevel, Logger } from "./common.js";
export * from "./client.js";
export * from "./server.js";
