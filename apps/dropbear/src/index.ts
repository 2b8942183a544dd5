// What the library (the `dropbear-ts` package) uses of the server program: its session, made
// and run without the program's process-wide setup (svr-main.c, main.ts).
export { svrSessionExit, svrSessionNew, svrSessionRun, svr_session } from "./svr-session.js";
