export * from "./cli-agentfwd.js";
export * from "./svr-agentfwd.js";
