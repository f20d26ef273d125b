import { app } from '@azure/functions';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { findConfigDir } from '../src/config';
import { anonymous } from './lib/http';

let document: string | undefined;

app.http('openapi', {
  methods: ['GET'],
  route: 'openapi.yaml',
  handler: anonymous(async () => {
    document ??= readFileSync(path.join(path.dirname(findConfigDir()), 'openapi.yaml'), 'utf8');
    return { status: 200, body: document, headers: { 'content-type': 'application/yaml; charset=utf-8' } };
  }),
});
