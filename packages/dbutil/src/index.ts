export * from "./dbctype.js";
export * from "./dbutil.js";
export * from "./libc.js";
export * from "./list.js";
export * from "./queue.js";
export * from "./sigign.js";
export * from "./spawn.js";
export * from "./tunables.js";
