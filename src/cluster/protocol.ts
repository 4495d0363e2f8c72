/**
 * The wire between a cluster client (`ClusterPool`) and its worker hosts
 * (`serve`), declared once for both sides: the Redis keys, what a BullMQ job
 * carries, and what a host sends back.
 *
 * Values cross as this library's own bytes (`pickle.ts`, what queues use),
 * so a Map, a Set, a Date, a bigint or a typed array arrives as it left.
 * BullMQ stores job data as JSON, so those bytes travel inside it as base64;
 * results do not go through BullMQ at all but straight into a list that only
 * their client reads (one `RPUSH` per batch, one `BLMPOP` for many), which
 * keeps BullMQ's event stream (trimmed to ~10,000 entries) out of the path
 * where losing an entry would hang a caller. What BullMQ itself does to a job
 * (a host found it stalled, or it failed) reaches the client the same way, as
 * a {@linkcode JobNotice} from the host that saw it: a client reads no event
 * stream, whose every entry (five a job) would wake it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ReducedError } from "../reduction.ts";
import type { TargetSpec } from "../spawn.ts";

/** How a task's data is applied to its function, as in the local pool. */
export const APPLY = 0;
/** `fn(item)` for every item of a chunk. */
export const MAP = 1;
/** `fn(...item)` for every item of a chunk. */
export const STARMAP = 2;
/** One of {@linkcode APPLY}, {@linkcode MAP}, {@linkcode STARMAP}. */
export type Mode = typeof APPLY | typeof MAP | typeof STARMAP;

/** The BullMQ queue that carries tasks, by default. */
export const DEFAULT_QUEUE = "mp";

/** One task in a job: its number at the client, its function (an index into `fns`), mode and pickled data. */
export type WireTask = [id: number, fn: number, mode: Mode, data: string];

/** What one BullMQ job carries: one or more tasks of one client. */
export interface JobData {
  /** The client's id: where results go ({@linkcode resultsKey}) and what cancellations name. */
  client: string;
  /** The functions the tasks name; a local file is `root:` + its path under the project root. */
  fns: TargetSpec[];
  tasks: WireTask[];
}

/** One outcome, host → client: the task, whether it succeeded, its pickled result or its reduced error. */
export type WireOutcome = [id: number, ok: true, value: Uint8Array] | [id: number, ok: false, error: ReducedError];

/**
 * Host → client, in the same list as outcomes: BullMQ found `job` stalled
 * (`stalled` names the host that held it), or failed it (`failed` says why).
 */
export interface JobNotice {
  job: string;
  stalled?: string;
  failed?: string;
}

/** A published cancellation: `client` + space + task id. */
export function cancelMessage(client: string, id: number): string {
  return `${client} ${id}`;
}

/** The Redis keys of one task queue, under BullMQ's prefix. */
export function keys(prefix: string, queue: string): {
  job: (id: string) => string;
  results: (client: string) => string;
  cancel: string;
  hosts: string;
  holders: string;
} {
  const base = `${prefix}:${queue}:mp`;
  return {
    job: (id) => `${prefix}:${queue}:${id}`,
    results: (client) => `${base}:results:${client}`,
    cancel: `${base}:cancel`,
    hosts: `${base}:hosts`,
    holders: `${base}:holders`,
  };
}

/** The prefix of a local module named relative to the project root. */
export const ROOT_SCHEME = "root:";

/** Bytes (a view of scratch space, as pickle returns) as base64 for JSON. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** base64 from {@linkcode toBase64} back into bytes (a plain Uint8Array: Buffer's slice() shares memory). */
export function fromBase64(text: string): Uint8Array {
  const buffer = Buffer.from(text, "base64");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** A project root as a folder URL ending in `/`, from a path or a URL. */
export function rootURL(root: string | URL): string {
  const text = String(root);
  const href = /^[a-z][a-z0-9+.-]+:/i.test(text) ? new URL(text).href : pathToFileURL(resolve(text)).href;
  return href.endsWith("/") ? href : `${href}/`;
}

/** Client side: a module as a host should find it (a local file under `root` becomes `root:` + path). */
export function portableModule(module: string | undefined, root: string | undefined): string | undefined {
  if (module === undefined || root === undefined || !module.startsWith(root)) return module;
  return ROOT_SCHEME + module.slice(root.length);
}

/** Host side: a module as the client named it, resolved against this host's `root`. */
export function localModule(module: string | undefined, root: string | undefined, host: string): string | undefined {
  if (module === undefined || !module.startsWith(ROOT_SCHEME)) return module;
  if (root === undefined) {
    throw new Error(
      `the task's module ${module} is named relative to the project root, but host ${host} was started without --root`,
    );
  }
  return new URL(module.slice(ROOT_SCHEME.length), root).href;
}
