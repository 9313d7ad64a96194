"""Names to entries: errors, the entry record, signatures, validation, loading a
``module:attr`` target, the registries and which provider a shared name reaches.

Nothing here imports torch, pluggy or a plugin; every other room builds on this one.
"""
