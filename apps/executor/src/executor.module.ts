import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { WorkerCoreModule } from '@hivemind/shared/nest/worker-core.module';
import { DiskGuardService } from './disk-guard.service';
import { ExecutorBeatService } from './executor-beat.service';
import { GpuAllocatorService } from './gpu-allocator.service';
import { ReconcilerService } from './reconciler.service';
import { RuntimeService } from './runtime/runtime.service';
import { TaskProcessor } from './task.processor';
import { TaskRunnerService } from './task-runner.service';

@Module({})
export class ExecutorModule {
  static forRoot(config: WorkerConfig, logger: Logger): DynamicModule {
    return {
      module: ExecutorModule,
      imports: [WorkerCoreModule.forRoot(config, logger, 'executor')],
      providers: [DiskGuardService, GpuAllocatorService, RuntimeService, TaskRunnerService, ReconcilerService, TaskProcessor, ExecutorBeatService],
    };
  }
}
