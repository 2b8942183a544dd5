export * from "./dbctype.js";
export * from "./dbutil.js";
export * from "./list.js";
export * from "./queue.js";
