/** See ./welcome.ts. @module */
import { welcome } from './welcome.js';

export default welcome('peer');
