"""The fleet simulator: the one home of the messages AWS sends into the pipeline."""
