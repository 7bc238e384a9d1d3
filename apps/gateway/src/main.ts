import 'reflect-metadata';
import * as path from 'node:path';
import { resolveCpuScore } from '@hivemind/shared/capacity/cpu-benchmark';
import { eventsServerOptions } from '@hivemind/shared/events/event-transport';
import { bootWorkerService } from '@hivemind/shared/nest/bootstrap';
import { GatewayModule } from './gateway.module';
import { CallerGuardService } from './grpc/caller-guard.service';
import { workerNodeTransport } from './grpc/worker-node.transport';
import { announceDashboard, setupGatewayHttp } from './http/gateway-http';
import { errorMessage } from '@hivemind/shared/util/errors';

void bootWorkerService('gateway', (config, logger, credentials) => GatewayModule.forRoot(config, logger, credentials!), {
  needsCredentials: true,
  // The registered cpu_score: CPU_SCORE, else a short benchmark cached per hardware.
  prepare: async (config, logger) => {
    try {
      const r = await resolveCpuScore({ override: config.CPU_SCORE, cores: config.cpuCores, cacheFile: path.join(config.workDir, 'cpu-benchmark.json') });
      config.cpuScore = r.cpuScore;
      logger.info({ cpuScore: r.cpuScore, source: r.source, machineScore: r.machineScore, cores: config.cpuCores }, 'cpu score');
    } catch (err) {
      logger.warn({ err: errorMessage(err), cpuScore: config.cpuScore }, 'cpu benchmark failed; registering 100 per core');
    }
  },
  http: (c) => ({ host: c.HTTP_HOST, port: c.HTTP_PORT }),
  // Hybrid: the pool's gRPC calls, and the node's events from the monitor and executors
  // (apps/gateway/src/events) on the Redis transport, beside the dashboard's HTTP.
  microservices: (c, _logger, app) => [{ strategy: workerNodeTransport(c, app.get(CallerGuardService)) }, eventsServerOptions(c, 'gateway')],
  setupHttp: (app, config) => setupGatewayHttp(app, config),
  listening: async (app, c, logger) => {
    const transport = c.GRPC_TLS_CERT ? (c.GRPC_TLS_CLIENT_CA ? 'mtls' : 'tls') : 'plaintext';
    logger.info({ port: c.GRPC_PORT, maxMessageMb: c.MAX_MESSAGE_MB, transport }, 'worker gRPC server listening');
    await announceDashboard(app as Parameters<typeof announceDashboard>[0], c, logger);
  },
  started: (c) => ({ nodeId: c.NODE_ID, pool: c.NODE_POOL_ADDRESS, port: c.GRPC_PORT, httpPort: c.HTTP_PORT, cpuScore: c.cpuScore }),
});
