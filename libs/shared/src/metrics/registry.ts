import { collectDefaultMetrics, Registry } from 'prom-client';

export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/**
 * One Prometheus registry per service, labelled with the service's name, with the
 * default process metrics (CPU, memory, event loop lag, handles, GC).
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // The event-loop lag histogram samples with a native timer; prom-client's default of
  // every 10 ms wakes an idle service 100 times a second, a measurable share of the idle
  // footprint. Every 100 ms still sees any lag that matters to a heartbeat.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  return registry;
}
