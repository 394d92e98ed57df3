"""The torch-free contract floor: values and forms every layer shares, importing nothing of the kit.

`contract.names`: the vocabulary (scales, spaces, strategies, families) and record file names.
`contract.format`: the record format, the versions still read, and `upgrade` from format 1.
`contract.budget`: the `Budget` value (what the user wrote, parsed once) and its errors.
`contract.errors`: the exceptions that cross layers, told apart by type (gap, out of memory, record, stop).
`contract.threads`: the --threads rule, its parser and help. `contract.options`: the shared click options.
`contract.ops`: the op-name grammar (`parse_op`), which analysis reads recorded op names by.
Everything here must stay importable without torch, so the CLIs, `experiments/` and
`analysis/` can read and check it before (or without) loading a method.
"""
