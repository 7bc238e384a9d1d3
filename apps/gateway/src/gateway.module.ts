import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { healthHttpParts } from '@hivemind/shared/http/health';
import { WorkerCoreModule } from '@hivemind/shared/nest/worker-core.module';
import { PoolCredentials } from '@hivemind/shared/proto/pool-client';
import { CallerGuardService } from './grpc/caller-guard.service';
import { POOL_CREDENTIALS } from './pool/pool-link.service';
import { AdmissionService } from './admission/admission.service';
import { GatewayEventsModule } from './events/events.module';
import { StopService } from './admission/stop.service';
import { WorkerNodeController } from './grpc/worker-node.controller';
import { NodeStatusService } from './node-status.service';
import { HeartbeatService } from './pool/heartbeat.service';
import { PoolLinkService } from './pool/pool-link.service';
import { ApiController } from './http/api.controller';
import { AuthController } from './http/auth.controller';
import { DashboardController } from './http/dashboard.controller';
import { dashboardTokenProvider, gatewayReadinessProvider } from './http/gateway-http';
import { OutputStreamController } from './http/output-stream.controller';
import { GatewayMetrics } from './metrics/gateway-metrics.service';
import { QueuesCloser, resultsQueueProvider, tasksQueueProvider } from './queues.provider';
import { OutputRelayService } from './relay/output-relay.service';
import { UsageRelayService } from './relay/usage-relay.service';
import { ResultUploadProcessor } from './results/result-upload.processor';
import { ResultUploadService } from './results/result-upload.service';
import { TaskHistoryService } from './results/task-history.service';

@Module({})
export class GatewayModule {
  static forRoot(config: WorkerConfig, logger: Logger, credentials: PoolCredentials): DynamicModule {
    const http = healthHttpParts(gatewayReadinessProvider);
    return {
      module: GatewayModule,
      imports: [WorkerCoreModule.forRoot(config, logger, 'gateway'), GatewayEventsModule, ...http.imports],
      controllers: [...http.controllers, AuthController, DashboardController, ApiController, OutputStreamController, WorkerNodeController],
      providers: [
        ...http.providers,
        dashboardTokenProvider,
        resultsQueueProvider,
        GatewayMetrics,
        TaskHistoryService,
        { provide: POOL_CREDENTIALS, useValue: credentials },
        CallerGuardService,
        tasksQueueProvider,
        QueuesCloser,
        PoolLinkService,
        NodeStatusService,
        HeartbeatService,
        AdmissionService,
        StopService,
        OutputRelayService,
        UsageRelayService,
        ResultUploadService,
        ResultUploadProcessor,
      ],
    };
  }
}
