/**
 * Node's `worker_threads`. Exit codes and uncaught errors come from the
 * `'exit'` and `'error'` events; without an `'error'` listener an uncaught
 * error in a worker would kill the parent.
 *
 * @module
 */
import process from "node:process";
import { isMainThread, parentPort, receiveMessageOnPort, Worker } from "node:worker_threads";
import type { Adapter, ParentPort, SpawnOptions, ThreadHandle } from "./types.ts";

function spawn(url: URL, options: SpawnOptions): ThreadHandle {
  const worker = new Worker(url, { name: options.name });
  let error: unknown;
  worker.on("message", options.onMessage);
  worker.on("error", (e) => (error = e));
  worker.on("exit", (code) => options.onEnd({ code, error }));
  return {
    post: (data, transfer) => worker.postMessage(data, transfer as never),
    terminate: () => void worker.terminate(),
    keepAlive: (alive) => (alive ? worker.ref() : worker.unref()),
  };
}

/** The adapter for Node 24's `worker_threads`. */
export function nodeAdapter(): Adapter {
  const port: ParentPort | null = isMainThread || !parentPort ? null : {
    post: (data, transfer) => parentPort!.postMessage(data, transfer as never),
    onMessage: (listener) => parentPort!.on("message", listener),
  };
  return {
    runtime: "node",
    pid: process.pid,
    spawn,
    parent: () => port,
    // In a worker, process.exit() ends only that thread, after delivering what it posted.
    exit: (code) => process.exit(code),
    onUncaught(handler) {
      process.on("uncaughtException", handler);
      process.on("unhandledRejection", handler);
    },
    writeError: (text) => void process.stderr.write(text),
    receiveNow: (port) => receiveMessageOnPort(port as never),
  };
}
