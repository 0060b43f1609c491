"""The agent's tools over a thread's git workspace: files, search, commands in a sandbox.

A pure library (no Restate imports): `registry` holds the contract's tool schemas and
`call_tool`; `workspace` the checkout per thread; `files` and `commands` the tools themselves;
`sandbox` how a command is confined; `bounds` how every result is kept small.
"""
