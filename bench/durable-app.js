'use strict';
// The benchmark's app: each instance calls 5 no-op activities in sequence, then waits 1 s.
const df = require('durable-functions');

df.app.activity('noop', { handler: () => null });

df.app.orchestration('bench', function* (ctx) {
  for (let i = 0; i < 5; i++) yield ctx.df.callActivity('noop', i);
  yield ctx.df.createTimer(new Date(ctx.df.currentUtcDateTime.getTime() + 1000));
  return 'ok';
});
