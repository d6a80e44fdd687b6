"""The check-in application: the gate's workflow, policy, reconciliation, outputs and the daemon."""
