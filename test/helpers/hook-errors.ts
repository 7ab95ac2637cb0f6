// uvu runs a suite's before hooks inside try/finally and returns from the finally, so an error thrown there vanishes
// and the suite only shows "(0 / N)". Preloaded by scripts/test.mjs so that the reason reaches the CI log.
import { test } from 'uvu';

const register = test.before;
test.before = Object.assign((hook: Parameters<typeof register>[0]) => register(async (context) => {
  try {
    await hook(context);
  } catch (error) {
    console.error('\nthe suite\'s before hook failed:', error);
    throw error;
  }
}), { each: register.each });
