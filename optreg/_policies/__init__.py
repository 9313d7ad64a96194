"""Policies that travel with a name and act on an optimizer already built: train/eval
modes (:mod:`.modes`) and gradient clipping (:mod:`.clip`). Hyperparameter schedules are
built with the schedule (:mod:`optreg._build.hyper`)."""
