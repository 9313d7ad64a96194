"""optreg names in the trainers people already use.

One module per framework, each importing its framework only when it is imported
itself (``import optreg`` imports none of them):

* `optreg.integrations.transformers`: ``OptregTrainingArguments`` (``--optim`` and
  ``--lr_scheduler_type`` take every optreg name) and ``OptregTrainer`` (builds them with
  the Trainer's own conventions);
* `optreg.integrations.lightning`: ``configure_optimizers``, the whole of a
  LightningModule's ``configure_optimizers`` from names.

Hydra and jsonargparse need no module: ``_target_: optreg.optim.<name>`` (or
``class_path``) is a ``torch.optim.Optimizer`` subclass, see `optreg.optim`.
"""
