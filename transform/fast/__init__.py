"""The transform's fast path: typed decoding straight from bytes for the high-volume inputs
(Detect exports, SNS audit notifications).

Each fast decoder takes a record only when it can prove its output is byte-identical to the
reference decoders' (transform.decoders); anything else it refuses, and the record takes the
reference path, which also writes every unparsed event. tests/test_transform_fast*.py run both
paths on the same batches and require equal results.
"""
