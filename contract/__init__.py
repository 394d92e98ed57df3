"""The torch-free contract floor: values and forms every layer shares, importing nothing of the kit.

`contract.budget`: the `Budget` value (what the user wrote, parsed once) and its errors.
Everything here must stay importable without torch, so the CLIs, `experiments/` and
`analysis/` can read and check it before (or without) loading a method.
"""
