import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { WorkerCoreModule } from '@hivemind/shared/nest/worker-core.module';
import { HostProbe } from './host-probe.adapter';
import { OwnerWatchService } from './owner-watch.service';
import { SamplerService } from './sampler.service';

@Module({})
export class MonitorModule {
  static forRoot(config: WorkerConfig, logger: Logger): DynamicModule {
    return {
      module: MonitorModule,
      imports: [WorkerCoreModule.forRoot(config, logger, 'monitor')],
      providers: [{ provide: HostProbe, useValue: new HostProbe() }, SamplerService, OwnerWatchService],
    };
  }
}
