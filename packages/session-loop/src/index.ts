export * from "./common-session.js";
export * from "./select.js";
