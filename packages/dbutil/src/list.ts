/** An element of an m_list. @dropbear list.h m_list_elem */
export interface m_list_elem<T> {
  item: T;
  /** The list it belongs to, so removal needs only the element. */
  list: m_list<T>;
  next: m_list_elem<T> | null;
  prev: m_list_elem<T> | null;
}

/** Doubly linked list: removal of a known element is O(1). @dropbear list.h m_list */
export class m_list<T> {
  first: m_list_elem<T> | null = null;
  last: m_list_elem<T> | null = null;

  *[Symbol.iterator](): IterableIterator<T> {
    for (let e = this.first; e !== null; e = e.next) {
      yield e.item;
    }
  }
}

/** @dropbear list.c list_new */
export function list_new<T>(): m_list<T> {
  return new m_list<T>();
}

/** Add an item at the end. @dropbear list.c list_append */
export function list_append<T>(list: m_list<T>, item: T): m_list_elem<T> {
  const elem: m_list_elem<T> = { item, list, next: null, prev: list.last };
  if (list.last === null) {
    list.first = elem;
  } else {
    list.last.next = elem;
  }
  list.last = elem;
  return elem;
}

/** Unlink an element and return its item. @dropbear list.c list_remove */
export function list_remove<T>(elem: m_list_elem<T>): T {
  const list = elem.list;
  if (elem.next !== null) {
    elem.next.prev = elem.prev;
  } else {
    list.last = elem.prev;
  }
  if (elem.prev !== null) {
    elem.prev.next = elem.next;
  } else {
    list.first = elem.next;
  }
  elem.next = null;
  elem.prev = null;
  return elem.item;
}
