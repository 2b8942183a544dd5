export * from "./fd.js";
export * from "./netio.js";
export * from "./fdpass.js";
