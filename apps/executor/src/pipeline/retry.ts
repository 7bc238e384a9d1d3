import { sleep } from '@hivemind/shared/util/ticker';

/**
 * Retries `fn` through short outages (a Redis blip must not turn a finished task into a
 * lost one): up to `attempts` tries with a backoff capped at 5 s, unless `fatal(err)`.
 */
export async function withRetries<T>(fn: () => Promise<T>, opts: { attempts?: number; fatal?: (err: unknown) => boolean } = {}): Promise<T> {
  const attempts = opts.attempts ?? 10;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || opts.fatal?.(err)) throw err;
      await sleep(Math.min(5000, 250 * 2 ** attempt));
    }
  }
}
