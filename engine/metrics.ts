// Prometheus metrics of one hub process, served at GET /metrics on the operator port.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'swx_process_' });

export const messagesTotal = new Counter({
  name: 'swx_messages_total',
  help: 'Messages by pipeline stage and outcome',
  labelNames: ['stage', 'outcome', 'code'] as const,
  registers: [metricsRegistry],
});

export const actorBacklog = new Gauge({
  name: 'swx_actor_backlog',
  help: 'Messages waiting for an actor (consumer pending + unacknowledged)',
  labelNames: ['actor'] as const,
  registers: [metricsRegistry],
});

export const deliveryLatency = new Histogram({
  name: 'swx_delivery_latency_seconds',
  help: 'From receipt at the hub to the receiver\'s signed receipt',
  labelNames: ['partner'] as const,
  buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [metricsRegistry],
});

export const breakerOpen = new Gauge({
  name: 'swx_partner_circuit_open',
  help: '1 while deliveries to the partner are paused by its circuit breaker',
  labelNames: ['partner'] as const,
  registers: [metricsRegistry],
});
