"""Lightning callbacks and the history logger."""
