export * from "./fd.js";
