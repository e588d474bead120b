// All user-visible strings live in strings.mjs: every S.name the modules
// use exists, and no other module holds a sentence of its own.

import { S } from '../assets/js/strings.mjs';
import { testStringTable } from './stringtable.mjs';

testStringTable(new URL('../assets/js/', import.meta.url), S);
