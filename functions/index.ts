/**
 * The app's entry point (package.json "main"): enables HTTP streaming (SSE chat), validates
 * configuration at start-up (a bad setting fails the host here, naming it), and loads every
 * function file. Registration order does not matter; capabilities are read after loading.
 */
import { app } from '@azure/functions';
import { getDeps } from '../src/composition';
import './audit';
import './chat';
import './documents';
import './evaluations';
import './health';
import './indexing';
import './openapi';
import './sessions';
import './usage';
import './usage-ledger';

app.setup({ enableHttpStream: true });
getDeps();
