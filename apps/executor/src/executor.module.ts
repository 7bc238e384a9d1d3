import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { NodeEventsModule } from '@hivemind/shared/events/node-events.emitter';
import { healthHttpParts } from '@hivemind/shared/http/health';
import { WorkerCoreModule } from '@hivemind/shared/nest/worker-core.module';
import { DiskGuardService } from './disk-guard.service';
import { executorReadinessProvider } from './executor-health';
import { ExecutorBeatService } from './executor-beat.service';
import { GpuAllocatorService } from './gpu-allocator.service';
import { OwnerFreezeService } from './owner-freeze.service';
import { ReconcilerService } from './reconciler.service';
import { RuntimeService } from './runtime/runtime.service';
import { TaskEvents } from './task-events';
import { TaskProcessor } from './task.processor';
import { CleanupStep } from './pipeline/cleanup.step';
import { FallbackResults } from './pipeline/fallback-result';
import { PackResultStep } from './pipeline/pack-result.step';
import { PrepareWorkspaceStep } from './pipeline/prepare-workspace.step';
import { PublishStep } from './pipeline/publish.step';
import { RunTaskStep } from './pipeline/run-task.step';
import { TaskPipeline } from './pipeline/task-pipeline';

@Module({})
export class ExecutorModule {
  static forRoot(config: WorkerConfig, logger: Logger): DynamicModule {
    const http = healthHttpParts(executorReadinessProvider);
    return {
      module: ExecutorModule,
      imports: [WorkerCoreModule.forRoot(config, logger, 'executor'), NodeEventsModule.forRoot('executor'), ...http.imports],
      controllers: http.controllers,
      providers: [
        ...[DiskGuardService, GpuAllocatorService, RuntimeService, OwnerFreezeService, ReconcilerService, TaskProcessor, ExecutorBeatService, TaskEvents],
        ...[TaskPipeline, PrepareWorkspaceStep, RunTaskStep, PackResultStep, PublishStep, CleanupStep, FallbackResults],
        ...http.providers,
      ],
    };
  }
}
