import { INestApplicationContext } from '@nestjs/common';
import type { Logger } from 'pino';

/**
 * Closes the app on SIGTERM/SIGINT (Nest runs the shutdown hooks: workers close,
 * servers drain) and logs crashes before exiting.
 */
export function handleSignals(app: INestApplicationContext, logger: Logger): void {
  let closing = false;
  const close = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    app
      .close()
      .then(() => process.exit(0))
      .catch((err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => close('SIGTERM'));
  process.on('SIGINT', () => close('SIGINT'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
}

/** Prints a config error (which names the variable) and exits 2. */
export function failBoot(err: unknown): never {
  console.error((err as Error)?.message ?? String(err));
  process.exit(2);
}
