"""Checkpoints: the record beside an optimizer's state (``state_dict`` /
``load_state_dict`` / ``from_state_dict``) and converting state between names."""
