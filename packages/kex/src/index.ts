export * from "./common-kex.js";
export * from "./kex-dh.js";
export * from "./kex-ecdh.js";
export * from "./kex-x25519.js";
export * from "./kex-pqhybrid.js";
export * from "./svr-kex.js";
export * from "./cli-kex.js";
