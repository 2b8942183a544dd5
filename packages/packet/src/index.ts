export * from "./packet.js";
export * from "./process-packet.js";
