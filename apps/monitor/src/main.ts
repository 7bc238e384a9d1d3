import 'reflect-metadata';
import { bootWorkerService } from '@hivemind/shared/nest/bootstrap';
import { MonitorModule } from './monitor.module';

/** /health and /metrics on MONITOR_HTTP_PORT (0: no HTTP). */
void bootWorkerService('monitor', (config, logger) => MonitorModule.forRoot(config, logger), {
  http: (c) => (c.MONITOR_HTTP_PORT > 0 ? { host: c.HTTP_HOST, port: c.MONITOR_HTTP_PORT } : null),
  started: (c) => ({ intervalS: c.MONITOR_INTERVAL, httpPort: c.MONITOR_HTTP_PORT }),
});
