/**
 * The caller's side of the ring: a session is this process's connection to
 * one manager (its side of the request ring, its own answer ring, the calls
 * waiting for answers, the handles its proxies hold). It is the ring's
 * implementation of the {@linkcode Channel} that proxies call through; a
 * socket would be another. One per manager and process, made when the first
 * proxy arrives.
 *
 * @module
 */
import { Feeder } from "../feeder.ts";
import { pickle, unpickle } from "../pickle.ts";
import { beforeChildExit, beforeDelivery } from "../lifecycle.ts";
import { hasEnded } from "../pids.ts";
import { currentProcess } from "../process.ts";
import { type ReducedError, registerKind, reviveError } from "../reduction.ts";
import { Ring } from "../ring.ts";
import { createScoped, SharedMemory } from "../shared_memory.ts";
import {
  ANSWER_CAPACITY,
  answersName,
  CALLER_POLL_MS,
  discard,
  HOT,
  LAST_ID,
  type ManagerMemory,
  managerMemory,
  SERVER_PID,
  SHUTDOWN,
  WATCH_MS,
} from "./memory.ts";
import { Poller } from "./polling.ts";
import { type Channel, connect } from "./proxies.ts";
import {
  ADOPT,
  BYE,
  CALL,
  DECREF,
  INCREF,
  type Op,
  PROXY,
  type ProxyState,
  readAnswer,
  request,
  type Typeid,
} from "./wire.ts";

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** This process's connection to the manager at one address, through its shared memory rings. */
export class Session implements Channel {
  readonly address: string;
  /** Undefined when the manager was gone when this process first heard of it, and after close(). */
  #memory?: ManagerMemory;
  #block?: SharedMemory;
  #answersBlock?: SharedMemory;
  #answers?: Ring;
  #requests?: Feeder;
  #pending = new Map<number, Pending>();
  #lastCall = 0;
  #reading = false;
  /** Handles held by this process's proxies, by object id. */
  #handles = new Map<number, number>();
  /** The short spin for an answer, while the server is awake. */
  #poller = new Poller(CALLER_POLL_MS);
  /**
   * Aborted once the server is seen gone: requests still waiting here for room in a ring nobody reads are
   * dropped, or their waits would keep the program from ending.
   */
  #gone = new AbortController();

  constructor(address: string) {
    this.address = address;
    try {
      this.#block = new SharedMemory({ name: address });
    } catch {
      return; // Unlinked at shutdown: every call says so.
    }
    this.#memory = managerMemory(this.#block, false);
    this.#requests = new Feeder(this.#memory.requests, 0);
    // close() flushes it, as long as the server is there to read.
    this.#requests.abandonAtExit = true;
  }

  /** This process's answer ring, made at its first call: a process that only passes proxies on needs none. */
  #answerRing(): Ring {
    if (this.#answers) return this.#answers;
    // Scoped: if this process is terminated, the block loses its name with it, and its memory once the server lets go.
    this.#answersBlock = createScoped(answersName(this.address, currentProcess().pid!), Ring.size(ANSWER_CAPACITY));
    return this.#answers = Ring.create(ANSWER_CAPACITY, this.#answersBlock.buf);
  }

  /** The server's pid, once it runs. */
  get serverPid(): number {
    return this.#memory ? Atomics.load(this.#memory.cells, SERVER_PID) : 0;
  }

  /** Why calls can no longer be answered, or `undefined` while the server serves. */
  stopReason(): string | undefined {
    if (!this.#memory || Atomics.load(this.#memory.cells, SHUTDOWN) === 1) return "the manager has been shut down";
    const pid = this.serverPid;
    if (pid !== 0 && hasEnded(pid)) return `the manager's server process (pid ${pid}) has ended`;
    return undefined;
  }

  /** Sends a request that needs no answer, after everything this process sent before. */
  post(op: Op, object: number, name: string = "", payload?: Uint8Array): Promise<boolean> | undefined {
    if (this.stopReason()) return;
    return this.#send(request(op, currentProcess().pid!, 0, object, name, payload));
  }

  /** Writes `bytes` into the request ring after what this process wrote before, until the server is seen gone. */
  #send(bytes: Uint8Array): Promise<boolean> {
    const sent = this.#requests!.post(bytes, Infinity, this.#gone.signal);
    // Dropped with the server: what waited for it (a call, a proxy's count) learns why from stopReason().
    sent.catch(() => {});
    return sent;
  }

  /** A new object id, unique in the manager. */
  newId(): number {
    return Atomics.add(this.#memory!.cells, LAST_ID, 1) + 1;
  }

  /** Calls `method` on the object `object`; settles with the server's answer, or rejects once the server is gone. */
  call(object: number, typeid: Typeid, method: string, args: readonly unknown[]): Promise<unknown> {
    const reason = this.stopReason();
    if (reason) return Promise.reject(new Error(reason));
    const payload = pickle(args, `${typeid}.${method}() args`);
    const answers = this.#answerRing();
    const call = ++this.#lastCall;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#pending.set(call, { resolve, reject });
    void this.#send(request(CALL, currentProcess().pid!, call, object, method, payload));
    if (Atomics.load(this.#memory!.cells, HOT) === 1) this.#poller.poll(() => answers.hasData());
    this.#settle();
    if (this.#pending.size && !this.#reading) void this.#read();
    return promise;
  }

  /** Settles the calls whose answers are in. */
  #settle(): void {
    // Closed while a wait was pending: the next look at stopReason() ends the calls.
    const answers = this.#answers;
    if (!answers) return;
    for (let bytes; (bytes = answers.receiveIfReady("a manager proxy"));) {
      const { call, failed, payload } = readAnswer(bytes);
      const pending = this.#pending.get(call);
      // Absent when the call was failed already: the server died or the manager shut down.
      if (!pending) continue;
      this.#pending.delete(call);
      try {
        const value = unpickle(payload);
        if (failed) pending.reject(reviveError(value as ReducedError));
        else pending.resolve(value);
      } catch (error) {
        pending.reject(error as Error);
      }
    }
  }

  /** Waits for answers while calls are pending; the waits hold the program open, and end the calls once the server is gone. */
  async #read(): Promise<void> {
    this.#reading = true;
    try {
      while (this.#pending.size) {
        const reason = this.stopReason();
        if (reason) return this.fail(reason);
        await this.#answers!.run(this.#answers!.ready(), { timeout: WATCH_MS });
        this.#settle();
      }
    } finally {
      this.#reading = false;
    }
  }

  /** Rejects every pending call with `reason`. */
  fail(reason: string): void {
    this.#gone.abort(new Error(reason));
    for (const pending of this.#pending.values()) pending.reject(new Error(reason));
    this.#pending.clear();
  }

  /** A proxy of `object` is being sent: the receiver's handle is counted before it can arrive. */
  sent(object: number): void {
    const counted = this.post(INCREF, object);
    // Not in the ring yet: a child that receives the proxy in its args starts once it is, and a queue or pipe
    // publishes the item holding it once it is (lifecycle.ts, feeder.ts).
    if (counted && this.#requests!.pending) beforeDelivery(this.#whileServed(counted));
  }

  /**
   * Resolves once the INCREF `counted` is in the ring; rejects once the server
   * is gone first, whose ring nobody reads any more: a put or send waiting for
   * it would never end.
   */
  #whileServed(counted: Promise<boolean>): Promise<void> {
    let settled = false;
    let inRing = false;
    // Rejected when the server was seen gone meanwhile (#gone): then stopReason() says why.
    const written = counted.then((sent) => void (inRing = sent), () => {}).finally(() => void (settled = true));
    const watch = async () => {
      while (!inRing) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([written, new Promise((resolve) => timer = setTimeout(resolve, WATCH_MS))]);
        clearTimeout(timer);
        if (inRing) return;
        const reason = this.stopReason();
        if (!reason && !settled) continue;
        this.#gone.abort(new Error(reason));
        throw new Error(
          `a proxy of this manager could not be sent: ${reason ?? "its server is gone"} before it counted it`,
        );
      }
    };
    const work = watch();
    // The process's start and the feeder see the failure; nothing else must report it as unhandled.
    work.catch(() => {});
    return work;
  }

  /** A proxy of `object` arrived here: the handle counted when it was sent is now this process's. */
  adopt(object: number): void {
    this.post(ADOPT, object);
  }

  /** A proxy of `object` now lives in this process. */
  hold(object: number): void {
    this.#handles.set(object, (this.#handles.get(object) ?? 0) + 1);
  }

  /** A proxy of `object` was garbage-collected: its handle goes back. */
  release(object: number): void {
    const left = (this.#handles.get(object) ?? 1) - 1;
    if (left) this.#handles.set(object, left);
    else this.#handles.delete(object);
    this.post(DECREF, object);
  }

  /** This process ends: its handles go back and its blocks are let go. Resolves once the server has been told. */
  bye(): Promise<void> {
    this.post(BYE, 0, "", pickle([...this.#handles], "the handles"));
    this.#handles.clear();
    return this.close();
  }

  /** Lets go of this process's blocks once what it sent is in the ring (or the server is gone). */
  async close(): Promise<void> {
    sessions.delete(this.address);
    if (!this.#block) return;
    while (this.#requests!.pending && !this.stopReason()) {
      await Promise.race([this.#requests!.flushed(), new Promise((resolve) => setTimeout(resolve, WATCH_MS))]);
    }
    if (this.#answersBlock) discard(this.#answersBlock);
    // Requests still waiting for room would be written into memory let go: the handle stays open instead.
    if (this.#requests!.pending === 0) this.#block.close();
    // Memory let go may become another block: from here on, this session only says that the manager is gone.
    this.#block = this.#memory = this.#answers = undefined;
  }
}

const sessions = new Map<string, Session>();

/** This process's session with the manager at `address`, made at the first proxy of it. */
export function sessionFor(address: string): Session {
  let session = sessions.get(address);
  if (!session) sessions.set(address, session = new Session(address));
  return session;
}

// As Python's finalizers at a child's exit: the server learns that this process's proxies are gone.
beforeChildExit(() => Promise.all([...sessions.values()].map((session) => session.bye())));

// A proxy that arrives here reaches its manager through this process's session for that address: the one
// place that decides which transport carries a revived proxy.
registerKind(PROXY, (state) => connect(sessionFor((state as ProxyState).address), state as ProxyState, true));
