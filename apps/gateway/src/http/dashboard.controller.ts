import * as path from 'node:path';
import { Controller, Get, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { publicDir } from './dashboard-auth';

/** The dashboard page (behind the token; its scripts and styles are under /static). */
@ApiExcludeController()
@Controller()
export class DashboardController {
  @Get()
  index(@Res() res: Response): void {
    res.setHeader('Cache-Control', 'no-store');
    res.sendFile(path.join(publicDir(), 'index.html'));
  }
}
