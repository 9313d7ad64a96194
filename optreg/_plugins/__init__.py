"""Where names come from: the builtin catalogue and the installed plugins, found once
(entry points and pluggy hooks) and handed to the registries of `optreg._core`."""
