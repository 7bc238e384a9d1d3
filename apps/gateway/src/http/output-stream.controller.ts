import { Controller, Get, Inject, OnApplicationShutdown, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { OutputStream, OutputTail } from '@hivemind/shared/state/output-stream';
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
  private readonly open = new Set<OutputTail>();

  constructor(
    private readonly output: OutputStream,
    @Inject(LOGGER) private readonly logger: Logger,
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
    const conn = await this.output.tail('hivemind-gateway-sse');
    this.open.add(conn);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      this.open.delete(conn);
      conn.close();
    };
    req.on('close', close);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    while (!closed) {
      try {
        const got = await conn.next(200, BLOCK_MS);
        if (closed) break;
        if (!got.length) {
          res.write(': keep-alive\n\n');
          continue;
        }
        for (const e of got) {
          if (!e.taskId || (task && e.taskId !== task)) continue;
          res.write(`id: ${e.id}\nevent: output\ndata: ${JSON.stringify({ taskId: e.taskId, text: e.text })}\n\n`);
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
    for (const c of this.open) c.close();
    this.open.clear();
  }
}
