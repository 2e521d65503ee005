"""Code every Lambda of the stack shares: each function's build ships this whole package.

Nothing here imports a Lambda's package, so the transform, the collectors, the custom resource
and the responder each carry it without carrying one another; and nothing here imports more
than the standard library, so no function needs another's dependencies to load it.
"""
