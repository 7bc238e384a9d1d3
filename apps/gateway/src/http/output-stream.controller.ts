import { Controller, Get, Inject, OnApplicationShutdown, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { outputQuerySchema, parseOr400 } from './validation';
import { errorMessage } from '@hivemind/shared/util/errors';

/** Live streams open at once; each holds one Redis connection for its blocking read. */
const MAX_STREAMS = 16;
const BLOCK_MS = 10_000;

/**
 * Live task output as Server-Sent Events. Reads the output stream with a plain XREAD
 * from the newest entry on (never through the output relay's consumer group, so the
 * pool still gets every line), on its own connection per client.
 */
@Controller('api')
export class OutputStreamController implements OnApplicationShutdown {
  private readonly open = new Set<Redis>();

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly keys: RedisKeys,
  ) {}

  @ApiTags('dashboard')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Live task output as Server-Sent Events (event: output, data {taskId, text})' })
  @ApiQuery({ name: 'task', required: false, description: 'only this task' })
  @ApiProduces('text/event-stream')
  @Get('output')
  async stream(@Query() query: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const { task } = parseOr400(outputQuerySchema, query, 'query');
    if (this.open.size >= MAX_STREAMS) {
      res.status(503).json({ statusCode: 503, message: `too many live output streams open (at most ${MAX_STREAMS})` });
      return;
    }
    const conn = this.redis.duplicate({ connectionName: 'hivemind-gateway-sse', maxRetriesPerRequest: null });
    this.open.add(conn);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      this.open.delete(conn);
      conn.disconnect();
    };
    req.on('close', close);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    let last = '$';
    while (!closed) {
      try {
        const got = (await conn.xread('COUNT', 200, 'BLOCK', BLOCK_MS, 'STREAMS', this.keys.output, last)) as [string, [string, string[]][]][] | null;
        if (closed) break;
        if (!got) {
          res.write(': keep-alive\n\n');
          continue;
        }
        for (const [id, fields] of got[0][1]) {
          last = id;
          const f: Record<string, string> = {};
          for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
          if (task && f.task !== task) continue;
          res.write(`id: ${id}\nevent: output\ndata: ${JSON.stringify({ taskId: f.task, text: f.text })}\n\n`);
        }
      } catch (err) {
        if (closed) break;
        this.logger.debug({ err: errorMessage(err) }, 'live output read failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    res.end();
  }

  onApplicationShutdown(): void {
    for (const c of this.open) c.disconnect();
    this.open.clear();
  }
}
