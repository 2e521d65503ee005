"""The Splunk app's SPL toolkit: one reading of SPL for the build, its checker and the tests.

No maintained SPL parser runs on Python 3, so the project keeps a small, strict one:

* `lexer`: tokens (quotes, backticks, pipes, brackets), pipeline stages, macro calls;
* `knowledge`: what an app defines (macros, lookups and their columns, eventtypes), and macro
  expansion against it;
* `fields`: the names Splunk gives a JSON event's fields (KV_MODE=json, spath);
* `reading`: which fields a search reads, and whether its data or its pipeline provides them;
* `validation`: the macro `validation` expressions, judged offline;
* `check`: the structural checker (`python -m appbuild.spl.check APP_DIR`).
"""
