import 'reflect-metadata';
import { bootWorkerService } from '@hivemind/shared/nest/bootstrap';
import { ExecutorModule } from './executor.module';

/** A queue worker; /health and /metrics on EXECUTOR_HEALTH_PORT (0: no HTTP, e.g. several executors on one host). */
void bootWorkerService('executor', (config, logger) => ExecutorModule.forRoot(config, logger), {
  http: (c) => (c.EXECUTOR_HEALTH_PORT > 0 ? { host: c.HTTP_HOST, port: c.EXECUTOR_HEALTH_PORT } : null),
  started: (c) => ({ concurrency: c.executorConcurrency, workDir: c.workDir, healthPort: c.EXECUTOR_HEALTH_PORT }),
});
