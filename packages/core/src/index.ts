export * from "./algo.js";
export * from "./auth.js";
export * from "./channel.js";
export * from "./chansession.js";
export * from "./forward.js";
export * from "./listener.js";
export * from "./runopts.js";
export * from "./session.js";
