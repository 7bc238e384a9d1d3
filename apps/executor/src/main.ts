import 'reflect-metadata';
import { bootWorkerService } from '@hivemind/shared/nest/bootstrap';
import { ExecutorModule } from './executor.module';

/** The executor has no HTTP server: an application context runs its queue worker. */
void bootWorkerService('executor', (config, logger) => ExecutorModule.forRoot(config, logger), {
  started: (c) => ({ concurrency: c.executorConcurrency, workDir: c.workDir }),
});
