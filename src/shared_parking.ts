/**
 * How a SharedArrayBuffer, a view of one, or a buffer inside this library's
 * shared objects' reductions gets into `pickle.ts`'s bytes: replaced by a
 * marker naming a parking with the main process's resource sharer
 * (`resource_sharer.ts`), and revived from that parking on the receiving
 * side, so that the receiver gets the same shared memory and not a copy.
 * `pickle.ts` encodes; this module is only about the buffers it cannot encode.
 *
 * @module
 */
import { MARK, registerInlineKind } from "./reduction.ts";
import { fetchParked, park } from "./resource_sharer.ts";
import { isShared, views } from "./view_types.ts";

/** The kind of the marker that stands for a parked SharedArrayBuffer (or a view of one) in bytes. */
const PARKED = "@mp/parked";

/** A parked buffer: which parking, which of its buffers, and the view on it when a view was sent. */
interface ParkedState {
  id: string;
  i: number;
  /** `views` index, byte offset, byte length. */
  view?: [number, number, number];
}

/** What one {@linkcode parkShared} walk gathers. */
interface Parking {
  buffers: SharedArrayBuffer[];
  index: Map<SharedArrayBuffer, number>;
  /** The markers' states, which get the parking's name once it is parked. */
  states: ParkedState[];
  copies: Map<object, unknown>;
}

function parkedMarker(buffer: SharedArrayBuffer, parking: Parking, view?: [number, number, number]): unknown {
  let i = parking.index.get(buffer);
  if (i === undefined) (i = parking.buffers.push(buffer) - 1, parking.index.set(buffer, i));
  const state: ParkedState = { id: "", i };
  if (view) state.view = view;
  parking.states.push(state);
  return { [MARK]: PARKED, state };
}

/**
 * `data` with every SharedArrayBuffer and view of one (inside reductions'
 * states too) replaced by a parked marker; containers are copied only where
 * something inside them was replaced, so plain data goes through as it is.
 */
function replaceShared(value: unknown, parking: Parking): unknown {
  if (typeof value !== "object" || value === null) return value;
  const known = parking.copies.get(value);
  if (known !== undefined) return known;
  if (isShared(value as ArrayBufferLike)) return parkedMarker(value as SharedArrayBuffer, parking);
  if (ArrayBuffer.isView(value)) {
    if (!isShared(value.buffer)) return value;
    const kind = views.findIndex((type) => value instanceof type);
    if (kind < 0) return value;
    return parkedMarker(value.buffer as SharedArrayBuffer, parking, [kind, value.byteOffset, value.byteLength]);
  }
  // In progress: a cycle back to here keeps the original, whose buffers (if any) then fail to encode, by name.
  parking.copies.set(value, value);
  let result: unknown = value;
  if (Array.isArray(value)) {
    const items = value.map((item) => replaceShared(item, parking));
    if (items.some((item, i) => item !== value[i])) result = items;
  } else if (value instanceof Map) {
    const entries = [...value].map(([k, v]) => [replaceShared(k, parking), replaceShared(v, parking)] as const);
    if ([...value].some(([k, v], i) => entries[i][0] !== k || entries[i][1] !== v)) result = new Map(entries);
  } else if (value instanceof Set) {
    const items = [...value].map((item) => replaceShared(item, parking));
    if ([...value].some((item, i) => items[i] !== item)) result = new Set(items);
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      const items = keys.map((key) => replaceShared(record[key], parking));
      if (items.some((item, i) => item !== record[keys[i]])) {
        result = Object.fromEntries(keys.map((key, i) => [key, items[i]]));
      }
    }
  }
  parking.copies.set(value, result);
  return result;
}

/** Buffers fetched during one {@linkcode unpickle}, by parking: one fetch serves all the buffers of an item. */
const fetched = new Map<string, SharedArrayBuffer[]>();

registerInlineKind(PARKED, (given, owner) => {
  const state = given as ParkedState;
  let buffers = fetched.get(state.id);
  if (!buffers) {
    buffers = fetchParked(state.id, owner ? `a ${owner.replace("@mp/", "")}` : "a SharedArrayBuffer");
    fetched.set(state.id, buffers);
  }
  const buffer = buffers[state.i];
  if (!state.view) return buffer;
  const [kind, offset, byteLength] = state.view;
  const type = views[kind];
  if (type === DataView) return new DataView(buffer, offset, byteLength);
  const array = type as unknown as {
    new (b: SharedArrayBuffer, o: number, l: number): unknown;
    BYTES_PER_ELEMENT: number;
  };
  return new array(buffer, offset, byteLength / array.BYTES_PER_ELEMENT);
});

/** Data with its shared buffers replaced by markers, and the parking that holds them (if any). */
export interface ParkedData {
  data: unknown;
  /** The parking's name with the resource sharer; `undefined` when `data` held no shared buffer. */
  id: string | undefined;
}

/**
 * `data` with every SharedArrayBuffer and view of one replaced by a marker,
 * the buffers parked under `what` before the bytes exist, so that whoever can
 * read the bytes finds the buffers. The caller unparks `id` if its bytes are
 * never written.
 *
 * @example
 * ```ts
 * import { parkShared } from "./shared_parking.ts";
 * const { data, id } = parkShared({ n: 1 }, "put(item)"); // plain data: as it is, id undefined
 * ```
 */
export function parkShared(data: unknown, what: string): ParkedData {
  const parking: Parking = { buffers: [], index: new Map(), states: [], copies: new Map() };
  const replaced = replaceShared(data, parking);
  if (!parking.buffers.length) return { data: replaced, id: undefined };
  const id = park(parking.buffers, what);
  for (const state of parking.states) state.id = id;
  return { data: replaced, id };
}

/**
 * Forgets the buffers fetched while one value was revived: called by
 * `unpickle` once it is done, since a parking is handed out once.
 *
 * @example
 * ```ts
 * import { forgetFetched } from "./shared_parking.ts";
 * forgetFetched();
 * ```
 */
export function forgetFetched(): void {
  fetched.clear();
}
