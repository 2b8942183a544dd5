// What the library (the dropbear-ts package's client) uses of the client program: its session,
// run by the same functions dbclient runs. main.ts is the program; importing this starts nothing.
export { cli_session, cli_session_new } from "./cli-session.js";
