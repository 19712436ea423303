"""Detection: priors, box coding, matching, loss, host post-processing, metrics and drawings."""
