/**
 * A remote manager's server: Python's `multiprocessing.managers.Server`,
 * on a socket `Listener`. It keeps objects made from its registry and serves
 * the methods their proxies call, to TypeScript and Python clients alike.
 *
 * Each accepted connection is served by its own task: after the authkey
 * handshake, its first request is one of the server's methods; for
 * `accept_connection` the connection then carries method calls on objects,
 * one at a time, as Python's thread per connection does; for `lease` (ours)
 * it carries further server methods, and the references made on it are the
 * client's own, released when it closes. A call that waits (a queue's
 * `get`) waits on the event loop, so one server serves many waiting clients.
 *
 * A connection that sends garbage gets a `#TRACEBACK` saying so, and is
 * closed; the server and its other connections go on.
 *
 * @module
 */
import { dumps, loads, PickleError } from "../../python/pickle.ts";
import {
  type Address,
  describe,
  mayHoldProxies,
  pickleException,
  pickleToken,
  pythonError,
  readProxy,
  readRequest,
  reply,
  SERVER_METHODS,
  Token,
  walk,
} from "./protocol.ts";
import { tuple } from "../../python/pickle.ts";
import { type Call, Referent } from "./referents.ts";
import { make, publicMethods, type Registration } from "./registry.ts";
import { ManagedCondition, ManagedLock } from "./waiting_referents.ts";
import { isThenable } from "../../thenable.ts";

/** The part of a socket `Connection` the server uses: bytes in, bytes out. */
export interface Channel {
  sendBytes(bytes: Uint8Array): Promise<void> | void;
  recvBytes(): Promise<Uint8Array>;
  /** The next message if it has arrived already (see the server's loop), else `undefined`. */
  recvArrived?(): Uint8Array | undefined;
  close(): unknown;
}

/** The part of a socket `Listener` the server uses: connections, and the handshake each must pass first. */
export interface Acceptor {
  readonly address: unknown;
  accept(): Promise<Channel>;
  /** Rejects (with `AuthenticationError`, or a timeout) when the peer fails the authkey handshake. */
  authenticate?(channel: Channel): Promise<void>;
  close(): unknown;
}

/** One object the server keeps. */
interface Kept {
  object: unknown;
  exposed: Set<string>;
  methodToTypeid?: Record<string, string>;
  refcount: number;
}

/** A client that holds a lease: the references it made, by object id. */
interface Lease {
  id: number;
  held: Map<string, number>;
}

let lastConnection = 0;

/**
 * Serves a registry on an acceptor until `shutdown()` (or a client's
 * `shutdown` request). Not for direct use: `manager.getServer()` makes one.
 *
 * @example
 * ```ts
 * import { BaseManager } from "@mp/multiprocessing/managers";
 * const manager = new BaseManager({ address: ["127.0.0.1", 0], authkey: "secret" });
 * const server = await manager.getServer();
 * console.log(server.address); // ["127.0.0.1", 40123]
 * ```
 */
export class Server {
  /** Where it listens: `[host, port]` (the port bound, for port 0) or a socket path. */
  readonly address: Address;
  #acceptor: Acceptor;
  #registry: Map<string, Registration>;
  #kept = new Map<string, Kept>();
  /** The id of each kept object. */
  #identOf = new Map<unknown, string>();
  #lastId = 0;
  #leases = new Map<number, Lease>();
  #lastLease = 0;
  #channels = new Set<Channel>();
  #stopped = Promise.withResolvers<void>();
  #stopping = false;
  /** Where an error that ends one connection is reported; the server goes on. */
  onConnectionError: (error: Error) => void = (error) => console.error(`manager server: ${error.message}`);

  /**
   * Serves `registry`'s typeids on `acceptor`'s connections. Made by
   * `manager.getServer()` (and in the worker of `manager.start()`): its
   * arguments are the library's own, so the constructor is not public.
   *
   * @param acceptor a listener whose `accept()` authenticates
   * @param address its address
   * @param registry the typeids
   * @ignore
   */
  constructor(acceptor: Acceptor, address: Address, registry: Map<string, Registration>) {
    this.#acceptor = acceptor;
    this.address = address;
    this.#registry = registry;
  }

  /** How many objects it keeps (Python's `number_of_objects`). */
  get numberOfObjects(): number {
    return this.#kept.size;
  }

  /** Serves until shut down; resolves then. Python's `serve_forever()`. */
  async serveForever(): Promise<void> {
    void this.#acceptLoop();
    await this.#stopped.promise;
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#stopping) {
      let channel: Channel;
      try {
        channel = await this.#acceptor.accept();
      } catch (error) {
        if (this.#stopping) return;
        // A peer with a wrong key or garbage in its handshake: it is refused, the others are served.
        this.onConnectionError(error as Error);
        continue;
      }
      void this.#serve(channel);
    }
  }

  /** Stops accepting, closes every connection and resolves `serveForever()`. */
  shutdown(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#acceptor.close();
    for (const channel of this.#channels) channel.close();
    for (const { object } of this.#kept.values()) if (object instanceof Referent) object.dispose();
    this.#stopped.resolve();
  }

  /** Serves one connection until it closes. */
  async #serve(channel: Channel): Promise<void> {
    this.#channels.add(channel);
    const ended = new AbortController();
    const call = { signal: ended.signal, client: 0, connection: ++lastConnection };
    let lease: Lease | undefined;
    try {
      try {
        await this.#acceptor.authenticate?.(channel);
      } catch (error) {
        // A wrong key or a peer that never answers: refused; nothing it sent is read.
        return this.onConnectionError(error as Error);
      }
      // The read pending while a call waits (see below).
      let next: Promise<Uint8Array> | undefined;
      for (let first = true;; first = false) {
        // Requests that came in one read (a client's pipelined dict calls) are served without a turn between
        // them, so their replies leave in one write: measured, 8 callers' set+get pairs on Node went from 26k to
        // 57k per second, the server's CPU per pair from 22 to 10 µs (load 9.6, 2 cores).
        let bytes = next ? undefined : channel.recvArrived?.();
        if (!bytes) {
          try {
            bytes = await (next ?? channel.recvBytes());
          } catch {
            return; // The peer closed (or died): its calls end with it.
          }
        }
        next = undefined;
        let message: unknown;
        try {
          message = loads(bytes);
        } catch (error) {
          return this.#refuse(
            channel,
            `the message is no pickle (${(error as Error).message}); closing the connection`,
          );
        }
        let request;
        try {
          request = readRequest(message);
        } catch (error) {
          return this.#refuse(channel, `${(error as Error).message}; closing the connection`);
        }
        if (first || lease) {
          // A server method: on a fresh connection, or on a lease.
          const { method, args, kwds } = request;
          if (!SERVER_METHODS.includes(method)) {
            return this.#refuse(channel, `AssertionError: '${method}' unrecognized`);
          }
          if (method === "accept_connection") {
            // Our clients name their lease: what this connection acquires is that client's.
            const leased = Number(/\|lease:(\d+)$/.exec(String(args[0]))?.[1]);
            if (this.#leases.has(leased)) call.client = leased;
            await channel.sendBytes(dumps(reply("#RETURN", null)));
            continue;
          }
          if (method === "lease" && !lease) {
            lease = { id: ++this.#lastLease, held: new Map() };
            this.#leases.set(lease.id, lease);
            call.client = lease.id;
            await channel.sendBytes(dumps(reply("#RETURN", lease.id)));
            continue;
          }
          let answer: Uint8Array;
          try {
            answer = dumps(reply("#RETURN", this.#serverMethod(method, args, kwds, lease)));
          } catch (error) {
            answer = dumps(reply("#TRACEBACK", `${(error as Error).name}: ${(error as Error).message}`));
          }
          await channel.sendBytes(answer);
          if (method === "shutdown") return this.shutdown();
          if (!lease) return; // As Python's: one server method per fresh connection.
          continue;
        }
        let answer = this.#callMethod(request.ident, request.method, request.args, request.kwds, call);
        if (answer instanceof Promise) {
          // A call that waits has a read pending: the end of the connection (its client died or aborted the
          // call) then ends the wait at once, so a dead client takes no item and gets no lock.
          next = channel.recvBytes();
          next.catch(() => ended.abort());
          answer = await answer;
        }
        // Not awaited: a reply is handed to the socket, and the next request (already read, or on its way) is
        // served at once; a reply that cannot go broke the socket, which ends the next read and this loop.
        // Awaiting each write's callback cost an event-loop turn per call (on Deno and Bun).
        void Promise.resolve(channel.sendBytes(answer)).catch(() => {});
      }
    } catch (error) {
      // A reply that cannot go because its peer left is no error of the server's.
      if (!ended.signal.aborted) this.onConnectionError(error as Error);
    } finally {
      ended.abort();
      this.#channels.delete(channel);
      channel.close();
      if (lease) this.#endLease(lease);
    }
  }

  /** Tells a peer why it is cut off, then lets the connection close. */
  async #refuse(channel: Channel, why: string): Promise<void> {
    this.onConnectionError(new Error(why));
    try {
      await channel.sendBytes(dumps(reply("#TRACEBACK", why)));
    } catch {
      // It is gone already.
    }
  }

  /** A client's lease ended: the references it still held go back, and the locks it held are released. */
  #endLease(lease: Lease): void {
    this.#leases.delete(lease.id);
    // Locks first: one the client held may also be one it alone referenced, which the decrefs then drop.
    for (const { object } of this.#kept.values()) {
      if (object instanceof ManagedLock || object instanceof ManagedCondition) object.releaseHeldBy(lease.id);
    }
    for (const [ident, count] of lease.held) this.#decref(ident, count);
  }

  #serverMethod(method: string, args: unknown[], kwds: Record<string, unknown>, lease: Lease | undefined): unknown {
    switch (method) {
      case "dummy":
        return null;
      case "create":
        return this.#create(String(args[0]), args.slice(1), kwds, lease);
      case "incref":
        return this.#incref(String(args[0]), lease);
      case "decref": {
        const ident = String(args[0]);
        if (lease) {
          const held = lease.held.get(ident) ?? 0;
          if (held <= 1) lease.held.delete(ident);
          else lease.held.set(ident, held - 1);
        }
        return this.#decref(ident, 1);
      }
      case "number_of_objects":
        return this.#kept.size;
      case "debug_info":
        return [...this.#kept].map(([id, kept]) => `  ${id}:       refcount=${kept.refcount}`).join("\n");
      case "get_methods": {
        const ident = readProxy(args[0])?.token.id ?? String((args[0] as { id?: unknown })?.id ?? args[0]);
        return [...(this.#kept.get(ident)?.exposed ?? [])];
      }
      case "shutdown":
        return null;
    }
    throw pythonError("AssertionError", `'${method}' unrecognized`);
  }

  /** Python's `Server.create`: makes an object and returns `(ident, exposed)`, with one reference (the caller's). */
  #create(typeid: string, args: unknown[], kwds: Record<string, unknown>, lease?: Lease): unknown {
    const entry = this.#registry.get(typeid);
    if (!entry) throw pythonError("KeyError", typeid);
    let object: unknown;
    if (entry.callable === undefined) {
      if (args.length !== 1) throw pythonError("ValueError", "Without callable, must have one non-keyword argument");
      object = args[0];
    } else {
      object = make(
        entry.callable,
        entry.referents ? args.map((arg) => this.#referentOf(arg)) : this.#adopt(args),
        kwds,
      );
    }
    const exposed = [
      ...(entry.exposed ??
        (object instanceof Referent
          ? (object.constructor as unknown as { exposed: string[] }).exposed
          : publicMethods(object))),
      ...Object.keys(entry.methodToTypeid ?? {}),
    ];
    // The same object made twice (a callable returning one queue) is one entry, as Python's id(obj).
    let ident = this.#identOf.get(object);
    if (ident === undefined) {
      ident = (++this.#lastId).toString(16);
      this.#kept.set(ident, { object, exposed: new Set(exposed), methodToTypeid: entry.methodToTypeid, refcount: 0 });
      this.#identOf.set(object, ident);
    }
    this.#incref(ident, lease);
    return tuple(ident, tuple(...exposed));
  }

  #incref(ident: string, lease?: Lease): null {
    const kept = this.#kept.get(ident);
    if (!kept) throw pythonError("KeyError", ident);
    kept.refcount++;
    if (lease) lease.held.set(ident, (lease.held.get(ident) ?? 0) + 1);
    return null;
  }

  #decref(ident: string, count: number): null {
    const kept = this.#kept.get(ident);
    if (!kept) return null; // Released already, or never made here: nothing to do.
    kept.refcount -= count;
    if (kept.refcount <= 0) {
      this.#kept.delete(ident);
      this.#identOf.delete(kept.object);
      if (kept.object instanceof Referent) kept.object.dispose();
    }
    return null;
  }

  /** The object a proxy of this server's names (Python compares the token's address too), else `value` itself. */
  #referentOf(value: unknown): unknown {
    const proxy = readProxy(value);
    if (!proxy || JSON.stringify(proxy.token.address) !== JSON.stringify(this.address)) return value;
    return this.#kept.get(proxy.token.id)?.object ?? value;
  }

  /**
   * Arguments as a method gets them. A proxy of one of this server's objects
   * stays as it came (a dict stores it to hand it back), and the object it
   * names is kept from then on, as Python's server keeps it for its stored
   * proxies: nobody can tell when the stored copy goes.
   */
  #adopt(args: unknown[]): unknown[] {
    for (const arg of args) {
      if (!mayHoldProxies(arg)) continue;
      walk(arg, (value) => {
        const proxy = readProxy(value);
        const kept = proxy && this.#kept.get(proxy.token.id);
        if (kept) kept.refcount++;
        return value;
      });
    }
    return args;
  }

  /**
   * Serves one method call (Python's `serve_client` loop body); the reply's
   * bytes, at once when the method returned no thenable: no microtask turn
   * between a dict's `__getitem__` and its reply.
   */
  #callMethod(
    ident: string | null,
    method: string,
    args: unknown[],
    kwds: Record<string, unknown>,
    call: Call,
  ): Uint8Array | Promise<Uint8Array> {
    const kept = ident === null ? undefined : this.#kept.get(ident);
    if (!kept) return dumps(reply("#TRACEBACK", `KeyError: ${describe(ident)}: no such object in the manager`));
    let result: unknown;
    try {
      result = this.#invoke(kept, method, args, kwds, call);
    } catch (error) {
      return this.#failed(error);
    }
    if (!isThenable(result)) return this.#answer(kept, method, result, call);
    return Promise.resolve(result).then((value) => this.#answer(kept, method, value, call), (e) => this.#failed(e));
  }

  /** What `method` of the kept object returns (maybe a thenable); throws what it throws. */
  #invoke(kept: Kept, method: string, args: unknown[], kwds: Record<string, unknown>, call: Call): unknown {
    const { object } = kept;
    if (kept.exposed.has(method)) {
      return object instanceof Referent
        ? object.invoke(method, call, this.#adopt(args), kwds)
        : this.#callUserMethod(object, method, this.#adopt(args), kwds);
    }
    if (method === "#GETVALUE") return object instanceof Referent ? object.value() : object;
    if (method === "__repr__" || method === "__str__") {
      return object instanceof Referent ? object.repr() : String(object);
    }
    throw pythonError(
      "AttributeError",
      `method '${method}' of '${object?.constructor?.name}' object is not in exposed=${describe([...kept.exposed])}`,
    );
  }

  /** The `#ERROR` reply of a method that threw. */
  #failed(error: unknown): Uint8Array {
    return this.#encode(reply("#ERROR", pickleException(error)));
  }

  /** The reply to a method that returned `result`: `#RETURN`, or `#PROXY` for a method with a typeid. */
  #answer(kept: Kept, method: string, result: unknown, call: Call): Uint8Array {
    const typeid = kept.methodToTypeid?.[method];
    if (typeid) {
      // The result stays here; the caller gets a proxy of it, holding the reference create() made.
      const [rident, rexposed] = this.#create(typeid, [result], {}, this.#leases.get(call.client)) as [
        string,
        string[],
      ];
      return this.#encode(reply("#PROXY", [rexposed, pickleToken(new Token(typeid, this.address, rident))]));
    }
    return this.#encode(reply("#RETURN", result === undefined ? null : result));
  }

  #callUserMethod(object: unknown, method: string, args: unknown[], kwds: Record<string, unknown>): unknown {
    const run = (object as Record<string, unknown>)[method];
    if (typeof run !== "function") return run; // An exposed attribute that is no method: its value.
    return Reflect.apply(run, object, Object.keys(kwds).length ? [...args, kwds] : args);
  }

  /** A reply as bytes; a result pickle cannot carry becomes `#UNSERIALIZABLE`, naming it. */
  #encode(message: unknown): Uint8Array {
    try {
      return dumps(message);
    } catch (error) {
      if (!(error instanceof PickleError)) throw error;
      return dumps(reply("#UNSERIALIZABLE", error.message));
    }
  }
}
