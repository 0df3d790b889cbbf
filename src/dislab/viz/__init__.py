"""Pure picture functions: arrays in, arrays or figures out (no Lightning)."""
