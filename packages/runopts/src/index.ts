export * from "./common-runopts.js";
export * from "./svr-runopts.js";
export * from "./cli-runopts.js";
export * from "./cli-readconf.js";
