"""The operator CLI of the runner fleet (`ecsrunner`, entry point `ecsrunner_cli.py`).

Modules: `cli` (the command tree and error handling), `config` (options, environment, AWS
clients), `output` (tables and JSON), `records` (the state table as the CLI reads it), one
module per command group (`runners`, `runs`, `fleet`), and `terminate`, `ecs_exec`,
`github_access` for the commands that act.
"""
