// Alerts, so operators learn before traffic stops: certificates (agency, hub, TSA) and CRLs expiring within 60, 30
// and 7 days, a partner's circuit breaker open, a delivery or time-stamping backlog past its threshold, receipts
// missing, the data disk filling. Judged from the hub watch and the store; the evaluator publishes each change on
// `swx.alerts.<kind>` and keeps the gauges the Prometheus rule file (prometheusRules) reads.
import { awaitingReceipts, certificateExpiry, dataDiskFree } from '../engine/metrics.ts';
import { log } from '../engine/log.ts';
import type { Store } from '../engine/store/index.ts';
import { awaitingReceipt } from './search.ts';
import { daysLeft, type HubWatch } from './watch.ts';

export const alertKinds = ['certificate-expiry', 'crl-expiry', 'breaker-open', 'backlog', 'stamping-backlog', 'missing-receipts', 'disk-space'] as const;
export type AlertKind = (typeof alertKinds)[number];
export type Severity = 'info' | 'warning' | 'critical';

export interface Alert {
  /** Stable while the condition lasts: `<kind>:<subject>`. */
  id: string;
  kind: AlertKind;
  severity: Severity;
  subject: string;
  message: string;
  /** When the condition was first seen. */
  since: string;
}

export interface AlertThresholds {
  /** Deliveries waiting for one partner. */
  backlog: number;
  /** Evidence records waiting for their time-stamp. */
  stampingBacklog: number;
  /** Minutes a receiver may take to acknowledge a message before it counts as missing. */
  receiptMinutes: number;
  /** Free share of the data disk below which it warns (critical at half of it). */
  diskFreeRatio: number;
}

/** Days before expiry at which an alert starts, and its severity from there. */
const expiryLevels: [number, Severity][] = [[7, 'critical'], [30, 'warning'], [60, 'info']];

const dayMs = 86_400_000;

/** The conditions that hold now, without `since` (which the evaluator keeps). */
export async function judgeAlerts(watch: HubWatch, store: Store | undefined, thresholds: AlertThresholds, now = Date.now()): Promise<Omit<Alert, 'since'>[]> {
  const alerts: Omit<Alert, 'since'>[] = [];
  const raise = (kind: AlertKind, severity: Severity, subject: string, message: string) => alerts.push({ id: `${kind}:${subject}`, kind, severity, subject, message });
  for (const expiry of watch.expiries()) {
    const days = daysLeft(expiry.notAfter, now);
    certificateExpiry.set({ kind: expiry.kind, subject: expiry.subject }, Math.round((Date.parse(expiry.notAfter) - now) / 1000));
    const level = expiryLevels.find(([within]) => days < within);
    if (!level) continue;
    const what = expiry.kind === 'crl' ? `CRL of ${expiry.subject}: next update` : `${expiry.kind} certificate ${expiry.subject}: expires`;
    raise(expiry.kind === 'crl' ? 'crl-expiry' : 'certificate-expiry', level[1], `${expiry.kind}/${expiry.subject}`,
      days < 0 ? `${what} ${expiry.notAfter}, ${-days} days ago` : `${what} ${expiry.notAfter}, in ${days} days`);
  }
  for (const partner of await watch.partners()) {
    if (partner.breaker !== 'closed') raise('breaker-open', partner.breaker === 'open' ? 'critical' : 'warning', partner.id, `deliveries to ${partner.id} are paused: its circuit breaker is ${partner.breaker} (${partner.backlog} waiting)`);
    if (partner.backlog > thresholds.backlog) raise('backlog', 'warning', partner.id, `${partner.backlog} deliveries wait for ${partner.id} (threshold ${thresholds.backlog})`);
  }
  const unstamped = watch.stampingBacklog();
  if (unstamped > thresholds.stampingBacklog) raise('stamping-backlog', 'critical', 'tsa', `${unstamped} evidence records wait for their time-stamp (threshold ${thresholds.stampingBacklog})`);
  if (store) {
    awaitingReceipts.reset();
    const before = new Date(now - thresholds.receiptMinutes * 60_000).toISOString();
    for (const { receiver, waiting } of await awaitingReceipt(store, new Date(now - dayMs).toISOString(), before)) {
      awaitingReceipts.set({ receiver }, waiting);
      raise('missing-receipts', 'warning', receiver, `${waiting} messages to ${receiver} received in the last day have no receipt after ${thresholds.receiptMinutes} minutes`);
    }
  }
  const disk = await watch.disk();
  const free = disk.totalBytes > 0 ? disk.freeBytes / disk.totalBytes : 1;
  dataDiskFree.set(free);
  if (free < thresholds.diskFreeRatio) {
    raise('disk-space', free < thresholds.diskFreeRatio / 2 ? 'critical' : 'warning', disk.path, `${(free * 100).toFixed(1)} % of the data disk is free (${Math.round(disk.freeBytes / 1_048_576)} MiB)`);
  }
  return alerts;
}

/** A change of one alert, as published on `swx.alerts.<kind>`. */
export interface AlertChange { state: 'firing' | 'changed' | 'resolved'; alert: Alert; at: string }

/**
 * Judges the alerts every `intervalMs` and publishes what changed: an alert that starts, changes severity or message,
 * or ends. Each keeps the time it was first seen for as long as it lasts.
 */
export class AlertEvaluator {
  private current = new Map<string, Alert>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<Alert[]>;

  constructor(
    private readonly judge: (now: number) => Promise<Omit<Alert, 'since'>[]>,
    private readonly publish: (subject: string, change: AlertChange) => void,
    private readonly intervalMs = 60_000,
  ) {}

  start(): void {
    const tick = () => void this.evaluate().catch((error: unknown) => log.warn({ err: error }, 'alerts could not be judged'));
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  stop(): void { clearInterval(this.timer); }

  /** Judges now (one judgement at a time: a caller during one gets its result) and publishes the changes. */
  evaluate(now = Date.now()): Promise<Alert[]> {
    this.running ??= this.judgeAndPublish(now).finally(() => { this.running = undefined; });
    return this.running;
  }

  private async judgeAndPublish(now: number): Promise<Alert[]> {
    const at = new Date(now).toISOString();
    const next = new Map<string, Alert>();
    for (const judged of await this.judge(now)) {
      const before = this.current.get(judged.id);
      const alert = { ...judged, since: before?.since ?? at };
      next.set(alert.id, alert);
      if (!before) this.publish(`swx.alerts.${alert.kind}`, { state: 'firing', alert, at });
      else if (before.severity !== alert.severity || before.message !== alert.message) this.publish(`swx.alerts.${alert.kind}`, { state: 'changed', alert, at });
    }
    for (const [id, alert] of this.current) if (!next.has(id)) this.publish(`swx.alerts.${alert.kind}`, { state: 'resolved', alert, at });
    this.current = next;
    const severity: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };
    return [...next.values()].sort((a, b) => severity[a.severity] - severity[b.severity] || a.id.localeCompare(b.id));
  }
}

/**
 * A Prometheus alerting-rule file over the hub's metrics, for operators who run Prometheus and Alertmanager: the same
 * conditions as the console's alerts, with the thresholds given.
 */
export function prometheusRules(thresholds: AlertThresholds): string {
  const rules: { alert: string; expr: string; for: string; severity: Severity; summary: string }[] = [
    ...expiryLevels.map(([days, severity], level) => {
      // Each level holds until the next one starts, so one expiry fires one rule at a time.
      const sooner = expiryLevels[level - 1]?.[0];
      return {
        alert: `SwxCertificateExpiresIn${days}Days`,
        expr: `swx_certificate_expiry_seconds < ${days * 86_400}${sooner === undefined ? '' : ` and swx_certificate_expiry_seconds >= ${sooner * 86_400}`}`,
        for: '10m', severity,
        summary: `{{ $labels.kind }} {{ $labels.subject }} expires (a CRL: passes its next update) within ${days} days`,
      };
    }),
    { alert: 'SwxPartnerCircuitOpen', expr: 'swx_partner_circuit_open == 1', for: '5m', severity: 'critical', summary: 'deliveries to {{ $labels.partner }} are paused: its circuit breaker is open' },
    { alert: 'SwxDeliveryBacklog', expr: `swx_actor_backlog{actor=~"deliver-.*"} > ${thresholds.backlog}`, for: '10m', severity: 'warning', summary: '{{ $value }} deliveries wait in {{ $labels.actor }}' },
    { alert: 'SwxTimeStampingBacklog', expr: `swx_evidence_unstamped_records > ${thresholds.stampingBacklog}`, for: '5m', severity: 'critical', summary: '{{ $value }} evidence records wait for their RFC 3161 time-stamp' },
    { alert: 'SwxMissingReceipts', expr: 'swx_messages_awaiting_receipt > 0', for: '15m', severity: 'warning', summary: `{{ $value }} messages to {{ $labels.receiver }} have no receipt after ${thresholds.receiptMinutes} minutes` },
    { alert: 'SwxDataDiskFilling', expr: `swx_data_disk_free_ratio < ${thresholds.diskFreeRatio}`, for: '10m', severity: 'warning', summary: 'only {{ $value | humanizePercentage }} of the data disk is free' },
    { alert: 'SwxDataDiskFull', expr: `swx_data_disk_free_ratio < ${thresholds.diskFreeRatio / 2}`, for: '5m', severity: 'critical', summary: 'only {{ $value | humanizePercentage }} of the data disk is free' },
  ];
  // YAML by hand for a fixed shape: every string double-quoted as JSON, which YAML reads as the same string.
  const q = (text: string) => JSON.stringify(text);
  const lines = ['# Prometheus alerting rules for the swx hub (swx alerts rules). Load with rule_files: [swx-alerts.yml].', 'groups:', '  - name: swx', '    rules:'];
  for (const rule of rules) {
    lines.push(`      - alert: ${rule.alert}`, `        expr: ${q(rule.expr)}`, `        for: ${rule.for}`, '        labels:', `          severity: ${rule.severity}`, '        annotations:', `          summary: ${q(rule.summary)}`);
  }
  return `${lines.join('\n')}\n`;
}
