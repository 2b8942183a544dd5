export * from "./common-channel.js";
export * from "./cli-channel.js";
export * from "./common-session.js";
