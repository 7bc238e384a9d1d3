import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { WorkerCoreModule } from '@hivemind/shared/nest/worker-core.module';
import { PoolCredentials } from '@hivemind/shared/proto/pool-client';
import { CallerGuardService } from './grpc/caller-guard.service';
import { POOL_CREDENTIALS } from './pool/pool-link.service';
import { AdmissionService } from './admission/admission.service';
import { StopService } from './admission/stop.service';
import { WorkerNodeServer } from './grpc/worker-node.server';
import { NodeStatusService } from './node-status.service';
import { HeartbeatService } from './pool/heartbeat.service';
import { PoolLinkService } from './pool/pool-link.service';
import { tasksQueueProvider } from './queues.provider';
import { OutputRelayService } from './relay/output-relay.service';
import { UsageRelayService } from './relay/usage-relay.service';
import { ResultUploadProcessor } from './results/result-upload.processor';
import { ResultUploadService } from './results/result-upload.service';

@Module({})
export class GatewayModule {
  static forRoot(config: WorkerConfig, logger: Logger, credentials: PoolCredentials): DynamicModule {
    return {
      module: GatewayModule,
      imports: [WorkerCoreModule.forRoot(config, logger, 'gateway')],
      providers: [
        { provide: POOL_CREDENTIALS, useValue: credentials },
        CallerGuardService,
        tasksQueueProvider,
        PoolLinkService,
        NodeStatusService,
        HeartbeatService,
        AdmissionService,
        StopService,
        WorkerNodeServer,
        OutputRelayService,
        UsageRelayService,
        ResultUploadService,
        ResultUploadProcessor,
      ],
    };
  }
}
