import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { DEVPOOL_CONFIG, DevpoolConfig } from '@hivemind/shared/config/devpool-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { TokenAuthority } from './auth';
import { DispatcherService } from './dispatcher.service';
import { GrpcErrorsFilter } from './grpc/grpc-errors.filter';
import { NodesController } from './grpc/nodes.controller';
import { TasksController } from './grpc/tasks.controller';
import { UsersController } from './grpc/users.controller';
import { WorkerSideController } from './grpc/worker-side.controller';
import { PoolState } from './pool-state';
import { WorkerDialer } from './worker-dialer';

@Module({})
export class DevpoolModule {
  static forRoot(config: DevpoolConfig, logger: Logger): DynamicModule {
    return {
      module: DevpoolModule,
      controllers: [UsersController, NodesController, TasksController, WorkerSideController],
      providers: [
        { provide: DEVPOOL_CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: PoolState, useValue: new PoolState(config) },
        { provide: TokenAuthority, useValue: new TokenAuthority(config.jwtSecret, config.DEVPOOL_TOKEN_TTL) },
        { provide: WorkerDialer, useValue: new WorkerDialer(config) },
        GrpcErrorsFilter,
        DispatcherService,
      ],
    };
  }
}
