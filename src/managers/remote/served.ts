/**
 * The objects a remote manager's server keeps for the builtin typeids, as a
 * program sees them: something to make, hand to `register` (the docs'
 * `get_queue`), and read. Their Python methods (`__getitem__`, `get(block,
 * timeout)`, …) take the call being served as their first argument, so only
 * the server calls them: those classes (referents.ts, sequence_referents.ts, waiting_referents.ts)
 * stay internal, and each is exported here under a type that shows what a
 * program may use.
 *
 * @module
 */
import { Dict as DictReferent, ManagedValue as ValueReferent, Namespace as NamespaceReferent } from "./referents.ts";
import { List as ListReferent } from "./sequence_referents.ts";
import {
  ManagedEvent as EventReferent,
  ManagedLock as LockReferent,
  ManagedQueue as QueueReferent,
} from "./waiting_referents.ts";

/** A `dict` kept by a server: see {@linkcode ManagedDict}'s constructor. */
export interface ManagedDict {
  /** A copy of its entries: what a proxy's `_getvalue()` receives. */
  value(): Map<unknown, unknown>;
  /** Python's `repr()`: `{'a': 1}`. */
  repr(): string;
}

/**
 * Python's `dict` with Python's semantics (`KeyError`, tuple keys by value),
 * made to be served with `register` and reached through a `DictProxy`, by our
 * clients and by Python's.
 *
 * @example
 * ```ts
 * import { BaseManager, ManagedDict } from "@mp/multiprocessing/managers";
 * const shared = new ManagedDict({ hits: 0 });
 * const manager = new BaseManager({ address: ["127.0.0.1", 50000], authkey: "secret" });
 * manager.register("get_dict", () => shared, { proxytype: "DictProxy" });
 * await (await manager.getServer()).serveForever();
 * ```
 */
export const ManagedDict: new (init?: unknown, kwds?: Record<string, unknown>) => ManagedDict = DictReferent;

/** A `list` kept by a server: see {@linkcode ManagedList}'s constructor. */
export interface ManagedList {
  /** A copy of its items: what a proxy's `_getvalue()` receives. */
  value(): unknown[];
  /** Python's `repr()`: `[1, 2]`. */
  repr(): string;
}

/**
 * Python's `list` with Python's semantics (`IndexError`, negative indices),
 * made from an array, a set, a Map's keys or a Python `range`; served with
 * `register` and reached through a `ListProxy`.
 *
 * @example
 * ```ts
 * import { ManagedList } from "@mp/multiprocessing/managers";
 * const list = new ManagedList([1, 2]);
 * console.log(list.value()); // [1, 2]
 * ```
 */
export const ManagedList: new (init?: unknown) => ManagedList = ListReferent;

/** A `Namespace` kept by a server: see {@linkcode ManagedNamespace}'s constructor. */
export interface ManagedNamespace {
  /** Python's `repr()`: `Namespace(x=1)`. */
  repr(): string;
}

/**
 * Python's `multiprocessing.managers.Namespace`, its attributes from
 * `kwds`; served with `register` and reached through a `NamespaceProxy`
 * (`AttributeError` for a missing one).
 *
 * @example
 * ```ts
 * import { ManagedNamespace } from "@mp/multiprocessing/managers";
 * const ns = new ManagedNamespace({ x: 1 });
 * console.log(ns.repr()); // Namespace(x=1)
 * ```
 */
export const ManagedNamespace: new (kwds?: Record<string, unknown>) => ManagedNamespace = NamespaceReferent;

/** A `Value` kept by a server: see {@linkcode ManagedValue}'s constructor. */
export interface ManagedValue {
  /** The typecode it was made with (`"i"`, `"d"`…): kept, not enforced, as Python's manager keeps it. */
  readonly typecode: unknown;
  /** The value; what a proxy's `get()` returns and `set()` replaces. */
  current: unknown;
  /** The value, as a proxy's `_getvalue()` receives it. */
  value(): unknown;
  /** What a proxy's `__repr__` returns: `<ManagedValue>`. */
  repr(): string;
}

/**
 * Python's `multiprocessing.managers.Value`: a typecode and a value, which a
 * `ValueProxy` gets and sets.
 *
 * @example
 * ```ts
 * import { ManagedValue } from "@mp/multiprocessing/managers";
 * const v = new ManagedValue("i", 3);
 * v.current = 4;
 * console.log(v.value()); // 4
 * ```
 */
export const ManagedValue: new (typecode: unknown, value: unknown) => ManagedValue = ValueReferent;

/** A `queue.Queue` kept by a server: see {@linkcode ManagedQueue}'s constructor. */
export interface ManagedQueue {
  /** The most items it holds (0: no limit); a `put` on a full queue waits for room, or fails with `queue.Full`. */
  readonly maxsize: number;
  /** How many items it holds. */
  qsize(): number;
  /** Whether it holds none. */
  empty(): boolean;
  /** Whether it holds `maxsize`. */
  full(): boolean;
  /** A copy of its items, oldest first. */
  value(): unknown[];
  /** What a proxy's `__repr__` returns: `<ManagedQueue>`. */
  repr(): string;
}

/**
 * Python's `queue.Queue` (and the manager's `JoinableQueue`, which is the
 * same class): the docs' `get_queue`. A `get` waiting in the server ends when
 * its client goes away, taking nothing.
 *
 * @example
 * ```ts
 * import { BaseManager, ManagedQueue } from "@mp/multiprocessing/managers";
 * const queue = new ManagedQueue();
 * const manager = new BaseManager({ address: ["127.0.0.1", 50000], authkey: "abracadabra" });
 * manager.register("get_queue", () => queue);
 * await (await manager.getServer()).serveForever();
 * ```
 */
export const ManagedQueue: new (maxsize?: number) => ManagedQueue = QueueReferent;

/** What a {@linkcode ManagedLock} is: Python's `threading` class of that name. */
export type LockKind = "Lock" | "RLock" | "Semaphore" | "BoundedSemaphore";

/** A lock or semaphore kept by a server: see {@linkcode ManagedLock}'s constructor. */
export interface ManagedLock {
  /** Which of Python's classes it behaves as. */
  readonly kind: LockKind;
  /** Its `repr()`, as a proxy's `_getvalue()` receives it. */
  value(): string;
  /** Python's `repr()`: `<Lock unlocked>`. */
  repr(): string;
}

/**
 * Python's `threading.Lock`, `RLock`, `Semaphore` or `BoundedSemaphore`
 * (`value`: a semaphore's count, 1 for a lock), served with `register` and
 * reached through an `AcquirerProxy`. It remembers which client holds it:
 * when one of our clients dies, what it held is released. (Python's server
 * cannot tell, and such a lock stays held; so does one a Python client held.)
 *
 * @example
 * ```ts
 * import { BaseManager, ManagedLock } from "@mp/multiprocessing/managers";
 * const lock = new ManagedLock("Lock");
 * const manager = new BaseManager({ address: ["127.0.0.1", 50000], authkey: "secret" });
 * manager.register("get_lock", () => lock, { proxytype: "AcquirerProxy" });
 * ```
 */
export const ManagedLock: new (kind: LockKind, value?: number) => ManagedLock = LockReferent;

/** A `threading.Event` kept by a server: see {@linkcode ManagedEvent}'s constructor. */
export interface ManagedEvent {
  /** Whether it is set. */
  is_set(): boolean;
  /** Sets it: every client waiting in `wait()` returns `True`. */
  set(): void;
  /** Clears it. */
  clear(): void;
  /** Whether it is set, as a proxy's `_getvalue()` receives it. */
  value(): boolean;
  /** What a proxy's `__repr__` returns: `<ManagedEvent>`. */
  repr(): string;
}

/**
 * Python's `threading.Event`, which the server's own program may set for its
 * clients, reached through an `EventProxy`.
 *
 * @example
 * ```ts
 * import { ManagedEvent } from "@mp/multiprocessing/managers";
 * const event = new ManagedEvent();
 * event.set();
 * console.log(event.is_set()); // true
 * ```
 */
export const ManagedEvent: new () => ManagedEvent = EventReferent;
