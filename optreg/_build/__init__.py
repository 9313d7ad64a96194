"""Building: a name and its arguments to an optimizer or a schedule
(``get_optimizer`` / ``get_scheduler``), from keywords or one config spec, with the
record of what was built and the dry run that explains the groups."""
