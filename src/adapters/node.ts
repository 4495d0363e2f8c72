/**
 * `node:worker_threads`, for Node and for Bun. Uncaught errors come from the
 * `'error'` event (without a listener an uncaught error in a worker would
 * kill the parent); the exit code from the end marker, or else the `'exit'`
 * event. Bun uses it too, rather than its faster-starting Web Workers
 * (4 ms vs 10 ms here), because Bun's Web Worker terminate() does not stop a
 * thread that is busy in synchronous code, and a pool's timeout must.
 *
 * @module
 */
import type * as Threads from "node:worker_threads";
import { endCode, endMarker } from "./end.ts";
import type { Adapter, ParentPort, SpawnOptions, ThreadHandle } from "./types.ts";

declare const process: NodeJS.Process;

/**
 * Starts a `worker_threads` worker. `stopsBusyThreads`: whether the
 * runtime's `terminate()` stops a thread running synchronous code before
 * `exit` fires (Node and Bun do; Deno's `node:worker_threads` fires `exit` at
 * once and the thread runs on).
 */
export function spawnThread(
  threads: typeof Threads,
  url: URL,
  options: SpawnOptions,
  stopsBusyThreads: boolean,
): ThreadHandle {
  // Node ends a worker over its limit with ERR_WORKER_OUT_OF_MEMORY; Bun accepts
  // resourceLimits and ignores them (a worker grew without bound past 32 MiB).
  const resourceLimits = options.memoryLimit === undefined
    ? undefined
    : { maxOldGenerationSizeMb: options.memoryLimit };
  const worker = new threads.Worker(url, { name: options.name, resourceLimits });
  let error: unknown;
  let ended: number | undefined;
  let terminated = false;
  worker.on("message", (data) => {
    const code = endCode(data);
    if (code === undefined) options.onMessage(data);
    else ended = code;
  });
  worker.on("error", (e) => (error = e));
  // A thread that died of an uncaught error ended with 1, as Node says; Bun
  // reports 0 when `bun test` took the error before the worker's own handler.
  worker.on("exit", (code) =>
    options.onEnd({
      code: ended ?? (error !== undefined && code === 0 ? 1 : code),
      error,
      mayRun: terminated && ended === undefined && !stopsBusyThreads,
    }));
  return {
    post: (data, transfer) => worker.postMessage(data, transfer as never),
    terminate: () => {
      terminated = true;
      void worker.terminate();
    },
    keepAlive: (alive) => (alive ? worker.ref() : worker.unref()),
  };
}

/**
 * In a worker, `worker_threads` send what the thread prints to the parent's
 * event loop, which writes it later: a result posted after a `console.log`
 * could reach the parent first, and the parent's next line be printed before
 * the child's. Deno's workers write to the file descriptors themselves; so do
 * ours now, synchronously, so output keeps its order on every runtime.
 */
function writeOutputDirectly(): void {
  // Fetched at the first write: a Bun worker spent 1.3-2 ms (of a 10 ms start) getting node:fs, which a child
  // that prints nothing never needs.
  let writeSync: typeof import("node:fs").writeSync | undefined;
  const encoder = new TextEncoder();
  for (const [stream, fd] of [[process.stdout, 1], [process.stderr, 2]] as const) {
    stream.write = ((chunk: string | Uint8Array, encoding?: unknown, done?: unknown) => {
      writeSync ??= process.getBuiltinModule("node:fs").writeSync;
      const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
      for (let written = 0; written < bytes.length;) {
        try {
          written += writeSync(fd, bytes, written);
        } catch (error) {
          // A full non-blocking pipe: the reader will drain it.
          if ((error as { code?: string }).code !== "EAGAIN") throw error;
        }
      }
      const callback = typeof encoding === "function" ? encoding : done;
      if (typeof callback === "function") queueMicrotask(() => callback());
      return true;
    }) as typeof stream.write;
  }
}

/**
 * In a worker: every `process.exit(n)`, the library's and the user's own,
 * posts the end marker first, as Bun's `exit` event says 0 under `bun test`
 * whatever `n` was.
 */
function markExits(port: ParentPort): void {
  const exit = process.exit.bind(process);
  process.exit = ((code?: number | string | null) => {
    const given = Number(code ?? process.exitCode ?? 0);
    port.post(endMarker(given));
    return exit(given);
  }) as typeof process.exit;
}

/**
 * Node compiles every module again in each worker, and strips a `.ts` file's
 * types again too: measured, a child that loads the library spent 122 ms of
 * CPU where a raw worker spent 72, and 47 with the compile cache, which also
 * keeps the stripped text (nodejs/node#56629). So each worker enables it, as
 * TypeScript's own tools do: a quiet cache under the OS's temporary folder,
 * which `NODE_COMPILE_CACHE` moves and `NODE_DISABLE_COMPILE_CACHE=1` turns off.
 */
const COMPILE_CACHE = `process.getBuiltinModule("node:module").enableCompileCache?.();`;

/** The adapter for `worker_threads`: Node 24's, and Bun's under the name "bun". */
export function nodeAdapter(runtime: "node" | "bun" = "node"): Adapter {
  // Fetched, not imported: a static import would load Deno's compatibility
  // layer on Deno too, and keep the library out of a browser.
  const threads = process.getBuiltinModule("node:worker_threads");
  const { isMainThread, parentPort, receiveMessageOnPort } = threads;
  const port: ParentPort | null = isMainThread || !parentPort ? null : {
    post: (data, transfer) => parentPort!.postMessage(data, transfer as never),
    onMessage: (listener) => parentPort!.on("message", listener),
  };
  if (port) {
    writeOutputDirectly();
    markExits(port);
  }
  return {
    runtime,
    pid: process.pid,
    canUnref: true,
    workerPrelude: runtime === "node" ? COMPILE_CACHE : undefined,
    spawn: (url, options) => spawnThread(threads, url, options, true),
    parent: () => port,
    // In a worker, process.exit() ends only that thread, after delivering what it posted.
    exit: (code) => process.exit(code),
    onUncaught(handler) {
      process.on("uncaughtException", handler);
      process.on("unhandledRejection", handler);
    },
    environment: () => ({ ...process.env }) as Record<string, string>,
    setEnvironment(environment) {
      for (const key of Object.keys(process.env)) if (!Object.hasOwn(environment, key)) delete process.env[key];
      Object.assign(process.env, environment);
    },
    writeError: (text) => void process.stderr.write(text),
    receiveNow: (port) => receiveMessageOnPort(port as never),
    poolPollsPorts: true,
  };
}
