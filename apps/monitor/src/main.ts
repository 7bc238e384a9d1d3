import 'reflect-metadata';
import { bootWorkerService } from '@hivemind/shared/nest/bootstrap';
import { MonitorModule } from './monitor.module';

void bootWorkerService('monitor', (config, logger) => MonitorModule.forRoot(config, logger), {
  started: (c) => ({ intervalS: c.MONITOR_INTERVAL }),
});
