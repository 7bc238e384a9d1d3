import type { RefusalKind } from '../metrics/gateway-metrics.service';

/** Why a pushed task is refused: a metric label and the sentence the pool hears. */
export interface Refusal {
  kind: RefusalKind;
  message: string;
}

/** A draining node refuses before it looks at anything else. */
export const DRAINING: Refusal = { kind: 'draining', message: 'the node is shutting down and takes no new tasks' };

/**
 * What admission knows of a request before it reads the zip: the node's state and the
 * request's shape. Gathered by AdmissionService from the repositories; judged here.
 */
export interface RequestFacts {
  draining: boolean;
  paused: boolean;
  taskId: string;
  /** Why the task id is not valid (checkTaskId), or null. */
  taskIdError: string | null;
  /** CPU_ONLY is set. */
  cpuOnly: boolean;
  /** The request asks for a GPU or GPU memory. */
  asksGpu: boolean;
  /** Why the owner comes first now (busy, outside working hours), or null. */
  owner: { message: string } | null;
  /** Why the request can never fit this node (checkRequest), or null. */
  fitError: string | null;
  /** The ledger already holds this task id. */
  held: boolean;
  /** A result of this task id that the pool refused is still retried. */
  refusedResultWaiting: boolean;
}

/**
 * The refusals that need no look at the zip, in the order the pool hears them: the
 * node's own state first (draining, paused), then what is wrong with the request itself,
 * lasting refusals (CPU-only, owner first, never fits) before a duplicate.
 */
export function refuseRequest(f: RequestFacts): Refusal | null {
  if (f.draining) return DRAINING;
  if (f.paused) return { kind: 'paused', message: 'the node is paused by its owner and takes no new tasks' };
  if (f.taskIdError) return { kind: 'invalid_task_id', message: f.taskIdError };
  if (f.cpuOnly && f.asksGpu) {
    return { kind: 'cpu_only', message: 'the task asks for a GPU; this node runs in CPU-only mode (CPU_ONLY) and gives tasks no GPU' };
  }
  if (f.owner) return { kind: 'owner', message: f.owner.message };
  if (f.fitError) return { kind: 'does_not_fit', message: f.fitError };
  if (f.held) return { kind: 'duplicate', message: `task ${f.taskId} is already in flight on this node` };
  // Its result, once refused, is still retried (its slot free): a new run would find and
  // queue that result instead of its own. The waiting result is the pool's answer.
  if (f.refusedResultWaiting) {
    return { kind: 'duplicate', message: `task ${f.taskId} already ran on this node; its result is still waiting for the pool to take it` };
  }
  return null;
}

/** What admission knows once it read the zip's central directory and the disk. */
export interface ContentFacts {
  /** The zip's summary, or why it is not a task zip (TaskFormatError). */
  zip: { uncompressedBytes: number } | { error: string };
  /** Why the node does not offer the image the task's hivemind.json names, or null. */
  imageError: string | null;
  zipBytes: number;
  /** MAX_DISK_GB in bytes. */
  maxDiskBytes: number;
  maxDiskGb: number;
  /** Free bytes under WORK_DIR. */
  freeBytes: number;
  /** Why the task store cannot hold the zip (TASK_STORE=redis), or null. */
  storeError: string | null;
  /** WORKSPACE_QUOTA_MB in bytes. */
  quotaBytes: number;
  /** Why the node is low on disk now (MIN_FREE_DISK_MB), or null. */
  lowDisk: string | null;
  /** An executor is alive to run the task. */
  hasExecutor: boolean;
}

const mb = (bytes: number) => (bytes / 1048576).toFixed(0);

/**
 * The refusals that need the zip: faults that never go away (the zip, its size) before
 * passing ones (low disk now, no executor), since the pool offers a refused task again
 * and again and should hear the lasting reason.
 */
export function refuseContent(f: ContentFacts): Refusal | null {
  if ('error' in f.zip) return { kind: 'invalid_zip', message: f.zip.error };
  if (f.imageError) return { kind: 'image', message: f.imageError };
  const need = f.zip.uncompressedBytes + f.zipBytes;
  if (need > f.maxDiskBytes) {
    return { kind: 'disk', message: `the task needs ${(need / 1024 ** 3).toFixed(2)} GB of disk; this node gives tasks at most ${f.maxDiskGb} GB (MAX_DISK_GB)` };
  }
  if (need > f.freeBytes) {
    return { kind: 'disk', message: `not enough free disk: the task needs ${mb(need)} MB, ${mb(f.freeBytes)} MB are free under WORK_DIR` };
  }
  if (f.storeError) return { kind: 'task_store', message: f.storeError };
  if (f.zip.uncompressedBytes > f.quotaBytes) {
    return { kind: 'quota', message: `the task unpacks to ${mb(f.zip.uncompressedBytes)} MB; this node's workspace quota is ${mb(f.quotaBytes)} MB (WORKSPACE_QUOTA_MB)` };
  }
  if (f.lowDisk) return { kind: 'low_disk', message: `${f.lowDisk}; try again later` };
  if (!f.hasExecutor) return { kind: 'no_executor', message: 'no executor is running on this node; try again later' };
  return null;
}
