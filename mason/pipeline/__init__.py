"""Pipeline engine: config models, loader, task graph, runner, workspace and tracker."""
