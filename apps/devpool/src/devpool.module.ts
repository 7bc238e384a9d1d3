import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { DEVPOOL_CONFIG, DevpoolConfig } from '@hivemind/shared/config/devpool-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { TokenAuthority } from './auth';
import { DevpoolServer } from './devpool.server';
import { DispatcherService } from './dispatcher.service';
import { PoolState } from './pool-state';
import { WorkerDialer } from './worker-dialer';

@Module({})
export class DevpoolModule {
  static forRoot(config: DevpoolConfig, logger: Logger): DynamicModule {
    return {
      module: DevpoolModule,
      providers: [
        { provide: DEVPOOL_CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: PoolState, useValue: new PoolState(config) },
        { provide: TokenAuthority, useValue: new TokenAuthority(config.jwtSecret, config.DEVPOOL_TOKEN_TTL) },
        { provide: WorkerDialer, useValue: new WorkerDialer(config) },
        DevpoolServer,
        DispatcherService,
      ],
    };
  }
}
