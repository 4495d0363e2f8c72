/**
 * One pool worker as the pool sees it, and the tasks it holds: the pool's
 * half of a task's round trip between `Pool` (which decides who gets what)
 * and the worker loop (worker.ts). A `Member` starts its worker, sends it a
 * batch as one {@linkcode RunMessage}, matches each {@linkcode DoneMessage}
 * to the tasks in the order it sent them, and, once the worker has ended,
 * sorts the tasks it still held into finished, failed and never started.
 *
 * @module
 */
import { adapter } from "../adapters/mod.ts";
import { BrokenPoolError } from "../errors.ts";
import { debug } from "../logging.ts";
import type { Process } from "../process.ts";
import { load, type ReducedError, reviveError, reviveErrorClass } from "../reduction.ts";
import { PortCarrier, unref } from "../ports.ts";
import type { TargetSpec } from "../spawn.ts";
import { NOT_SAVED, WorkerCells } from "./claims.ts";
import {
  APPLY,
  CLOSE_MESSAGE,
  codeFunction,
  codeMode,
  NO_TRANSFER,
  type RunMessage,
  type ToPool,
  type ToWorker,
} from "./protocol.ts";
import type { Limit } from "./limit.ts";
import type { Outcome } from "./results.ts";
import { poolWorker, WORKER_MODULE } from "./worker.ts";

/** One submitted task. Kept small: a flood of tiny tasks is bound by the main thread's allocations. */
export interface Task {
  /** Its {@linkcode taskCode}. */
  code: number;
  /** An apply's argument list, or a chunk. */
  data: unknown;
  transfer: Transferable[];
  /** Where the outcome goes, once. */
  to: Outcome;
  done: boolean;
  worker: Member | undefined;
  /** The task's number at its worker: the worker's started count reaches it when the task starts. */
  seq: number;
  limit: Limit | undefined;
}

/** Holds a stolen task's place in its first worker's queue: settled already, so what that worker reports for it is dropped. */
const STOLEN: Task = {
  code: 0,
  data: undefined,
  transfer: NO_TRANSFER,
  to: () => {},
  done: true,
  worker: undefined,
  seq: 0,
  limit: undefined,
};

/** What the pool does with a task's outcome as a member reports it. */
export interface Settler {
  settle(task: Task, ok: boolean, value: unknown): void;
  /** Rejects with a worker's error, once its class is found (see `reviveErrorClass`). */
  fail(task: Task, error: unknown): void;
}

/** How a pool starts its workers. */
export interface WorkerPlan {
  Process: typeof Process;
  initializer: TargetSpec | null;
  initargs: readonly unknown[];
  maxtasks: number;
  memoryLimit: number | undefined;
}

/** One worker process and the tasks sent to it. */
export class Member {
  readonly process: Process;
  readonly port: MessagePort;
  readonly cells: WorkerCells = new WorkerCells();
  /** Tasks sent and not yet answered, in the order the worker runs them, from `head` on. */
  queue: (Task | undefined)[] = [];
  head = 0;
  sent = 0;
  received = 0;
  messages = 0;
  /** Function ids this worker has been told about. */
  readonly known: Set<number> = new Set();
  /** Told to exit, or already gone: it gets no more tasks. */
  closing = false;
  /** What the initializer threw, as it was thrown (`initFailed` tells an `undefined` from none). */
  initError?: unknown;
  initFailed = false;
  /** Called when every message the worker posted has arrived, while the pool waits for that. */
  caughtUp?: () => void;

  /** Starts a worker; `onMessage` hears each of its messages. */
  constructor(plan: WorkerPlan, onMessage: (member: Member, message: ToPool) => void) {
    adapter.beforeUnrefPort?.();
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.process = new plan.Process({
      target: poolWorker,
      module: WORKER_MODULE,
      args: [new PortCarrier(port2), this.cells.shared, plan.initializer, plan.initargs, plan.maxtasks],
      daemon: true,
      memoryLimit: plan.memoryLimit,
    });
    this.process.name = this.process.name.replace("Process", "SpawnPoolWorker");
    port1.onmessage = (event: MessageEvent) => onMessage(this, event.data);
    unref(port1);
    this.process.start();
    debug("added worker");
  }

  /** Tasks sent and not yet answered. */
  get outstanding(): number {
    return this.sent - this.received;
  }

  /**
   * Sends up to `count` of the tasks in `pending` from `from` on in one
   * message (skipping settled ones, clearing the places it takes); returns
   * where the rest starts.
   */
  send(pending: (Task | undefined)[], from: number, count: number, specs: readonly TargetSpec[]): number {
    const tasks: number[] = [];
    const data: unknown[] = [];
    let transfer = NO_TRANSFER;
    let functions: [number, TargetSpec][] | undefined;
    while (tasks.length < 2 * count && from < pending.length) {
      const task = pending[from]!;
      pending[from++] = undefined;
      if (task.done) continue;
      const fn = codeFunction(task.code);
      if (!this.known.has(fn)) {
        this.known.add(fn);
        (functions ??= []).push([fn, specs[fn]]);
      }
      if (codeMode(task.code) === APPLY) {
        const args = task.data as unknown[];
        tasks.push(task.code, args.length);
        for (let i = 0; i < args.length; i++) data.push(args[i]);
      } else {
        tasks.push(task.code, 1);
        data.push(task.data);
      }
      if (task.transfer.length) transfer = [...transfer, ...task.transfer];
      task.worker = this;
      task.seq = ++this.sent;
      this.cells.queue(task.seq);
      this.queue.push(task);
    }
    if (tasks.length === 0) return from;
    this.#post({ kind: "run", functions, tasks, data } satisfies RunMessage, transfer);
    // Only a worker that can take a message without its event loop sleeps on the bell (see worker.ts).
    if (adapter.poolPollsPorts) this.cells.ring();
    return from;
  }

  /** Tasks sent that the worker has not started yet. */
  unstarted(): number {
    return this.sent - this.cells.started();
  }

  /**
   * Takes back up to `count` of the tasks the worker has not started, the
   * last sent first, for another worker; returns them in the order sent.
   * Their places here hold {@linkcode STOLEN}: the worker skips them and
   * reports nothing for them that could settle them.
   */
  steal(count: number): Task[] {
    const taken: Task[] = [];
    for (let seq = this.sent; taken.length < count && seq > this.received; seq--) {
      const at = this.head + (seq - this.received - 1);
      const task = this.queue[at]!;
      // A transferred value is gone from this thread: such a task can only run where it was sent.
      if (task === STOLEN || task.done || task.transfer.length > 0) continue;
      // The worker runs its tasks in order: once one has started, so have those before it.
      if (!this.cells.steal(seq)) break;
      this.queue[at] = STOLEN;
      task.worker = undefined;
      taken.push(task);
    }
    return taken.reverse();
  }

  /** Tells the worker to exit once it is idle. */
  close(): void {
    this.closing = true;
    this.#post(CLOSE_MESSAGE, NO_TRANSFER);
  }

  #post(message: ToWorker, transfer: Transferable[]): void {
    this.port.postMessage(message, transfer);
  }

  /**
   * A message from the worker: the outcomes of the next tasks, in order, or
   * its initializer's error. Returns the measured ms per task of a batch.
   */
  receive(message: ToPool, settler: Settler): number | undefined {
    this.messages++;
    if (message.kind === "init-error") {
      this.initError = reviveError(message.error);
      this.initFailed = true;
      return undefined;
    }
    const { results, failed, reduced } = message;
    let f = 0;
    let r = 0;
    for (let i = 0; i < results.length; i++) {
      const task = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      if (failed && failed[f] === i) (f++, settler.fail(task, reviveErrorClass(results[i] as ReducedError)));
      else if (reduced && reduced[r] === i) (r++, settler.settle(task, true, load(results[i], true)));
      else settler.settle(task, true, results[i]);
    }
    this.received += results.length;
    if (this.head === this.queue.length) (this.queue = [], this.head = 0);
    return message.ms / results.length;
  }

  /** Whether every message the worker posted has arrived. */
  caughtUpWith(): boolean {
    return this.messages >= this.cells.posted();
  }

  /**
   * The worker ended: each task it held and had finished is settled with
   * its saved result, each it was running fails, and those it never started
   * are returned, to go to another worker.
   */
  orphans(settler: Settler): Task[] {
    const { name, pid, exitCode } = this.process;
    const unstarted: Task[] = [];
    const started = this.cells.started();
    for (let i = this.head; i < this.queue.length; i++) {
      const task = this.queue[i]!;
      if (task.done) continue;
      const saved = this.cells.outcomeAfterDeath(task.seq);
      if (saved !== NOT_SAVED) settler.settle(task, true, saved);
      else if (task.seq <= started) {
        settler.settle(
          task,
          false,
          new BrokenPoolError(
            `the pool worker ${name} (pid ${pid}) ended with exit code ${exitCode} while it ran this task`,
          ),
        );
      } else {
        task.worker = undefined;
        unstarted.push(task);
      }
    }
    return unstarted;
  }

  /** The tasks sent and not answered. */
  held(): Task[] {
    return this.queue.slice(this.head) as Task[];
  }
}
