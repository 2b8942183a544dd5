export * from "./default_options.js";
export * from "./sysoptions.js";
export * from "./ssh.js";
export * from "./version.js";
