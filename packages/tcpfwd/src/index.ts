export * from "./tcp-accept.js";
export * from "./cli-tcpfwd.js";
export * from "./svr-tcpfwd.js";
export * from "./svr-forward.js";
export * from "./svr-streamfwd.js";
