/** One link of a Queue. @dropbear queue.h Link */
interface Link<T> {
  item: T;
  link: Link<T> | null;
}

/**
 * Singly linked FIFO, the shape of the packet write queue: O(1) enqueue at the tail and
 * dequeue/examine at the head. @dropbear queue.h Queue
 */
export class Queue<T> {
  head: Link<T> | null = null;
  tail: Link<T> | null = null;
  count = 0;

  /** Iterate head to tail without removing anything (for writev-style batching). */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let l = this.head; l !== null; l = l.link) {
      yield l.item;
    }
  }
}

/** Make a queue empty. @dropbear queue.c initqueue */
export function initqueue<T>(queue: Queue<T>): void {
  queue.head = null;
  queue.tail = null;
  queue.count = 0;
}

/** @dropbear queue.c isempty */
export function isempty<T>(queue: Queue<T>): boolean {
  return queue.head === null;
}

/** Remove and return the head item; the queue must not be empty. @dropbear queue.c dequeue */
export function dequeue<T>(queue: Queue<T>): T {
  const head = queue.head;
  if (head === null) {
    throw new Error("dequeue from an empty queue");
  }
  queue.head = head.link;
  if (queue.head === null) {
    queue.tail = null;
  }
  queue.count--;
  return head.item;
}

/** The head item, left in place; the queue must not be empty. @dropbear queue.c examine */
export function examine<T>(queue: Queue<T>): T {
  if (queue.head === null) {
    throw new Error("examine of an empty queue");
  }
  return queue.head.item;
}

/** Append at the tail. @dropbear queue.c enqueue */
export function enqueue<T>(queue: Queue<T>, item: T): void {
  const newlink: Link<T> = { item, link: null };
  if (queue.tail !== null) {
    queue.tail.link = newlink;
  }
  queue.tail = newlink;
  if (queue.head === null) {
    queue.head = newlink;
  }
  queue.count++;
}
