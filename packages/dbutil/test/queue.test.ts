import { describe, expect, it } from "vitest";
import { Queue, dequeue, enqueue, examine, initqueue, isempty } from "../src/queue.js";
import { list_append, list_new, list_remove } from "../src/list.js";

describe("queue.c", () => {
  it("is FIFO and tracks its count", () => {
    const q = new Queue<number>();
    initqueue(q);
    expect(isempty(q)).toBe(true);
    for (let i = 0; i < 5; i++) enqueue(q, i);
    expect(q.count).toBe(5);
    expect(examine(q)).toBe(0);
    expect([...q]).toEqual([0, 1, 2, 3, 4]);
    const out: number[] = [];
    while (!isempty(q)) out.push(dequeue(q));
    expect(out).toEqual([0, 1, 2, 3, 4]);
    expect(q.tail).toBeNull();
    enqueue(q, 9);
    expect(examine(q)).toBe(9);
  });

  it("refuses to dequeue or examine an empty queue", () => {
    const q = new Queue<number>();
    expect(() => dequeue(q)).toThrow(/empty/);
    expect(() => examine(q)).toThrow(/empty/);
  });
});

describe("list.c", () => {
  it("appends and removes from any position", () => {
    const l = list_new<string>();
    const a = list_append(l, "a");
    const b = list_append(l, "b");
    const c = list_append(l, "c");
    expect([...l]).toEqual(["a", "b", "c"]);
    expect(list_remove(b)).toBe("b");
    expect([...l]).toEqual(["a", "c"]);
    list_remove(a);
    expect(l.first).toBe(c);
    list_remove(c);
    expect(l.first).toBeNull();
    expect(l.last).toBeNull();
  });
});
