// node --import ./jstest/register.mjs: resolves /view/js/ (hooks.mjs).
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
