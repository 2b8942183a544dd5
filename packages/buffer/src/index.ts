export * from "./buffer.js";
export * from "./circbuffer.js";
