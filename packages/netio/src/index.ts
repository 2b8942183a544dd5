export * from "./fd.js";
export * from "./netio.js";
