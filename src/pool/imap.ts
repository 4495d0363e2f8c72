/**
 * What `imap` and `imapUnordered` return, as CPython's `IMapIterator`: an
 * async iterator that reads its input lazily, only as far ahead of the
 * reader as the pool can use, submits it chunk by chunk through an
 * {@linkcode ImapRoute}, and hands out the results in order (or as they
 * finish).
 *
 * @module
 */
import { TimeoutError } from "../errors.ts";
import { deadline, readWait, remaining, within } from "../wait.ts";
import { isAsyncIterable } from "./options.ts";
import type { Sink } from "./results.ts";

/**
 * What `imap` and `imapUnordered` return: an async iterator of the results,
 * as Python's `IMapIterator`. A failed item throws in its place and the next
 * call goes on with the results after it (a failed chunk throws once, for
 * all its items). `next(timeout)` throws `TimeoutError` when no result comes
 * within `timeout` ms; that result is kept for a later call.
 *
 * @example
 * ```ts
 * const results = pool.imap(square, [1, 2, 3]);
 * console.log((await results.next(1000)).value); // 1
 * for await (const y of results) console.log(y); // 4 9
 * ```
 */
export interface IMapIterator<T> extends AsyncIterator<T, undefined, number | undefined> {
  /** The next result; with `timeout`, rejects with `TimeoutError` when none comes within that many ms. */
  next(timeout?: number): Promise<IteratorResult<T, undefined>>;
  /** Stops reading the input; the results not yet read are dropped. */
  return(value?: undefined): Promise<IteratorResult<T, undefined>>;
  /** The iterator itself, for `for await`. */
  [Symbol.asyncIterator](): IMapIterator<T>;
}

/** What an imap needs from its pool. */
export interface ImapRoute {
  /** How many chunks to keep submitted and not yet consumed. */
  readonly ahead: number;
  /** Packs and submits a chunk whose items start at `offset` in the input; throws when it cannot be sent. */
  submit(offset: number, items: unknown[], to: Sink): void;
  /** The pool was closed: read the input to its end, as Python's task handler does. */
  closed(): boolean;
  /** The pool was terminated: stop reading. */
  terminated(): boolean;
  /** While an imap reads its input it is registered (`close()` then drives it to the end). */
  reading(feed: () => Promise<void>, on: boolean): void;
}

/** The local and the cluster pool's `imap`: see {@linkcode IMapIterator}. */
export class ImapIterator implements IMapIterator<unknown> {
  readonly #route: ImapRoute;
  readonly #source: Iterator<unknown> | AsyncIterator<unknown>;
  readonly #asynchronous: boolean;
  readonly #size: number;
  readonly #ordered: boolean;
  readonly #what: string;
  /** Outcomes of finished chunks: by chunk number when ordered, else in the order they finished. */
  readonly #outcomes = new Map<number, [boolean, unknown]>();
  #submitted = 0;
  #consumed = 0;
  #finished = 0;
  #exhausted = false;
  #stopped = false;
  #reading = false;
  #wake: (() => void) | undefined;
  /** The chunk being handed out, from `#at` on. */
  #items: unknown[] = [];
  #at = 0;
  /** Calls to next() run one after another, as an async generator's do. */
  #last: Promise<unknown> = Promise.resolve();
  readonly #feed = () => this.#read();

  /** Starts reading `iterable` (already checked to be iterable or async iterable) in chunks of `size`. */
  constructor(
    route: ImapRoute,
    iterable: Iterable<unknown> | AsyncIterable<unknown>,
    size: number,
    ordered: boolean,
    what: string,
  ) {
    this.#route = route;
    this.#asynchronous = isAsyncIterable(iterable);
    this.#source = this.#asynchronous
      ? (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (iterable as Iterable<unknown>)[Symbol.iterator]();
    this.#size = size;
    this.#ordered = ordered;
    this.#what = what;
    route.reading(this.#feed, true);
    void this.#read();
  }

  /** The next result; with `timeout`, rejects with `TimeoutError` when none comes within that many ms. */
  next(timeout?: number): Promise<IteratorResult<unknown, undefined>> {
    // A timeout counts from the call.
    const ms = readWait(timeout, `${this.#what}: next`).timeout;
    const end = deadline(ms);
    const result = this.#last.then(() => this.#step(end, ms));
    this.#last = result.catch(() => {});
    return result;
  }

  /** Stops reading the input; the results not yet read are dropped. */
  return(value?: undefined): Promise<IteratorResult<unknown, undefined>> {
    const result = this.#last.then(() => {
      this.#finish();
      return { value, done: true as const };
    });
    this.#last = result;
    return result;
  }

  /** The iterator itself, for `for await`. */
  [Symbol.asyncIterator](): IMapIterator<unknown> {
    return this;
  }

  #stopFeeding(): void {
    if (this.#exhausted) return;
    this.#exhausted = true;
    this.#route.reading(this.#feed, false);
    this.#wake?.();
  }

  #deliver(chunk: number, ok: boolean, value: unknown): void {
    this.#outcomes.set(this.#ordered ? chunk : this.#finished++, [ok, value]);
    this.#wake?.();
  }

  /**
   * Reads the input only as far ahead of the reader as the pool can use,
   * but after close() to its end, as Python's task handler does: join()
   * then waits for the submitted work only, and the results wait for the
   * reader.
   */
  async #read(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    const route = this.#route;
    const ahead = route.ahead;
    const size = this.#size;
    try {
      while (!this.#exhausted && !this.#stopped && (this.#submitted - this.#consumed < ahead || route.closed())) {
        if (route.terminated()) return this.#stopFeeding();
        // Past the window a synchronous input would be read in one go: let results and messages in meanwhile.
        if (this.#submitted - this.#consumed >= ahead && this.#submitted % ahead === 0) {
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
        const chunk: unknown[] = [];
        while (chunk.length < size) {
          const step = this.#asynchronous ? await this.#source.next() : this.#source.next() as IteratorResult<unknown>;
          if (step.done) {
            this.#stopFeeding();
            break;
          }
          chunk.push(step.value);
        }
        if (chunk.length === 0 || this.#stopped) break;
        const n = this.#submitted++;
        const to: Sink = (ok, value) => this.#deliver(n, ok, value);
        try {
          route.submit(n * size, chunk, to);
        } catch (error) {
          to(false, error);
        }
      }
    } catch (error) {
      // The input itself failed: its error takes the next place in the results.
      this.#deliver(this.#submitted++, false, error);
      this.#stopFeeding();
    } finally {
      this.#reading = false;
    }
  }

  /** The next result; a failed chunk throws in its place and the one after goes on, as Python's IMapIterator. */
  async #step(end: number, ms: number): Promise<IteratorResult<unknown, undefined>> {
    for (;;) {
      if (this.#at < this.#items.length) return { value: this.#items[this.#at++], done: false };
      if (this.#stopped) return { value: undefined, done: true };
      const outcome = this.#outcomes.get(this.#consumed);
      if (outcome) {
        this.#outcomes.delete(this.#consumed++);
        void this.#read();
        if (!outcome[0]) throw outcome[1];
        this.#items = outcome[1] as unknown[];
        this.#at = 0;
        continue;
      }
      if (this.#exhausted && this.#consumed === this.#submitted) {
        this.#finish();
        return { value: undefined, done: true };
      }
      const woken = new Promise<void>((resolve) => (this.#wake = resolve));
      void this.#read();
      const came = await within(woken, { timeout: remaining(end) });
      this.#wake = undefined;
      // The result that comes later is kept for the next call.
      if (!came) throw new TimeoutError(`${this.#what}: no result within ${ms} ms`);
    }
  }

  #finish(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#items = [];
    this.#outcomes.clear();
    if (!this.#exhausted) {
      this.#stopFeeding();
      void Promise.resolve(this.#source.return?.()).catch(() => {});
    }
  }
}
