"""Policies that travel with a name: train/eval modes, gradient clipping, and
hyperparameter schedules (:mod:`.modes`, :mod:`.clip`, :mod:`.hyper`)."""
