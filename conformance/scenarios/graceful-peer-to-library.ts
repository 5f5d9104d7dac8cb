/** See ./takeover.ts. @module */
import { takeover } from './takeover.js';

export default takeover('peer-to-library', 'graceful');
