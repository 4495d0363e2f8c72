/**
 * The library's own encoding on a socket (src/pickle.ts, what pipes and
 * queues carry), for a peer known to be one of ours (`peers.ts`): a message
 * is {@linkcode OURS} and then src/pickle.ts's bytes.
 *
 * Only data crosses: functions and this library's shared objects (a Queue,
 * a Lock, a SharedArrayBuffer) live in one program's memory and are refused
 * at `send`; a message that holds their reductions is refused at `recv`, so
 * nothing a peer sends is ever run or revived here.
 *
 * @module
 */
import { pickleReduced, unpickleReduced } from "../pickle.ts";
import { PickleError } from "../python/pickle.ts";
import { OURS } from "./peers.ts";

/** `value` in our encoding, as a message of its own. */
export function encodeOurs(value: unknown, what: string): Uint8Array {
  let view: Uint8Array;
  try {
    view = pickleReduced(value, false);
  } catch {
    throw new PickleError(
      `${what}: ${locate(value, "value")} cannot go to another program: neither Python's pickle nor this ` +
        "library's encoding carries it (functions, symbols, class instances and the library's shared objects stay " +
        "in their program)",
    );
  }
  // The encoder's scratch space is reused by the next call: the message gets a copy.
  const body = new Uint8Array(view.length + 1);
  body[0] = OURS;
  body.set(view, 1);
  return body;
}

/**
 * The value of a message in our encoding.
 *
 * @throws {Error} when it holds reductions of shared objects, or is malformed.
 */
export function decodeOurs(bytes: Uint8Array): unknown {
  const { data, reduced } = unpickleReduced(bytes.subarray(1));
  if (reduced) throw new Error("the message holds this library's shared objects, which do not cross programs");
  return data;
}

/** Whether `value` alone encodes. */
function encodes(value: unknown): boolean {
  try {
    pickleReduced(value, false);
    return true;
  } catch {
    return false;
  }
}

/** The path of the first part of `value` that does not encode (on the failure path only: it encodes again per step). */
function locate(value: unknown, path: string, seen = new Set<object>()): string {
  if (typeof value !== "object" || value === null || seen.has(value)) return `${path} (${describe(value)})`;
  seen.add(value);
  const parts: [string, unknown][] = value instanceof Map
    ? [...value].flatMap((
      [k, v],
      i,
    ): [string, unknown][] => [[`${path} key ${i}`, k], [`${path}.get(${String(k)})`, v]])
    : value instanceof Set
    ? [...value].map((v, i) => [`${path} item ${i}`, v])
    : Array.isArray(value)
    ? value.map((v, i) => [`${path}[${i}]`, v])
    : Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null
    ? Object.entries(value).map(([k, v]) => [`${path}.${k}`, v])
    : [];
  for (const [at, part] of parts) if (!encodes(part)) return locate(part, at, seen);
  return `${path} (${describe(value)})`;
}

function describe(value: unknown): string {
  if (typeof value === "function") return `a function${value.name ? ` (${value.name})` : ""}`;
  if (typeof value !== "object" || value === null) return typeof value;
  return `a ${Object.getPrototypeOf(value)?.constructor?.name ?? "object"}`;
}
