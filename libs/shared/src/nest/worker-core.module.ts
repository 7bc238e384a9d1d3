import { DynamicModule, Global, Module } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '../config/worker-config';
import { WorkDir } from '../work-dir/work-dir';
import { LOGGER } from '../logging/logger';
import { createMetricsRegistry, METRICS_REGISTRY } from '../metrics/registry';
import { detectGpus, gpuCapacity } from '../resources/gpu';
import { NodeCapacity } from '../resources/limits';
import { MachineCapacity, NodeSettings, NodeSettingsStore } from '../settings/node-settings';
import { SettingsOverrides } from '../state/settings';
import { StateModule } from '../state/state.module';

export const NODE_CAPACITY = Symbol('NODE_CAPACITY');

/**
 * What the machine offers with nothing reserved for its owner, from config and the
 * hardware. No GPU is registered: the executor gives tasks none (and with CPU_ONLY
 * the node must never offer one).
 */
export function machineCapacity(c: WorkerConfig): MachineCapacity {
  return { cpuCores: c.cpuCores, cpuScore: c.cpuScore, memoryGb: c.memoryGb, gpuScore: 0, gpuMemoryGb: 0, gpuSharing: c.GPU_SHARING };
}

/** The live settings' starting point: the config's values. */
export function defaultSettings(c: WorkerConfig): NodeSettings {
  return {
    maxConcurrentTasks: c.MAX_CONCURRENT_TASKS,
    ownerReservedCores: c.OWNER_RESERVED_CORES,
    ownerReservedMemoryGb: c.OWNER_RESERVED_MEMORY_GB,
  };
}

/**
 * The whole machine's capacity (nothing reserved for the owner) with the config's task
 * count; NODE_CAPACITY adds the GPUs found. The live settings subtract the owner's share.
 */
export function nodeCapacity(c: WorkerConfig): NodeCapacity {
  return { ...machineCapacity(c), maxTasks: c.MAX_CONCURRENT_TASKS };
}

/** Paths polled often (health checks, scrapes, static files, the live output): not logged per request. */
const QUIET_PATHS = /^\/(health|metrics|static|api\/output|api\/events)(\/|$|\?)/;

/**
 * nestjs-pino's request logging on the service's own pino logger (so the same
 * redaction applies: authorization headers and cookies never reach a line).
 */
function httpLogOptions(logger: Logger) {
  return {
    logger,
    autoLogging: { ignore: (req: IncomingMessage) => QUIET_PATHS.test(req.url ?? '') },
    customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug'),
  } as const;
}

/**
 * What every worker service (gateway, executor, monitor) shares: validated config,
 * the logger, metrics, the node's state in Redis (StateModule), capacity and settings.
 */
@Global()
@Module({})
export class WorkerCoreModule {
  static forRoot(config: WorkerConfig, logger: Logger, service: string): DynamicModule {
    return {
      module: WorkerCoreModule,
      imports: [LoggerModule.forRoot({ pinoHttp: httpLogOptions(logger) }), StateModule.forRoot(config, service)],
      providers: [
        { provide: METRICS_REGISTRY, useFactory: () => createMetricsRegistry(service) },
        { provide: WORKER_CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        {
          provide: NODE_CAPACITY,
          useFactory: async (): Promise<NodeCapacity> => {
            const base = nodeCapacity(config);
            if (config.GPU_MODE === 'off') return { ...base, cpuOnly: true };
            const { devices, problem } = await detectGpus(config.GPU_DETECT_TIMEOUT * 1000);
            if (devices.length) logger.info({ gpus: devices.map((d) => `${d.index}: ${d.name} (${d.memoryMb} MB)`) }, 'GPUs found');
            else logger.debug({ problem }, 'no GPU');
            return { ...base, ...gpuCapacity(devices), gpuDevices: devices };
          },
        },
        {
          provide: NodeSettingsStore,
          inject: [SettingsOverrides, NODE_CAPACITY],
          useFactory: (overrides: SettingsOverrides, machine: NodeCapacity) => new NodeSettingsStore(overrides, machine, defaultSettings(config)),
        },
        { provide: WorkDir, useValue: new WorkDir(config.workDir) },
      ],
      exports: [METRICS_REGISTRY, WORKER_CONFIG, LOGGER, NODE_CAPACITY, NodeSettingsStore, WorkDir, StateModule],
    };
  }
}
