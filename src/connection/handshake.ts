/**
 * The authkey handshake of CPython's `multiprocessing.connection`, both
 * forms: 3.11's (`#CHALLENGE#` and 20 random bytes, answered with a bare
 * HMAC-MD5) and 3.12+'s (the challenge starts with `{sha256}`, the answer
 * with the digest's name). As CPython 3.12+ does, we send the modern
 * challenge, which a 3.11 peer answers with HMAC-MD5 over all of it, and we
 * accept either answer; we answer a 20-byte challenge the 3.11 way and a
 * `{digest}` one in kind. The server side delivers first, then answers; the
 * client side the other way round, so each side proves the other knows the key.
 * Our challenges carry our signature before their random bytes (`peers.ts`),
 * which Python HMACs with the rest and never reads: `answerChallenge` says
 * whether the peer is one of ours.
 *
 * Every message of the handshake is at most 256 bytes, as in CPython.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AuthenticationError } from "../errors.ts";
import { SIGNATURE, signedAt } from "./peers.ts";

/** A key as the caller may give it: bytes, or a string taken as UTF-8. */
export type Authkey = Uint8Array | ArrayBuffer | string;

/** What the handshake needs of a connection: framed messages both ways. */
export interface Channel {
  sendBytes(bytes: Uint8Array): Promise<void>;
  /** The next message; rejects when it is longer than `maxLength`. */
  recvBytes(maxLength: number): Promise<Uint8Array>;
}

const CHALLENGE = new TextEncoder().encode("#CHALLENGE#");
const WELCOME = new TextEncoder().encode("#WELCOME#");
const FAILURE = new TextEncoder().encode("#FAILURE#");
/** Random bytes in a challenge, as CPython's MESSAGE_LENGTH. */
const MESSAGE_LENGTH = 40;
/** A challenge of exactly this many bytes comes from a peer that knows only HMAC-MD5 (Python <= 3.11). */
const MD5_ONLY_MESSAGE_LENGTH = 20;
const MD5_DIGEST_LENGTH = 16;
const MAX_HANDSHAKE_MESSAGE = 256;
/** Python's names of the digests it allows, and node:crypto's. */
const DIGESTS: Record<string, string> = {
  md5: "md5",
  sha256: "sha256",
  sha384: "sha384",
  sha3_256: "sha3-256",
  sha3_384: "sha3-384",
};

const ascii = (bytes: Uint8Array) => String.fromCharCode(...bytes);

/**
 * The key as bytes.
 *
 * @throws {TypeError} for anything but a Uint8Array, an ArrayBuffer or a string.
 */
export function keyBytes(key: Authkey, what: string): Uint8Array {
  if (typeof key === "string") return new TextEncoder().encode(key);
  if (key instanceof Uint8Array) return key;
  if (key instanceof ArrayBuffer) return new Uint8Array(key);
  throw new TypeError(`${what}: authkey must be a Uint8Array or a string (taken as UTF-8), got ${typeof key}`);
}

function hmac(digest: string, key: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac(DIGESTS[digest], key).update(message).digest());
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The digest a message names (`{sha256}…`) and what follows; `""` for the legacy lengths (bare MD5). */
function digestOf(message: Uint8Array): [string, Uint8Array] {
  if (message.length === MD5_ONLY_MESSAGE_LENGTH || message.length === MD5_DIGEST_LENGTH) return ["", message];
  if (message[0] === 0x7b /* { */) {
    const close = message.indexOf(0x7d, /* } */ 1);
    const name = close > 0 ? ascii(message.subarray(1, close)) : "";
    if (close > 0 && close <= 10 && Object.hasOwn(DIGESTS, name)) return [name, message.subarray(close + 1)];
  }
  throw new AuthenticationError(
    `unsupported message length (${message.length} bytes), missing digest prefix, or unsupported digest`,
  );
}

async function receive(channel: Channel, step: string): Promise<Uint8Array> {
  try {
    return await channel.recvBytes(MAX_HANDSHAKE_MESSAGE);
  } catch (error) {
    if (error instanceof AuthenticationError) throw error;
    throw new AuthenticationError(`authentication failed while waiting for the ${step}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * The serving side's half: sends a challenge and checks the answer, then
 * says `#WELCOME#` or `#FAILURE#`.
 *
 * @throws {AuthenticationError} when the answer is wrong or malformed, or the peer went away.
 */
export async function deliverChallenge(channel: Channel, key: Uint8Array, digest = "sha256"): Promise<void> {
  const message = new Uint8Array([
    ...new TextEncoder().encode(`{${digest}}`),
    ...SIGNATURE,
    ...randomBytes(MESSAGE_LENGTH),
  ]);
  await channel.sendBytes(new Uint8Array([...CHALLENGE, ...message]));
  const response = await receive(channel, "answer to our challenge");
  let failure: string | undefined;
  try {
    const [name, mac] = digestOf(response);
    // A bare 16-byte answer is HMAC-MD5 over the whole challenge, what Python 3.11 sends.
    const expected = hmac(name || "md5", key, message);
    if (!same(expected, mac)) failure = "digest received was wrong (the peer has another authkey)";
  } catch (error) {
    failure = (error as Error).message;
  }
  if (failure === undefined) return channel.sendBytes(WELCOME);
  await channel.sendBytes(FAILURE).catch(() => {});
  throw new AuthenticationError(failure);
}

/**
 * The connecting side's half: answers the peer's challenge and waits for
 * its verdict; resolves whether the challenge was signed by one of ours.
 *
 * @throws {AuthenticationError} when the peer rejects the answer or sends no valid challenge.
 */
export async function answerChallenge(channel: Channel, key: Uint8Array): Promise<boolean> {
  const received = await receive(channel, "challenge");
  if (!startsWith(received, CHALLENGE)) {
    throw new AuthenticationError(
      "protocol error: expected a #CHALLENGE# message (is the peer a multiprocessing Listener with an authkey?)",
    );
  }
  const message = received.subarray(CHALLENGE.length);
  if (message.length < MD5_ONLY_MESSAGE_LENGTH) {
    throw new AuthenticationError(`challenge too short: ${message.length} bytes`);
  }
  const [name, random] = digestOf(message);
  const mac = hmac(name || "md5", key, message);
  await channel.sendBytes(name ? new Uint8Array([...new TextEncoder().encode(`{${name}}`), ...mac]) : mac);
  const verdict = await receive(channel, "verdict on our answer");
  if (!same(verdict, WELCOME)) {
    throw new AuthenticationError(
      startsWith(verdict, FAILURE)
        ? "digest sent was rejected (the peer has another authkey)"
        : "digest sent was rejected: the peer answered neither #WELCOME# nor #FAILURE#",
    );
  }
  return name !== "" && signedAt(random, 0);
}
