export * from "./buffer.js";
export * from "./circbuffer.js";
export * from "./buf-file.js";
