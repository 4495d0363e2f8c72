/**
 * Connections to Redis, made one way for the whole cluster entry point.
 *
 * `maxRetriesPerRequest: null` is what BullMQ requires of a connection that
 * blocks (and lets a command wait out a reconnection); how long a caller may
 * wait for Redis to come back is bounded above it, by the pool and queue
 * themselves, so no command here fails on its own.
 *
 * @module
 */
import { Redis } from "ioredis";

/** Where Redis is, when nothing says otherwise. */
export const DEFAULT_URL = "redis://127.0.0.1:6379";

/** How long calls wait for a lost Redis to come back, when nothing says otherwise. */
export const DEFAULT_RECONNECT_TIMEOUT = 10_000;

/** Throws a TypeError, starting with `what`, unless `url` is a Redis URL. */
export function checkURL(url: unknown, what: string): asserts url is string {
  if (typeof url !== "string" || !/^rediss?:\/\//.test(url)) {
    throw new TypeError(`${what} must start with redis:// or rediss://, got ${String(url)}`);
  }
}

/**
 * `reconnectTimeout` as given (the default when undefined), checked: a
 * RangeError, naming `where`, for anything but ms in [0, 2^31).
 */
export function readReconnectTimeout(reconnectTimeout: unknown = DEFAULT_RECONNECT_TIMEOUT, where: string): number {
  if (typeof reconnectTimeout !== "number" || !(reconnectTimeout >= 0) || reconnectTimeout >= 2 ** 31) {
    throw new RangeError(`${where}: reconnectTimeout must be a number of ms in [0, 2^31), got ${reconnectTimeout}`);
  }
  return reconnectTimeout;
}

/** A new connection to `url`. */
export function openRedis(url: string): Redis {
  checkURL(url, "a Redis URL");
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    // Reconnect quickly: a restarted Redis on loopback is back within tens of milliseconds.
    retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
    lazyConnect: false,
  });
  // Errors surface through the calls that fail; an unhandled 'error' event would end the program.
  redis.on("error", () => {});
  return redis;
}

/** Closes a connection without waiting for a Redis that may be gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  // A quit that loses the race rejects later ("Connection is closed", once disconnect() ran): caught here, or it
  // would surface as an unhandled rejection in whatever runs next (seen under deno test). Already closed, or
  // Redis unreachable: disconnect below ends it either way.
  const quit = redis.quit().catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([quit, new Promise((resolve) => timer = setTimeout(resolve, 500))]);
  clearTimeout(timer);
  redis.disconnect();
}
