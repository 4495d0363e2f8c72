/**
 * Python's `multiprocessing.Pipe` and `Connection`: two ends, each usable
 * from any process that has it (pass an end in a process's `args`). Each
 * direction is a ring in shared memory (see `ring.ts`), so the two ends may
 * sit in any two processes, including two children.
 *
 * End of file: each end counts its open handles (the object, and every copy
 * sent to a process). `close()` closes one; a child closes those it still
 * holds when it ends normally. When every handle of one end is closed, the
 * other end reads what is left and then gets `EOFError`. A child that is
 * terminated does not close its handles (the other end then sees no end of
 * file), so close ends explicitly in that case.
 *
 * @module
 */
import { EOFError } from "./errors.ts";
import { beginCommit, endCommit } from "./fence.ts";
import { Feeder } from "./feeder.ts";
import { pickle, SENDS, unpickle } from "./pickle.ts";
import { beforeChildExit, dumpingForDelivery } from "./lifecycle.ts";
import { reduce, type Reduction, registerKind } from "./reduction.ts";
import { receiveBytes, receiveBytesInto, sentBytes } from "./recv_bytes.ts";
import { adopted, reviving } from "./revival.ts";
import { TIMED_OUT } from "./blocking.ts";
import { Ring } from "./ring.ts";
import { assertMayBlock, readWait, type WaitOptions } from "./wait.ts";

interface ConnectionState {
  /** The ring this end reads from, if readable. */
  rx?: SharedArrayBuffer;
  /** The ring this end writes to, if writable. */
  tx?: SharedArrayBuffer;
}

/** What a connection is made on, by `Pipe` or when revived (revival.ts): `new Connection()` alone is refused. */
interface Ends {
  rx?: Ring;
  tx?: Ring;
}

/** Ends this process holds open, and how to close each; a child closes them when it ends. */
const held = new Map<Connection, () => Promise<void>>();
beforeChildExit(() => Promise.all([...held.values()].map((shut) => shut())));

const EOF = Symbol("end of file");
const endOf = (ring: Ring) => (): typeof EOF | undefined => {
  ring.ends.reap("senders");
  return ring.ends.senders() === 0 ? EOF : undefined;
};

/**
 * One end of a pipe made by {@linkcode Pipe}: Python's `Connection`.
 *
 * @example
 * ```ts
 * import { Pipe } from "@mp/multiprocessing";
 *
 * const [a, b] = Pipe();
 * await a.send({ hello: "world" });
 * console.log(await b.recv()); // { hello: "world" }
 * a.close();
 * ```
 */
export class Connection<T = unknown> {
  #rx?: Ring;
  #tx?: Ring;
  #feeder?: Feeder;
  #closed = false;

  /** Connections come from {@linkcode Pipe}. */
  constructor() {
    const ends = adopted<Ends>();
    if (!ends) throw new TypeError("a Connection is made by Pipe(), not by new Connection()");
    const { rx, tx } = ends;
    this.#rx = rx;
    this.#tx = tx;
    rx?.ends.claim("receivers");
    tx?.ends.claim("senders");
    if (tx) this.#feeder = new Feeder(tx, 0);
    held.set(this, () => this.#shut());
  }

  /** Whether `close()` was called on this end (in this process). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether this end can receive. */
  get readable(): boolean {
    return this.#rx !== undefined;
  }

  /** Whether this end can send. */
  get writable(): boolean {
    return this.#tx !== undefined;
  }

  /**
   * Sends a copy of `obj` to the other end. Need not be awaited: messages
   * from this process arrive in order. The Promise resolves once the
   * message is in the pipe.
   *
   * @throws {Error} synchronously, when this end is closed or the other end is.
   * @throws {TypeError} synchronously, naming what in `obj` cannot be copied.
   */
  send(obj: T): Promise<void> {
    // A manager proxy in it whose count must reach the server first: the message waits here until it has.
    const [bytes, counts] = dumpingForDelivery(() => pickle(obj, "Connection.send(obj)", SENDS));
    return this.#post(bytes, "send", counts);
  }

  /**
   * Sends the bytes of `buffer` (from `offset`, `size` bytes) as one
   * message, to be read with `recvBytes` or `recvBytesInto`.
   *
   * @throws {RangeError} when `offset`/`size` fall outside the buffer.
   */
  sendBytes(buffer: ArrayBufferView | ArrayBuffer, offset: number = 0, size?: number): Promise<void> {
    return this.#post(sentBytes(buffer, offset, size).slice(), "sendBytes");
  }

  /**
   * Receives the next object sent from the other end.
   *
   * @throws {EOFError} (as a rejection) when nothing is left and the other end is closed.
   */
  recv(): Promise<T> {
    return this.#receive("recv").then((bytes) => unpickle(bytes) as T);
  }

  /**
   * Receives the next object, blocking this worker until it arrives.
   *
   * @throws {EOFError} when nothing is left and the other end is closed.
   * @throws {Error} on the main thread, which must not block.
   */
  recvSync(): T {
    assertMayBlock("Connection.recvSync");
    const rx = this.#readable("recvSync");
    const bytes = rx.runSync(rx.receive(endOf(rx)), Infinity, "Connection.recvSync");
    if (bytes === EOF || bytes === TIMED_OUT) throw new EOFError();
    return unpickle(bytes) as T;
  }

  /**
   * Receives the next message as bytes.
   *
   * @throws {Error} when it is longer than `maxLength`; the message is then
   * consumed and this end closed, as in Python.
   * @throws {EOFError} when nothing is left and the other end is closed.
   */
  recvBytes(maxLength?: number): Promise<Uint8Array> {
    return receiveBytes(() => this.#receive("recvBytes"), () => this.close(), maxLength);
  }

  /**
   * Receives the next message into `buffer` from byte `offset`, and resolves
   * its length in bytes.
   *
   * @throws {BufferTooShort} when it does not fit; the message is in the error's `bytes`.
   */
  recvBytesInto(buffer: ArrayBufferView | ArrayBuffer, offset: number = 0): Promise<number> {
    return receiveBytesInto(() => this.#receive("recvBytesInto"), buffer, offset);
  }

  /**
   * Whether there is something to receive (or the other end is closed, so
   * `recv` would not wait), waiting up to `timeout` ms (default 0, as in
   * Python; `null` or `Infinity`: as long as it takes).
   */
  poll(timeout: WaitOptions | null = 0): Promise<boolean> {
    const rx = this.#readable("poll");
    const wait = readWait(timeout, "Connection.poll");
    return rx.run(rx.ready(), wait).then((ready) => ready === true);
  }

  /** Closes this end in this process; the other end sees end-of-file once every copy of this end is closed. */
  close(): void {
    void this.#shut();
  }

  /** Closes this end; what was sent before still arrives before the other end sees end-of-file. */
  async #shut(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    held.delete(this);
    this.#rx?.ends.release("receivers");
    await this.#feeder?.flushed();
    this.#tx?.ends.release("senders");
  }

  /** `using conn = …`: closes this end. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * How this end travels to another process: the copy holds a handle of its own.
   *
   * @ignore
   */
  [reduce](): Reduction {
    this.#checkOpen("send a Connection");
    // A commit (fence.ts): a process reported ended opens no handle that nobody would close.
    beginCommit();
    this.#tx?.ends.handles("senders", 1);
    this.#rx?.ends.handles("receivers", 1);
    endCommit();
    const state: ConnectionState = { rx: this.#rx?.buffer, tx: this.#tx?.buffer };
    return { kind: "@mp/Connection", state };
  }

  #post(bytes: Uint8Array, what: string, after?: Promise<unknown>[]): Promise<void> {
    this.#checkOpen(what);
    if (!this.#feeder) throw new Error(`${what}: this end of a one-way Pipe can only receive`);
    this.#tx!.ends.reap("receivers");
    if (this.#tx!.ends.receivers() === 0) throw new Error(`${what}: the other end of the pipe is closed (broken pipe)`);
    return this.#feeder.post(bytes, Infinity, undefined, after).then(() => {});
  }

  /** Checks at once (misuse throws synchronously), then receives. */
  #receive(what: string): Promise<Uint8Array> {
    const rx = this.#readable(what);
    const ready = rx.tryReceive();
    if (ready) return Promise.resolve(ready);
    return rx.run(rx.receive(endOf(rx)), { timeout: Infinity }).then((bytes) => {
      if (bytes === EOF || bytes === TIMED_OUT) throw new EOFError();
      return bytes;
    });
  }

  #readable(what: string): Ring {
    this.#checkOpen(what);
    if (!this.#rx) throw new Error(`${what}: this end of a one-way Pipe can only send`);
    return this.#rx;
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new Error(`${what}: the connection is closed`);
  }
}

function connect<T>(rx?: Ring, tx?: Ring): Connection<T> {
  return reviving<Connection<T>>({ rx, tx } satisfies Ends, () => new Connection<T>());
}

/**
 * Makes a pipe and returns its two ends. Duplex by default: each end sends
 * and receives. `Pipe(false)` is one-way: the first end only receives, the
 * second only sends, as in Python.
 *
 * @example
 * ```ts
 * import { Pipe, Process, type Connection } from "@mp/multiprocessing";
 *
 * export async function f(conn: Connection<string>) {
 *   await conn.send("Father, how are you doing?");
 *   console.log("son receive:", await conn.recv());
 *   conn.close();
 * }
 *
 * if (import.meta.main) {
 *   const [parentConn, childConn] = Pipe<string>();
 *   const p = new Process({ target: f, args: [childConn] });
 *   p.start();
 *   console.log("father receive:", await parentConn.recv());
 *   await parentConn.send("Son, how are you doing?");
 *   await p.join();
 * }
 * ```
 */
export function Pipe<T = unknown>(duplex: boolean = true): [Connection<T>, Connection<T>] {
  const forth = Ring.create();
  if (!duplex) return [connect(forth, undefined), connect(undefined, forth)];
  const back = Ring.create();
  return [connect(back, forth), connect(forth, back)];
}

registerKind("@mp/Connection", (state) => {
  const { rx, tx } = state as ConnectionState;
  return connect(rx && new Ring(rx), tx && new Ring(tx));
});
