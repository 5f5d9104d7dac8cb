/** See ./takeover.ts. @module */
import { takeover } from './takeover.js';

export default takeover('library-to-peer', 'crash');
