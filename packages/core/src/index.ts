export * from "./algo.js";
export * from "./auth.js";
export * from "./forward.js";
export * from "./runopts.js";
export * from "./session.js";
