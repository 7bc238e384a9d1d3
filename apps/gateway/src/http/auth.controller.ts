import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { DashboardToken, tokenMatches } from '@hivemind/shared/http/dashboard-token';
import { cameOverTls, clearLoginCookie, DASHBOARD_TOKEN, publicDir, setLoginCookie } from './dashboard-auth';
import { loginBodySchema, parseOr400 } from './validation';

/** The login form: the token once, then a cookie (Secure when the login came over TLS). */
@ApiExcludeController()
@Controller()
export class AuthController {
  constructor(
    @Inject(DASHBOARD_TOKEN) private readonly dashboard: DashboardToken,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
  ) {}

  private secure(req: Request): boolean {
    return this.config.DASHBOARD_COOKIE_SECURE || cameOverTls(req);
  }

  @Get('login')
  async form(@Res() res: Response): Promise<void> {
    res.type('html').send(await this.page(''));
  }

  @Post('login')
  async login(@Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const { token } = parseOr400(loginBodySchema, body, 'login form');
    if (!tokenMatches(token.trim(), this.dashboard.token)) {
      res.status(401).type('html').send(await this.page('That token is not right. It is in the dashboard-token file beside the credentials, and was printed when the gateway first started.'));
      return;
    }
    setLoginCookie(res, this.dashboard.token, this.secure(req));
    res.redirect(303, '/');
  }

  @Post('logout')
  @HttpCode(303)
  logout(@Req() req: Request, @Res() res: Response): void {
    clearLoginCookie(res, this.secure(req));
    res.redirect(303, '/login');
  }

  private async page(error: string): Promise<string> {
    const html = await fs.readFile(path.join(publicDir(), 'login.html'), 'utf8');
    const escaped = error.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
    return html.replace('<!--error-->', escaped ? `<p class="error" role="alert">${escaped}</p>` : '');
  }
}
