import { promises as fs } from 'node:fs';
import { Body, Controller, Get, HttpCode, Inject, NotFoundException, Param, Patch, Post, Query, Res } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiBody, ApiCookieAuth, ApiOperation, ApiProduces, ApiQuery, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER, recentProblems } from '@hivemind/shared/logging/logger';
import { ControlChannel } from '@hivemind/shared/state/control-channel';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { MonitorSamples } from '@hivemind/shared/state/monitor-samples';
import { OwnerStateRepository } from '@hivemind/shared/state/owner-state';
import { RefusedResults } from '@hivemind/shared/state/refused-results';
import { RunningTasks } from '@hivemind/shared/state/running-tasks';
import { TaskRecords } from '@hivemind/shared/state/task-records';
import { NodeSettingsStore, SettingsError } from '@hivemind/shared/settings/node-settings';
import { NodeStatusService } from '../node-status.service';
import { summarizeStatus } from '../node-summary';
import { HeartbeatService } from '../pool/heartbeat.service';
import { PoolLinkService } from '../pool/pool-link.service';
import { TaskHistoryService } from '../results/task-history.service';
import { badRequest, historyQuerySchema, monitorQuerySchema, parseOr400, taskIdSchema } from './validation';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';

/** How much of a running task's live log the API returns. */
const LIVE_LOG_TAIL_BYTES = 64 * 1024;

async function fileTail(file: string, max: number): Promise<string | null> {
  let fh;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return null;
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, max);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * The dashboard's REST API (all behind the dashboard token): status, tasks and their
 * logs, the monitor's history, live settings, pause and resume. Bad input gets a 400
 * naming the field.
 */
@ApiTags('dashboard')
@ApiBearerAuth()
@ApiCookieAuth('hivemind_dashboard')
@ApiUnauthorizedResponse({ description: 'the dashboard token is missing or wrong' })
@ApiBadRequestResponse({ description: '{ statusCode: 400, field, message }: the field that was wrong' })
@Controller('api')
export class ApiController {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly ledger: ResourceLedger,
    private readonly running: RunningTasks,
    private readonly refused: RefusedResults,
    private readonly records: TaskRecords,
    private readonly owner: OwnerStateRepository,
    private readonly monitor: MonitorSamples,
    private readonly control: ControlChannel,
    private readonly settings: NodeSettingsStore,
    private readonly nodeStatus: NodeStatusService,
    private readonly heartbeat: HeartbeatService,
    private readonly pool: PoolLinkService,
    private readonly history: TaskHistoryService,
    private readonly workDir: WorkDir,
  ) {}

  /** Node identity, pool link, status, capacity, executors, CPT, owner state, problems. */
  @ApiOperation({ summary: 'Node identity, pool link, status, capacity, executors, CPT balance and estimates, owner state, problems' })
  @Get('status')
  async status() {
    const [{ status, held }, paused, settings, capacity, executors, estimates, ownerState, host, totals] = await Promise.all([
      this.nodeStatus.status(),
      this.nodeStatus.paused(),
      this.settings.get(),
      this.settings.capacity(),
      this.nodeStatus.executors(),
      this.history.estimatedTotal(),
      this.owner.read(),
      this.monitor.latest(Number.POSITIVE_INFINITY),
      this.ledger.totals(),
    ]);
    const heartbeatAge = this.pool.lastHeartbeatOk === null ? null : (Date.now() - this.pool.lastHeartbeatOk) / 1000;
    return {
      node: {
        nodeId: this.pool.nodeId,
        advertise: `${this.config.ADVERTISE_HOST}:${this.config.advertisePort}`,
        location: this.config.LOCATION,
      },
      pool: {
        address: this.config.NODE_POOL_ADDRESS,
        loggedIn: this.pool.client.loggedIn,
        connected: this.pool.client.loggedIn && heartbeatAge !== null && heartbeatAge <= this.config.heartbeatMaxAge,
        lastHeartbeatOk: this.pool.lastHeartbeatOk,
        lastError: this.pool.lastError,
        lastErrorAt: this.pool.lastErrorAt,
      },
      status,
      /** The status in words (the pool is told `status`). */
      summary: summarizeStatus(status, held, capacity.maxTasks),
      heldTasks: held,
      paused,
      draining: this.nodeStatus.draining,
      settings,
      capacity,
      reserved: totals,
      executors,
      cpt: {
        balance: this.pool.balance,
        estimatedTotal: estimates.total,
        estimatedTasks: estimates.tasks,
        note: 'Estimates are this node\'s own reckoning with the seed worker\'s formula; the Node Pool decides the real credit.',
      },
      ownerState,
      host,
      problems: recentProblems.list(),
    };
  }

  /**
   * Running tasks (with live usage), results the pool refused that are still retried
   * (their slots free, until their deadline), and the last finished tasks.
   */
  @ApiOperation({ summary: 'Running tasks, results the pool refused (retried until a deadline), and the last finished ones' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1 to TASK_HISTORY_SIZE' })
  @Get('tasks')
  async tasks(@Query() query: unknown) {
    const { limit } = parseOr400(historyQuerySchema(this.config.TASK_HISTORY_SIZE), query, 'query');
    const [running, history] = await Promise.all([this.running.all(), this.history.list(limit ?? this.config.TASK_HISTORY_SIZE)]);
    const averages = await Promise.all([...running.keys()].map((id) => this.history.averages(id)));
    const refused = await Promise.all(
      (await this.refused.list()).map(async (r) => {
        const result = await this.records.recordedResult(r.taskId);
        return { ...r, outcome: 'refused' as const, status: result?.status ?? null, reason: result?.reason ?? null };
      }),
    );
    return {
      running: [...running].map(([taskId, t], i) => {
        return { taskId, executorId: t.executorId, startedAt: t.startedAt, cpuPercent: t.cpuPercent, memoryPercent: t.memoryPercent, memoryBytes: t.memoryBytes, avgCpuPercent: averages[i].cpu, avgMemoryPercent: averages[i].memory };
      }),
      refused,
      history: history.map(({ logsTail: _logs, ...rest }) => rest),
    };
  }

  /** One finished task's history entry (with its logs' tail). */
  @ApiOperation({ summary: 'One finished task: status, reason, duration, result size, CPT estimate, logs tail' })
  @Get('tasks/:taskId')
  async task(@Param('taskId') taskId: string) {
    const id = parseOr400(taskIdSchema, taskId, 'taskId');
    const entry = await this.history.get(id);
    if (!entry) throw new NotFoundException(`no finished task ${id} in the history`);
    return entry;
  }

  /** A task's logs: the live log of a running task, else the tail kept in the history. */
  @ApiOperation({ summary: "A task's logs: live while it runs, else the kept tail" })
  @ApiProduces('text/plain')
  @Get('tasks/:taskId/logs')
  async logs(@Param('taskId') taskId: string, @Res() res: Response): Promise<void> {
    const id = parseOr400(taskIdSchema, taskId, 'taskId');
    const live = await fileTail(this.workDir.log(id), LIVE_LOG_TAIL_BYTES);
    const text = live ?? (await this.history.get(id))?.logsTail ?? null;
    if (text === null) throw new NotFoundException(`no logs for task ${id}`);
    res.type('text/plain; charset=utf-8').send(text);
  }

  /** The monitor's host samples over the last `minutes` (default 60), oldest first. */
  @ApiOperation({ summary: "The monitor's host samples over the last minutes, oldest first" })
  @ApiQuery({ name: 'minutes', required: false, type: Number, description: '1 to 1440; default 60' })
  @Get('monitor/history')
  async monitorHistory(@Query() query: unknown) {
    const { minutes } = parseOr400(monitorQuerySchema, query, 'query');
    const since = Date.now() - (minutes ?? 60) * 60_000;
    const samples = (await this.monitor.history()).filter((s) => s.at >= since);
    return { intervalSeconds: this.config.MONITOR_INTERVAL, samples };
  }

  @ApiOperation({ summary: 'Live settings, their defaults, the machine, the pause flag' })
  @Get('settings')
  async getSettings() {
    return { settings: await this.settings.get(), defaults: this.settings.defaults, machine: this.settings.machine, paused: await this.nodeStatus.paused() };
  }

  /** Changes live settings (maxConcurrentTasks, ownerReservedCores, ownerReservedMemoryGb). */
  @ApiOperation({ summary: 'Change live settings; applied at once' })
  @ApiBody({
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxConcurrentTasks: { type: 'integer', minimum: 1, maximum: 256 },
        ownerReservedCores: { type: 'number', minimum: 0 },
        ownerReservedMemoryGb: { type: 'integer', minimum: 0 },
      },
    },
  })
  @Patch('settings')
  async patchSettings(@Body() body: unknown) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body', 'expected a JSON object of settings');
    try {
      const settings = await this.settings.update(body);
      this.logger.info({ settings }, 'settings changed from the dashboard');
      this.heartbeat.statusChanged();
      return { settings };
    } catch (err) {
      if (err instanceof SettingsError) throw badRequest(err.field, err.message.slice(err.field.length + 2));
      throw err;
    }
  }

  /** Drops every override: back to the config's values. */
  @ApiOperation({ summary: "Back to the config's settings" })
  @Post('settings/reset')
  @HttpCode(200)
  async resetSettings() {
    const settings = await this.settings.reset();
    this.heartbeat.statusChanged();
    return { settings };
  }

  /** Stops accepting tasks (status Paused); tasks already held run to the end. */
  @ApiOperation({ summary: 'Stop accepting tasks (status Paused)' })
  @Post('pause')
  @HttpCode(200)
  async pause() {
    await this.control.pause('dashboard');
    this.logger.info('node paused from the dashboard');
    this.heartbeat.statusChanged();
    return { paused: true };
  }

  @ApiOperation({ summary: 'Accept tasks again' })
  @Post('resume')
  @HttpCode(200)
  async resume() {
    await this.control.resume();
    this.logger.info('node resumed from the dashboard');
    this.heartbeat.statusChanged();
    return { paused: false };
  }
}
