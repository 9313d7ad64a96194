"""Policies that travel with a name and act on an optimizer already built: train/eval
modes (`.modes`) and gradient clipping (`.clip`). Hyperparameter schedules are
built with the schedule (`optreg._build.hyper`)."""
