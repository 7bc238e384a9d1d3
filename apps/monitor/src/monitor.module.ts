import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { NodeEventsModule } from '@hivemind/shared/events/node-events.emitter';
import { healthHttpParts } from '@hivemind/shared/http/health';
import { WorkerCoreModule } from '@hivemind/shared/nest/worker-core.module';
import { HealthWatchService } from './health-watch.service';
import { HostProbe } from './host-probe.adapter';
import { OwnerWatchService } from './owner-watch.service';
import { monitorReadinessProvider } from './monitor-health';
import { SamplerService } from './sampler.service';

@Module({})
export class MonitorModule {
  static forRoot(config: WorkerConfig, logger: Logger): DynamicModule {
    const http = healthHttpParts(monitorReadinessProvider);
    return {
      module: MonitorModule,
      imports: [WorkerCoreModule.forRoot(config, logger, 'monitor'), NodeEventsModule.forRoot('monitor'), ...http.imports],
      controllers: http.controllers,
      providers: [{ provide: HostProbe, useValue: new HostProbe() }, SamplerService, OwnerWatchService, HealthWatchService, ...http.providers],
    };
  }
}
