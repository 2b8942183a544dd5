export * from "./forward.js";
export * from "./runopts.js";
