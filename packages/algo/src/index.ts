export * from "./common-algo.js";
