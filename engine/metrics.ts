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

export const queriesTotal = new Counter({
  name: 'swx_queries_total',
  help: 'Queries by dataset, provider and outcome (answered, or the SWX_* code of the refusal)',
  labelNames: ['dataset', 'provider', 'outcome'] as const,
  registers: [metricsRegistry],
});

export const queryLatency = new Histogram({
  name: 'swx_query_seconds',
  help: 'Query time in the hub, from the verified request to the verified answer, split into the provider\'s time and the hub\'s own',
  labelNames: ['part'] as const,
  buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry],
});

export const hubProcesses = new Gauge({
  name: 'swx_hub_processes',
  help: 'Hub processes sharing this NATS, as this process counts them; per-asker query limits are divided among them',
  registers: [metricsRegistry],
});

export const connectorHealthy = new Gauge({
  name: 'swx_connector_healthy',
  help: '1 while a connector reports itself healthy, 0 while it does not (GET /readyz says why)',
  labelNames: ['protocol'] as const,
  registers: [metricsRegistry],
});

export const inboundBackouts = new Counter({
  name: 'swx_inbound_backouts_total',
  help: 'Messages an inbound connector handed back to the partner\'s queue because the hub failed to take them (MQ: MQBACK)',
  labelNames: ['protocol', 'partner'] as const,
  registers: [metricsRegistry],
});

export const breakerOpen = new Gauge({
  name: 'swx_partner_circuit_open',
  help: '1 while deliveries to the partner are paused by its circuit breaker',
  labelNames: ['partner'] as const,
  registers: [metricsRegistry],
});

export const crlStaleSeconds = new Gauge({
  name: 'swx_crl_stale_seconds',
  help: 'How long a CRL in use is past its nextUpdate (0 while current); past SWX_CRL_GRACE_SECONDS revocation is unknown',
  labelNames: ['crl'] as const,
  registers: [metricsRegistry],
});

export const crlRefreshFailures = new Counter({
  name: 'swx_crl_refresh_failures_total',
  help: 'Failed attempts to fetch a CRL from its distribution point',
  labelNames: ['crl'] as const,
  registers: [metricsRegistry],
});

export const revocationUnknownAccepted = new Counter({
  name: 'swx_revocation_fail_open_total',
  help: 'Certificates accepted although their revocation status was unknown (SWX_REVOCATION_FAIL_OPEN)',
  registers: [metricsRegistry],
});

export const unstampedRecords = new Gauge({
  name: 'swx_evidence_unstamped_records',
  help: 'Evidence records archived but not yet covered by an RFC 3161 time-stamp',
  registers: [metricsRegistry],
});

export const unstampedAge = new Gauge({
  name: 'swx_evidence_unstamped_oldest_seconds',
  help: 'Age of the oldest evidence block waiting for a time-stamp',
  registers: [metricsRegistry],
});

export const tsaFailures = new Counter({
  name: 'swx_tsa_failures_total',
  help: 'Failed attempts to time-stamp evidence (TSA unreachable or unusable answer)',
  registers: [metricsRegistry],
});

export const parserRefusals = new Counter({
  name: 'swx_http_parser_refusals_total',
  help: 'Requests refused by the HTTP parser before any handler saw them (malformed or oversized headers, ambiguous framing), by parser code',
  labelNames: ['reason'] as const,
  registers: [metricsRegistry],
});

export const problemReplies = new Counter({
  name: 'swx_http_problem_replies_total',
  help: 'RFC 9457 problem replies sent, agency and operator ports alike, by SWX_* code (refusals by the HTTP parser are swx_http_parser_refusals_total)',
  labelNames: ['code'] as const,
  registers: [metricsRegistry],
});

export const inflightBodyBytes = new Gauge({
  name: 'swx_inflight_body_bytes',
  help: 'Request body bytes this process holds for requests not yet answered (SWX_INFLIGHT_BODY_BYTES is its budget)',
  registers: [metricsRegistry],
});

export const certificateExpiry = new Gauge({
  name: 'swx_certificate_expiry_seconds',
  help: 'Seconds until a certificate the hub relies on expires, or a CRL in use passes its nextUpdate (negative once past)',
  labelNames: ['kind', 'subject'] as const,
  registers: [metricsRegistry],
});

export const awaitingReceipts = new Gauge({
  name: 'swx_messages_awaiting_receipt',
  help: 'Messages received in the last day, older than the receipt wait, that a receiver has neither acknowledged nor dead-lettered',
  labelNames: ['receiver'] as const,
  registers: [metricsRegistry],
});

export const dataDiskFree = new Gauge({
  name: 'swx_data_disk_free_ratio',
  help: 'Free share (0-1) of the disk that holds the data folder',
  registers: [metricsRegistry],
});
